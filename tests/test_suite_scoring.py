"""Scoring, baselines and network list of the generalisation suite (benchmarks/suite.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _suite_methods as M
import _suite_networks as N
import _suite_scoring as S


# ------------------------------------------------------------------------------- metrics
def test_ko_metrics_exact_sets_and_pairs():
    truth = {"a": {"X"}, "b": {"X", "Y"}, "c": set(), "d": {"Y"}}
    pred = {"a": {"X"}, "b": {"X"}, "c": {"Y", "progenitor"}, "d": set()}
    m = S.ko_metrics(pred, truth, ["X", "Y"])
    # right: a only; pairs tp = 2 (a X, b X), fp = 1 (c Y), fn = 2 (b Y, d Y)
    assert m == {"ko_accuracy": 0.25, "pair_precision": pytest.approx(2 / 3),
                 "pair_recall": 0.5}  # fmt: skip
    none = S.ko_metrics({}, {"a": set()}, ["X"])
    assert none["ko_accuracy"] == 1.0
    assert none["pair_precision"] is None


def test_brier_known_value_and_none_without_probabilities():
    p = {"a": {"X": 1.0, "Y": 0.5}, "b": {"X": 0.0}}  # b's Y missing: 0
    truth = {"a": {"X"}, "b": {"Y"}}
    # (0^2 + 0.5^2 + 0^2 + 1^2) / 4
    assert S.brier(p, truth, ["X", "Y"]) == pytest.approx(1.25 / 4)
    assert S.brier(None, truth, ["X", "Y"]) is None


def test_total_variation_renormalises_over_scored_fates():
    obs = {"A": 0.45, "B": 0.45, "C": 0.02, "unsettled": 0.08}
    assert S.total_variation({"A": 0.2, "B": 0.2, "novel": 0.6}, obs, ["A", "B"]) == 0.0
    assert S.total_variation({"A": 0.9, "B": 0.1}, obs, ["A", "B"]) == pytest.approx(0.4)
    assert S.total_variation({"progenitor": 1.0}, obs, ["A", "B"]) == 1.0


def test_scored_fates_threshold():
    assert S.scored_fates({"A": 0.05, "B": 0.049, "unsettled": 0.9}) == ["A"]


def test_attractor_fidelity_counts_found_and_spurious():
    att = pd.DataFrame({
        "label": ["A", "B_2", "unlabelled", "progenitor", "unobserved", "C", "attractor_7"],
        "basin_fraction": [0.4, 0.2, 0.06, 0.2, 0.0, 0.1, 0.04],
    })  # fmt: skip
    out = S.attractor_fidelity(att, fates=["A", "B", "D"], observed=["A", "B", "C", "D"])
    # found: A and B (as B_2); spurious (> 5 %, not an observed type): unlabelled, progenitor
    assert out == {"fates_found": 2, "n_fates": 3, "spurious": 2}


def test_choose_on_dev_ignores_test_rows():
    c = pd.DataFrame({
        "split": ["dev", "dev", "test", "test", "dev", "dev"],
        "setting": [1, 2, 1, 2, 1, 2],
        "ko_accuracy": [0.2, 0.4, 1.0, 0.0, 0.3, 0.4],
    })  # fmt: skip
    assert S.choose_on_dev(c, "setting") == 2
    with pytest.raises(ValueError, match="no dev rows"):
        S.choose_on_dev(c[c["split"] == "test"], "setting")


def test_summary_table_marks_the_best_test_mean():
    rec = pd.DataFrame({
        "network": ["n1", "n1", "n2", "n2", "n3", "n3"],
        "family": ["f"] * 6,
        "split": ["test", "test", "test", "test", "dev", "dev"],
        "method": ["a", "b"] * 3,
        "m": [1.0, 0.0, 0.5, 1.0, 0.2, 0.9],
    })  # fmt: skip
    t = S.summary_table(rec, "m", ["a", "b"])
    assert t.loc["f (2/1)", "a"] == "0.75* (0.20)"
    assert t.loc["overall (2/1)", "b"] == "0.50 (0.90)"


# ------------------------------------------------------------------------------- baselines
def _three_fates():
    import anndata as ad

    from gclandscape._keys import Key

    rng = np.random.default_rng(0)
    labels = np.repeat(["progenitor", "A", "B", "C"], 40)
    mean = {"progenitor": [5, 5, 5, 5], "A": [40, 5, 5, 5], "B": [5, 40, 5, 5],
            "C": [5, 5, 40, 20]}  # fmt: skip
    counts = np.stack([rng.poisson(mean[lab]) for lab in labels]).astype(np.float32)
    adata = ad.AnnData(counts)
    adata.var_names = ["g1", "g2", "g3", "g4"]
    adata.obs[Key.obs.celltype] = pd.Categorical(labels)
    adata.var[Key.var.regulator] = True
    return adata, labels


def test_specific_regulators_on_three_fates():
    adata, labels = _three_fates()
    genes = M.regulators(adata)
    x = M.log_expression(adata, genes)
    z = M.specificity_z(x, labels, genes, ["A", "B", "C"])
    assert M.specific_lost(z, 1) == {"g1": {"A"}, "g2": {"B"}, "g3": {"C"}, "g4": set()}
    # k = 2: C's second most specific is g4 (also high in C); A and B take one of the rest
    two = M.specific_lost(z, 2)
    assert "C" in two["g4"]
    assert "C" in two["g3"]
    assert sum(len(v) for v in two.values()) == 6


def test_absorption_gamblers_ruin_and_biased_walk():
    P = np.zeros((5, 5))
    for i in range(1, 4):
        P[i, i - 1] = P[i, i + 1] = 0.5
    lab = ["L", None, None, None, "R"]
    for start, right in ((1, 0.25), (2, 0.5), (3, 0.75)):
        s = np.zeros(5, bool)
        s[start] = True
        assert M.absorption(P, lab, s)["R"] == pytest.approx(right)
    both = np.array([0, 1, 0, 1, 0], bool)  # uniform over two start cells
    assert M.absorption(P, lab, both)["R"] == pytest.approx(0.5)

    # the same chain as points on a line: a shift to the right makes R likelier
    x = np.arange(5, dtype=float)[:, None]
    nb = np.array([[1, 2], [0, 2], [1, 3], [2, 4], [3, 2]])
    start = np.array([0, 0, 1, 0, 0], bool)
    uniform = M.transition_matrix(x, nb, None)
    assert uniform[2, 1] == uniform[2, 3] == 0.5
    biased = M.transition_matrix(x, nb, np.ones((5, 1)))
    assert biased[2, 3] > 0.99
    assert M.absorption(biased, lab, start)["R"] > 0.99


def test_lost_by_factor_rules():
    wt = {"A": 0.5, "B": 0.45, "C": 0.005}
    ko = {"g": {"A": 0.2, "B": 0.009, "C": 0.0}, "h": {"A": 0.3, "B": 0.3}}
    assert M.lost_by_factor(wt, ko, 0.0) == {"g": {"B"}, "h": set()}  # C is under 1 % in wt
    assert M.lost_by_factor(wt, ko, 0.5) == {"g": {"A", "B"}, "h": set()}
    assert M.lost_by_factor(wt, ko, 0.7) == {"g": {"A", "B"}, "h": {"A", "B"}}


def test_method_input_hides_the_truth():
    adata, _ = _three_fates()
    adata.uns["gcl_truth"] = {"network": None}
    adata.obs["sim_time"] = 1.0
    adata.obs["sim_trajectory"] = 0
    inp = M.method_input(adata)
    assert "gcl_truth" not in inp.uns
    assert not {"sim_time", "sim_trajectory"} & set(inp.obs)
    assert "sim_time" in adata.obs  # the original is untouched


# ------------------------------------------------------------------------------- networks
def test_motif_rules_have_the_designed_fates():
    from gclandscape.datasets._rules import parse_rules

    for seed in range(20):
        text = N.mi_tree_rules(seed)
        net = parse_rules(text, source="t")
        # a tree of mutual-inhibition groups: leaves (ungated genes gate nothing) are 3..6
        gates = {line.split("=")[1].split()[0] for line in text.splitlines() if " and not " in line}
        leaves = [g for g in net.genes if g not in gates]
        assert 3 <= len(leaves) <= 6
        assert parse_rules(N.toggle_cascade_rules(seed), source="t").genes[:2] == ("X1", "Y1")
        assert {"X", "Y", "Z1", "W1"} <= set(parse_rules(N.ffl_rules(seed), source="t").genes)


def test_split_is_fixed_and_has_enough_test_networks():
    if not N.random_network_available():
        pytest.skip("needs gcl.datasets.random_network (issue 17 §1)")
    a = N.suite_networks(shared_data=Path("/nonexistent"))
    b = N.suite_networks(shared_data=Path("/nonexistent"))
    assert a == b
    assert len({n.name for n in a}) == len(a)
    test = [n for n in a if n.split == "test"]
    assert len(test) >= 16
    for fam in {n.family for n in a}:
        members = [n for n in a if n.family == fam]
        if len(members) >= 2:
            assert {n.split for n in members} == {"dev", "test"}, fam
    rand = [n for n in a if n.family == "random"]
    assert len(rand) >= 24
    assert all(6 <= n.n_regulators <= 25 for n in rand)


def test_split_assignment_rule():
    assert [N.assign_split("ffl", i) for i in range(4)] == ["test", "dev", "test", "dev"]
    assert N.assign_split("curated", 1, "myeloid") == "dev"
    assert N.assign_split("curated", 0, "mCAD") == "test"


def test_list_output_format(capsys):
    import suite

    assert suite.main(["--list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    nets = N.suite_networks()
    assert len(lines) == len(nets)
    for line, net in zip(lines, nets):
        name, family, split, n = line.split(" ")
        assert (name, family, split, int(n)) == (net.name, net.family, net.split,
                                                 net.n_regulators)  # fmt: skip
        assert family in N.FAMILIES
        assert split in N.SPLITS
