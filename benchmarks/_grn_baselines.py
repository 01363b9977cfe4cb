"""Baseline GRN inference methods and edge-recovery metrics for ``grn_recovery.py``.

Conventions
-----------
Every score matrix here is ``(G, G)`` and indexed ``[source, target]`` over the ``G`` scored
genes: ``S[i, j]`` scores the edge ``gene_i -> gene_j``. The diagonal (self loops) is ignored
by every metric. Expression matrices are ``(n_cells, G)``.

Metrics (all over the ``G (G - 1)`` ordered pairs ``source != target``)
------------------------------------------------------------------------
*Edge density* ``d = n_true / (G (G - 1))``: the precision of a random ranking.

AUPRC ratio
    ``average_precision_score(truth, |score|) / d`` (scikit-learn's step-wise average
    precision, which groups tied scores into one threshold; a sparse method that gives many
    pairs a score of exactly 0 therefore gets precision ``d``-like credit for the tied block
    only at its end). 1 is random on average, ``1 / d`` is a perfect ranking. On small networks
    random rankings sit above 1 on average (the precision at the first true edge is noisy and
    bounded below by ``d``).
Early-precision ratio (EPR, BEELINE's early precision)
    Precision among the top ``k`` predicted edges, ``k`` = number of true edges, divided by
    ``d``. Ties at the cut-off are resolved by their expectation: the pairs tied with the
    ``k``-th score contribute ``(k - n_above) * (true fraction of the tied block)`` true edges,
    which is what random tie-breaking gives on average (BEELINE keeps every tied edge, which
    rewards a method for giving many pairs the same score).
Signed AUPRC ratio
    The mean of two AUPRC ratios: activating true edges (sign +1) as positives ranked by
    ``max(w, 0)``, and repressing true edges (sign -1) ranked by ``max(-w, 0)``, each divided by
    its own density (``n_act / (G (G - 1))``, ``n_rep / (G (G - 1))``), where ``w`` is the
    method's signed edge weight. A class without true edges is left out of the mean. A true
    edge of undetermined sign (0: the source acts both ways) is a positive in both classes.
    Methods that give unsigned scores (GENIE3, GRNBoost2, random) are signed by the Pearson
    correlation of source and target over cells: ``w = score * sign(r)``. A class with very
    few edges has a tiny density and a ratio that can reach ``1 / density`` (LL has one
    repressing edge among 306 pairs), so it weighs heavily in the mean: compare methods on
    the same dataset, not the signed ratio across datasets.

Baselines (scikit-learn/scipy; written as arboreto writes them, arboreto 0.1.6 itself breaks on
current dask)
--------------------------------------------------------------------------------------------
GENIE3
    For each target, a ``RandomForestRegressor`` on every other scored gene; the scores are
    the forest's impurity importances (each target's importances sum to 1, as in arboreto).
GRNBoost2
    For each target, a ``GradientBoostingRegressor`` with arboreto's settings
    (``learning_rate=0.01``, ``subsample=0.9``, ``max_features=0.1``, default depth 3) and its
    early stopping (stop when the mean out-of-bag improvement over the last 25 rounds is
    negative), here capped at 500 rounds (arboreto: 5,000); scores are the importances times
    the number of rounds fitted (arboreto's de-normalisation, so targets that boost longer
    weigh more).
Partial correlation
    The precision matrix ``P`` of the standardised expression from ``GraphicalLasso(alpha=0.01)``
    (light shrinkage: close to the plain sample partial correlation of BEELINE's PPCOR, and
    well defined when genes are collinear); if it fails (non-convergence, singular covariance)
    ``GraphicalLasso(alpha=0.05)``; if that fails too the pseudo-inverse of the Ledoit-Wolf
    covariance. The benchmark prints every fall-back.
    Score ``|rho_ij|`` with ``rho_ij = -P_ij / sqrt(P_ii P_jj)``, signed by ``rho_ij``.
    Measured (2026-11): ``GraphicalLassoCV`` picks alpha 0.15–0.19 on the networks with 11–100
    genes, which lowers the AUPRC ratio (random50 3.63 vs 4.58, myeloid 1.56 vs 1.86; BEELINE
    median 2.08 vs 2.10) and costs 25 s on 100 genes and 160 s on 200 genes × 5,000 cells.
Pearson
    ``|r_ij|``, signed by ``r_ij``.
SCODE-like linear ODE
    ``dx/dt = A x + c`` on pseudotime: per lineage, cells are sorted by pseudotime and averaged
    in bins of ``bin_size`` consecutive cells (smoothing), the derivative is the finite
    difference of consecutive bin means over the difference of their mean times, and ``A`` is
    fitted by ``RidgeCV`` (multi-output) of the derivative on the mid-point states. Inputs are
    standardised per gene and each gene's derivative is divided by its standard deviation,
    so ``|A|`` compares across edges. Score ``|A[target, source]|``, signed by ``A``.
Random
    Uniform random scores, signed by Pearson; the benchmark averages the ratios over seeds.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "BASELINES",
    "EdgeScores",
    "auprc_ratio",
    "early_precision_ratio",
    "evaluate",
    "genie3",
    "grnboost2",
    "partial_correlation",
    "pearson",
    "random_scores",
    "scode_like",
    "sign_by_pearson",
    "signed_auprc_ratio",
    "truth_matrices",
]


@dataclass
class EdgeScores:
    """Scores of one method: ``score`` (ranking, >= 0) and ``signed`` weights, ``[source, target]``."""

    score: np.ndarray
    signed: np.ndarray
    info: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------- truth
def truth_matrices(
    network: pd.DataFrame, genes: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Adjacency and sign matrices ``[source, target]`` of a reference network over ``genes``.

    Parameters
    ----------
    network
        DataFrame with ``source``, ``target`` and ``sign`` (+1, -1, or 0 for undetermined).
    genes
        The scored genes.

    Returns
    -------
    ``(adj, sign, counts)``: boolean ``(G, G)`` adjacency with a zero diagonal, integer signs
    (0 where there is no edge or the sign is undetermined; conflicting duplicate rows give 0)
    and a dict of counts: ``n_edges`` (unique ordered pairs kept, self loops excluded),
    ``n_self_loops`` and ``n_dropped`` (rows naming a gene outside ``genes``).
    """
    index = {str(g): i for i, g in enumerate(genes)}
    g = len(index)
    adj = np.zeros((g, g), dtype=bool)
    sign = np.zeros((g, g), dtype=np.int64)
    seen_sign: dict[tuple[int, int], set[int]] = {}
    n_dropped = n_self = 0
    for s, t, sg in network[["source", "target", "sign"]].itertuples(index=False):
        i, j = index.get(str(s)), index.get(str(t))
        if i is None or j is None:
            n_dropped += 1
            continue
        if i == j:
            n_self += 1
            continue
        adj[i, j] = True
        seen_sign.setdefault((i, j), set()).add(int(np.sign(float(sg))))
    for (i, j), signs in seen_sign.items():
        sign[i, j] = next(iter(signs)) if len(signs) == 1 else 0
    return adj, sign, {"n_edges": int(adj.sum()), "n_self_loops": n_self, "n_dropped": n_dropped}


