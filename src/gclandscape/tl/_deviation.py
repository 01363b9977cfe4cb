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


def _nb_dispersion(xn: np.ndarray, mean: np.ndarray, libf: np.ndarray) -> float:
    """Negative-binomial ``theta`` by moments: ``E[(x - mu)^2] = mu libf + mu^2 / theta``
    for library-normalised counts ``x = counts * libf`` with local means ``mu``."""
    res2 = (xn - mean) ** 2
    a = mean * libf[:, None]
    b = mean**2
    inv_theta = float(np.sum(b * (res2 - a)) / max(np.sum(b * b), 1e-300))
    return 1.0 / max(inv_theta, 1e-3)


def _factor_posterior(
    y_t: np.ndarray, w_t: np.ndarray, y_r: np.ndarray, w_r: np.ndarray, prior: np.ndarray
) -> np.ndarray:
    """Posterior mean of ``delta`` in ``y_r = delta + e_r``, ``y_t = L delta + e_t``,
    ``delta ~ N(0, diag(prior))``, with per-cell noise precisions ``w_r``, ``w_t``; the
    loadings ``L`` and the prior are fitted by EM (the drift genes' own loadings are fixed
    to the identity, which anchors the factors to them)."""
    n, n_meas = y_t.shape
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
        mean = np.einsum("nrs,ns->nr", cov, (y_t * w_t) @ loadings + y_r * w_r)
        if it == N_ITER:
            return mean
        second = mean[:, :, None] * mean[:, None, :] + cov
        gram = (w_t.T @ second.reshape(n, r * r)).reshape(n_meas, r, r)
        gram[:, diag, diag] += RIDGE
        loadings = np.linalg.solve(gram, ((w_t * y_t).T @ mean)[..., None])[..., 0]
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
    regs_norm = xs * scale  # library-normalised counts of the drift genes
    both = np.hstack([regs_norm, np.asarray(measured, dtype=np.float64)])
    local = _smoothed(smooth, both, {2, reference_smooth})
    theta = _nb_dispersion(both, local[2], libf)
    mu = np.maximum(local[reference_smooth], 1e-3)
    var = mu * libf[:, None] + mu**2 / theta
    y = both - local[reference_smooth]
    y_r, var_r = y[:, :r] / scale, var[:, :r] / scale**2
    spread = y[:, r:].std(axis=0)
    spread[spread <= 0] = 1.0
    y_t, var_t = y[:, r:] / spread, var[:, r:] / spread**2
    labels = np.zeros(n, dtype=int)
    if N_CLUSTERS > 1 and n >= N_CLUSTERS * max(50, 4 * r):
        centre = local[reference_smooth][:, :r] / scale
        with warnings.catch_warnings():  # fewer distinct states than clusters: one cluster
            warnings.simplefilter("ignore", ConvergenceWarning)
            labels = KMeans(N_CLUSTERS, n_init=4, random_state=seed).fit_predict(centre)
        if np.bincount(labels).min() < max(50, 4 * r):
            labels[:] = 0
    out = np.zeros((n, r))  # the posterior mean, per cluster
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        total = y_r[idx].var(axis=0)
        prior = np.maximum(total - var_r[idx].mean(axis=0), 0.05 * total) + 1e-12
        out[idx] = _factor_posterior(y_t[idx], 1.0 / var_t[idx], y_r[idx], 1.0 / var_r[idx], prior)
    neighbourhood = (local[2][:, :r] - local[reference_smooth][:, :r]) / scale
    return 0.5 * (out + neighbourhood)
