"""``gcl.pp.recipe``: QC, filtering, normalisation, highly variable genes and PCA via scanpy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._errors import GclError
from .._keys import Key
from .._utils import logger
from .._validate import check_counts, check_finite, is_integer_matrix, layer_label

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData


def recipe(
    adata: AnnData,
    *,
    n_top_genes: int = 2000,
    layer: str | None = Key.layers.counts,
    min_counts: int = 1,
    min_cells: int = 1,
    target_sum: float | None = None,
    n_comps: int = 50,
    copy: bool = False,
    key_added: str = Key.uns.recipe,
) -> AnnData | None:
    """Standard preprocessing through scanpy: QC, filtering, log-normalisation, HVGs, PCA.

    Steps, in order:

    1. **Counts.** Raw counts are read from ``.layers[layer]``. If that layer does not exist
       but ``.X`` holds non-negative integers, ``.X`` is copied into ``.layers[layer]`` and used
       as the counts. If neither holds counts, ``.X`` is taken to be log-normalised already:
       normalisation is skipped (a warning is logged) and genes are selected with the
       ``"seurat"`` flavour on ``.X``.
    2. **QC metrics** with :func:`scanpy.pp.calculate_qc_metrics` on the counts (``.obs``
       columns such as ``total_counts`` and ``n_genes_by_counts``, ``.var`` columns such as
       ``n_cells_by_counts``).
    3. **Filtering.** Cells with fewer than ``min_counts`` counts and genes detected in fewer
       than ``min_cells`` cells are removed. This changes the shape of the object; without
       ``copy=True`` it happens in place, as with :func:`scanpy.pp.filter_cells`. How many
       were removed, and why, is logged and stored in ``.uns[key_added]``.
    4. **Normalisation.** :func:`scanpy.pp.normalize_total` (to ``target_sum`` counts per cell;
       ``None`` is the median library size) then :func:`scanpy.pp.log1p`, written to
       ``.layers["gcl_lognorm"]`` **and** to ``.X``, so that scanpy's tools, which read ``.X``,
       see log-normalised values. The counts layer is never modified.
    5. **Highly variable genes** with :func:`scanpy.pp.highly_variable_genes`, flavour
       ``"seurat_v3"`` on the counts (``"seurat"`` on ``.X`` when there are no counts);
       ``n_top_genes`` is capped at the number of genes. Genes are marked in
       ``.var["highly_variable"]``, not removed.
    6. **PCA** with :func:`scanpy.pp.pca` on the highly variable genes of ``.X``; ``n_comps`` is
       capped at ``min(n_cells, n_hvg) - 1``.

    Parameters
    ----------
    adata
        Annotated data matrix, cells × genes.
    n_top_genes
        Number of highly variable genes to mark (capped at the number of genes).
    layer
        Layer holding raw integer counts. ``None`` means ``.X`` holds the counts; they are then
        copied into ``.layers["counts"]`` before ``.X`` is overwritten.
    min_counts
        Cells with fewer total counts are removed (``1`` removes empty cells).
    min_cells
        Genes detected in fewer cells are removed (``1`` removes all-zero genes).
    target_sum
        Counts per cell after normalisation; ``None`` uses the median of the library sizes.
    n_comps
        Number of principal components (capped, see above).
    copy
        Return a processed copy instead of modifying ``adata`` in place.
    key_added
        Key in ``.uns`` for the record of this step.

    Returns
    -------
    The processed AnnData if ``copy=True``, else ``None``; ``adata`` (or the copy) gets

    - ``.layers["counts"]`` (only when the counts were taken from ``.X``),
    - ``.layers["gcl_lognorm"]`` and ``.X``: log1p of the library-size-normalised counts,
    - ``.obs`` / ``.var`` QC columns from :func:`scanpy.pp.calculate_qc_metrics`,
    - ``.var["highly_variable"]`` and scanpy's other HVG columns, ``.uns["hvg"]``,
    - ``.obsm["X_pca"]``, ``.varm["PCs"]``, ``.uns["pca"]``,
    - ``.uns[key_added]``: ``"params"``, the numbers of removed cells and genes with the
      reasons, where the counts came from, and the flavour and number of selected genes.

    Raises
    ------
    GclError
        When the counts layer holds negative or non-integer values, when ``.X`` holds negative
        values or non-integer values that look like scaled counts (see
        :data:`LOG_NORMALISED_MAX`) and there are no counts, or when no cells or genes survive
        filtering. ``adata`` is unchanged when any of these is raised.

    Examples
    --------
    >>> import anndata as ad, numpy as np
    >>> import gclandscape as gcl
    >>> counts = np.random.default_rng(0).poisson(2.0, size=(100, 50))
    >>> adata = ad.AnnData(counts.astype(np.float32))
    >>> gcl.pp.recipe(adata, n_top_genes=20, n_comps=5)
    >>> int(adata.var["highly_variable"].sum()), adata.obsm["X_pca"].shape
    (20, (100, 5))
    """
    import scanpy as sc

    if isinstance(n_top_genes, bool) or not isinstance(n_top_genes, int | np.integer):
        raise GclError(f"n_top_genes must be a positive integer, got {n_top_genes!r}.")
    if n_top_genes < 1 or n_comps < 1:
        raise GclError(
            f"n_top_genes and n_comps must be at least 1, got {n_top_genes} and {n_comps}."
        )
    if target_sum is not None and not target_sum > 0:
        raise GclError(f"target_sum must be positive or None, got {target_sum!r}.")

    params = {
        "n_top_genes": int(n_top_genes),
        "layer": layer,
        "min_counts": min_counts,
        "min_cells": min_cells,
        "target_sum": target_sum,
        "n_comps": int(n_comps),
    }
    if copy:
        adata = adata.copy()

    # 1. where the counts are. Nothing is written into adata until every check has passed.
    counts_layer: str | None
    x_counts = False  # the counts are .X, copied into a layer once the checks have passed
    if layer is not None and layer in adata.layers:
        check_counts(adata, layer)
        counts_layer, counts_source = layer, layer_label(layer)
    elif adata.X is not None and is_integer_matrix(adata.X):
        counts_layer = layer if layer is not None else Key.layers.counts
        counts_source, x_counts = ".X", True
    else:
        if adata.X is None:
            raise GclError(
                f"recipe needs counts in {layer_label(layer)} or data in .X; both are empty."
            )
        check_finite(adata.X, name=".X")
        if _min(adata.X) < 0:
            raise GclError(
                ".X holds negative values (scaled data?) and there is no counts layer "
                f"({layer_label(layer)} is missing). Pass layer= naming the raw counts layer, "
                "or log-normalised (non-negative) values in .X."
            )
        _check_not_scaled_counts(adata.X, adata.obs_names, layer)
        counts_layer, counts_source = None, "none"
        logger.warning(
            "recipe: no counts found (%s.X is not integer); treating .X as "
            "log-normalised values: normalisation is skipped and genes are selected with "
            "flavor='seurat' on .X.",
            "" if layer is None else f"{layer_label(layer)} is missing and ",
        )

    # 2. QC metrics on the counts (or on .X)
    obs_qc, var_qc = sc.pp.calculate_qc_metrics(
        adata, layer=None if x_counts else counts_layer, percent_top=None, inplace=False
    )

    # 3. filtering of empty cells and genes
    keep_cells = obs_qc["total_counts"].to_numpy() >= min_counts
    keep_genes = var_qc["n_cells_by_counts"].to_numpy() >= min_cells
    n_cells_removed = int((~keep_cells).sum())
    n_genes_removed = int((~keep_genes).sum())
    if not keep_cells.any() or not keep_genes.any():
        raise GclError(
            f"recipe would remove all cells or all genes (min_counts={min_counts}, "
            f"min_cells={min_cells}; {keep_cells.sum()} cells and {keep_genes.sum()} genes pass). "
            "Lower min_counts / min_cells, or check that the counts are not empty."
        )
    if x_counts:
        adata.layers[counts_layer] = adata.X.copy()
        logger.info(
            "recipe: using the integer values of .X as counts (copied to layer %r)", counts_layer
        )
    for name in obs_qc.columns:
        adata.obs[name] = obs_qc[name]
    for name in var_qc.columns:
        adata.var[name] = var_qc[name]
    reason_cells = f"fewer than {min_counts} total counts"
    reason_genes = f"detected in fewer than {min_cells} cells"
    if n_cells_removed:
        logger.info("recipe: removed %d cells with %s", n_cells_removed, reason_cells)
        adata._inplace_subset_obs(keep_cells)
    if n_genes_removed:
        logger.info("recipe: removed %d genes %s", n_genes_removed, reason_genes)
        adata._inplace_subset_var(keep_genes)

    # 4. normalisation + log1p into a layer and .X; the counts stay untouched
    if counts_layer is not None:
        normed = sc.pp.normalize_total(
            adata, target_sum=target_sum, layer=counts_layer, inplace=False
        )["X"]
        lognorm = sc.pp.log1p(normed.astype(np.float32), copy=True)
    else:
        lognorm = adata.X.copy()
    adata.layers[Key.layers.lognorm] = lognorm
    adata.X = lognorm.copy()

    # 5. highly variable genes
    n_hvg = int(min(n_top_genes, adata.n_vars))
    if counts_layer is not None:
        flavor = "seurat_v3"
        sc.pp.highly_variable_genes(
            adata, flavor=flavor, n_top_genes=n_hvg, layer=counts_layer, subset=False
        )
    else:
        flavor = "seurat"
        sc.pp.highly_variable_genes(adata, flavor=flavor, n_top_genes=n_hvg, subset=False)
    n_hvg = int(adata.var[Key.var.highly_variable].sum())

    # 6. PCA on the highly variable genes of the log-normalised .X
    n_comps_used = int(min(n_comps, adata.n_obs - 1, n_hvg - 1))
    if n_comps_used >= 1:
        sc.pp.pca(adata, n_comps=n_comps_used, mask_var=Key.var.highly_variable)
    else:
        logger.warning("recipe: too few cells or genes for PCA; skipped")

    adata.uns[key_added] = {
        "params": params,
        "counts_source": counts_source,
        "counts_layer": counts_layer,
        "n_cells_removed": n_cells_removed,
        "n_genes_removed": n_genes_removed,
        "cells_removed_because": reason_cells,
        "genes_removed_because": reason_genes,
        "lognorm_layer": Key.layers.lognorm,
        "hvg_flavor": flavor,
        "n_highly_variable": n_hvg,
        "n_comps": max(n_comps_used, 0),
    }
    return adata if copy else None


#: Largest value of a log-normalised matrix that recipe accepts: log1p of a normalised count
#: stays below 14 even for 1e6 counts per cell (CPM); 30 would be e^30 = 1e13 counts.
LOG_NORMALISED_MAX = 30.0
#: Cells sampled to recognise scaled counts (every value a whole multiple of the cell's smallest).
_SCALED_SAMPLE = 200


def _check_not_scaled_counts(X, obs_names, layer: str | None) -> None:
    """Raise when a non-integer .X looks like counts times a factor, not log-normalised values.

    Two signs: values above :data:`LOG_NORMALISED_MAX`, or (in most sampled cells with at least
    two distinct values) every value a whole multiple of the cell's smallest non-zero value,
    as counts scaled by a factor per cell (x 1.13, size factors) are. Log values are not:
    log1p(2s) / log1p(s) is not 2.
    """
    from scipy import sparse

    top = float(X.max()) if np.prod(X.shape) else 0.0
    scaled, example = 0, None
    rows = np.linspace(0, X.shape[0] - 1, min(_SCALED_SAMPLE, X.shape[0])).astype(int)
    checked = 0
    for i in rows:
        row = X[i].toarray().ravel() if sparse.issparse(X) else np.asarray(X[i]).ravel()
        row = row[row > 0].astype(np.float64)
        if np.unique(row).size < 2:
            continue
        checked += 1
        ratio = row / row.min()
        if np.all(np.abs(ratio - np.rint(ratio)) <= 1e-3 + 1e-5 * ratio):
            scaled += 1
            example = example or (obs_names[i], float(row.min()))
    if top <= LOG_NORMALISED_MAX and not (checked and scaled >= 0.9 * checked):
        return
    sign = (
        f"values up to {top:g}, above the {LOG_NORMALISED_MAX:g} log-normalised data stay under"
        if top > LOG_NORMALISED_MAX
        else f"in {scaled} of {checked} sampled cells every value is a whole multiple of the "
        f"cell's smallest (e.g. {example[1]:g} in cell {example[0]!r})"
    )
    raise GclError(
        f".X holds non-integer values that look like scaled or corrected counts ({sign}), and "
        f"there is no counts layer ({layer_label(layer)} is missing). gcl.pp.recipe needs raw "
        "integer counts or log-normalised values; adata was not changed. Fix: store the raw "
        "counts in adata.layers['counts'], or round corrected counts first "
        "(adata.layers['counts'] = np.rint(adata.X) for a dense .X, adata.X.rint() for a "
        "sparse one)."
    )


def _min(matrix) -> float:
    """Smallest value of a dense or sparse matrix (0 for an empty one)."""
    return float(matrix.min()) if np.prod(matrix.shape) else 0.0
