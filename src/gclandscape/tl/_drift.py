"""Per-cell drift: an estimate of dx/dt for each cell from a snapshot.

Snapshot data have no time derivative. ``drift`` estimates one per cell from a time signal
(pseudotime, simulation time, or real time points) through a forward-biased kNN transition
matrix in the spirit of CellRank's pseudotime kernel, or reads it off an RNA-velocity layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from .._errors import GclError
from .._keys import Key
from .._utils import logger
from ._deviation import _row_blocks, crossgene_deviation
from ._drift_estimate import DriftEstimate, decay_rate, estimate_drift, forward_transition_matrix
from ._drift_inputs import _genes, _time_signal, expression_states, neighbour_graph
from ._smoothing import _row_normalise, smooth_states

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

# tests and benchmarks import the estimator's parts from here; the package imports them from
# their homes (_drift_estimate, _drift_inputs, _smoothing)
__all__ = [
    "DriftEstimate",
    "decay_rate",
    "drift",
    "estimate_drift",
    "expression_states",
    "forward_transition_matrix",
    "smooth_states",
]


#: The cross-gene deviation (:mod:`._deviation`) is used for at most this many drift genes
#: (its per-cell posterior costs cells × measured genes × drift genes²: 3,000 cells × 261
#: other genes took 8.7 s with 50 drift genes, 1 s with 11) ...
MAX_CROSSGENE_GENES = 30
#: ... and reads at most this many other genes (the most variable by normalised dispersion).
MAX_MEASURED_GENES = 1000
#: How the display label ``params["deviation"]`` of a drift names the cross-gene estimate
#: (followed by the number of genes it read); what other steps read is the flag
#: ``params[Key.drift_params.crossgene]``.
CROSSGENE_LABEL = "counts of "


def _scaled_blocks(counts, cols: np.ndarray, libf: np.ndarray):
    """``(rows, counts[rows][:, cols] * libf[rows])`` as dense float64, in row blocks.

    The counts of all other genes at 50,000 cells are 0.8 GB as float64: densified at once
    (as before) they were most of the drift's peak memory, so only a block is dense at a time.
    """
    for rows in _row_blocks(counts.shape[0], len(cols)):
        block = counts[rows][:, cols]
        block = block.toarray() if sp.issparse(block) else np.asarray(block)
        yield rows, block.astype(np.float64) * libf[rows, None]


def _column_moments(counts, cols: np.ndarray, libf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance over cells of each column of ``counts[:, cols] * libf`` (two passes
    over row blocks: the same two-pass variance as ``np.var``, without a dense copy)."""
    n = counts.shape[0]
    total = np.zeros(len(cols))
    for _, block in _scaled_blocks(counts, cols, libf):
        total += block.sum(axis=0)
    mean = total / n
    squares = np.zeros(len(cols))
    for _, block in _scaled_blocks(counts, cols, libf):
        block -= mean
        squares += np.einsum("ij,ij->j", block, block)
    return mean, squares / n


