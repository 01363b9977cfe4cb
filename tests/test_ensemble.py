"""fit_grn(n_genomes=K): an ensemble of genomes (issue 18 §2), its storage and fidelity check."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

import gclandscape as gcl
from gclandscape._errors import GclError
from gclandscape._keys import Key
from gclandscape.landscape import _ensemble


def _stored_drift(x, dxdt, t, genes, labels=None):
    """AnnData whose drift (states, dx/dt, time) is given, as gcl.tl.drift would store it."""
    obs = pd.DataFrame({"t": t}, index=[f"c{i}" for i in range(len(t))])
    if labels is not None:
        obs["ct"] = pd.Categorical(labels)
    a = ad.AnnData(np.asarray(x, np.float32), obs=obs, var=pd.DataFrame(index=genes))
    k = Key.layers.drift
    a.layers[k] = np.asarray(dxdt, np.float32)
    a.layers[f"{k}_path"] = np.asarray(dxdt, np.float32)
    a.layers[f"{k}_state"] = np.asarray(x, np.float32)
    a.var[f"{k}_gene"] = True
    a.var[f"{k}_scale"] = 1.0
    a.uns[k] = {"params": {"time_key": "t", "method": "given", Key.drift_params.crossgene: True}}
    return a


@pytest.fixture(scope="module")
def pair():
    """B is an exact copy of A, and C's production follows A (= B): the data cannot tell
    A -> C from B -> C. Fitted once with K = 4 and once with K = 1."""
    rng = np.random.default_rng(0)
    n = 120
    a_ = rng.uniform(0, 1, n)
    c_ = rng.uniform(0, 1, n)
    x = np.c_[a_, a_, c_]
    dxdt = np.c_[0.5 - a_, 0.5 - a_, 1 / (1 + np.exp(-8 * (a_ - 0.5))) - c_]
    adata = _stored_drift(x, dxdt, rng.uniform(0, 1, n), ["A", "B", "C"])
    single = adata.copy()
    ensemble = gcl.landscape.fit_grn(adata, n_bootstrap=0, n_genomes=4)
    one = gcl.landscape.fit_grn(single, n_bootstrap=0)
    return adata, ensemble, single, one


def _edge_set(genome):
    return set(zip(genome.edges()["source"], genome.edges()["target"]))


def test_members_differ_where_the_data_cannot_decide(pair):
    adata, ensemble, _, _ = pair
    assert ensemble.n_members >= 3
    assert len({frozenset(_edge_set(m)) for m in ensemble}) > 1
    edges = gcl.get.grn_edges(adata).set_index(["source", "target"])
    share = edges["member_share"]
    for src in ("A", "B"):
        assert 0.0 < share.get((src, "C"), 0.0) < 1.0
    # every member explains C through A or B: the target is never left unexplained
    assert all(({("A", "C"), ("B", "C")} & _edge_set(m)) for m in ensemble)
    params = adata.uns[Key.uns.genome]["params"]
    assert params["n_genomes"] == 4
    assert params["n_members"] == ensemble.n_members == 4 - params["n_dropped"]
    assert params["wt_fidelity"].startswith("not checked")  # no groupby
    # the members' recipes differ in structure: resampled, at several connection costs
    assert params["member_resampled"].tolist() == [False] + [True] * 3
    assert len(set(params["member_l1_factor"].tolist())) == 4


def test_one_genome_is_todays_fit_and_member_zero(pair):
    _, ensemble, single, one = pair
    assert one.n_members == 1
    assert one.member(0) is one
    assert list(one) == [one]
    np.testing.assert_array_equal(ensemble.member(0).W.to_numpy(), one.W.to_numpy())
    np.testing.assert_array_equal(ensemble.W.to_numpy(), one.W.to_numpy())
    edges = gcl.get.grn_edges(single)
    assert (edges["member_share"] == 1.0).all()
    pd.testing.assert_frame_equal(edges.drop(columns="member_share"), one.edges())
    assert single.uns[Key.uns.genome]["params"]["n_members"] == 1
    assert "n_genomes" not in single.uns[Key.uns.genome]["params"]


def test_every_member_round_trips_through_h5ad(pair, tmp_path):
    adata, ensemble, _, _ = pair
    gcl.io.write(adata, tmp_path / "ens.h5ad")
    back_adata = gcl.io.read(tmp_path / "ens.h5ad")
    back = gcl.landscape.Genome.from_adata(back_adata)
    assert back.n_members == ensemble.n_members
    x0 = np.full((4, 3), 0.4)
    for m, b in zip(ensemble, back):
        np.testing.assert_array_equal(b.W.to_numpy(), m.W.to_numpy())
        np.testing.assert_array_equal(b.develop(x0, seed=2), m.develop(x0, seed=2))
    pd.testing.assert_frame_equal(gcl.get.grn_edges(back_adata), gcl.get.grn_edges(adata))
    # an edit reaches every member, and survives the round trip too
    ko = back.mutate(gcl.sim.Knockout("A"))
    assert [m.edits for m in ko] == [["A KO"]] * back.n_members
    assert all(m.production[0] == 0.0 for m in ko)


# ---------------------------------------------------------------------- fidelity
TOGGLE = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
# one attractor only (B is always high): cannot regenerate the A-high fate
MONOSTABLE = gcl.landscape.Genome(["A", "B"], [[0, -10], [0, 0]], b=[0.0, 3.0])


def _toggle_cells():
    rng = np.random.default_rng(1)
    x0 = 0.5 + rng.normal(0, 0.05, size=(60, 2))
    _, times, snaps = TOGGLE.develop(x0, t_max=8.0, noise=0.02, seed=1, n_save=9)
    end = snaps[-1]
    fate = np.where(end[:, 0] > end[:, 1], "A-high", "B-high")
    x = snaps.reshape(-1, 2)
    t = np.repeat(times, len(x0))
    labels = np.where(t < 2.0, "progenitor", np.tile(fate, len(times)))
    return x, t, labels


def test_a_member_that_loses_a_fate_is_dropped_and_counted():
    x, t, labels = _toggle_cells()
    fidelity = _ensemble.terminal_types(x, labels, t)
    assert sorted(fidelity[0]) == ["A-high", "B-high"]
    specs = _ensemble.member_specs(3, seed=0, has_prior=False)
    members = {1: MONOSTABLE, 2: TOGGLE.mutate(gcl.sim.Knockdown("A", 0.9))}
    genome, params = _ensemble.fit_ensemble(
        TOGGLE, specs, fit_one=lambda s: members[s.seed], x=x, dxdt=None, fidelity=fidelity
    )
    assert genome.n_members == 2
    assert params["member_passed"].tolist() == [True, False, True]
    assert params["n_dropped_fidelity"] == 1
    assert params["n_dropped"] == 1
    assert params["reliable"] is True
    np.testing.assert_array_equal(genome.member(1).production, [0.9, 1.0])  # member 2 kept


def test_no_member_passing_warns_naming_the_fate_and_keeps_all():
    x, t, labels = _toggle_cells()
    fidelity = _ensemble.terminal_types(x, labels, t)
    specs = _ensemble.member_specs(2, seed=0, has_prior=False)
    with pytest.warns(UserWarning, match="no member regenerates A-high"):
        genome, params = _ensemble.fit_ensemble(
            MONOSTABLE, specs, fit_one=lambda s: MONOSTABLE, x=x, dxdt=None, fidelity=fidelity
        )
    assert genome.n_members == 2
    assert params["reliable"] is False
    assert params["unregenerated"].tolist() == ["A-high"]


def test_fit_grn_checks_fidelity_with_groupby():
    x, t, labels = _toggle_cells()
    dxdt = TOGGLE.field()(0.0, torch.as_tensor(x, dtype=torch.float32)).numpy()
    adata = _stored_drift(x, dxdt, t, ["A", "B"], labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        genome = gcl.landscape.fit_grn(adata, groupby="ct", n_bootstrap=0, n_genomes=2)
    params = adata.uns[Key.uns.genome]["params"]
    assert params["wt_fidelity"] == "checked"
    assert sorted(params["terminal_types"].tolist()) == ["A-high", "B-high"]
    # both fitted members are bistable toggles with an attractor at each fate's centroid
    assert params["member_regenerates"].tolist() == [[True, True], [True, True]]
    assert params["reliable"] is True
    assert genome.n_members == 2


def test_bad_ensemble_input():
    with pytest.raises(GclError, match="n_genomes"):
        gcl.landscape.fit_grn(_stored_drift(np.eye(3), np.eye(3), [0, 1, 2], list("abc")),
                              n_genomes=0)  # fmt: skip
    with pytest.raises(GclError, match="same genes"):
        gcl.landscape.Genome.ensemble([TOGGLE, gcl.landscape.Genome(["A", "C"], np.zeros((2, 2)))])
    with pytest.raises(GclError, match="does not exist"):
        TOGGLE.member(1)


def test_members_alternate_with_and_without_the_prior():
    rng = np.random.default_rng(3)
    n = 120
    a_, c_ = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    x = np.c_[a_, a_, c_]
    dxdt = np.c_[0.5 - a_, 0.5 - a_, 1 / (1 + np.exp(-8 * (a_ - 0.5))) - c_]
    adata = _stored_drift(x, dxdt, rng.uniform(0, 1, n), ["A", "B", "C"])
    prior = pd.DataFrame({"source": ["A", "A", "B", "C"], "target": ["C", "A", "B", "C"]})
    allowed = set(zip(prior["source"], prior["target"]))
    genome = gcl.landscape.fit_grn(adata, n_bootstrap=0, n_genomes=3, prior=prior)
    params = adata.uns[Key.uns.genome]["params"]
    assert params["member_prior"].tolist() == [True, False, True]
    assert params["member_passed"].tolist() == [True, True, True]
    assert _edge_set(genome.member(0)) <= allowed
    assert _edge_set(genome.member(2)) <= allowed
    # without the prior (and without A -> C among its candidates) a member takes the
    # interchangeable B -> C: the prior is what settles the call
    assert ("B", "C") in _edge_set(genome.member(1))
