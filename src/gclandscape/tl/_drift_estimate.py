"""The array-level drift estimator: a forward-biased transition matrix on a kNN graph, the
path velocity along it, and the restoring term with its decay rate (no AnnData)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from .._errors import GclError
from ._smoothing import _row_normalise, _smoothed


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

    A sampled cell's true dx/dt is dominated by the pull against its own noise, which the
    path velocity alone misses: the restoring term raises the drift's accuracy, and a better
    estimate of the deviation (:func:`drift` passes one from all genes' counts,
    ``deviation``) raises it further (``benchmarks/README.md``, "Drift accuracy").

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
