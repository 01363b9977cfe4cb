"""Metrics, baselines and truth helpers of the Perturb-seq benchmark (benchmarks/_perturbseq_*.py)
on tiny hand-made cases whose answers are known."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _perturbseq_data as D
import _perturbseq_methods as M

GENES = ["A", "B", "C", "D", "E"]


def test_score_pearson_top_genes_sign_and_effect():
    # knockout A: observed change over the other genes B..E; A's own drop is ignored
    observed = pd.DataFrame([[-5.0, 2.0, -1.0, 0.5, 0.0]], index=["A"], columns=GENES)
    perfect = observed * 3.0  # any positive scale: r = 1, every sign right
    s = M.score(perfect, observed, n_top=3)
    assert s.loc["A", "r_all"] == pytest.approx(1.0)
    assert s.loc["A", "r_top20"] == pytest.approx(1.0)
    assert s.loc["A", "sign_top20"] == 1.0
    assert s.loc["A", "effect_obs"] == pytest.approx((2 + 1 + 0.5 + 0) / 4)
    assert s.loc["A", "effect_pred"] == pytest.approx(3 * (2 + 1 + 0.5) / 4)

    # flip the sign of C only: the top 3 by |observed| are B, C, D -> one of three signs wrong
    pred = perfect.copy()
    pred.loc["A", "C"] = 3.0
    s = M.score(pred, observed, n_top=3)
    assert s.loc["A", "sign_top20"] == pytest.approx(2 / 3)
    b, c, d, e = 6.0, 3.0, 1.5, 0.0
    expected = np.corrcoef([b, c, d, e], [2.0, -1.0, 0.5, 0.0])[0, 1]
    assert s.loc["A", "r_all"] == pytest.approx(expected)
    top = np.corrcoef([b, c, d], [2.0, -1.0, 0.5])[0, 1]
    assert s.loc["A", "r_top20"] == pytest.approx(top)
    assert expected != pytest.approx(top)  # the two gene sets give different numbers

    # genes missing from the prediction count as 0: a 0 prediction is a wrong sign
    partial = pd.DataFrame([[-1.0, 1.0]], index=["A"], columns=["A", "B"])
    s = M.score(partial, observed, n_top=2)
    assert s.loc["A", "sign_top20"] == 0.5
    assert s.loc["A", "effect_pred"] == pytest.approx(0.25)
    # a constant prediction has no correlation
    assert np.isnan(M.score(observed * 0.0, observed)["r_all"].iloc[0])


def test_rank_effect_is_spearman_of_effect_sizes():
    per = pd.DataFrame({"effect_pred": [0.1, 0.3, 0.2, 0.05], "effect_obs": [1.0, 3.0, 2.0, 0.0]})
    assert M.rank_effect(per) == pytest.approx(1.0)
    per["effect_pred"] = [0.3, 0.1, 0.4, 0.2]  # ranks 3 1 4 2 vs 2 4 3 1
    assert M.rank_effect(per) == pytest.approx(-0.2)
    per["effect_pred"] = 0.2
    assert np.isnan(M.rank_effect(per))


def test_coexpression_baseline_slope_times_mean():
    # B = 2*A exactly, C independent of A, D = -A + 3: setting A to 0 moves B by -2*mean(A)
    rng = np.random.default_rng(0)
    a = rng.uniform(1, 2, 50)
    c = rng.permutation(a)  # same values, unrelated order
    x = np.c_[a, 2 * a, c - c.mean() + 5.0, 3.0 - a + 2.0]
    pred = M.coexpression_log2fc(x, ["A", "B", "C", "D"], ["A"]).loc["A"]
    slope_c = np.cov(c, a)[0, 1] / np.var(a, ddof=1)
    assert pred["A"] == pytest.approx(-a.mean() / M.LN2)
    assert pred["B"] == pytest.approx(-2 * a.mean() / M.LN2)
    assert pred["C"] == pytest.approx(-slope_c * a.mean() / M.LN2)
    assert pred["D"] == pytest.approx(+a.mean() / M.LN2)  # clipped only below 0


def test_ridge_on_sources_recovers_linear_targets_and_no_self_loop():
    rng = np.random.default_rng(1)
    r = rng.normal(size=(400, 2))
    t = r @ np.array([1.5, -0.5])  # target = 1.5 R0 - 0.5 R1
    x = np.c_[r, t]
    coef = M.ridge_on_sources(x, [0, 1], alpha=1e-6)
    np.testing.assert_allclose(coef[2, :2], [1.5, -0.5], atol=1e-4)
    assert coef[0, 0] == 0.0
    assert coef[1, 1] == 0.0
    assert (coef[:, 2] == 0).all()  # the target is no source


def test_ridge_propagation_reaches_a_chain_target_in_steps():
    # chain R0 -> R1 -> T (each the copy of the one before): a KO of R0 reaches T in 2 steps
    rng = np.random.default_rng(2)
    r0 = rng.uniform(1, 2, 300)
    x = np.c_[r0, r0, r0]
    genes, regs = ["R0", "R1", "T"], ["R0", "R1"]
    one = M.ridge_propagation_log2fc(x + 1e-9, genes, regs, ["R0"], n_steps=1).loc["R0"]
    two = M.ridge_propagation_log2fc(x + 1e-9, genes, regs, ["R0"], n_steps=3).loc["R0"]
    assert one["R0"] == pytest.approx(-r0.mean() / M.LN2)
    assert one["R1"] < -0.3 * r0.mean() / M.LN2
    assert two["T"] < one["T"] <= 0.0


def test_mean_of_others_is_leave_one_out():
    obs = pd.DataFrame(
        [[1.0, 0.0], [3.0, 2.0], [5.0, 4.0]], index=["X", "Y", "Z"], columns=["a", "b"]
    )
    pred = M.mean_of_others(obs)
    assert pred.loc["X"].tolist() == [4.0, 3.0]
    assert pred.loc["Z"].tolist() == [2.0, 1.0]


def test_observed_log2fc_and_effect_and_classes():
    # two genes, library sizes equal: KO halves gene g0's counts, leaves g1
    counts = np.array([[10.0, 10.0], [10.0, 10.0], [5.0, 15.0], [5.0, 15.0]])
    cond = np.array(["control", "control", "g0 KO", "g0 KO"])
    fc = D.observed_log2fc(counts, cond, ["g0", "g1"])
    # normalised to the median library (20): the KO cells are 5 and 15 of 20
    assert fc.loc["g0", "g0"] == pytest.approx(np.log2(5.1 / 10.1))
    assert fc.loc["g0", "g1"] == pytest.approx(np.log2(15.1 / 10.1))
    true = pd.DataFrame(
        [[-6.0, 0.2, -0.4], [0.0, -6.0, 0.0]], index=["a", "b"], columns=["a", "b", "c"]
    )
    eff = D.effect_sizes(true)
    assert eff["a"] == pytest.approx(0.3)  # own gene excluded
    assert eff["b"] == 0.0
    assert [D.classify(v) for v in (0.5, 0.1, 0.05, 0.004)] == ["strong", "strong", "weak", "null"]
    effect = pd.Series({"s1": 0.5, "s2": 0.2, "w1": 0.05, "w2": 0.02, "w3": 0.01, "n1": 0.0})
    chosen = D.choose_knockouts(effect, list(effect.index), 2)
    assert chosen == {"s1": "strong", "s2": "strong", "w1": "weak", "w3": "weak", "n1": "null"}


def test_true_steady_states_of_a_tiny_network():
    # r000 constitutive; r001 = r000 (activation); r002 = not r000: KO of r000 flips both
    edges = pd.DataFrame(
        [("r000", "r001", 1), ("r000", "r002", -1)], columns=["source", "target", "sign"]
    )
    edges.attrs["genes"] = ["r000", "r001", "r002"]
    genes, _field, x_wt, x_ko = D.true_steady_states(edges)
    assert genes == ["r000", "r001", "r002"]
    assert x_wt[0] == pytest.approx(1.0, abs=1e-3)
    assert x_wt[1] > 0.7
    assert x_wt[2] < 0.3
    assert x_ko[0, 0] == pytest.approx(0.0, abs=1e-6)
    assert x_ko[0, 1] < 0.05
    assert x_ko[0, 2] > 0.9
    np.testing.assert_allclose(x_ko[2, :2], x_wt[:2], atol=1e-6)  # r002 is a leaf
