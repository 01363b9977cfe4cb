"""Per-cell drift: an estimate of dx/dt for each cell from a snapshot.

Snapshot data have no time derivative. ``drift`` estimates one per cell from a time signal
(pseudotime, simulation time, or real time points) through a forward-biased kNN transition
matrix in the spirit of CellRank's pseudotime kernel, or reads it off an RNA-velocity layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._errors import GclError
from .._keys import Key
from .._utils import logger

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData


def _row_normalise(m: sp.spmatrix) -> sp.csr_matrix:
    d = np.asarray(m.sum(axis=1)).ravel()
    d[d == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / d) @ m)


def smooth_states(x: np.ndarray, graph: sp.spmatrix, n_steps: int) -> np.ndarray:
    """Average states over the neighbour graph ``n_steps`` times (kNN moments, as scVelo's ``Ms``).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> g = sp.csr_matrix(np.array([[0, 1.0], [1.0, 0]]))
    >>> smooth_states(np.array([[0.0], [2.0]]), g, 1).ravel().tolist()
    [1.0, 1.0]
    """
    smooth = _row_normalise(sp.csr_matrix(graph) + sp.eye(graph.shape[0], format="csr"))
    return _smoothed(smooth, x, {n_steps})[n_steps]


def _smoothed(smooth: sp.csr_matrix, x: np.ndarray, steps: set[int]) -> dict[int, np.ndarray]:
    """``{k: S^k x}`` for every ``k`` in ``steps``, from one run of repeated averaging with the
    row-stochastic ``smooth`` (values identical to :func:`smooth_states` for each ``k``)."""
    x = np.asarray(x, dtype=np.float64)
    out = {k: x for k in steps if k == 0}
    for k in range(1, max(steps) + 1):
        x = smooth @ x
        if k in steps:
            out[k] = x
    return out


def forward_transition_matrix(
    graph: sp.spmatrix, t: np.ndarray, *, sharpness: float | None = None
) -> sp.csr_matrix:
    """Forward-biased, row-stochastic transition matrix on a kNN graph.

    Each edge ``i -> j`` of the (symmetric) neighbour graph keeps its weight when ``j`` is later
    than ``i``; an edge to an earlier cell is down-weighted by the logistic factor
    ``2 / (1 + exp(b * (t_i - t_j)))``, as in CellRank's pseudotime kernel (soft scheme). Rows
    are normalised to sum to one. Sparse throughout: never a dense cells × cells matrix.

    Parameters
    ----------
    graph
        Sparse cells × cells neighbour weights (scanpy's ``.obsp["connectivities"]``).
    t
        Time of every cell.
    sharpness
        The ``b`` of the logistic factor; default ``10 / std(|t_j - t_i|)`` over the edges.

    Returns
    -------
    Row-stochastic CSR matrix.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> g = sp.csr_matrix(np.array([[0, 1.0, 0], [1.0, 0, 1.0], [0, 1.0, 0]]))
    >>> T = forward_transition_matrix(g, np.array([0.0, 0.5, 1.0]))
    >>> bool(T[1, 2] > T[1, 0])
    True
    """
    coo = sp.coo_matrix(graph)
    dt = t[coo.col] - t[coo.row]
    if sharpness is None:
        spread = float(np.std(np.abs(dt))) if dt.size else 0.0
        sharpness = 10.0 / spread if spread > 0 else 1.0
    factor = np.where(dt >= 0, 1.0, 2.0 / (1.0 + np.exp(np.clip(-sharpness * dt, -50, 50))))
    forward = sp.csr_matrix((coo.data * factor, (coo.row, coo.col)), shape=coo.shape)
    return _row_normalise(forward)


def decay_rate(v: np.ndarray, x: np.ndarray, *, floor: float = 0.05) -> float:
    """A shared first-order decay rate from drifts ``v`` at states ``x`` (scaled to ~[0, 1]).

    Under ``dx_g/dt = production_g - gamma_g x_g`` with non-negative production,
    ``-v_g / x_g <= gamma_g`` at every cell, with equality where the gene is switched off and
    decaying freely. The 99th percentile of ``-v / max(x, floor)`` over cells estimates each
    ``gamma_g``; the median over genes is returned (per-gene estimates are noisy; measured on
    ``gcl.datasets.myeloid``, one shared rate correlates better with the truth). The rate is in
    the units of ``v``: from shrunk slopes it is shrunk alike, which keeps a restoring term
    built on it in proportion to the path velocity.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(0.1, 1, 50)[:, None] * np.ones((1, 3))
    >>> round(decay_rate(-2.0 * x, x), 6)  # free decay at rate 2
    2.0
    """
    ratio = -np.asarray(v, dtype=np.float64) / np.maximum(np.asarray(x, dtype=np.float64), floor)
    per_gene = np.maximum(np.quantile(ratio, 0.99, axis=0), 0.0)
    return float(np.median(per_gene))


class DriftEstimate(NamedTuple):
    """The parts of :func:`estimate_drift` (``full_output=True``).

    Attributes
    ----------
    drift
        Per-cell dx/dt: path velocity plus restoring term.
    states
        The smoothed states ``S^n_smooth x`` the path velocity refers to.
    path
        The path (population) velocity at ``states``: the pairs a GRN model is fitted to.
    """

    drift: np.ndarray
    states: np.ndarray
    path: np.ndarray


def estimate_drift(
    x: np.ndarray,
    t: np.ndarray,
    graph: sp.spmatrix,
    *,
    n_smooth: int = 3,
    time_smoothing: int = 0,
    shrinkage: float = 1.0,
    n_post_smooth: int = 1,
    restoring: float = 1.0,
    state_smooth: int = 2,
    reference_smooth: int = 8,
    deviation: np.ndarray | None = None,
    full_output: bool = False,
) -> np.ndarray | DriftEstimate:
    """Estimate dx/dt per cell from states, times and a neighbour graph (no AnnData).

    The drift is the sum of a *path* term (how the population moves along the time signal)
    and a *restoring* term (each cell relaxing back towards the path it has strayed from):

    1. Path. States are smoothed by ``n_smooth`` steps of the symmetric neighbour average
       ``S`` (kNN moments, as scVelo's ``Ms``); the time by ``time_smoothing`` steps. With the
       forward-biased transition matrix ``T`` (:func:`forward_transition_matrix`, plus the
       cell itself), each cell's path velocity is the weighted least-squares slope of the
       smoothed states of its ``T``-weighted neighbours on their times: ``cov_T(x, t) /
       (var_T(t) + lambda)``, with ``lambda = shrinkage * median(var_T(t))`` so that cells
       whose neighbours span almost no time do not blow up; then averaged ``n_post_smooth``
       times with ``S``. This is the population's velocity at the smoothed state ``S^n x``.
    2. Restoring. A cell deviates from the local mean ``S^b x`` (``b = reference_smooth``)
       by its own noise, estimated by ``S^a x - S^b x`` (``a = state_smooth``: the cell's
       neighbours share its deviation, its own counts are mostly counting noise); under
       first-order decay the dynamics pull it back at rate ``gamma``, estimated by
       :func:`decay_rate`. The per-cell drift is ``S path - restoring * gamma * (S^a x -
       S^b x)`` (the path smoothed once more).

    Measured on ``gcl.datasets.myeloid`` (``benchmarks/latent.py --drift-only``; per-gene
    median r against the true dx/dt, simulation clock / pseudotime): path only 0.46 / 0.48 on
    seeds 0–2 and 0.49 / 0.50 on seeds 3–5; with the restoring term (the defaults, chosen on
    seeds 0–2) 0.52 / 0.51 and, held out, 0.53 / 0.53. A sampled cell's true dx/dt is
    dominated by the pull against its own noise: the truth smoothed over 3 graph steps keeps
    only r ≈ 0.6 of itself, and the restoring term computed from the *true* deviations
    would reach r ≈ 0.8; from counts the deviation is estimated with r ≈ 0.3–0.4, which
    bounds the gain; :func:`drift` passes a better estimate of the deviation, from all genes'
    counts (``deviation``), which lifts the median r to 0.56 / 0.56 (seeds 0–2). A slope over
    neighbours beats the displacement ``(T^k x - x) / (T^k t - t)`` at every ``k``, and
    linear expression beats log expression.

    Parameters
    ----------
    x
        Cells × genes states (dense), scaled to about [0, 1] per gene.
    t
        Time per cell.
    graph
        Sparse symmetric neighbour weights.
    n_smooth
        Neighbour-averaging steps applied to the states before the slope.
    time_smoothing
        Neighbour-averaging steps applied to the time first (for noisy clocks).
    shrinkage
        Ridge shrinkage of the slope, relative to the median local time variance.
    n_post_smooth
        Neighbour-averaging steps applied to the path velocity.
    restoring
        Weight of the restoring term; 0 gives the path velocity alone.
    state_smooth, reference_smooth
        Smoothing steps of the cell's state estimate and of the local mean it is pulled back to.
    deviation
        Each cell's deviation from its local mean, estimated elsewhere (cells × genes, units of
        ``x``), used instead of ``S^a x - S^b x``; :func:`drift` passes the cross-gene
        estimate of :func:`~gclandscape.tl._deviation.crossgene_deviation`.
    full_output
        Return a :class:`DriftEstimate` (drift, smoothed states, path velocity) instead of the
        drift alone.

    Returns
    -------
    Cells × genes drift, in units of ``x`` per unit of ``t`` (or a :class:`DriftEstimate`).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> t = np.linspace(0, 1, 60)
    >>> x = np.c_[2 * t, -t]
    >>> g = sp.diags([np.ones(59), np.ones(59)], [-1, 1])
    >>> v = estimate_drift(x, t, g, shrinkage=0.0, restoring=0.0)
    >>> np.allclose(v[10:-10], [2.0, -1.0])
    True
    """
    if min(n_smooth, time_smoothing, n_post_smooth, state_smooth, reference_smooth) < 0:
        raise GclError("smoothing step counts must be non-negative integers.")
    if not (np.isfinite(restoring) and restoring >= 0):
        raise GclError(f"restoring must be a non-negative number; got {restoring}.")
    n = x.shape[0]
    graph = sp.csr_matrix(graph)
    smooth = _row_normalise(graph + sp.eye(n, format="csr"))
    if deviation is not None and np.shape(deviation) != np.shape(x):
        raise GclError(
            f"deviation must have the shape of x {np.shape(x)}; got {np.shape(deviation)}."
        )
    # every smoothing of the states the path and the restoring term need, in one run
    steps = {n_smooth}
    if restoring > 0 and deviation is None:
        steps |= {state_smooth, reference_smooth}
    sx = _smoothed(smooth, x, steps)
    xs = sx[n_smooth]
    t = _smoothed(smooth, t, {time_smoothing})[time_smoothing]
    weights = _row_normalise(forward_transition_matrix(graph, t) + sp.eye(n, format="csr"))
    t_mean = weights @ t
    x_mean = weights @ xs
    cov = weights @ (t[:, None] * xs) - t_mean[:, None] * x_mean
    var = np.maximum(weights @ (t * t) - t_mean * t_mean, 0.0)
    lam = shrinkage * float(np.median(var)) if shrinkage > 0 else 0.0
    denom = var + lam
    denom[denom <= 0] = np.inf  # no time spread and no shrinkage: no information, drift 0
    path = cov / denom[:, None]
    for _ in range(n_post_smooth):
        path = smooth @ path
    v = path
    if restoring > 0:
        v = smooth @ path
        gamma = decay_rate(v, xs)
        if deviation is None:
            deviation = sx[state_smooth] - sx[reference_smooth]
        v = v - restoring * gamma * deviation
    return DriftEstimate(v, xs, path) if full_output else v


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
    used only when asked for by name: measured on the myeloid default (seed 0,
    ``gcl.latent.fit`` defaults), it lowered the drift's median r against the true dx/dt
    from 0.527 to 0.493 (clock) and 0.485 to 0.479 (pseudotime), and the knockout benchmark
    from 7/11 to 4/11 (clock) and 8/11 to 6/11 (pseudotime on the latent), one fitted
    landscape losing Gran, Mk and Mono: the decoder smooths away the per-cell deviations and
    the regulator contrasts that the drift and the genome are fitted to.

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


def _graph(
    adata: AnnData, use_rep: str | None, n_neighbors: int, seed: int
) -> tuple[sp.csr_matrix, str]:
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


#: The cross-gene deviation (:mod:`._deviation`) is used for at most this many drift genes
#: (its per-cell posterior costs cells × measured genes × drift genes²: 3,000 cells × 261
#: other genes took 8.7 s with 50 drift genes, 1 s with 11) ...
MAX_CROSSGENE_GENES = 30
#: ... and reads at most this many other genes (the most variable by normalised dispersion).
MAX_MEASURED_GENES = 1000
#: How ``params["deviation"]`` of a drift names the cross-gene estimate (followed by the
#: number of genes it read); :func:`gclandscape.landscape.fit_grn` fits the per-cell drift then.
CROSSGENE_LABEL = "counts of "


def _deviation_from_counts(
    adata: AnnData,
    genes: list[str],
    xs: np.ndarray,
    scale: np.ndarray,
    graph: sp.csr_matrix,
    seed: int,
) -> tuple[np.ndarray | None, str]:
    """The restoring term's deviation from the counts of all genes, or ``(None, reason)``."""
    from ._deviation import crossgene_deviation

    if len(genes) > MAX_CROSSGENE_GENES:
        return None, f"neighbours (more than {MAX_CROSSGENE_GENES} drift genes)"
    counts = adata.layers[Key.layers.counts]
    lib = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
    libf = np.median(lib) / lib
    others = np.ones(adata.n_vars, dtype=bool)
    others[adata.var_names.get_indexer(genes)] = False
    hv = Key.var.highly_variable
    if hv in adata.var and adata.var[hv].to_numpy(dtype=bool)[others].sum() >= 10:
        others &= adata.var[hv].to_numpy(dtype=bool)
    idx = np.flatnonzero(others)
    sub = counts[:, idx]
    sub = sub.toarray() if sp.issparse(sub) else np.asarray(sub)
    measured = sub.astype(np.float64) * libf[:, None]
    mean = measured.mean(axis=0)
    keep = mean > 0
    measured, mean = measured[:, keep], mean[keep]
    if measured.shape[1] < 10:
        return None, "neighbours (fewer than 10 other genes with counts)"
    if measured.shape[1] > MAX_MEASURED_GENES:
        fano = measured.var(axis=0) / mean
        measured = measured[:, np.sort(np.argsort(-fano, kind="stable")[:MAX_MEASURED_GENES])]
    smooth = _row_normalise(graph + sp.eye(graph.shape[0], format="csr"))
    dev = crossgene_deviation(xs, scale, measured, libf, smooth, seed=seed)
    return dev, f"{CROSSGENE_LABEL}{measured.shape[1]} other genes"


def used_crossgene(params: dict) -> bool:
    """Whether a drift's restoring term came from the cross-gene deviation (its ``params``)."""
    return str(params.get("deviation", "")).startswith(CROSSGENE_LABEL)


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
      (``.uns[key_added]["params"]["deviation"]`` says which). The sum is the per-cell
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
        Weight of the restoring term; 0 leaves the path velocity alone. Measured on the
        myeloid default (UMI counts; ``benchmarks/latent.py --drift-only``, median r
        against the true dx/dt, simulation clock / pseudotime, mean over seeds 0–2, where
        the settings were chosen, and held-out seeds 3–5): path alone 0.46 / 0.48 and 0.49 /
        0.50; with the neighbourhood deviation 0.52 / 0.51 and 0.53 / 0.53; with the
        cross-gene deviation (the default) 0.56 / 0.56 and 0.59 / 0.58, every seed ≥ 0.51.
        The cross-gene gain needs genes that follow the regulators: with 100 or 30 of the
        300 simulated targets kept it was 0.005–0.02. Where the graph resolves each cell's
        state finely (low measurement noise) the path term already carries the pull and the
        restoring term can add noise (a low-noise relaxation toy: r lower by about 0.05).
        :func:`~gclandscape.landscape.fit_grn` fits the per-cell drift when its deviation is
        the cross-gene one (knockouts right: 28.0 against 24.7 summed over five simulated
        networks; edge recovery a wash, better on 7 of 12 small networks) and the path
        velocity otherwise: with the neighbourhood deviation the per-cell drift lost accuracy
        (a 6-gene network's AUPRC ratio 1.97 → 0.90).
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

    Examples
    --------
    >>> import gclandscape as gcl
    >>> adata = gcl.datasets.myeloid(n_cells=500, n_targets=20)
    >>> gcl.tl.drift(adata, time_key="sim_time")
    >>> adata.layers["gcl_drift"].shape
    (500, 31)
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
        params.update(method="velocity", velocity_layer=velocity_layer)
    else:
        t, used_key = _time_signal(adata, time_key)
        span = t.max() - t.min()
        if span <= 0:
            raise GclError(f"obs[{used_key!r}] is constant; drift needs a time signal that varies.")
        t = (t - t.min()) / span
        graph, rep_name = _graph(adata, use_rep, n_neighbors, seed)
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
            time_key=used_key,
            use_rep=rep_name,
            n_neighbors=n_neighbors,
            time_smoothing=time_smoothing,
            seed=seed,
        )
    full = np.zeros((adata.n_obs, adata.n_vars), dtype=np.float32)
    idx = adata.var_names.get_indexer(gene_list)
    full[:, idx] = v
    adata.layers[key_added] = full
    for suffix, values in (("_path", path), ("_state", states)):
        layer = np.zeros((adata.n_obs, adata.n_vars), dtype=np.float32)
        layer[:, idx] = values
        adata.layers[f"{key_added}{suffix}"] = layer
    estimated = np.zeros(adata.n_vars, dtype=bool)
    estimated[idx] = True
    adata.var[f"{key_added}_gene"] = estimated
    scales = np.ones(adata.n_vars)
    scales[idx] = scale
    adata.var[f"{key_added}_scale"] = scales
    adata.uns[key_added] = {"params": params}
    logger.info("drift: estimated for %d genes (%s)", len(gene_list), params["method"])
    return adata if copy else None
