"""Metrics and baselines of the GRN recovery benchmark (benchmarks/_grn_baselines.py)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _grn_baselines as B


def _adj(g: int, edges: list[tuple[int, int]]) -> np.ndarray:
    a = np.zeros((g, g), bool)
    for s, t in edges:
        a[s, t] = True
    return a


# ------------------------------------------------------------------------------- metrics
def test_perfect_ranking_gives_inverse_density():
    adj = _adj(5, [(0, 1), (1, 2), (3, 4), (4, 0)])
    score = adj + np.random.default_rng(0).random((5, 5)) * 0.1
    assert B.auprc_ratio(adj, score) == pytest.approx(20 / 4)
    assert B.early_precision_ratio(adj, score) == pytest.approx(20 / 4)


def test_reversed_ranking_is_below_random():
    adj = _adj(5, [(0, 1), (1, 2), (3, 4), (4, 0)])
    rank = np.arange(25, dtype=float).reshape(5, 5) / 100  # distinct, true edges last
    score = np.where(adj, rank, 1.0 + rank)
    # the 4 true edges sit at ranks 17..20 of the 20 off-diagonal pairs
    ap = np.mean([1 / 17, 2 / 18, 3 / 19, 4 / 20])
    assert B.auprc_ratio(adj, score) == pytest.approx(ap * 5)
    assert B.auprc_ratio(adj, score) < 0.7  # random is 1 on average
    assert B.early_precision_ratio(adj, score) == 0.0


def test_self_loops_are_ignored():
    adj = _adj(4, [(0, 1), (2, 3)])
    score = adj.astype(float)
    with_diag = score + np.eye(4) * 100
    assert B.auprc_ratio(adj, with_diag) == pytest.approx(B.auprc_ratio(adj, score))
    assert B.auprc_ratio(adj | np.eye(4, dtype=bool), score) == pytest.approx(12 / 2)


def test_early_precision_known_case_and_ties():
    adj = _adj(3, [(0, 1), (2, 0)])
    score = np.array([[0, 5, 4], [3, 0, 2], [1, 0, 0.0]])
    # top-2 = (0,1) true and (0,2) false: precision 1/2, density 2/6
    assert B.early_precision_ratio(adj, score) == pytest.approx(1.5)
    # all tied: expected precision of a random pick = density -> ratio 1
    assert B.early_precision_ratio(adj, np.ones((3, 3))) == pytest.approx(1.0)
    # one true edge on top, the rest tied: (1 + 1 * 1/5) / 2 true in expectation
    tied = np.ones((3, 3))
    tied[0, 1] = 2.0
    assert B.early_precision_ratio(adj, tied) == pytest.approx((1 + 1 / 5) / 2 * 3)


def test_signed_auprc_ratio_rewards_correct_signs():
    g = 4
    adj = _adj(g, [(0, 1), (1, 2), (2, 3)])
    sign = np.zeros((g, g), int)
    sign[0, 1] = sign[1, 2] = 1
    sign[2, 3] = -1
    correct = np.where(adj, sign * 1.0, 0.01)
    # activating: 2 positives, density 2/12 -> 6; repressing: 1 positive, density 1/12 -> 12
    assert B.signed_auprc_ratio(sign, adj, correct) == pytest.approx((6 + 12) / 2)
    flipped = np.where(adj, -sign * 1.0, 0.01)
    assert B.signed_auprc_ratio(sign, adj, flipped) < 2
    # the unsigned metric cannot tell them apart
    assert B.auprc_ratio(adj, np.abs(correct)) == B.auprc_ratio(adj, np.abs(flipped))


def test_sign_zero_edges_count_in_both_classes():
    adj = _adj(3, [(0, 1)])
    sign = np.zeros((3, 3), int)  # undetermined sign
    w = np.zeros((3, 3))
    w[0, 1] = 1.0
    # activating class perfect (6), repressing class: max(-w, 0) is all 0 -> ratio 1
    assert B.signed_auprc_ratio(sign, adj, w) == pytest.approx((6 + 1) / 2)


def test_truth_matrices_drops_and_counts():
    net = pd.DataFrame(
        {
            "source": ["A", "A", "B", "X", "C", "C"],
            "target": ["B", "A", "C", "A", "A", "A"],
            "sign": [1, 1, -1, 1, 1, -1],
        }
    )
    adj, sign, counts = B.truth_matrices(net, ["A", "B", "C"])
    assert counts == {"n_edges": 3, "n_self_loops": 1, "n_dropped": 1}
    assert adj[0, 1]
    assert adj[1, 2]
    assert adj[2, 0]
    assert not adj[0, 0]
    assert sign[0, 1] == 1
    assert sign[1, 2] == -1
    assert sign[2, 0] == 0


def test_random_baseline_ratio_is_about_one_on_a_large_graph():
    rng = np.random.default_rng(1)
    g = 80
    adj = rng.random((g, g)) < 0.05
    np.fill_diagonal(adj, False)
    x = rng.normal(size=(50, g))
    runs = [B.evaluate(adj, adj.astype(int), B.random_scores(x, seed=s)) for s in range(10)]
    assert np.mean([r["auprc_ratio"] for r in runs]) == pytest.approx(1.0, abs=0.12)
    assert np.mean([r["epr_ratio"] for r in runs]) == pytest.approx(1.0, abs=0.2)


# ------------------------------------------------------------------------------- baselines
EDGES = [(0, 1, 1.0), (1, 2, -1.0), (2, 3, 1.0), (3, 4, 1.0), (0, 5, -1.0), (4, 0, -1.0)]


def _linear_system(strength: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``A = -I + strength * signed edges`` (``A[target, source]``), truth adjacency and signs."""
    g = 6
    a = -np.eye(g)
    adj = np.zeros((g, g), bool)
    sign = np.zeros((g, g), int)
    for s, t, w in EDGES:
        a[t, s] = strength * w
        adj[s, t] = True
        sign[s, t] = int(w)
    return a, adj, sign