def _deviation_from_counts(
    adata: AnnData,
    genes: list[str],
    xs: np.ndarray,
    scale: np.ndarray,
    graph: sp.csr_matrix,
    seed: int,
) -> tuple[np.ndarray | None, str]:
    """The restoring term's deviation from the counts of all genes, or ``(None, reason)``.

    The other genes are chosen from column statistics of the (sparse) counts, and only the
    chosen ones are densified: the genes with counts, at most :data:`MAX_MEASURED_GENES` of the
    most over-dispersed (variance / mean of the library-normalised counts).
    """
    if len(genes) > MAX_CROSSGENE_GENES:
        return None, f"neighbours (more than {MAX_CROSSGENE_GENES} drift genes)"
    counts = adata.layers[Key.layers.counts]
    if not sp.issparse(counts):
        counts = np.asarray(counts)
    elif counts.format != "csr":
        counts = counts.tocsr()  # row blocks are cheap only in CSR
    lib = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
    libf = np.median(lib) / lib
    others = np.ones(adata.n_vars, dtype=bool)
    others[adata.var_names.get_indexer(genes)] = False
    hv = Key.var.highly_variable
    if hv in adata.var and adata.var[hv].to_numpy(dtype=bool)[others].sum() >= 10:
        others &= adata.var[hv].to_numpy(dtype=bool)
    idx = np.flatnonzero(others)
    mean, var = _column_moments(counts, idx, libf)
    keep = mean > 0
    idx, mean, var = idx[keep], mean[keep], var[keep]
    if len(idx) < 10:
        return None, "neighbours (fewer than 10 other genes with counts)"
    if len(idx) > MAX_MEASURED_GENES:
        fano = var / mean
        idx = idx[np.sort(np.argsort(-fano, kind="stable")[:MAX_MEASURED_GENES])]
    measured = np.empty((adata.n_obs, len(idx)))
    for rows, block in _scaled_blocks(counts, idx, libf):
        measured[rows] = block
    smooth = _row_normalise(graph + sp.eye(graph.shape[0], format="csr"))
    # measured is not read again: its memory is reused for the deviations
    dev = crossgene_deviation(xs, scale, measured, libf, smooth, seed=seed, overwrite_measured=True)
    return dev, f"{CROSSGENE_LABEL}{len(idx)} other genes"


def _gene_columns(values: np.ndarray, idx: np.ndarray, n_vars: int) -> sp.csr_matrix:
    """A cells × all-genes float32 CSR layer whose stored columns are ``idx``, holding
    ``values`` (cells × len(idx)); zeros included, so every row stores exactly those columns.

    Dense, the three drift layers were cells × all genes and zero outside the drift genes
    (1.2 GB at 50,000 cells × 2,000 genes); this is cells × drift genes, and it is written to
    ``.h5ad`` as an ordinary sparse matrix. A gene listed twice keeps its last column (as
    assigning into a dense layer did).
    """
    n, r = values.shape
    last = r - 1 - np.unique(idx[::-1], return_index=True)[1]  # last occurrence, by column
    cols = idx[last]  # np.unique sorted them: CSR's canonical order
    data = np.asarray(values, dtype=np.float32)[:, last]
    indptr = np.arange(0, n * len(cols) + 1, len(cols), dtype=np.int64)
    layer = sp.csr_matrix((data.ravel(), np.tile(cols, n), indptr), shape=(n, n_vars))
    layer.has_canonical_format = True
    return layer


