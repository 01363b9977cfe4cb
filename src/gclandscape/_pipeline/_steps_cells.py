"""The steps of ``gclandscape run`` on the cells: QC, recipe, scVI latent, UMAP, pseudotime."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from anndata import AnnData

from ._context import RUN_BATCH_SIZE, RunContext, default_root, run_epochs
from ._input import share_x
from ._knockouts import check_knockouts, regulators
from ._regulators import annotate


def _as_categorical(column: pd.Series) -> pd.Categorical:
    """String categories, in the column's own category order when it has one."""
    import pandas as pd

    values = column.astype(str).to_numpy()
    if isinstance(column.dtype, pd.CategoricalDtype):
        order = [str(c) for c in column.cat.categories]
        order = [c for c in order if c in set(values)]
    else:
        order = sorted(set(values))
    return pd.Categorical(values, categories=order)


def step_qc(ctx: RunContext) -> None:
    """Per-cell QC metrics with scanpy on the counts (or on X for non-count data), with the
    share of mitochondrial counts (genes named ``mt-...``, any case) through ``qc_vars``."""
    import anndata as ad
    import numpy as np
    import pandas as pd
    import scanpy as sc

    from .. import _report
    from .._keys import Key
    from .._validate import is_integer_matrix

    adata = ctx.adata
    if Key.layers.counts in adata.layers:
        ctx.counts_source = f"layers['{Key.layers.counts}']"
        ctx.counts = adata.layers[Key.layers.counts]
    elif is_integer_matrix(adata.X):
        ctx.counts_source, ctx.counts = "X", adata.X
    matrix = ctx.counts if ctx.counts is not None else adata.X
    mito = np.asarray(adata.var_names.str.lower().str.startswith("mt-"))
    # a light AnnData sharing the matrix: scanpy's qc_vars reads a .var column, and the
    # user's object is never written to
    view = ad.AnnData(
        X=matrix,
        obs=pd.DataFrame(index=adata.obs_names),
        var=pd.DataFrame({"mt": mito}, index=adata.var_names),
    )
    top = [n for n in (10, 50, 100, 200, 500) if n < adata.n_vars]
    obs_qc, _ = sc.pp.calculate_qc_metrics(
        view, qc_vars=["mt"] if mito.any() else [], percent_top=top or None, inplace=False,
        log1p=True,
    )  # fmt: skip
    if ctx.groupby is not None:
        obs_qc[ctx.groupby] = adata.obs[ctx.groupby].astype(str).to_numpy()
    ctx.qc = obs_qc
    _report.write_table(obs_qc, ctx.out / "qc.csv")
    ctx.files.append("qc.csv")
    ctx.summary["counts"] = ctx.counts_source
    ctx.summary["qc"] = {
        "median_total_counts": float(np.median(obs_qc["total_counts"])),
        "median_genes_detected": float(np.median(obs_qc["n_genes_by_counts"])),
        "computed_on": ctx.counts_source or "X (not counts)",
    }


def _working_copy(src: AnnData) -> AnnData:
    """The run's working AnnData: ``src``'s annotations copied, its matrices (``.X`` and
    ``.layers``) shared, not copied.

    Nothing in the run writes into a matrix in place: the recipe replaces ``.X`` and subsets
    by building new matrices, so the input stays as it was. On 50,000 × 2,000 myeloid counts
    (77 % non-zero) each CSR copy is 0.6 GiB: ``src.copy()`` held the counts twice for the
    whole run (and ``.X`` twice during the recipe).
    """
    import copy

    import anndata as ad

    if src.is_view:  # a view's matrices are the parent's: copy as before
        return src.copy()
    work = ad.AnnData(
        X=src.X,
        layers=dict(src.layers.items()),
        obs=src.obs.copy(),
        var=src.var.copy(),
        uns=copy.deepcopy(dict(src.uns)),
        obsm={k: v.copy() for k, v in src.obsm.items()},
        varm={k: v.copy() for k, v in src.varm.items()},
        obsp={k: v.copy() for k, v in src.obsp.items()},
        varp={k: v.copy() for k, v in src.varp.items()},
    )
    if src.raw is not None:
        work.raw = src.raw.to_adata()
    return work