@pytest.fixture(scope="module")
def stationary():
    """1,000 cells from the stationary law of ``dx = A x dt + dW`` on a planted 6-gene network."""
    from scipy.linalg import solve_continuous_lyapunov

    a, adj, sign = _linear_system(0.8)
    cov = solve_continuous_lyapunov(a, -np.eye(6))
    x = np.random.default_rng(0).multivariate_normal(np.zeros(6), cov, 1000)
    return x, adj, sign


@pytest.fixture(scope="module")
def planted():
    """Snapshots of ``dx = A x dt + noise`` along 3 lineages with their times (pseudotime).

    Each lineage starts from its own state; cells are snapshots at random times of 60
    trajectories, with a lineage label (the transients carry the dynamics SCODE fits).
    """
    rng = np.random.default_rng(0)
    a, adj, sign = _linear_system(1.2)
    n_traj, n_steps, dt = 60, 200, 0.02
    xs, ts, lin = [], [], []
    for k in range(n_traj):
        lineage = k % 3
        x0 = np.zeros(6)
        x0[2 * lineage] = 3.0
        x = x0 + rng.normal(0, 0.3, 6)
        traj = []
        for _ in range(n_steps):
            x = x + dt * (a @ x) + np.sqrt(dt) * 0.3 * rng.normal(size=6)
            traj.append(x.copy())
        pick = rng.choice(n_steps, size=20, replace=False)
        xs.append(np.array(traj)[pick])
        ts.append(pick * dt)
        lin.append(np.full(20, lineage))
    return np.concatenate(xs), np.concatenate(ts), np.concatenate(lin), adj, sign


def _beats_random(x, adj, sign, scores):
    assert scores.score.shape == scores.signed.shape == (6, 6)
    assert np.isfinite(scores.score).all()
    assert (scores.score >= 0).all()
    rand = np.mean([B.auprc_ratio(adj, B.random_scores(x, seed=s).score) for s in range(30)])
    ratio = B.auprc_ratio(adj, scores.score)
    assert ratio > 1.5 * rand, (ratio, rand)
    assert B.signed_auprc_ratio(sign, adj, scores.signed) > 4.0


