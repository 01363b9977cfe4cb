"""simulate(): any Boolean network → counts + truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from gclandscape._errors import GclError, GclFormatError
from gclandscape._keys import Key
from gclandscape.datasets._simulate import field_from_truth, simulate

TOGGLE = pd.DataFrame({"source": ["A", "B"], "target": ["B", "A"], "sign": ["-", "-"]})
SMALL = {"n_trajectories": 60, "n_knockout_trajectories": 40, "t_max": 20.0, "dt": 0.1}


@pytest.fixture(scope="module")
def toggle():
    return simulate(
        TOGGLE, n_cells=200, n_targets=15, seed=0, initial={"A": 1.0, "B": 1.0}, **SMALL
    )


def test_toggle_switch_from_edge_list_has_two_fates(toggle):
    truth = toggle.uns[Key.uns.truth]
    wt = truth["wt_fate_fractions"]
    assert set(wt) == {"A", "B"}
    assert 0.25 < wt["A"] < 0.75
    # knocking out A leaves only B and vice versa
    ko = truth["knockout_fate_fractions"]
    assert ko.loc["A", "B"] == 1.0
    assert ko.loc["B", "A"] == 1.0
    assert truth["knockout_lost_fates"] == {"A": "A", "B": "B"}
    assert set(toggle.obs[Key.obs.celltype].cat.categories) == {"progenitor", "A", "B"}
    assert (toggle.obs[Key.obs.celltype] == "progenitor").any()
    assert truth["network"].values.tolist() == [["B", "A", -1], ["A", "B", -1]]
    assert truth["fate_patterns"].loc["A"].tolist() == [1, 0]


def test_anndata_layout_and_counts(toggle):
    ad = toggle
    assert ad.shape == (200, 17)
    assert ad.var[Key.var.regulator].tolist() == [True, True] + [False] * 15
    X = ad.X.toarray()
    assert (X >= 0).all()
    assert np.array_equal(X, np.round(X))
    assert (X.sum(1) > 0).mean() > 0.95
    assert np.array_equal(X, ad.layers[Key.layers.counts].toarray())
    assert isinstance(ad.obs[Key.obs.celltype].dtype, pd.CategoricalDtype)
    assert ad.obs[Key.obs.sim_time].between(0, 20).all()
    assert ad.obs[Key.obs.trajectory].nunique() == 60
    # targets follow their regulators: a target activated only by A correlates with A's state
    truth = ad.uns[Key.uns.truth]
    tn = truth["target_network"]
    single = tn.groupby("target").filter(lambda d: len(d) == 1)
    row = single.iloc[0]
    a = truth["state"][:, list(truth["regulators"]).index(row["source"])]
    r = np.corrcoef(a, X[:, list(ad.var_names).index(row["target"])])[0, 1]
    assert r * row["sign"] > 0.3


def test_committed_cells_sit_in_their_attractor(toggle):
    truth = toggle.uns[Key.uns.truth]
    state = truth["state"]
    ct = toggle.obs[Key.obs.celltype].to_numpy()
    assert (state[ct == "A", 0] > state[ct == "A", 1]).mean() > 0.95
    assert (state[ct == "B", 1] > state[ct == "B", 0]).mean() > 0.95


def test_true_velocity_is_the_field_at_the_state(toggle):
    truth = toggle.uns[Key.uns.truth]
    f = field_from_truth(truth)
    v = f(0.0, torch.as_tensor(truth["state"])).numpy()
    np.testing.assert_allclose(truth["velocity"], v, atol=1e-6)
    # and it is the soft-logic model: dA/dt = rate * ((1 - h(B)) - A)
    s = truth["state"].astype(np.float64)
    hb = s[:, 1] ** 4 / (0.5**4 + s[:, 1] ** 4)
    np.testing.assert_allclose(truth["velocity"][:, 0], (1 - hb) - s[:, 0], atol=1e-5)


def test_same_seed_same_data_other_seed_differs():
    kw = dict(n_cells=80, n_targets=5, initial={"A": 1.0, "B": 1.0}, **SMALL)
    a = simulate(TOGGLE, seed=3, **kw)
    b = simulate(TOGGLE, seed=3, **kw)
    c = simulate(TOGGLE, seed=4, **kw)
    assert np.array_equal(a.X.toarray(), b.X.toarray())
    assert a.obs.equals(b.obs)
    assert np.array_equal(a.uns["gcl_truth"]["state"], b.uns["gcl_truth"]["state"])
    assert not np.array_equal(a.X.toarray(), c.X.toarray())


def test_truth_round_trips_through_h5ad(toggle, tmp_path):
    import anndata as ad

    path = tmp_path / "toggle.h5ad"
    toggle.write_h5ad(path)
    back = ad.read_h5ad(path)
    t0, t1 = toggle.uns[Key.uns.truth], back.uns[Key.uns.truth]
    assert set(t0) == set(t1)
    for key, v in t0.items():
        if isinstance(v, pd.DataFrame):
            pd.testing.assert_frame_equal(v, t1[key], check_dtype=False, check_index_type=False)
        elif isinstance(v, np.ndarray):
            np.testing.assert_array_equal(v, t1[key])
        elif isinstance(v, dict):
            for k, x in v.items():
                assert np.all(np.asarray(x) == np.asarray(t1[key][k])), (key, k)
    assert back.obs[Key.obs.celltype].equals(toggle.obs[Key.obs.celltype])


def test_knockout_of_a_gene_without_targets_changes_nothing():
    # C is only read out: knocking it out cannot change the A/B decision
    net = "A = not B\nB = not A\nC = A"
    ad = simulate(
        net,
        n_cells=50,
        n_targets=3,
        seed=1,
        initial={"A": 1, "B": 1},
        fates={"Afate": "A", "Bfate": "B"},
        n_trajectories=200,
        n_knockout_trajectories=200,
        t_max=20.0,
        dt=0.1,
    )
    t = ad.uns["gcl_truth"]
    assert t["knockout_lost_fates"]["C"] == ""
    assert (
        abs(t["knockout_fate_fractions"].loc["C", "Afate"] - t["wt_fate_fractions"]["Afate"]) < 0.12
    )


def test_clamp_knockout_mode_and_novel_fates():
    # cascade S -> A -> B; clamping A loses the B-high end state and gives a novel S-only one
    ad = simulate(
        "S = True\nA = S\nB = A", n_cells=30, n_targets=2, seed=0, knockout="clamp", **SMALL
    )
    t = ad.uns["gcl_truth"]
    assert t["wt_fate_fractions"] == {"S+A+B": 1.0}
    assert t["knockout_lost_fates"]["A"] == "S+A+B"
    assert t["knockout_novel_fates"]["A"] == "novel:S"


@pytest.mark.parametrize(
    "name",
    [
        "dyn-bifurcating", "dyn-bifurcating-converging", "dyn-bifurcating-loop",
        "dyn-consecutive-bifurcating", "dyn-converging", "dyn-cycle", "dyn-linear",
        "dyn-linear-long", "dyn-trifurcating", "mCAD",
    ],
)  # fmt: skip
def test_boolode_models_simulate(shared_data, name):
    ad = simulate(
        shared_data / "boolean_models" / f"{name}.txt",
        n_cells=60,
        n_targets=5,
        seed=0,
        knockouts=False,
        n_trajectories=30,
        t_max=30.0,
        dt=0.1,
    )
    truth = ad.uns["gcl_truth"]
    assert ad.n_vars == len(truth["regulators"]) + 5
    assert np.isfinite(truth["velocity"]).all()
    assert abs(sum(truth["wt_fate_fractions"].values()) - 1.0) < 1e-9
    if name == "mCAD":  # every end state is one of the Boolean model's fixed points
        import json

        ref = json.loads((shared_data / "boolean_models" / "mCAD_ko_fixed_points.json").read_text())
        fixed = {frozenset(p) for p in ref["WT"]}
        pats = truth["fate_patterns"]
        for fate in truth["wt_fate_fractions"]:
            assert frozenset(pats.columns[pats.loc[fate].to_numpy() == 1]) in fixed


def test_bad_inputs_give_clear_errors():
    with pytest.raises(GclError, match="n_cells must be a positive integer"):
        simulate(TOGGLE, n_cells=0)
    with pytest.raises(GclFormatError, match="uses gene 'Q'"):
        simulate("A = not Q\nB = A", n_cells=10)
    with pytest.raises(GclFormatError, match="unexpected end of rule"):
        simulate("A = not\nB = A", n_cells=10)
    with pytest.raises(GclError, match="initial names unknown genes"):
        simulate(TOGGLE, n_cells=10, initial={"Z": 1})
    with pytest.raises(GclError, match="condition of fate 'x' uses unknown genes"):
        simulate(TOGGLE, n_cells=10, fates={"x": "A and Z"})
    with pytest.raises(GclError, match="knockout must be"):
        simulate(TOGGLE, n_cells=10, knockout="delete")


def test_rate_jitter_scales_production_and_decay_per_trajectory_and_gene():
    # constitutive genes: dx/dt = r * (1 - x), so velocity / (1 - x) is the cell's rate
    net = "A = True\nB = True"
    kw = {"n_cells": 300, "n_targets": 3, "knockouts": False, "noise": 0.0, "seed": 2, **SMALL}
    plain = simulate(net, **kw)
    ad = simulate(net, rate_jitter=0.5, **kw)
    t0, t1 = plain.uns[Key.uns.truth], ad.uns[Key.uns.truth]
    assert set(t0) == set(t1)
    assert ad.shape == plain.shape
    assert t1["state"].shape == t0["state"].shape
    assert t1["params"]["rate_jitter"] == 0.5
    assert t0["params"]["rate_jitter"] == 0.0
    assert not np.allclose(t1["state"], t0["state"])
    x, v = t1["state"].astype(np.float64), t1["velocity"].astype(np.float64)
    ok = (1.0 - x).min(axis=1) > 0.05
    rate = v[ok] / (1.0 - x[ok])
    traj = ad.obs[Key.obs.trajectory].to_numpy()[ok]
    per_traj = pd.DataFrame(rate, columns=["A", "B"]).groupby(traj)
    # one rate per trajectory and gene: the cells of a trajectory agree ...
    assert float(per_traj.std().max().max()) < 1e-3
    # ... the genes of a trajectory do not, and the log-rates spread as sigma = 0.5
    mean = per_traj.mean()
    assert (np.abs(mean["A"] - mean["B"]) > 1e-3).mean() > 0.9
    assert 0.35 < float(np.log(mean.to_numpy()).std()) < 0.65
    # without jitter every cell has rate 1
    x0, v0 = t0["state"].astype(np.float64), t0["velocity"].astype(np.float64)
    keep = (1.0 - x0).min(axis=1) > 0.05
    np.testing.assert_allclose(v0[keep] / (1.0 - x0[keep]), 1.0, rtol=1e-4)


def test_rate_jitter_keeps_the_toggle_switch_branching():
    ad = simulate(
        TOGGLE, n_cells=200, n_targets=5, initial={"A": 1.0, "B": 1.0}, rate_jitter=0.3, **SMALL
    )
    truth = ad.uns[Key.uns.truth]
    assert set(truth["wt_fate_fractions"]) == {"A", "B"}
    assert truth["knockout_lost_fates"] == {"A": "A", "B": "B"}


def test_lower_capture_gives_more_zeros():
    kw = {"n_cells": 300, "n_targets": 30, "knockouts": False, "seed": 4, **SMALL}
    full = simulate(TOGGLE, **kw)
    low = simulate(TOGGLE, capture=0.3, **kw)
    # the cells are the same; only the counts thin out
    np.testing.assert_array_equal(low.uns[Key.uns.truth]["state"], full.uns[Key.uns.truth]["state"])
    zeros = [float((a.X.toarray() == 0).mean()) for a in (full, low)]
    assert zeros[1] > zeros[0] + 0.1
    ratio = float(low.X.sum() / full.X.sum())
    assert 0.27 < ratio < 0.33
    assert low.uns[Key.uns.truth]["params"]["capture"] == 0.3


def test_per_gene_hill_coefficients_mixed():
    ad = simulate(
        TOGGLE, n_cells=100, n_targets=0, knockouts=False, hill={"*": 4.0, "A": 1.5}, **SMALL
    )
    truth = ad.uns[Key.uns.truth]
    assert truth["params"]["hill"].tolist() == [1.5, 4.0]
    field = field_from_truth(truth)
    state = torch.as_tensor(truth["state"])
    with torch.no_grad():
        np.testing.assert_allclose(field(0.0, state).numpy(), truth["velocity"], atol=1e-5)


def test_bad_jitter_and_capture_give_clear_errors():
    with pytest.raises(GclError, match="rate_jitter must be a non-negative number"):
        simulate(TOGGLE, n_cells=10, rate_jitter=-0.1)
    with pytest.raises(GclError, match="capture must be a positive number"):
        simulate(TOGGLE, n_cells=10, capture=0.0)