def step_recipe(ctx: RunContext) -> None:
    """gcl.pp.recipe on a working copy (matrices shared with the input, never written in
    place): QC filtering, normalisation, log1p, HVG, PCA."""
    import numpy as np

    from .. import pp
    from .._keys import Key

    src = ctx.adata
    work = _working_copy(src)
    if ctx.counts is None:
        # not counts (e.g. scanpy's continuous simulations): no count model, PCA of X
        import scanpy as sc

        work.X = np.asarray(work.X, dtype=np.float32)
        n_comps = int(min(50, work.n_obs - 1, work.n_vars - 1))
        if n_comps >= 2:
            sc.pp.pca(work, n_comps=n_comps, random_state=ctx.seed)
        ctx.summary["recipe"] = {"normalized": False, "n_pcs": n_comps}
    else:
        pp.recipe(work, n_top_genes=min(2000, work.n_vars))
        share_x(work, Key.layers.lognorm)
        ctx.summary["recipe"] = {
            k: v for k, v in work.uns.get(Key.uns.recipe, {}).items() if k != "params"
        }
    if ctx.groupby is not None:
        work.obs[ctx.groupby] = _as_categorical(work.obs[ctx.groupby])
    ctx.work = work
    if ctx.organism is not None:  # the genome's genes become the expressed regulators
        annotate(ctx)
    if ctx.knockouts:
        genes = ctx.genome_genes if ctx.genome_genes is not None else regulators(work)
        check_knockouts(ctx.knockouts, genes)


def step_latent(ctx: RunContext) -> None:
    """Latent cell states with scVI (counts only)."""
    from .. import latent
    from .._keys import Key

    if ctx.counts is None:
        ctx.summary["latent"] = "skipped: the input has no counts"
        return
    epochs = ctx.epochs if ctx.epochs is not None else run_epochs(ctx.work.n_obs)
    model = latent.fit(
        ctx.work,
        max_epochs=epochs,
        seed=ctx.seed,
        train_kwargs={"batch_size": RUN_BATCH_SIZE, "early_stopping_patience": 10},
    )
    params = ctx.work.uns.get(Key.uns.latent, {})
    ctx.model = model  # decodes the screen's knockouts over every gene
    ctx.summary["latent"] = {
        "model": "scvi",
        "n_latent": int(model.n_latent),
        "epochs": int(params["epochs_trained"]),
    }


def step_embed(ctx: RunContext) -> None:
    """Neighbours and UMAP of the latent (or of the PCA) for the figures."""
    import scanpy as sc

    from .._keys import Key

    work = ctx.work
    use_rep = next((k for k in (Key.obsm.latent, Key.obsm.pca) if k in work.obsm), None)
    n_neighbors = int(min(15, max(work.n_obs - 1, 2)))
    sc.pp.neighbors(
        work, n_neighbors=n_neighbors, use_rep=use_rep or "X", random_state=ctx.seed,
        key_added=Key.uns.umap_neighbors,
    )  # fmt: skip
    sc.tl.umap(work, random_state=ctx.seed, neighbors_key=Key.uns.umap_neighbors)
    ctx.summary["embedding"] = {"use_rep": use_rep or "X", "n_neighbors": n_neighbors}


def step_pseudotime(ctx: RunContext) -> None:
    """Diffusion pseudotime from the --root group (default: 'progenitor' when present)."""
    from .. import tl
    from .._errors import GclError

    root = default_root(ctx)
    if root is None:
        ctx.summary["pseudotime"] = "skipped: no --root group (and no 'progenitor' group)"
        return
    if ctx.groupby is None:
        raise GclError("--root needs --groupby (the obs column the root group is in).")
    tl.pseudotime(ctx.work, root=root, groupby=ctx.groupby)
    ctx.summary["pseudotime"] = {"root": root, "groupby": ctx.groupby}