@pytest.mark.parametrize(
    "method",
    [
        lambda x: B.genie3(x, n_estimators=30),
        lambda x: B.grnboost2(x, n_estimators=200),
        B.partial_correlation,
        B.pearson,
    ],
    ids=["GENIE3", "GRNBoost2", "partial corr", "Pearson"],
)
def test_expression_baselines_beat_random_on_a_planted_network(stationary, method):
    x, adj, sign = stationary
    _beats_random(x, adj, sign, method(x))


def test_symmetric_baselines_rank_each_undirected_edge_first(stationary):
    # a symmetric score ties i->j with j->i: at best half of the top pairs are true (ratio 2.5)
    x, adj, _ = stationary
    for scores in (B.pearson(x), B.partial_correlation(x)):
        assert np.allclose(scores.score, scores.score.T)
        assert B.auprc_ratio(adj, scores.score) == pytest.approx(0.5 * 30 / 6)


def test_scode_like_beats_random_on_a_planted_ode(planted):
    x, t, lin, adj, sign = planted
    _beats_random(x, adj, sign, B.scode_like(x, t, lineage=lin, bin_size=10))


def test_scode_like_recovers_the_linear_ode_signs(planted):
    x, t, lin, adj, sign = planted
    scores = B.scode_like(x, t, lineage=lin, bin_size=10)
    top = np.argsort(-scores.score, axis=None)[:4]
    src, tgt = np.unravel_index(top, adj.shape)
    agree = [np.sign(scores.signed[s, d]) == sign[s, d] for s, d in zip(src, tgt) if adj[s, d]]
    assert len(agree) >= 3
    assert all(agree)


def test_partial_correlation_finds_a_gaussian_chain():
    # precision matrix of a chain 0-1-2-3: only neighbours are conditionally dependent
    p = np.eye(4) * 2.0
    for i in range(3):
        p[i, i + 1] = p[i + 1, i] = -0.8
    x = np.random.default_rng(0).multivariate_normal(np.zeros(4), np.linalg.inv(p), 4000)
    scores = B.partial_correlation(x)
    chain = _adj(4, [(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2)])
    assert scores.score[chain].min() > 3 * scores.score[~chain & ~np.eye(4, dtype=bool)].max()
    assert (scores.signed[chain] > 0).all()  # -P_ij > 0 for negative precision entries
    assert scores.info["method"] == "GraphicalLasso(alpha=0.01)"


def test_grnboost2_early_stopping_stops_on_noise():
    x = np.random.default_rng(0).normal(size=(300, 5))
    scores = B.grnboost2(x, n_estimators=500)
    assert scores.info["median_rounds"] < 500


def test_genie3_subset_of_targets_leaves_other_columns_empty(planted):
    x = planted[0]
    scores = B.genie3(x, n_estimators=10, targets=[1])
    assert scores.score[:, 1].sum() == pytest.approx(1.0)  # importances sum to 1
    assert scores.score[:, [0, 2, 3, 4, 5]].sum() == 0


def test_partial_correlation_falls_back_on_a_singular_covariance(monkeypatch):
    import sklearn.covariance
    from sklearn.exceptions import ConvergenceWarning

    # Whether the unpenalised graphical lasso converges on a singular covariance depends on how
    # the CPU's BLAS rounds (it fails on AMD EPYC and converges on Intel Xeon), so the failure is
    # forced: an unpenalised fit warns as sklearn does when it does not converge.
    class FailingUnpenalised(sklearn.covariance.GraphicalLasso):
        def fit(self, X, y=None):
            if self.alpha == 0.0:
                warnings.warn("forced non-convergence", ConvergenceWarning, stacklevel=2)
            return super().fit(X, y)

    monkeypatch.setattr(sklearn.covariance, "GraphicalLasso", FailingUnpenalised)
    x = np.random.default_rng(0).normal(size=(50, 4))
    x = np.c_[x, x[:, 0], 2 * x[:, 1]]  # two exact copies: singular covariance
    scores = B.partial_correlation(x, alpha=0.0)
    assert scores.info["method"] != "GraphicalLasso(alpha=0.0)"
    assert scores.info["failures"][0] == "GraphicalLasso(alpha=0.0): ConvergenceWarning"
    assert np.isfinite(scores.score).all()
    # the copies are each other's strongest partner
    assert scores.score[0].argmax() == 4
    assert scores.score[1].argmax() == 5
