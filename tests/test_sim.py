"""gcl.sim: perturb, screen (local, Dask, checkpoints), mutational_scan, epistasis."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import gclandscape as gcl
from gclandscape._errors import GclError
from gclandscape._keys import Key
from gclandscape.sim import _screen


def _with_genome(genome, x, labels=None, groupby="celltype"):
    adata = ad.AnnData(np.asarray(x, dtype=np.float64))
    adata.var_names = genome.genes
    if labels is not None:
        adata.obs[groupby] = pd.Categorical(labels)
    genome.write_to_adata(adata)
    gcl.landscape.fit_landscape(adata, groupby=groupby if labels is not None else None)
    return adata


@pytest.fixture(scope="module")
def toggle():
    """Toggle switch A ⊣ B, B ⊣ A; cells scattered over the square, labelled by the winner."""
    genome = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
    x = np.random.default_rng(0).uniform(0, 1, (300, 2))
    return _with_genome(genome, x, np.where(x[:, 0] > x[:, 1], "A-high", "B-high"))


@pytest.fixture(scope="module")
def redundant():
    """E = A OR B (either suffices); E activates C; C and D repress each other. From
    undecided states (C + D = 1) cells split between C-high and D-high while E is on, and all
    go to D-high once both A and B are knocked out."""
    genes = ["A", "B", "E", "C", "D"]
    W = np.zeros((5, 5))
    W[0, 0] = W[1, 1] = 10.0  # A and B sustain themselves
    W[2, 0] = W[2, 1] = 10.0  # E = sigmoid(10 A + 10 B - 5): on with either input
    W[3, 2] = 10.0  # E -> C
    W[3, 4], W[4, 3] = -10.0, -10.0
    genome = gcl.landscape.Genome(genes, W, b=[-5.0, -5.0, -5.0, -6.0, 4.0])
    gen = np.random.default_rng(1)
    c = gen.uniform(0, 1, 300)
    x = np.column_stack([np.ones(300), np.ones(300), np.ones(300), c, 1 - c])
    return _with_genome(genome, x, np.where(c > 0.5, "C-high", "D-high"))


# ------------------------------------------------------------------------------ perturb
def test_knockout_loses_its_fate_with_statistics(toggle):
    res = gcl.sim.perturb(toggle, gcl.sim.Knockout("A"), n_cells=300, n_null=2)
    f = res.fates
    assert list(f.columns) == [
        "wt", "perturbed", "delta", "ci_low", "ci_high", "p_value", "p_lost"
    ]  # fmt: skip
    assert f["p_lost"].to_dict() == {"A-high": 1.0, "B-high": 0.0}  # one genome: 0 or 1
    assert res.lost_fates == ["A-high"]
    assert res.gained_fates == []
    assert f.loc["A-high", "perturbed"] == 0.0
    assert f.loc["B-high", "perturbed"] == 1.0
    wt_a = f.loc["A-high", "wt"]
    assert 0.2 < wt_a < 0.8  # the wild type reaches both fates from the earlier cells
    assert f.loc["A-high", "ci_low"] <= -wt_a <= f.loc["A-high", "ci_high"]
    assert f.loc["A-high", "p_value"] < 1e-6
    np.testing.assert_allclose(f["wt"].sum(), 1.0)
    np.testing.assert_allclose(f["delta"], f["perturbed"] - f["wt"])
    assert res.expression.loc["A", "log2fc"] < -3
    assert res.expression.loc["B", "log2fc"] > 0
    assert res.score == pytest.approx(wt_a)
    # trajectories on the landscape's basis, one snapshot per saved time
    assert res.trajectories["wt"].shape == (len(res.times), 50, 2)
    assert "A-high" in repr(res)


def test_common_random_numbers_and_seed(toggle):
    a = gcl.sim.perturb(toggle, gcl.sim.Knockdown("A", 1.0), n_cells=200, n_null=0)
    # a knockdown by a factor 1 changes nothing: with common random numbers, exactly nothing
    assert (a.fates["delta"] == 0).all()
    assert a.score == 0.0
    b = gcl.sim.perturb(toggle, gcl.sim.Knockout("A"), n_cells=200, n_null=0, seed=3)
    c = gcl.sim.perturb(toggle, gcl.sim.Knockout("A"), n_cells=200, n_null=0, seed=3)
    pd.testing.assert_frame_equal(b.fates, c.fates)


def test_overexpression_and_edge_mutation(toggle):
    oe = gcl.sim.perturb(toggle, gcl.sim.Overexpression("B"), n_cells=200, n_null=0)
    assert oe.lost_fates == ["A-high"]
    assert oe.expression.loc["B", "perturbed"] == pytest.approx(2.0, rel=1e-3)  # 2 × x_max
    # removing the repression A ⊣ B: both genes can be high -> B-high wins or novel states
    cut = gcl.sim.perturb(toggle, gcl.sim.EdgeMutation("A", "B", 0.0), n_cells=200, n_null=0)
    assert cut.fates.loc["A-high", "perturbed"] < cut.fates.loc["A-high", "wt"]


def test_score_null(toggle):
    res = gcl.sim.perturb(toggle, gcl.sim.Knockout("A"), n_cells=100, n_null=5)
    # single knockouts of a 2-gene genome: the null holds the two distinct knockouts
    assert len(res.null_scores) == 2
    assert res.score_pvalue == pytest.approx((1 + np.sum(res.null_scores >= res.score)) / 3)


def test_null_simulated_only_when_read(toggle, monkeypatch):
    """perturb defers the null: reading log2fc, the fates or the repr simulates nothing more;
    the first read of the p-value simulates it once, with the values of an eager null."""
    import gclandscape.sim._perturb as perturb_module
    from gclandscape.sim._statistics import null_scores as real

    calls = []
    monkeypatch.setattr(perturb_module, "null_scores", lambda *a: calls.append(a) or real(*a))
    res = gcl.sim.perturb(toggle, gcl.sim.Knockout("A"), n_cells=100, n_null=5, seed=2)
    _ = res.log2fc, res.fates, repr(res)
    assert calls == []
    assert "p =" not in repr(res)
    assert res.params["n_null"] == 5
    p = res.score_pvalue
    assert len(calls) == 1
    assert "p =" in repr(res)
    _ = res.null_scores, res.to_frame()
    assert len(calls) == 1  # computed once
    setup = calls[0][0]
    eager = real(setup, gcl.sim.Knockout("A"), 5, 2)
    np.testing.assert_array_equal(res.null_scores, eager)
    assert p == pytest.approx((1 + np.sum(eager >= res.score)) / (1 + len(eager)))


def test_root_group_and_errors(toggle):
    res = gcl.sim.perturb(toggle, gcl.sim.Knockout("A"), root="B-high", n_cells=100, n_null=0)
    assert res.fates.loc["B-high", "wt"] == 1.0  # started inside the B basin
    with pytest.raises(GclError, match="Available: A-high, B-high"):
        gcl.sim.perturb(toggle, gcl.sim.Knockout("A"), root="nope")
    with pytest.raises(GclError, match="did you mean 'A'"):
        gcl.sim.perturb(toggle, gcl.sim.Knockout("a"))
    with pytest.raises(GclError, match="at least 10"):
        gcl.sim.perturb(toggle, gcl.sim.Knockout("A"), n_cells=5)
    with pytest.raises(GclError, match="non-negative"):
        gcl.sim.Overexpression("A", level=-1.0)
    with pytest.raises(GclError, match="perturbation must be"):
        gcl.sim.perturb(toggle, "A")
    with pytest.raises(GclError, match="at least 10 observed cells"):
        gcl.sim.perturb(toggle[:5].copy(), gcl.sim.Knockout("A"))
    no_land = toggle.copy()
    del no_land.uns[Key.uns.landscape]
    with pytest.raises(GclError, match="fit_landscape"):
        gcl.sim.perturb(no_land, gcl.sim.Knockout("A"))
    with pytest.raises(GclError, match="fit_grn"):
        gcl.sim.perturb(ad.AnnData(np.zeros((20, 2))), gcl.sim.Knockout("A"))


def test_start_cells_are_the_earliest_three_quarters_of_the_root_group():
    from gclandscape.sim._simulation import root_cells as _root_cells

    rng = np.random.default_rng(0)
    obs = pd.DataFrame({"g": ["p"] * 40 + ["q"] * 40, "t": rng.permutation(80).astype(float)})
    adata = ad.AnnData(np.zeros((80, 1)), obs=obs)
    idx, info = _root_cells(adata, "p", "g", "t")
    root_t = obs["t"].to_numpy()[:40]
    np.testing.assert_array_equal(np.sort(idx), np.sort(np.argsort(root_t)[:30]))
    assert "30 earliest cells by t of g == 'p'" in info
    idx, _ = _root_cells(adata, None, None, "t")  # no root group: the earliest half of all
    np.testing.assert_array_equal(np.sort(idx), np.sort(np.argsort(obs["t"].to_numpy())[:40]))
    idx, _ = _root_cells(adata, "q", "g", None)  # no time column: every cell of the group
    np.testing.assert_array_equal(idx, np.arange(40, 80))


def test_perturb_leaves_adata_untouched(toggle):
    before = toggle.copy()
    gcl.sim.perturb(toggle, gcl.sim.Knockout("A"), n_cells=50, n_null=0)
    assert set(toggle.uns) == set(before.uns)
    assert set(toggle.obs) == set(before.obs)
    np.testing.assert_array_equal(toggle.X, before.X)


@pytest.mark.slow
def test_myeloid_gata1_knockout(myeloid_fitted):
    adata, _ = myeloid_fitted
    res = gcl.sim.perturb(adata, gcl.sim.Knockout("Gata1"), root="progenitor", n_null=0)
    # the wild type reaches all four fates from the progenitors
    assert (res.fates.loc[["Ery", "Mk", "Gran", "Mono"], "wt"] > 0.1).all()
    assert "Ery" in res.lost_fates
    assert res.expression.loc["Gata1", "log2fc"] < -2


@pytest.mark.slow
def test_decoded_cells_over_all_genes(myeloid_fitted):
    adata = myeloid_fitted[0].copy()
    model = gcl.latent.fit(
        adata, max_epochs=3, seed=0, accelerator="cpu", train_kwargs={"enable_progress_bar": False}
    )
    res = gcl.sim.perturb(
        adata, gcl.sim.Knockout("Gata1"), root="progenitor", n_cells=200, n_null=0, model=model
    )
    dec = res.decoded
    assert dec.n_vars == adata.n_vars
    assert dec.n_obs == 400
    assert dec.obs["condition"].value_counts().to_dict() == {"wt": 200, "perturbed": 200}
    # log2fc over all genes: the genome's genes from the simulation, the rest decoded
    assert res.log2fc.index.equals(adata.var_names)
    assert res.log2fc["Gata1"] == pytest.approx(res.expression.loc["Gata1", "log2fc"])
    assert np.isfinite(res.log2fc).all()
    import scanpy as sc

    sc.tl.rank_genes_groups(dec, "condition", reference="wt", method="wilcoxon")
    top = sc.get.rank_genes_groups_df(dec, "perturbed")
    assert len(top) == adata.n_vars
    plain = gcl.sim.perturb(adata, gcl.sim.Knockout("Gata1"), n_cells=50, n_null=0)
    assert plain.decoded is None
    # without a model the other genes come from the genome's readout, in the data's order
    assert plain.log2fc.index.equals(adata.var_names)
    assert plain.params["log2fc_other_genes"] == "readout"


# ------------------------------------------------------------------------------ steady state
@pytest.fixture(scope="module")
def steady():
    """A cascade A → B ⊣ C around one fixed point, fitted without a time signal."""
    edges = pd.DataFrame(
        {"source": ["A", "B", "C", "A"], "target": ["B", "C", "D", "D"], "sign": [1, -1, 1, 1]}
    )
    adata = gcl.datasets.simulate(edges, n_cells=1500, n_targets=20, seed=0, knockouts=False)
    adata = adata[adata.obs[Key.obs.sim_time] > adata.obs[Key.obs.sim_time].median()].copy()
    del adata.obs[Key.obs.sim_time]
    gcl.pp.recipe(adata, n_top_genes=100)
    gcl.landscape.fit_grn(adata, genes=["A", "B", "C", "D"], n_bootstrap=0)
    return adata


def test_steady_state_genome_gives_shifted_steady_state(steady):
    res = gcl.sim.perturb(steady, gcl.sim.Knockout("A"), n_cells=200, n_null=3)
    assert res.fates.empty
    assert res.lost_fates == []
    assert list(res.fates.columns)[:2] == ["wt", "perturbed"]
    assert res.expression.loc["A", "log2fc"] < -2  # production removed
    # every gene of the data: the four regulators simulated, the others read out from them
    assert res.log2fc.index.tolist() == steady.var_names.tolist()
    assert res.params["log2fc_other_genes"] == "readout"
    assert res.trajectories == {}
    table = gcl.sim.screen(steady, "knockouts", n_cells=100, n_null=0, progress=False)
    assert list(table.columns) == _screen.STEADY_COLUMNS
    assert len(table) == 16
    ko = table[table["perturbation"] == "A KO"].set_index("gene")
    assert ko.loc["A", "log2fc"] < -2
    with pytest.raises(GclError, match="steady-state"):
        gcl.sim.mutational_scan(steady, n_mutations=2)


def test_steady_state_steps_are_larger_and_settle_alike(steady, monkeypatch):
    """A steady-state genome develops in steps of up to 8 × DT (1 - dt * rho >= 0): its cells
    settle where they settle at the developmental step."""
    from gclandscape.sim import _simulation

    big = gcl.sim.perturb(steady, gcl.sim.Knockout("B"), n_cells=300, n_null=0)
    monkeypatch.setattr(_simulation, "STEADY_DT_MAX", _simulation.DT)
    small = gcl.sim.perturb(steady, gcl.sim.Knockout("B"), n_cells=300, n_null=0)
    assert small.params["dt"] == _simulation.DT
    assert big.params["dt"] > 2 * small.params["dt"]
    genome = gcl.landscape.Genome.from_adata(steady)
    x = _simulation.build_setup(steady, genome_key=Key.uns.genome, landscape_key="none",
                                root=None).starts  # fmt: skip
    import torch

    jac = genome.field().jacobian(torch.as_tensor(x[:32], dtype=torch.float32)).double()
    rho = np.abs(np.linalg.eigvals(jac.numpy()))
    assert big.params["dt"] * rho.max() <= 1.0 + 1e-6
    for res in (big, small):
        assert res.expression.loc["B", "perturbed"] < 0.05  # production removed
    diff = (big.expression - small.expression)[["wt", "perturbed"]].abs().to_numpy()
    assert diff.max() < 0.02, diff
    np.testing.assert_allclose(big.log2fc.to_numpy(), small.log2fc.to_numpy(), atol=0.1)


# ------------------------------------------------------------------------------ screen
def test_screen_rows_match_perturb(toggle):
    table = gcl.sim.screen(toggle, "knockouts", n_cells=200, n_null=3, progress=False)
    assert list(table.columns) == _screen.FATE_COLUMNS
    assert table["perturbation"].unique().tolist() == ["A KO", "B KO"]
    one = gcl.sim.perturb(toggle, gcl.sim.Knockout("B"), n_cells=200, n_null=3).to_frame()
    mine = table[table["perturbation"] == "B KO"].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine.drop(columns="q_value"), _screen._normalise(one, False))
    # q_value: Benjamini-Hochberg over every row, p * m / rank with a running minimum from
    # the largest p down
    p = table["p_value"].to_numpy()
    order = np.argsort(p)
    bh = np.minimum.accumulate((p[order] * len(p) / np.arange(1, len(p) + 1))[::-1])[::-1]
    expected = np.empty_like(p)
    expected[order] = np.minimum(bh, 1.0)
    np.testing.assert_allclose(table["q_value"], expected)
    assert (table["q_value"] >= table["p_value"]).all()
    oe = gcl.sim.screen(toggle, "overexpression", n_cells=100, n_null=0, progress=False)
    assert oe.loc[oe["lost"], "fate"].tolist() == ["B-high", "A-high"]


def test_screen_bad_input(toggle):
    with pytest.raises(GclError, match="unknown screen"):
        gcl.sim.screen(toggle, "knockins")
    with pytest.raises(GclError, match="listed twice"):
        gcl.sim.screen(toggle, [gcl.sim.Knockout("A"), gcl.sim.Knockout("A")])
    with pytest.raises(GclError, match="backend"):
        gcl.sim.screen(toggle, "knockouts", backend="spark")
    with pytest.raises(GclError, match="not in the genome"):
        gcl.sim.screen(toggle, [gcl.sim.Knockout("Z")])


def _failing_after(monkeypatch, n_ok):
    real = _screen._screen_one
    calls = {"n": 0}

    def flaky(setup, wt, p, *args):
        calls["n"] += 1
        if calls["n"] > n_ok:
            raise RuntimeError("worker lost")
        return real(setup, wt, p, *args)

    monkeypatch.setattr(_screen, "_screen_one", flaky)
    return calls


PERTS = [
    gcl.sim.Knockout("A"),
    gcl.sim.Knockout("B"),
    gcl.sim.Knockdown("A", 0.5),
    gcl.sim.Overexpression("A"),
    gcl.sim.EdgeMutation("A", "B", 0.0),
]


def test_screen_resumes_from_checkpoint_local(toggle, tmp_path, monkeypatch):
    kw = {"n_cells": 100, "n_null": 2, "progress": False, "seed": 4}
    full = gcl.sim.screen(toggle, PERTS, **kw)
    _failing_after(monkeypatch, 2)
    with pytest.raises(RuntimeError, match="worker lost"):
        gcl.sim.screen(toggle, PERTS, checkpoint=tmp_path, **kw)
    assert len(list(tmp_path.glob("*.parquet"))) == 2
    monkeypatch.undo()
    calls = _failing_after(monkeypatch, 100)
    resumed = gcl.sim.screen(toggle, PERTS, checkpoint=tmp_path, **kw)
    assert calls["n"] == 3  # only the three unfinished perturbations ran again
    pd.testing.assert_frame_equal(resumed, full)
    # another seed does not reuse this checkpoint
    calls["n"] = 0
    gcl.sim.screen(toggle, PERTS[:1], checkpoint=tmp_path, **{**kw, "seed": 5})
    assert calls["n"] == 1


@pytest.mark.slow
def test_screen_dask_resumes_and_matches_local(toggle, tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    kw = {"n_cells": 100, "n_null": 2, "progress": False}
    local = gcl.sim.screen(toggle, PERTS, **kw)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1) as client:
        real = _screen._screen_one

        def fail_oe(setup, wt, p, *args):
            if "OE" in p.name:
                raise RuntimeError("task failed")
            return real(setup, wt, p, *args)

        monkeypatch.setattr(_screen, "_screen_one", fail_oe)
        with pytest.raises(GclError, match="A OE failed on the cluster"):
            gcl.sim.screen(toggle, PERTS, backend="dask", client=client, checkpoint=tmp_path, **kw)
        assert len(list(tmp_path.glob("*.parquet"))) == 4  # everything else was saved
        monkeypatch.undo()
        resumed = gcl.sim.screen(
            toggle, PERTS, backend="dask", client=client, checkpoint=tmp_path, **kw
        )
    pd.testing.assert_frame_equal(resumed, local)


# ------------------------------------------------------------------------------ analyses
def test_mutational_scan_toggle(toggle):
    scan = gcl.sim.mutational_scan(toggle, n_mutations=6, n_cells=200, progress=False)
    t = scan.table
    assert t["kind"].tolist().count("edge_loss") == 2  # the toggle has two edges
    assert len(t) == 5
    # losing either repression destroys the bistable switch: not robust
    assert not t.loc[t["kind"] == "edge_loss", "robust"].any()
    assert set(map(tuple, scan.pleiotropy[["source", "target"]].values)) == {("A", "B"), ("B", "A")}
    assert (scan.pleiotropy["n_fates"] >= 1).all()
    assert scan.robustness == pytest.approx(t["robust"].mean())
    assert 0.0 <= scan.evolvability <= 1.0
    np.testing.assert_allclose(scan.wt.sum(), 1.0)
    with pytest.raises(GclError, match="kinds"):
        gcl.sim.mutational_scan(toggle, kinds=["deletion"])


def test_mutational_scan_weight_noise(toggle):
    # ±25 % weight noise moves the toggle's separatrix (the fate split) but creates no new
    # attractor; a mutant is robust exactly when no fate moves by more than 0.05
    scan = gcl.sim.mutational_scan(
        toggle, n_mutations=6, kinds=["weight_noise"], n_cells=200, progress=False
    )
    t = scan.table
    assert len(t) == 6
    assert not t["novel"].any()
    moved = t[["A-high", "B-high"]].abs().max(axis=1)
    assert (t["robust"] == (moved <= 0.05)).all()
    assert t["max_abs_delta"].max() > 0.05
    assert scan.pleiotropy.empty  # pleiotropy comes from edge-loss mutants only


def test_epistasis_redundant_activators(redundant):
    pairs = gcl.sim.epistasis(redundant, ["A", "B"], n_cells=200)
    row = pairs.set_index("fate").loc["C-high"]
    # either activator alone suffices: singles do nothing, the double knockout loses C-high
    assert abs(row["delta_a"]) < 0.05
    assert abs(row["delta_b"]) < 0.05
    assert row["delta_ab"] < -0.3
    assert row["epistasis"] == pytest.approx(row["delta_ab"] - row["delta_a"] - row["delta_b"])
    assert row["epistasis"] < -0.3
    with pytest.raises(GclError, match="two distinct genes"):
        gcl.sim.epistasis(redundant, ["A", "A"])