def _offdiag(m: np.ndarray) -> np.ndarray:
    g = m.shape[0]
    return m[~np.eye(g, dtype=bool)]


# ---------------------------------------------------------------------------------- metrics
def auprc_ratio(adj: np.ndarray, score: np.ndarray) -> float:
    """AUPRC (average precision) over ordered pairs without self loops, divided by the density.

    Returns NaN when the network has no true edge among the pairs.

    Examples
    --------
    >>> adj = np.array([[0, 1], [0, 0]], bool)
    >>> auprc_ratio(adj, np.array([[0, 0.9], [0.1, 0]]))  # perfect: 1 / density
    2.0
    """
    from sklearn.metrics import average_precision_score

    y = _offdiag(np.asarray(adj, bool))
    if not y.any():
        return float("nan")
    s = _offdiag(np.asarray(score, float))
    s = np.nan_to_num(s, nan=0.0)
    return float(average_precision_score(y, s) / y.mean())


def early_precision_ratio(adj: np.ndarray, score: np.ndarray) -> float:
    """Precision among the top-``k`` pairs (``k`` = number of true edges) divided by the density.

    Ties at the cut-off count by their expected number of true edges (see the module docstring).

    Examples
    --------
    >>> adj = np.array([[0, 1, 0], [0, 0, 0], [1, 0, 0]], bool)
    >>> early_precision_ratio(adj, np.array([[0, 5, 4], [3, 0, 2], [1, 0, 0.0]]))
    1.5
    """
    y = _offdiag(np.asarray(adj, bool))
    k = int(y.sum())
    if k == 0:
        return float("nan")
    s = np.nan_to_num(_offdiag(np.asarray(score, float)), nan=0.0)
    kth = np.sort(s)[::-1][k - 1]
    above = s > kth
    tied = s == kth
    n_above = int(above.sum())
    true_above = int(y[above].sum())
    expected_tied = (k - n_above) * y[tied].mean()
    precision = (true_above + expected_tied) / k
    return float(precision / y.mean())


