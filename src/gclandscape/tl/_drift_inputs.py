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


#: UMAP's tolerance on the binary search for each cell's bandwidth, and the floor of that
#: bandwidth relative to the cell's mean neighbour distance (``umap.umap_`` constants).
_SMOOTH_K_TOLERANCE = 1e-5
_MIN_K_DIST_SCALE = 1e-3
#: Bisection steps of that search (``umap.umap_.smooth_knn_dist``'s ``n_iter``).
_N_ITER = 64


def umap_connectivities(knn_indices: np.ndarray, knn_dists: np.ndarray) -> sp.csr_matrix:
    """UMAP's fuzzy kNN connectivities, the weights of ``sc.pp.neighbors(method="umap")``.

    The computation of ``umap.umap_.fuzzy_simplicial_set`` with scanpy's settings (fuzzy
    union, ``local_connectivity=1``), vectorised over cells in numpy: each cell ``i`` gets
    ``rho_i``, the distance to its nearest other cell, and a bandwidth ``sigma_i`` found by
    bisection so that ``sum_j exp(-(d_ij - rho_i) / sigma_i) = log2(k)``; the directed
    weights ``w_ij = exp(-(d_ij - rho_i) / sigma_i)`` are symmetrised as ``W + W' - W∘W'``.
    Why not call umap: its numba kernels are compiled in every new process (about 11 s, more
    than the rest of a 5,000-cell ``fit_grn``; ``benchmarks/README.md``, "Scale"); the
    result equals scanpy's to float32 rounding (``tests/test_drift_graph.py``).

    Parameters
    ----------
    knn_indices, knn_dists
        Cells × k indices and Euclidean distances of each cell's k nearest cells, the cell
        itself first (distance 0), sorted by distance.

    Returns
    -------
    Symmetric cells × cells CSR matrix of float32 weights in (0, 1], no diagonal.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neighbors import NearestNeighbors
    >>> x = np.random.default_rng(0).normal(size=(40, 3))
    >>> dist, idx = NearestNeighbors(n_neighbors=5).fit(x).kneighbors(x)
    >>> w = umap_connectivities(idx, dist)
    >>> bool(abs(w - w.T).max() == 0 and w.max() <= 1.0 and w.diagonal().max() == 0)
    True
    """
    idx = np.asarray(knn_indices, dtype=np.int64)
    d = np.array(knn_dists, dtype=np.float32)
    n, k = d.shape
    # a cell's distance to itself comes out of the kNN search as rounding noise (~1e-7), which
    # would become its rho; scanpy sets it to 0, and so do we
    d[idx == np.arange(n)[:, None]] = 0.0
    # rho: the nearest non-zero distance (0 where a cell has only duplicates around it)
    rho = np.where(d > 0, d, np.inf).min(axis=1).astype(np.float32)
    rho[~np.isfinite(rho)] = 0.0
    excess = d[:, 1:] - rho[:, None]  # float32, as umap computes it
    target = np.log2(k)
    lo, hi, mid = np.zeros(n), np.full(n, np.inf), np.ones(n)
    active = np.ones(n, dtype=bool)
    for _ in range(_N_ITER):
        psum = np.where(excess > 0, np.exp(-(excess / mid[:, None])), 1.0).sum(axis=1)
        active &= np.abs(psum - target) >= _SMOOTH_K_TOLERANCE  # a converged cell stops
        if not active.any():
            break
        above = psum > target
        hi = np.where(active & above, mid, hi)
        lo = np.where(active & ~above, mid, lo)
        step = np.where(above | np.isfinite(hi), 0.5 * (lo + hi), 2.0 * mid)
        mid = np.where(active, step, mid)
    sigma = mid.astype(np.float32)
    floor = _MIN_K_DIST_SCALE * np.where(rho > 0, d.mean(axis=1), d.mean())
    sigma = np.where(sigma < floor, floor, sigma).astype(np.float32)
    gap = d - rho[:, None]
    with np.errstate(divide="ignore", over="ignore"):
        w = np.exp(-(gap / sigma[:, None])).astype(np.float32)
    w[(gap <= 0) | (sigma[:, None] == 0)] = 1.0
    w[idx == np.arange(n)[:, None]] = 0.0
    directed = sp.coo_matrix((w.ravel(), (np.repeat(np.arange(n), k), idx.ravel())), shape=(n, n))
    directed = directed.tocsr()
    directed.eliminate_zeros()
    both = directed + directed.T - directed.multiply(directed.T)
    both = sp.csr_matrix(both)
    both.eliminate_zeros()
    return both


def neighbour_graph(
    adata: AnnData, use_rep: str | None, n_neighbors: int
) -> tuple[sp.csr_matrix, str]:
    """The cells' kNN connectivities and the name of the representation used.

    ``use_rep`` as in :func:`gclandscape.tl.drift` (default ``X_pca`` when present); ``adata``
    is not changed. The neighbours are exact (scikit-learn, brute force, Euclidean) and the
    weights are :func:`umap_connectivities`: scanpy's default graph (``sc.pp.neighbors``),
    which the drift was measured with, without umap's compilation in every process. Above
    8,191 cells scanpy would switch to pynndescent's approximate neighbours; these stay exact.

    Examples
    --------
    >>> import anndata as ad, numpy as np
    >>> a = ad.AnnData(np.random.default_rng(0).normal(size=(50, 5)).astype(np.float32))
    >>> a.obsm["X_pca"] = a.X
    >>> graph, rep = neighbour_graph(a, None, 10)
    >>> graph.shape, rep
    ((50, 50), 'X_pca')
    """
    from sklearn.neighbors import NearestNeighbors

    from ._pseudotime import _resolve_rep

    if use_rep is None and Key.obsm.pca in adata.obsm:
        use_rep = Key.obsm.pca
    rep_name, rep = _resolve_rep(adata, use_rep)
    k = int(min(n_neighbors, adata.n_obs - 1))
    if k < 2:
        raise GclError(f"gcl.tl.drift needs at least 3 cells; adata has {adata.n_obs}.")
    rep = np.asarray(rep.toarray() if sp.issparse(rep) else rep)
    dist, idx = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(rep).kneighbors(rep)
    return umap_connectivities(idx, dist), rep_name
