"""What the drift reads from an AnnData: its time signal, genes, expression states and kNN graph."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._errors import GclError
from .._keys import Key

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData


def _time_signal(adata: AnnData, time_key: str | None) -> tuple[np.ndarray, str]:
    if time_key is None:
        if Key.obs.pseudotime in adata.obs:
            time_key = Key.obs.pseudotime
        else:
            raise GclError(
                "gcl.tl.drift needs a time signal and found none. Give one of: "
                "(1) time_key='<obs column>' with pseudotime, simulation time or time-point labels; "
                "(2) run gcl.tl.pseudotime(adata, root='<progenitor group>', groupby='<column>') first; "
                "(3) velocity_layer='<layer>' with RNA velocity."
            )
    if time_key not in adata.obs:
        raise GclError(
            f"time_key={time_key!r} is not a column of adata.obs. "
            f"Available columns: {', '.join(map(str, adata.obs.columns)) or '(none)'}."
        )
    col = adata.obs[time_key]
    if isinstance(col.dtype, pd.CategoricalDtype):
        if not col.cat.ordered:
            raise GclError(
                f"obs[{time_key!r}] is an unordered categorical; time-point labels must be ordered. "
                "Make it ordered (col.cat.as_ordered() / reorder_categories) or numeric."
            )
        t = col.cat.codes.to_numpy().astype(np.float64)
        t[col.isna().to_numpy()] = np.nan
    else:
        try:
            t = col.to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise GclError(
                f"obs[{time_key!r}] is not numeric; give a numeric time or an ordered categorical."
            ) from None
    bad = ~np.isfinite(t)
    if bad.any():
        raise GclError(
            f"obs[{time_key!r}] has {int(bad.sum())} missing or infinite values (first: cell "
            f"{adata.obs_names[np.flatnonzero(bad)[0]]!r}). Subset to cells with a time first, e.g. "
            f"adata = adata[adata.obs[{time_key!r}].notna()].copy()."
        )
    return t, time_key


def _genes(adata: AnnData, genes: Sequence[str] | None) -> list[str]:
    if genes is None:
        if Key.var.regulator in adata.var and adata.var[Key.var.regulator].any():
            return list(adata.var_names[adata.var[Key.var.regulator].to_numpy(dtype=bool)])
        if Key.var.highly_variable in adata.var and adata.var[Key.var.highly_variable].any():
            return list(adata.var_names[adata.var[Key.var.highly_variable].to_numpy(dtype=bool)])
        return list(adata.var_names)
    genes = [genes] if isinstance(genes, str) else list(genes)
    if not genes:
        raise GclError("genes is empty; pass at least one gene name or None for the default.")
    missing = [g for g in genes if g not in adata.var_names]
    if missing:
        raise GclError(
            f"{len(missing)} of the requested genes are not in adata.var_names: "
            f"{', '.join(map(str, missing[:10]))}{' ...' if len(missing) > 10 else ''}."
        )
    return genes


def expression_states(
    adata: AnnData, genes: Sequence[str], *, layer: str | None = None
) -> tuple[np.ndarray, str]:
    """Expression of ``genes`` in linear (not log) units, the coordinates drift is estimated in.

    ``layer=None`` takes library-size-normalised counts (``Key.layers.counts`` scaled to the
    median library size, no log: the drift of a log transform is distorted by 1/(1+x)), or
    ``.X`` when there are no counts. The VAE's denoised expression (``"gcl_denoised"``) is
    used only when asked for by name: the decoder smooths away the per-cell deviations and
    the regulator contrasts that the drift and the genome are fitted to, and it lowered the
    drift's accuracy and the knockout calls (``benchmarks/README.md``, "Drift accuracy").

    Examples
    --------
    >>> import anndata as ad, numpy as np
    >>> a = ad.AnnData(np.array([[1.0, 3.0], [2.0, 2.0]]))
    >>> expression_states(a, ["0", "1"], layer=None)[1]
    'X'
    """
    idx = adata.var_names.get_indexer(list(genes))
    if layer is None and Key.layers.counts in adata.layers:
        counts = adata.layers[Key.layers.counts]
        lib = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
        if (lib <= 0).any():
            raise GclError(
                f"{int((lib <= 0).sum())} cells have no counts; remove them first "
                "(gcl.pp.recipe does)."
            )
        sub = counts[:, idx]
        sub = sub.toarray() if sp.issparse(sub) else np.asarray(sub)
        return sub * (np.median(lib) / lib)[:, None], "normalised counts"
    if layer is not None and layer not in adata.layers:
        raise GclError(
            f"layer={layer!r} is not in adata.layers. Available: "
            f"{', '.join(adata.layers.keys()) or '(none)'}."
        )
    m = adata.layers[layer] if layer is not None else adata.X
    sub = m[:, idx]
    sub = sub.toarray() if sp.issparse(sub) else np.asarray(sub)
    return sub.astype(np.float64), layer if layer is not None else "X"


def neighbour_graph(
    adata: AnnData, use_rep: str | None, n_neighbors: int, seed: int
) -> tuple[sp.csr_matrix, str]:
    """The cells' kNN connectivities (scanpy's) and the name of the representation used.

    ``use_rep`` as in :func:`gclandscape.tl.drift` (default ``X_pca`` when present); the
    graph is built on a light copy, so ``adata`` is left as it is.
    """
    import anndata as ad
    import scanpy as sc

    from ._pseudotime import _resolve_rep

    if use_rep is None and Key.obsm.pca in adata.obsm:
        use_rep = Key.obsm.pca
    rep_name, rep = _resolve_rep(adata, use_rep)
    light = ad.AnnData(obs=pd.DataFrame(index=adata.obs_names.copy()))
    light.obsm["rep"] = rep
    k = int(min(n_neighbors, adata.n_obs - 1))
    if k < 2:
        raise GclError(f"gcl.tl.drift needs at least 3 cells; adata has {adata.n_obs}.")
    sc.pp.neighbors(light, n_neighbors=k, use_rep="rep", random_state=seed)
    return sp.csr_matrix(light.obsp["connectivities"]), rep_name