def signed_auprc_ratio(sign: np.ndarray, adj: np.ndarray, signed: np.ndarray) -> float:
    """Mean of the AUPRC ratios of activating and of repressing edges (see the module docstring).

    Parameters
    ----------
    sign
        True signs ``[source, target]`` (+1, -1, 0 = undetermined).
    adj
        True adjacency (an edge with sign 0 is a positive of both classes).
    signed
        Predicted signed weights.

    Examples
    --------
    >>> adj = np.array([[0, 1], [1, 0]], bool)
    >>> sign = np.array([[0, 1], [-1, 0]])
    >>> signed_auprc_ratio(sign, adj, np.array([[0, 0.5], [-0.5, 0]]))
    2.0
    """
    adj = np.asarray(adj, bool)
    sign = np.asarray(sign)
    w = np.nan_to_num(np.asarray(signed, float), nan=0.0)
    ratios = []
    for cls, pred in ((1, np.maximum(w, 0.0)), (-1, np.maximum(-w, 0.0))):
        positives = adj & ((sign == cls) | (sign == 0))
        if _offdiag(positives).any():
            ratios.append(auprc_ratio(positives, pred))
    return float(np.mean(ratios)) if ratios else float("nan")


def evaluate(adj: np.ndarray, sign: np.ndarray, scores: EdgeScores) -> dict[str, float]:
    """The three ratios of one method: ``auprc_ratio``, ``epr_ratio``, ``signed_auprc_ratio``."""
    return {
        "auprc_ratio": auprc_ratio(adj, scores.score),
        "epr_ratio": early_precision_ratio(adj, scores.score),
        "signed_auprc_ratio": signed_auprc_ratio(sign, adj, scores.signed),
    }


# ---------------------------------------------------------------------------------- helpers
def _standardise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(0)
    sd[sd == 0] = 1.0
    return (x - x.mean(0)) / sd


def _pearson_matrix(x: np.ndarray) -> np.ndarray:
    z = _standardise(x)
    r = z.T @ z / z.shape[0]
    np.fill_diagonal(r, 0.0)
    return np.clip(r, -1.0, 1.0)


