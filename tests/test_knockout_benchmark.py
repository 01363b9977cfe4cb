"""Truth and baseline helpers of the knockout benchmark (benchmarks/_knockout_*.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _knockout_baselines as B
import _knockout_data as D
from gclandscape.datasets._rules import parse_rules

MCAD = """Gene\tRule
Fgf8\t( Fgf8 and Sp8 and not (Emx2) )
Emx2\t(Coup and not (Fgf8) and not (Pax6)  and not (Sp8))
Pax6\t(  (Sp8) and not (Emx2) and not (Coup))
Coup\t( not (Fgf8) and not (Sp8) )
Sp8\t( Fgf8 and not (Emx2))
"""


# ------------------------------------------------------------------------------- scoring
def test_score_knockouts_counts_pairs_and_ignores_unscored_labels():
    truth = {"A": "X,Y", "B": "", "C": "Y", "D": set()}
    pred = {"A": {"X"}, "B": {"progenitor"}, "C": {"Y"}, "D": {"X", "novel"}}
    s = D.score_knockouts(pred, truth, ["X", "Y"])
    # A misses Y; B's "progenitor" is not scored (right); C right; D predicts X wrongly
    assert (s["n"], s["n_right"], s["tp"], s["fp"], s["fn"]) == (4, 2, 2, 1, 1)
    assert s["accuracy"] == 0.5
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == pytest.approx(2 / 3)
    assert s["wrong"] == ["A", "D"]
    empty = D.score_knockouts({}, {"A": ""}, ["X"])
    assert empty["accuracy"] == 1.0
    assert np.isnan(empty["precision"])
    assert np.isnan(empty["recall"])


# ------------------------------------------------------------------------------- Boolean truth
def test_toggle_switch_fixed_points_and_knockouts():
    net = parse_rules("A = not B\nB = not A")
    assert D.boolean_fixed_points(net) == [frozenset({"A"}), frozenset({"B"})]
    assert D.boolean_fixed_points(net, knockout="A") == [frozenset({"B"})]
    names, _, lost = D.boolean_knockout_truth(net)
    assert set(names) == {"A", "B"}
    assert lost == {"A": {"A"}, "B": {"B"}}


def test_mcad_knockout_truth_matches_the_published_outcome():
    net = parse_rules(MCAD)
    wt = D.boolean_fixed_points(net)
    assert set(wt) == set(D.mcad_names().values())
    names, ko_fps, lost = D.boolean_knockout_truth(net, D.mcad_names())
    # Fgf8 or Sp8 KO -> the anterior state is lost; Coup KO's all-off state is posterior
    assert lost == {"Fgf8": {"anterior"}, "Sp8": {"anterior"}, "Emx2": set(), "Pax6": set(),
                    "Coup": set()}  # fmt: skip
    assert ko_fps["Coup"] == [frozenset(), frozenset({"Fgf8", "Pax6", "Sp8"})]
    assert D.name_by_nearest(frozenset(), names, net.genes, ignore=["Coup"]) == "posterior"
    # equidistant from both: novel
    assert D.name_by_nearest(frozenset({"Coup", "Fgf8"}), {"a": {"Coup"}, "b": {"Fgf8"}},
                             ["Coup", "Fgf8"]) == "novel"  # fmt: skip


def test_true_knockout_outcomes_of_a_toggle_switch():
    import gclandscape as gcl

    adata = gcl.datasets.simulate(
        "A = not B\nB = not A\nC = A", n_cells=50, n_targets=0, seed=0,
        initial={"A": 1, "B": 1}, knockouts=False,
    )  # fmt: skip
    wt, table, lost = D.true_knockout_outcomes(adata.uns["gcl_truth"], n_traj=100, seed=0)
    assert set(wt.index) == {"A+C", "B"}
    assert 0.2 < wt["A+C"] < 0.8
    # A KO: every cell ends in B; B KO: every cell in A+C; C (a read-out) KO keeps both
    # fates, its end state named over the genes it does not set
    assert lost == {"A": {"A+C"}, "B": {"B"}, "C": set()}
    assert table.loc["A", "B"] == 1.0
    assert table.loc["B", "A+C"] == 1.0


def test_steady_state_truth_of_a_cascade():
    import gclandscape as gcl

    adata = gcl.datasets.simulate(
        pd.DataFrame({"source": ["A", "B"], "target": ["B", "C"], "sign": [1, -1]}),
        n_cells=20, n_targets=0, knockouts=False,
    )  # fmt: skip
    fc = D.true_steady_state_changes(adata.uns["gcl_truth"])
    # A (constitutive) on, B on, C repressed; knocking out B lifts C, A KO turns B off
    assert fc.loc["A", "A"] < -5
    assert fc.loc["A", "B"] < -5
    assert fc.loc["A", "C"] > 3
    assert abs(fc.loc["B", "A"]) < 1e-6
    assert fc.loc["B", "C"] > 3
    assert np.allclose(fc.loc["C", ["A", "B"]], 0.0, atol=1e-6)


def test_steady_state_network_is_acyclic_with_inputs():
    import networkx as nx

    net = D.steady_state_network(12, n_inputs=3, seed=0)
    g = nx.DiGraph(list(zip(net["source"], net["target"])))
    assert nx.is_directed_acyclic_graph(g)
    assert {"s00", "s01", "s02"} - set(net["target"]) == {"s00", "s01", "s02"}


# ------------------------------------------------------------------------------- baselines
def test_ridge_grn_recovers_a_linear_dependence():
    gen = np.random.default_rng(0)
    a = gen.normal(size=500)
    c = gen.normal(size=500)
    x = np.c_[a, 0.8 * a - 0.5 * c + 0.01 * gen.normal(size=500), c]
    coef = B.ridge_grn(x, alpha=1e-3)
    assert coef.shape == (3, 3)
    assert np.all(np.diag(coef) == 0)
    np.testing.assert_allclose(coef[1, [0, 2]], [0.8, -0.5], atol=0.02)


def test_propagate_knockout_follows_celloracle_steps():
    # chain A -> B (0.5) -> C (-1): knocking A out from A = 1, B = 0.6, C = 0.5
    coef = np.zeros((3, 3))
    coef[1, 0] = 0.5
    coef[2, 1] = -1.0
    x = np.array([[1.0, 0.6, 0.5]])
    one = B.propagate_knockout(x, coef, 0, n_steps=1)
    np.testing.assert_allclose(one, [[0.0, 0.1, 0.5]])  # B falls by 0.5, C not yet moved
    two = B.propagate_knockout(x, coef, 0, n_steps=2)
    np.testing.assert_allclose(two, [[0.0, 0.1, 1.0]])  # C rises by 0.5
    # clipping at zero: a larger drop of B stops at 0
    coef[1, 0] = 2.0
    np.testing.assert_allclose(B.propagate_knockout(x, coef, 0, n_steps=3)[0, :2], [0.0, 0.0])


def test_celloracle_screen_loses_a_fate_only_when_cells_move():
    # two cell types separated by genes A and B, copies of each other: knocking out either
    # moves every "high" cell to the "low" centroid through the ridge GRN (the naming leaves
    # the knocked-out gene out); knocking out the unrelated gene C moves none
    gen = np.random.default_rng(1)
    n = 200
    a = np.r_[gen.uniform(0.8, 1.0, n), gen.uniform(0.0, 0.2, n)]
    x = np.c_[a, a + 0.01 * gen.normal(size=2 * n), gen.uniform(0, 1, 2 * n)]
    labels = np.r_[["high"] * n, ["low"] * n]
    table = B.celloracle_screen(x, labels, ["A", "B", "C"], per_group=False)
    lost = table[table["lost"]]
    assert [(str(g), str(f)) for g, f in zip(lost["gene"], lost["fate"])] == [
        ("A", "high"),
        ("B", "high"),
    ]
    c = table.query("gene == 'C'").set_index("fate")
    np.testing.assert_allclose(c["delta"], 0.0)
    wt = table.query("gene == 'C'").set_index("fate")["wt"]
    assert wt["high"] == pytest.approx(0.5)


def test_steady_state_baselines_and_pearson():
    genes = ["A", "B", "C"]
    true = pd.DataFrame(
        [[-5.0, -2.0, 1.0], [0.0, -4.0, 2.0], [0.0, 0.0, -3.0]], index=genes, columns=genes
    )
    only = B.only_target_log2fc(genes)
    assert only.loc["B"].tolist() == [0.0, -1.0, 0.0]
    loo = B.mean_others_log2fc(true)
    np.testing.assert_allclose(loo.loc["A"], [0.0, -2.0, -0.5])
    r = B.pearson_rows(true, true)
    np.testing.assert_allclose(r, 1.0)
    r_self = B.pearson_rows(only, true, exclude_self=True)
    assert r_self.isna().all()  # the baseline is constant once its own gene is left out
    r_only = B.pearson_rows(only, true)
    assert r_only["C"] == pytest.approx(1.0)  # C KO changes only C


# ------------------------------------------------------------------------------- oracle
@pytest.mark.slow
def test_fog1_is_not_identifiable_from_the_true_dxdt_but_cebpa_is():
    """The benchmark's reason why myeloid 11/11 is out of reach from data: Pu.1's true dx/dt
    is explained as well with Fog1 (Gata1's follower) as with Gata1; Gfi1's is not with Fog1
    in place of Cebpa, nor with cJun in place of EgrNab."""
    import knockouts as K

    case = D.load_myeloid()
    t = K.identifiability(case, estimate=False).set_index("swap")
    assert set(t["data"]) == {"true states and dx/dt"}
    pu, gfi, egr = t.loc["Gata1 -> Fog1"], t.loc["Cebpa -> Fog1"], t.loc["EgrNab -> cJun"]
    assert pu["inputs"] == "Cebpa+Gata1+Gata2+Pu.1"
    assert pu["r2_true"] > 0.95
    assert abs(pu["r2_true"] - pu["r2_swapped"]) < 0.01
    assert gfi["r2_true"] > 0.95
    assert gfi["r2_true"] - gfi["r2_swapped"] > 0.1
    assert egr["r2_true"] - egr["r2_swapped"] > 0.1


def test_true_drift_replaces_the_regulators_layers_only():
    import gclandscape as gcl
    import knockouts as K

    case = D.load_myeloid(n_cells=300)
    adata = case.adata.copy()
    gcl.tl.drift(adata, genes=case.genes, time_key=case.time_key)
    before = {k: adata.layers[k].toarray() for k in ("gcl_drift_state", "gcl_drift")}
    K._use_true_drift(adata, case.genes[:3])
    truth = adata.uns["gcl_truth"]
    regs = list(truth["regulators"])
    idx = adata.var_names.get_indexer(case.genes[:3])
    state = np.asarray(truth["state"])[:, [regs.index(g) for g in case.genes[:3]]]
    scale = np.percentile(state, 99, axis=0)
    np.testing.assert_allclose(adata.layers["gcl_drift_state"][:, idx], state / scale)
    vel = np.asarray(truth["velocity"])[:, [regs.index(g) for g in case.genes[:3]]] / scale
    np.testing.assert_allclose(adata.layers["gcl_drift"][:, idx], vel, rtol=1e-6)
    np.testing.assert_allclose(adata.var["gcl_drift_scale"].to_numpy()[idx], scale)
    rest = adata.var_names.get_indexer(case.genes[3:])
    for k, v in before.items():
        np.testing.assert_array_equal(adata.layers[k][:, rest], v[:, rest])
