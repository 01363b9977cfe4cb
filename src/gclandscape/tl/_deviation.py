"""Each cell's deviation from its local mean, estimated from all measured genes.

The drift's restoring term (:func:`~gclandscape.tl._drift.estimate_drift`) pulls each cell back
towards the local mean of its neighbours at the rate of first-order decay; it needs the cell's
own deviation from that mean, which its counts reveal only noisily (a regulator may average
below one UMI per cell). Other genes carry the same deviation: a target of a regulator follows
it, with counting noise independent from gene to gene. :func:`crossgene_deviation` estimates
the deviation of the drift genes as the posterior mean of a linear-Gaussian factor model over
all measured genes, with per-cell negative-binomial counting noise.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import scipy.sparse as sp

from ._smoothing import _smoothed

#: Cells are split into this many k-means clusters of their local mean state; the factor
#: model (its loadings and prior) is fitted in each (two beat one on the drift's accuracy:
#: ``benchmarks/README.md``, "Drift accuracy").
N_CLUSTERS = 2
#: EM iterations of the factor model.
N_ITER = 20
#: Ridge on each measured gene's loadings (in units of its standardised deviation).
RIDGE = 1.0


#: Rows per block (times the number of columns) of the element-wise steps over cells × genes
#: here and of the densified counts in :mod:`._drift`: their temporaries stay about 16 MB
#: instead of whole cells × genes arrays.
_BLOCK_VALUES = 2_000_000


def _row_blocks(n_rows: int, n_cols: int) -> list[slice]:
    step = max(1, _BLOCK_VALUES // max(n_cols, 1))
    return [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


def _nb_moments(xn: np.ndarray, mean: np.ndarray, libf: np.ndarray) -> tuple[float, float]:
    """The sums whose ratio is the negative-binomial ``1 / theta`` by moments:
    ``E[(x - mu)^2] = mu libf + mu^2 / theta`` for library-normalised counts
    ``x = counts * libf`` with local means ``mu`` (summed in row blocks)."""
    num = den = 0.0
    for rows in _row_blocks(*xn.shape):
        res2 = (xn[rows] - mean[rows]) ** 2
        a = mean[rows] * libf[rows, None]
        b = mean[rows] ** 2
        num += float(np.sum(b * (res2 - a)))
        den += float(np.sum(b * b))
    return num, den


def _nb_variance(local: np.ndarray, libf: np.ndarray, theta: float) -> np.ndarray:
    """``mu libf + mu^2 / theta`` with ``mu = max(local, 1e-3)``, in row blocks."""
    var = np.empty_like(local)
    for rows in _row_blocks(*local.shape):
        mu = np.maximum(local[rows], 1e-3)
        var[rows] = mu * libf[rows, None] + mu**2 / theta
    return var


def _column_std(x: np.ndarray) -> np.ndarray:
    """``x.std(axis=0)`` (two passes) without a temporary the size of ``x``."""
    mean = x.sum(axis=0) / x.shape[0]
    squares = np.zeros(x.shape[1])
    for rows in _row_blocks(*x.shape):
        d = x[rows] - mean
        squares += np.einsum("ij,ij->j", d, d)
    return np.sqrt(squares / x.shape[0])


def _factor_posterior(
    yw_t: np.ndarray, w_t: np.ndarray, y_r: np.ndarray, w_r: np.ndarray, prior: np.ndarray
) -> np.ndarray:
    """Posterior mean of ``delta`` in ``y_r = delta + e_r``, ``y_t = L delta + e_t``,
    ``delta ~ N(0, diag(prior))``, with per-cell noise precisions ``w_r``, ``w_t``; the
    loadings ``L`` and the prior are fitted by EM (the drift genes' own loadings are fixed
    to the identity, which anchors the factors to them). The measured genes enter as
    ``yw_t = y_t * w_t``, the only form the EM reads them in (one cells × genes array less)."""
    n, n_meas = yw_t.shape
    r = y_r.shape[1]
    diag = np.arange(r)
    loadings = np.zeros((n_meas, r))
    prior = prior.copy()
    for it in range(N_ITER + 1):
        # per-cell precision L' W_n L + diag(w_r) + prior^-1, through one matrix product
        outer = (loadings[:, :, None] * loadings[:, None, :]).reshape(n_meas, r * r)
        prec = (w_t @ outer).reshape(n, r, r)
        prec[:, diag, diag] += w_r + 1.0 / prior
        cov = np.linalg.inv(prec)
        mean = np.einsum("nrs,ns->nr", cov, yw_t @ loadings + y_r * w_r)
        if it == N_ITER:
            return mean
        second = mean[:, :, None] * mean[:, None, :] + cov
        gram = (w_t.T @ second.reshape(n, r * r)).reshape(n_meas, r, r)
        gram[:, diag, diag] += RIDGE
        loadings = np.linalg.solve(gram, (yw_t.T @ mean)[..., None])[..., 0]
        prior = np.maximum(np.diagonal(second.mean(0)).copy(), 1e-12)
    raise AssertionError("unreachable")  # pragma: no cover


def crossgene_deviation(
    xs: np.ndarray,
    scale: np.ndarray,
    measured: np.ndarray,
    libf: np.ndarray,
    smooth: sp.csr_matrix,
    *,
    reference_smooth: int = 8,
    seed: int = 0,
    overwrite_measured: bool = False,
) -> np.ndarray:
    """Deviation of each cell's drift genes from their local mean, from all measured genes.

    With ``m = S^b xs`` the local mean (``b = reference_smooth`` steps of the neighbour
    average ``S``), the observed deviations are ``y_r = xs - m`` for the drift genes and
    ``y_t = x_t - S^b x_t`` (standardised) for the other measured genes ``x_t``. The model
    ``y_r = delta + e_r``, ``y_t = L delta + e_t`` has per-cell negative-binomial counting
    noise (variance ``mu libf + mu^2 / theta`` at the local mean ``mu``, ``theta`` by
    moments) and a diagonal Gaussian prior on the true deviation ``delta``; loadings and
    prior are fitted by EM within each of :data:`N_CLUSTERS` k-means clusters of ``m``
    (scikit-learn). Returned is the average of the posterior mean of ``delta`` and the
    neighbourhood's estimate ``S^2 xs - S^8 xs`` (the two err differently; the average measured
    best: ``benchmarks/README.md``, "Drift accuracy").

    Parameters
    ----------
    xs
        Cells × drift genes, library-normalised counts divided by ``scale``.
    scale
        Per drift gene, the divisor that gave ``xs``.
    measured
        Cells × other genes, library-normalised counts (``counts * libf``), dense.
    libf
        Per cell, median library size / library size.
    smooth
        Row-stochastic neighbour average ``S`` (cells × cells, sparse).
    reference_smooth
        Smoothing steps of the local mean.
    seed
        Seed of k-means.
    overwrite_measured
        Let the computation reuse the memory of ``measured`` (a float64 array, then left
        holding intermediate values): one cells × measured genes array less at the peak.

    Returns
    -------
    Cells × drift genes, in the units of ``xs``: the average of the two estimates.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> rng = np.random.default_rng(0)
    >>> n = 400
    >>> state = rng.gamma(4.0, 0.5, n)  # one regulator's true level
    >>> counts = rng.poisson(np.c_[state, np.outer(state, np.ones(20))])
    >>> S = sp.csr_matrix(np.full((n, n), 1.0 / n))  # every cell's neighbourhood: all
    >>> xs = counts[:, :1] / 5.0
    >>> dev = crossgene_deviation(xs, np.array([5.0]), counts[:, 1:].astype(float),
    ...                           np.ones(n), S, reference_smooth=1)
    >>> truth = (state - state.mean()) / 5.0
    >>> bool(np.corrcoef(dev[:, 0], truth)[0, 1] > np.corrcoef(xs[:, 0] - xs.mean(), truth)[0, 1])
    True
    """
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    xs = np.asarray(xs, dtype=np.float64)
    n, r = xs.shape
    scale = np.asarray(scale, dtype=np.float64)
    libf = np.asarray(libf, dtype=np.float64)
    measured = np.asarray(measured, dtype=np.float64)
    b = reference_smooth
    # The drift genes (few columns) and the measured genes (up to 1,000) are smoothed apart:
    # the same values as smoothing them side by side, without a joined copy; of the measured
    # genes' smoothed states only S^b x_t is kept (S^2 x_t is read for theta as it passes).
    regs_norm = xs * scale  # library-normalised counts of the drift genes
    local_r = _smoothed(smooth, regs_norm, {2, b})
    num, den = _nb_moments(regs_norm, local_r[2], libf)
    local_t = measured if b == 0 else None
    x = measured
    for k in range(1, max(2, b) + 1):
        x = smooth @ x
        if k == 2:
            moments = _nb_moments(measured, x, libf)
            num, den = num + moments[0], den + moments[1]
        if k == b:
            local_t = x
    theta = 1.0 / max(num / max(den, 1e-300), 1e-3)
    var_r = _nb_variance(local_r[b], libf, theta) / scale**2
    y_r = (regs_norm - local_r[b]) / scale
    var_t = _nb_variance(local_t, libf, theta)
    # y_t = (x_t - S^b x_t) / spread, written over x_t (when allowed) or S^b x_t
    if overwrite_measured:
        y_t = np.subtract(measured, local_t, out=measured)
    else:
        y_t = np.subtract(measured, local_t, out=None if b == 0 else local_t)
    del x, local_t, measured
    spread = _column_std(y_t)
    spread[spread <= 0] = 1.0
    y_t /= spread
    var_t /= spread**2
    w_t = np.divide(1.0, var_t, out=var_t)  # the precision, in place of the variance
    yw_t = np.multiply(y_t, w_t, out=y_t)  # the EM reads y_t only as y_t * w_t
    del var_t, y_t
    labels = np.zeros(n, dtype=int)
    if N_CLUSTERS > 1 and n >= N_CLUSTERS * max(50, 4 * r):
        centre = local_r[b] / scale
        with warnings.catch_warnings():  # fewer distinct states than clusters: one cluster
            warnings.simplefilter("ignore", ConvergenceWarning)
            labels = KMeans(N_CLUSTERS, n_init=4, random_state=seed).fit_predict(centre)
        if np.bincount(labels).min() < max(50, 4 * r):
            labels[:] = 0
    # cells sorted by cluster (in place, one array at a time): each cluster is then a
    # contiguous view, not a copy
    order = np.argsort(labels, kind="stable")
    if np.any(np.diff(order) < 0):
        yw_t[:] = yw_t[order]
        w_t[:] = w_t[order]
    bounds = np.searchsorted(labels[order], np.unique(labels))
    bounds = np.append(bounds, n)
    out = np.zeros((n, r))  # the posterior mean, per cluster
    for lo, hi in itertools.pairwise(bounds):
        idx = order[lo:hi]
        total = y_r[idx].var(axis=0)
        prior = np.maximum(total - var_r[idx].mean(axis=0), 0.05 * total) + 1e-12
        out[idx] = _factor_posterior(yw_t[lo:hi], w_t[lo:hi], y_r[idx], 1.0 / var_r[idx], prior)
    neighbourhood = (local_r[2] - local_r[b]) / scale
    return 0.5 * (out + neighbourhood)