def sign_by_pearson(x: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Signed weights ``score * sign(pearson r)`` for a method that only ranks edges."""
    return np.asarray(score, float) * np.sign(_pearson_matrix(x))


def _targets(g: int, targets: Sequence[int] | None) -> list[int]:
    return list(range(g)) if targets is None else [int(t) for t in targets]


# ---------------------------------------------------------------------------------- baselines
def genie3(
    x: np.ndarray,
    *,
    n_estimators: int = 100,
    max_features: str | float | int = "sqrt",
    n_jobs: int = 2,
    seed: int = 0,
    targets: Sequence[int] | None = None,
) -> EdgeScores:
    """GENIE3: per-target random-forest importances (arboreto's ``GENIE3`` with scikit-learn).

    ``targets`` restricts the fit to some target columns (for timing on a subset); the other
    columns of the score matrix stay 0.
    """
    from sklearn.ensemble import RandomForestRegressor

    x = np.asarray(x, dtype=np.float32)
    g = x.shape[1]
    score = np.zeros((g, g))
    for j in _targets(g, targets):
        others = np.delete(np.arange(g), j)
        rf = RandomForestRegressor(
            n_estimators=n_estimators,
            max_features=max_features,
            n_jobs=n_jobs,
            random_state=seed,
        )
        rf.fit(x[:, others], x[:, j])
        score[others, j] = rf.feature_importances_
    return EdgeScores(score, sign_by_pearson(x, score), {"n_estimators": n_estimators})


class _EarlyStopMonitor:
    """arboreto's early stopping: stop when the mean OOB improvement over a window is < 0."""

    def __init__(self, window_length: int = 25):
        self.window_length = window_length

    def __call__(self, current_round: int, regressor, _locals) -> bool:
        if current_round >= self.window_length - 1:
            lo = max(0, current_round - self.window_length + 1)
            return bool(np.mean(regressor.oob_improvement_[lo : current_round + 1]) < 0)
        return False


def grnboost2(
    x: np.ndarray,
    *,
    n_estimators: int = 500,
    seed: int = 0,
    targets: Sequence[int] | None = None,
) -> EdgeScores:
    """GRNBoost2: per-target stochastic gradient boosting with early stopping (as arboreto)."""
    from sklearn.ensemble import GradientBoostingRegressor

    x = np.asarray(x, dtype=np.float32)
    g = x.shape[1]
    score = np.zeros((g, g))
    rounds = []
    for j in _targets(g, targets):
        others = np.delete(np.arange(g), j)
        gb = GradientBoostingRegressor(
            learning_rate=0.01,
            n_estimators=n_estimators,
            subsample=0.9,
            max_features=0.1,
            random_state=seed,
        )
        gb.fit(x[:, others], x[:, j], monitor=_EarlyStopMonitor(25))
        n_fit = len(gb.estimators_)
        rounds.append(n_fit)
        score[others, j] = gb.feature_importances_ * n_fit
    return EdgeScores(score, sign_by_pearson(x, score), {"median_rounds": float(np.median(rounds))})


def partial_correlation(x: np.ndarray, *, alpha: float = 0.01) -> EdgeScores:
    """|partial correlation| from a graphical-lasso precision matrix (with fall-backs)."""
    from sklearn.covariance import GraphicalLasso, LedoitWolf
    from sklearn.exceptions import ConvergenceWarning

    z = _standardise(x)
    precision = None
    method = ""
    attempts: list[tuple[str, Callable[[], np.ndarray]]] = [
        (f"GraphicalLasso(alpha={alpha})", lambda: GraphicalLasso(alpha=alpha).fit(z).precision_),
        ("GraphicalLasso(alpha=0.05)", lambda: GraphicalLasso(alpha=0.05).fit(z).precision_),
        ("pinv(LedoitWolf)", lambda: np.linalg.pinv(LedoitWolf().fit(z).covariance_)),
    ]
    failures = []
    for name, attempt in attempts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", ConvergenceWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                p = attempt()
            if np.isfinite(p).all():
                precision, method = p, name
                break
            failures.append(f"{name}: non-finite precision")
        except (ConvergenceWarning, FloatingPointError, ValueError, np.linalg.LinAlgError) as err:
            failures.append(f"{name}: {type(err).__name__}")
    if precision is None:  # pragma: no cover - pinv of a shrunk covariance does not fail
        raise RuntimeError("partial correlation failed: " + "; ".join(failures))
    d = np.sqrt(np.clip(np.diag(precision), 1e-12, None))
    rho = -precision / np.outer(d, d)
    np.fill_diagonal(rho, 0.0)
    return EdgeScores(np.abs(rho), rho, {"method": method, "failures": failures})


def pearson(x: np.ndarray) -> EdgeScores:
    """|Pearson correlation| of source and target, signed by the correlation."""
    r = _pearson_matrix(x)
    return EdgeScores(np.abs(r), r)


def _binned_derivatives(
    x: np.ndarray, t: np.ndarray, bin_size: int
) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(t, kind="stable")
    n_bins = max(len(order) // bin_size, 3)
    bins = np.array_split(order, n_bins)
    xb = np.stack([x[b].mean(0) for b in bins])
    tb = np.array([t[b].mean() for b in bins])
    dt = np.diff(tb)
    ok = dt > 1e-12
    dx = np.diff(xb, axis=0)[ok] / dt[ok, None]
    mid = 0.5 * (xb[1:] + xb[:-1])[ok]
    return mid, dx


def scode_like(
    x: np.ndarray,
    pseudotime: np.ndarray,
    *,
    lineage: np.ndarray | None = None,
    bin_size: int = 20,
) -> EdgeScores:
    """Linear ODE ``dx/dt = A x + c`` fitted by ridge on binned finite differences along pseudotime."""
    from sklearn.linear_model import RidgeCV

    x = _standardise(x)
    t = np.asarray(pseudotime, dtype=np.float64)
    if t.shape != (x.shape[0],) or not np.isfinite(t).all():
        raise ValueError("pseudotime must be one finite value per cell.")
    groups = np.zeros(len(t), int) if lineage is None else np.asarray(lineage)
    mids, dxs = [], []
    for lab in pd.unique(groups):
        sel = groups == lab
        if sel.sum() < 3 * bin_size:
            continue
        m, d = _binned_derivatives(x[sel], t[sel], bin_size)
        mids.append(m)
        dxs.append(d)
    mid, dx = np.concatenate(mids), np.concatenate(dxs)
    sd = dx.std(0)
    sd[sd == 0] = 1.0
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(mid, dx / sd)
    a = ridge.coef_  # (target, source)
    w = a.T.copy()  # [source, target]
    np.fill_diagonal(w, 0.0)
    return EdgeScores(np.abs(w), w, {"alpha": float(np.atleast_1d(ridge.alpha_)[0])})


def random_scores(x: np.ndarray, *, seed: int = 0) -> EdgeScores:
    """Uniform random scores (one seed), signed by Pearson."""
    g = x.shape[1]
    score = np.random.default_rng(seed).random((g, g))
    np.fill_diagonal(score, 0.0)
    return EdgeScores(score, sign_by_pearson(x, score))


#: name -> callable(x, pseudotime, lineage, seed) of every deterministic baseline.
BASELINES: dict[str, Callable[..., EdgeScores]] = {
    "GENIE3": lambda x, t, lin, seed: genie3(x, seed=seed),
    "GRNBoost2": lambda x, t, lin, seed: grnboost2(x, seed=seed),
    "partial corr": lambda x, t, lin, seed: partial_correlation(x),
    "Pearson": lambda x, t, lin, seed: pearson(x),
    "SCODE-like": lambda x, t, lin, seed: scode_like(x, t, lineage=lin),
}


def timed(fn: Callable[[], EdgeScores]) -> tuple[EdgeScores, float]:
    """Run ``fn`` and return its result and wall seconds."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0