def drift(
    adata: AnnData,
    *,
    genes: Sequence[str] | None = None,
    time_key: str | None = None,
    velocity_layer: str | None = None,
    layer: str | None = None,
    use_rep: str | None = None,
    n_neighbors: int = 30,
    time_smoothing: int | None = None,
    restoring: float = 1.0,
    seed: int = 0,
    key_added: str = Key.layers.drift,
    copy: bool = False,
) -> AnnData | None:
    """Estimate dx/dt for each cell: the drift the GRN model is fitted to.

    From a time signal (pseudotime, simulation time or ordered time-point labels), through a
    forward-biased kNN transition matrix (the idea of CellRank's pseudotime kernel; sparse,
    never a dense cells × cells matrix) (:func:`estimate_drift`):

    - the *path* velocity: states are smoothed over the neighbour graph (3 steps, kNN
      moments), and each cell's velocity is the least-squares slope of the smoothed states of
      its forward-weighted neighbours on their times (shrunk where neighbours span almost no
      time), smoothed once more over the graph: the population's velocity at the smoothed
      state (``.layers[f"{key_added}_path"]`` at ``.layers[f"{key_added}_state"]``, the
      pairs :func:`~gclandscape.landscape.fit_grn` fits a GRN to);
    - plus a *restoring* term (``restoring=1`` by default): each cell's deviation from the
      local mean (8 smoothing steps) is pulled back at a first-order decay rate estimated
      from the path velocities (:func:`decay_rate`: the fastest relative decrease of a
      switched-off gene). A sampled cell's true dx/dt is dominated by this pull against its
      own noise. With counts (the default coordinates) and at most 30 drift genes, the
      deviation is estimated from the counts of up to 1,000 other genes as well (the most
      variable highly variable genes): their deviations carry the regulators' through the
      targets they drive, with independent counting noise, and a factor model with
      negative-binomial noise (:func:`~gclandscape.tl._deviation.crossgene_deviation`) gives
      each cell's posterior mean deviation, averaged with that of the cell's close
      neighbourhood (``S^2 x - S^8 x``); otherwise the neighbourhood's alone
      (``.uns[key_added]["params"]["deviation"]`` says which, and the flag
      ``params[Key.drift_params.crossgene]`` that :func:`~gclandscape.landscape.fit_grn`
      reads says whether it was the cross-gene one). The sum is the per-cell
      dx/dt in ``.layers[key_added]``.

    Or, with ``velocity_layer``, the drift is read off an RNA-velocity layer (and the path
    layer is the same velocity).

    Scaling: expression is in linear units (see :func:`expression_states`) divided per gene
    by its 99th percentile over cells (so most values lie in [0, 1]); time is rescaled to
    [0, 1] over the cells. The drift is therefore "fraction of a gene's high level per unit
    of the whole process" and the per-gene scales are stored so :func:`~gclandscape.landscape.
    fit_grn` uses the same coordinates. A velocity layer is divided by the same per-gene scale
    (its time unit is the velocity model's).

    Parameters
    ----------
    adata
        Annotated data matrix.
    genes
        Genes to estimate drift for. Default: the regulators (``.var["gcl_regulator"]``) when
        marked, else highly variable genes, else all genes.
    time_key
        ``.obs`` column with the time signal. Default: ``"gcl_pseudotime"`` if present.
    velocity_layer
        Layer with RNA velocity; used instead of a time signal when given.
    layer
        Expression layer (see :func:`expression_states`); default: normalised counts, else
        ``.X`` (pass ``layer="gcl_denoised"`` for the VAE's denoised expression).
    use_rep
        Representation for the neighbour graph: default ``X_pca`` when present, else the
        latent ``X_gcl``, else a PCA of ``.X`` (of a normalised, log1p-transformed copy when
        ``.X`` holds raw counts; not stored). (On the myeloid default, drift on a PCA graph
        correlated better with the truth than on the scVI latent; ``benchmarks/latent.py``.)
    n_neighbors
        Neighbours per cell.
    time_smoothing
        Number of neighbour-averaging steps applied to the time signal. Default: 0 for a
        diffusion pseudotime (already smooth on the graph), 4 for any other clock (simulation
        time, time points), which is noisy among cells in the same state.
    restoring
        Weight of the restoring term; 0 leaves the path velocity alone. The cross-gene
        deviation (the default where counts exist) measured the most accurate drift
        (``benchmarks/README.md``, "Drift accuracy"); its gain needs genes that follow the
        regulators. :func:`~gclandscape.landscape.fit_grn` fits the per-cell drift when its
        deviation is the cross-gene one and the path velocity otherwise.
    seed
        Random seed of the neighbour search.
    key_added
        Layer the drift is written to.
    copy
        Return a copy instead of writing into ``adata``.

    Returns
    -------
    ``adata`` (a copy) if ``copy`` else ``None``; writes ``.layers[key_added]`` (cells × genes;
    zero for genes not estimated; the per-cell dx/dt), ``.layers[f"{key_added}_path"]`` (the
    path velocity) at ``.layers[f"{key_added}_state"]`` (the scaled, smoothed states; these two
    are the pairs a GRN model is fitted to), ``.var[f"{key_added}_gene"]`` (estimated genes),
    ``.var[f"{key_added}_scale"]`` (per-gene expression scale) and ``.uns[key_added]["params"]``.
    The three layers are float32 sparse CSR matrices whose stored columns are exactly the
    estimated genes (zeros there included), so their memory is cells × estimated genes; read
    a gene's values with ``layer[:, idx].toarray()``.

    Examples
    --------
    >>> import gclandscape as gcl
    >>> adata = gcl.datasets.myeloid(n_cells=500, n_targets=20)
    >>> gcl.tl.drift(adata, time_key="sim_time")
    >>> adata.layers["gcl_drift"].shape
    (500, 31)
    >>> adata.layers["gcl_drift"].nnz == 500 * int(adata.var["gcl_drift_gene"].sum())
    True
    """
    if not (np.isfinite(restoring) and restoring >= 0):
        raise GclError(
            f"restoring must be a non-negative number (0 turns the restoring term off); "
            f"got {restoring}."
        )
    if copy:
        adata = adata.copy()
    gene_list = _genes(adata, genes)
    x, source = expression_states(adata, gene_list, layer=layer)
    bad = ~np.isfinite(x)
    if bad.any():
        raise GclError(
            f"the expression used for drift ({source}) has {int(bad.sum())} NaN or infinite values;"
            " clean the data first."
        )
    scale = np.percentile(x, 99, axis=0)
    scale[scale <= 0] = np.max(np.abs(x), axis=0)[scale <= 0]
    scale[scale <= 0] = 1.0
    params: dict = {"genes": np.asarray(gene_list, dtype=object), "expression": source}
    if velocity_layer is not None:
        if velocity_layer not in adata.layers:
            raise GclError(
                f"velocity_layer={velocity_layer!r} is not in adata.layers. Available: "
                f"{', '.join(adata.layers.keys()) or '(none)'}."
            )
        v = adata.layers[velocity_layer][:, adata.var_names.get_indexer(gene_list)]
        v = v.toarray() if sp.issparse(v) else np.asarray(v, dtype=np.float64)
        v = np.nan_to_num(v, nan=0.0) / scale
        states = x / scale
        path = v
        params.update(
            method="velocity",
            velocity_layer=velocity_layer,
            **{Key.drift_params.crossgene: False},
        )
    else:
        t, used_key = _time_signal(adata, time_key)
        span = t.max() - t.min()
        if span <= 0:
            raise GclError(f"obs[{used_key!r}] is constant; drift needs a time signal that varies.")
        t = (t - t.min()) / span
        graph, rep_name = neighbour_graph(adata, use_rep, n_neighbors)
        if time_smoothing is None:
            name = used_key.lower()
            time_smoothing = 0 if ("pseudotime" in name or "dpt" in name) else 4
        deviation, deviation_from = None, "neighbours"
        if restoring > 0 and source == "normalised counts":
            deviation, deviation_from = _deviation_from_counts(
                adata, gene_list, x / scale, scale, graph, seed
            )
        v, states, path = estimate_drift(
            x / scale,
            t,
            graph,
            time_smoothing=time_smoothing,
            restoring=restoring,
            deviation=deviation,
            full_output=True,
        )
        params.update(
            method="neighbour_slope",
            restoring=float(restoring),
            deviation=deviation_from,
            **{Key.drift_params.crossgene: deviation is not None},
            time_key=used_key,
            use_rep=rep_name,
            n_neighbors=n_neighbors,
            time_smoothing=time_smoothing,
            seed=seed,
        )
    idx = adata.var_names.get_indexer(gene_list)
    for suffix, values in (("", v), ("_path", path), ("_state", states)):
        adata.layers[f"{key_added}{suffix}"] = _gene_columns(values, idx, adata.n_vars)
    estimated = np.zeros(adata.n_vars, dtype=bool)
    estimated[idx] = True
    adata.var[f"{key_added}_gene"] = estimated
    scales = np.ones(adata.n_vars)
    scales[idx] = scale
    adata.var[f"{key_added}_scale"] = scales
    adata.uns[key_added] = {"params": params}
    logger.info("drift: estimated for %d genes (%s)", len(gene_list), params["method"])
    return adata if copy else None
