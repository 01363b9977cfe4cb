"""gcl.datasets.random_network: deterministic structure, bounded inputs, at least two fates."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import gclandscape as gcl
from gclandscape._errors import GclError
from gclandscape.datasets import _random
from gclandscape.datasets._rules import parse_rules
from gclandscape.datasets._simulate import wild_type_ends


def _n_inputs(net) -> dict[str, int]:
    edges = net.edges()
    counts = edges.groupby("target")["source"].nunique()
    return {g: int(counts.get(g, 0)) for g in net.genes}


def _fates(adata, min_fraction=0.05) -> dict[str, float]:
    frac = adata.uns["gcl_truth"]["wt_fate_fractions"]
    return {k: v for k, v in frac.items() if k != "unsettled" and v >= min_fraction}


def test_same_seed_same_network_other_seed_differs():
    a = gcl.datasets.random_network(12, seed=4)
    b = gcl.datasets.random_network(12, seed=4)
    c = gcl.datasets.random_network(12, seed=5)
    assert a.rule_text() == b.rule_text()
    assert a.initial == b.initial
    assert a.rule_text() != c.rule_text()
    assert a.genes == tuple(f"g{i:02d}" for i in range(12))
    assert gcl.datasets.random_network(101, seed=0).genes[:2] == ("g000", "g001")


@pytest.mark.parametrize(("n_genes", "seed"), [(6, 0), (25, 3)])
def test_simulate_from_the_stored_start_reaches_two_fates(n_genes, seed):
    net = gcl.datasets.random_network(n_genes, seed=seed)
    adata = gcl.datasets.simulate(net, n_cells=300, n_targets=0, knockouts=False, seed=1)
    truth = adata.uns["gcl_truth"]
    # simulate starts from the progenitor state stored with the network
    assert truth["initial"].tolist() == [net.initial[g] for g in net.genes]
    fates = _fates(adata)
    assert len(fates) >= 2, truth["wt_fate_fractions"]
    patterns = truth["fate_patterns"].loc[list(fates)]
    assert len(patterns.drop_duplicates()) == len(fates)


def test_progenitor_gene_is_on_at_the_start_and_off_in_every_fate():
    net = gcl.datasets.random_network(10, seed=3)
    progenitor = [g for g, v in net.initial.items() if v == 1.0]
    assert len(progenitor) == 1, net.to_text()  # this seed draws the primed toggle switch
    p = progenitor[0]
    assert net.rule_text()[p].startswith("not (")
    adata = gcl.datasets.simulate(net, n_cells=200, n_targets=0, knockouts=False)
    patterns = adata.uns["gcl_truth"]["fate_patterns"]
    assert (patterns.loc[list(_fates(adata)), p] == 0).all()


@pytest.mark.parametrize("max_inputs", [1, 2, 3])
def test_max_inputs_is_respected_and_used(max_inputs):
    seen = []
    for seed in range(3):
        net = gcl.datasets.random_network(15, seed=seed, max_inputs=max_inputs)
        counts = _n_inputs(net)
        assert max(counts.values()) <= max_inputs, net.to_text()
        assert min(counts.values()) >= 1  # no constant genes
        seen.append(max(counts.values()))
    assert max(seen) == max_inputs


def test_rules_round_trip_through_text():
    net = gcl.datasets.random_network(20, seed=7)
    again = parse_rules(net.to_text())
    assert again.rule_text() == net.rule_text()
    assert again.genes == net.genes


def test_bad_input_names_the_fix():
    with pytest.raises(GclError, match=r"n_genes must be an integer >= 4.*n_genes=4"):
        gcl.datasets.random_network(2)
    with pytest.raises(GclError, match=r"max_inputs must be a positive integer.*max_inputs=1"):
        gcl.datasets.random_network(8, max_inputs=0)
    with pytest.raises(GclError, match="seed must be a non-negative integer"):
        gcl.datasets.random_network(8, seed=-1)
    with pytest.raises(GclError, match="n_genes"):
        gcl.datasets.random_network(8.0)


def test_no_branching_network_found_raises_with_advice(monkeypatch):
    # a margin above 1 can never be met: every draw is rejected
    monkeypatch.setattr(_random, "_MARGIN", 1.01)
    monkeypatch.setattr(_random, "_MAX_TRIES", 2)
    with pytest.raises(
        GclError, match=r"none of the 2 networks.*another seed.*n_genes.*max_inputs"
    ):
        gcl.datasets.random_network(6, seed=0)


def test_fate_check_uses_simulate_defaults():
    check = inspect.signature(wild_type_ends).parameters
    sim = inspect.signature(gcl.datasets.simulate).parameters
    for name in ("t_max", "dt", "noise", "hill", "threshold", "rate"):
        assert check[name].default == sim[name].default, name


def test_fate_check_matches_simulate():
    """The check's end states are simulate's: the same seed and trajectory count give the same
    fate fractions."""
    net = gcl.datasets.random_network(8, seed=0)
    settled, end = wild_type_ends(net, n_trajectories=100, seed=3)
    adata = gcl.datasets.simulate(net, n_cells=100, n_targets=0, knockouts=False, seed=3)
    truth = adata.uns["gcl_truth"]
    genes = list(net.genes)
    got = {}
    for name, row in truth["fate_patterns"].iterrows():
        hit = (end == row[genes].to_numpy(dtype=bool)).all(axis=1) & settled
        got[name] = float(hit.mean())
    want = {k: v for k, v in truth["wt_fate_fractions"].items() if k != "unsettled"}
    assert got == pytest.approx(want)
    assert np.isclose(sum(got.values()), settled.mean())
