"""gcl.landscape.fit_landscape and Landscape: known answers, storage, energy, bad input."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from scipy.special import expit

import gclandscape as gcl
from gclandscape._errors import GclDivergenceError, GclError
from gclandscape._keys import Key
from gclandscape.landscape._attractors import _attractor_analysis, _labels

W_TOGGLE = [[0.0, -10.0], [-10.0, 0.0]]


def _toggle_fixed_points(b_a: float, b_b: float) -> np.ndarray:
    """Fixed points of x' = s(b_a - 10 y) - x, y' = s(b_b - 10 x) - y, by brentq on the 1-D
    reduction x = s(b_a - 10 s(b_b - 10 x)); rows sorted by x."""

    def g(x: float) -> float:
        return x - expit(b_a - 10.0 * expit(b_b - 10.0 * x))

    grid = np.linspace(0.0, 1.0, 20000)  # 0.5 (the symmetric saddle) falls between points
    vals = np.array([g(x) for x in grid])
    roots = [
        brentq(g, grid[i], grid[i + 1], xtol=1e-14)
        for i in np.flatnonzero(np.sign(vals[:-1]) != np.sign(vals[1:]))
    ]
    return np.array([[x, expit(b_b - 10.0 * x)] for x in roots])


def _toggle_adata(b, n: int = 150, seed: int = 0) -> ad.AnnData:
    """Cells scattered around both attractors of the toggle switch (states in .X)."""
    genome = gcl.landscape.Genome(["A", "B"], W_TOGGLE, b=b)
    fp = _toggle_fixed_points(*np.broadcast_to(np.asarray(b, float), 2))
    gen = np.random.default_rng(seed)
    hi_a, hi_b = fp[-1], fp[0]
    # n cells around each attractor and n // 5 mirrored pairs between them (progenitors)
    m = n // 5
    mid = 0.5 + np.column_stack([gen.uniform(0.02, 0.3, m), np.zeros(m)])
    mid[:, 1] = 1.0 - mid[:, 0] + 0.05 * gen.standard_normal(m)
    x = np.concatenate(
        [hi_a + 0.08 * gen.standard_normal((n, 2)), hi_b + 0.08 * gen.standard_normal((n, 2))]
    )
    x = np.concatenate([np.clip(x, 0.0, 1.0), mid, mid[:, ::-1]])
    adata = ad.AnnData(x)
    adata.var_names = ["A", "B"]
    labels = ["A-high"] * n + ["B-high"] * n
    labels += ["A-high" if a > b else "B-high" for a, b in np.concatenate([mid, mid[:, ::-1]])]
    adata.obs["celltype"] = pd.Categorical(labels)
    genome.write_to_adata(adata)
    return adata


@pytest.fixture(scope="module")
def toggle():
    adata = _toggle_adata(5.0)
    land = gcl.landscape.fit_landscape(adata, groupby="celltype")
    return adata, land


def test_toggle_fixed_points_match_analytic(toggle):
    adata, land = toggle
    ref = _toggle_fixed_points(5.0, 5.0)
    assert len(ref) == 3
    att = land.attractors.set_index("label")
    assert sorted(att.index) == ["A-high", "B-high"]
    assert att["stable"].all()
    np.testing.assert_allclose(att.loc["A-high", ["A", "B"]].to_numpy(float), ref[2], atol=1e-4)
    np.testing.assert_allclose(att.loc["B-high", ["A", "B"]].to_numpy(float), ref[0], atol=1e-4)
    assert land.saddles["type"].tolist() == ["saddle"]
    assert land.saddles["index"].tolist() == [1]
    np.testing.assert_allclose(land.saddles[["A", "B"]].to_numpy(float)[0], ref[1], atol=1e-4)
    # every cell sits in the basin of its own side; halves of the cells each
    assert (adata.obs[Key.basin("gcl_landscape")].astype(str) == adata.obs["celltype"]).all()
    np.testing.assert_allclose(att["basin_fraction"], [0.5, 0.5])
    np.testing.assert_allclose(att["purity"], [1.0, 1.0])


def test_toggle_symmetric_barriers(toggle):
    _, land = toggle
    assert len(land.paths) == 1
    row = land.paths.iloc[0]
    assert {row["from"], row["to"]} == {"A-high", "B-high"}
    assert row["saddle"] == 0
    assert bool(row["converged"])
    assert row["barrier_forward"] > 0
    assert row["barrier_forward"] == pytest.approx(row["barrier_backward"], rel=1e-3)
    n_points = land.path_states.shape[1]
    assert land.path_states.shape == (1, n_points, 2)
    assert land.path_basis.shape == (1, n_points, 2)
    # the forward path runs from its source attractor over the saddle to its target
    src = land.attractors.loc[row["source"], ["A", "B"]].to_numpy(float)
    tgt = land.attractors.loc[row["target"], ["A", "B"]].to_numpy(float)
    np.testing.assert_allclose(land.path_states[0, 0], src, atol=1e-6)
    np.testing.assert_allclose(land.path_states[0, -1], tgt, atol=1e-3)
    np.testing.assert_allclose(land.path_states_reverse[0, 0], tgt, atol=1e-6)


def test_toggle_asymmetric_moves_as_analytic():
    b = [5.6, 5.0]  # A's production favoured
    adata = _toggle_adata(b)
    land = gcl.landscape.fit_landscape(adata, groupby="celltype")
    ref = _toggle_fixed_points(*b)
    sym = _toggle_fixed_points(5.0, 5.0)
    att = land.attractors.set_index("label")
    np.testing.assert_allclose(att.loc["A-high", ["A", "B"]].to_numpy(float), ref[2], atol=1e-4)
    np.testing.assert_allclose(att.loc["B-high", ["A", "B"]].to_numpy(float), ref[0], atol=1e-4)
    np.testing.assert_allclose(land.saddles[["A", "B"]].to_numpy(float)[0], ref[1], atol=1e-4)
    # the analytic solution: A rises in both attractors, the saddle moves towards B-high
    assert ref[2, 0] > sym[2, 0]
    assert ref[0, 0] > sym[0, 0]
    assert ref[1, 0] < sym[1, 0]
    # the favoured A-high valley is deeper: leaving it costs more than leaving B-high
    row = land.paths.iloc[0]
    out_of_a = row["barrier_forward"] if row["from"] == "A-high" else row["barrier_backward"]
    out_of_b = row["barrier_backward"] if row["from"] == "A-high" else row["barrier_forward"]
    assert out_of_a > 1.2 * out_of_b


def test_energy_surfaces(toggle):
    adata, land = toggle
    g = land.grid
    assert g["x"].shape == (60,)
    assert g["y"].shape == (60,)
    assert g["U"].shape == (60, 60)
    assert g["U_empirical"].shape == (60, 60)
    for k in ("U", "U_empirical"):
        assert np.isfinite(g[k]).all()
        assert g[k].min() == 0.0
    # valleys at the attractors, a ridge at the saddle
    assert land.attractors["energy"].max() < land.saddles["energy"].min()
    energy = adata.obs[Key.energy("gcl_landscape")].to_numpy()
    assert np.isfinite(energy).all()
    x = adata.X
    near = np.abs(x - land.attractors[["A", "B"]].to_numpy()[:, None, :]).max(2).min(0) < 0.05
    mid = np.abs(x - 0.5).max(1) < 0.2
    assert mid.any()
    assert near.any()
    assert np.median(energy[near]) < np.median(energy[mid])
    assert land.basis == "pca:regulators"
    assert land.params["basis_method"] == "linear"
    assert land.coords.shape == (adata.n_obs, 2)


def test_h5ad_round_trip_is_exact(toggle, tmp_path):
    adata, land = toggle
    path = tmp_path / "land.h5ad"
    gcl.io.write(adata, path)
    back = gcl.io.read(path)
    other = gcl.landscape.Landscape.from_adata(back)
    for name in ("attractors", "saddles", "paths"):
        pd.testing.assert_frame_equal(getattr(other, name), getattr(land, name), check_exact=True)
    for name in ("path_states", "path_states_reverse", "path_basis", "coords"):
        np.testing.assert_array_equal(getattr(other, name), getattr(land, name))
    assert other.grid.keys() == land.grid.keys()
    for k in land.grid:
        np.testing.assert_array_equal(other.grid[k], land.grid[k])
    assert other.basis == land.basis
    assert other.genes == land.genes
    assert other.params.keys() == land.params.keys()
    for k, v in land.params.items():
        np.testing.assert_array_equal(other.params[k], v)
    for col in (Key.basin("gcl_landscape"), Key.energy("gcl_landscape")):
        pd.testing.assert_series_equal(back.obs[col], adata.obs[col], check_exact=True)
    assert back.uns[Key.uns.landscape]["params"]["groupby"] == "celltype"


def test_single_attractor_round_trip(tmp_path):
    """No saddles and no paths: the empty tables and arrays survive the h5ad round trip."""
    gen = np.random.default_rng(1)
    adata = ad.AnnData(gen.uniform(0.0, 1.0, (60, 3)))
    adata.var_names = ["A", "B", "C"]
    genome = gcl.landscape.Genome(["A", "B", "C"], np.zeros((3, 3)), alpha=[1.0, 2.0, 0.5])
    genome.write_to_adata(adata)
    land = gcl.landscape.fit_landscape(adata)
    assert land.attractors["label"].tolist() == ["attractor_1"]
    np.testing.assert_allclose(land.attractors[["A", "B", "C"]].to_numpy()[0], [0.5, 1.0, 0.25])
    assert land.attractors["basin_fraction"].tolist() == [1.0]
    assert len(land.saddles) == 0
    assert len(land.paths) == 0
    assert land.path_states.shape[0] == 0
    gcl.io.write(adata, tmp_path / "one.h5ad")
    other = gcl.landscape.Landscape.from_adata(gcl.io.read(tmp_path / "one.h5ad"))
    for name in ("attractors", "saddles", "paths"):
        pd.testing.assert_frame_equal(getattr(other, name), getattr(land, name), check_exact=True)
    np.testing.assert_array_equal(other.path_states, land.path_states)


def test_overexpressed_genome_holds_the_gene():
    adata = _toggle_adata(5.0, n=40)
    genome = gcl.landscape.Genome(["A", "B"], W_TOGGLE, b=5.0)
    genome.mutate(gcl.sim.Overexpression("B", 1.0)).write_to_adata(adata)
    land = gcl.landscape.fit_landscape(adata, groupby="celltype")
    # B clamped high represses A: one attractor, B = 1, A = s(5 - 10)
    assert len(land.attractors) == 1
    np.testing.assert_allclose(
        land.attractors[["A", "B"]].to_numpy()[0], [expit(-5.0), 1.0], atol=1e-6
    )
    # every cell develops into it; half of them were labelled A-high
    assert land.attractors["basin_fraction"].tolist() == [1.0]
    assert land.attractors["purity"].tolist() == [0.5]


def test_nonlinear_basis_and_latent_basis():
    adata = _toggle_adata(5.0, n=80)
    x = adata.X
    adata.obsm["X_umap"] = np.column_stack([np.tanh(3 * (x[:, 0] - x[:, 1])), x.sum(1) ** 2])
    land = gcl.landscape.fit_landscape(adata, basis="X_umap", key_added="umap_land")
    assert land.basis == "X_umap"
    assert land.params["basis_method"] == "knn"
    np.testing.assert_array_equal(land.coords, adata.obsm["X_umap"])
    # the kNN map puts each attractor on the side of the embedding its cells are on
    side = land.attractors.set_index(land.attractors["A"] > land.attractors["B"])["basis_1"]
    assert side[True] > 0.5
    assert side[False] < -0.5
    assert "umap_land" in adata.uns
    assert Key.basin("umap_land") in adata.obs
    # no groupby: numbered labels, no purity
    assert land.attractors["label"].tolist() == ["attractor_1", "attractor_2"]
    assert land.attractors["purity"].isna().all()

    adata.obsm[Key.obsm.latent] = np.column_stack([x, x[:, :1] * 0.1, x[:, 1:] ** 2])
    land = gcl.landscape.fit_landscape(adata)
    assert land.basis == "pca:X_gcl"
    assert land.params["basis_method"] == "knn"


def test_labels_enrichment_purity_unique():
    # basin 0 holds Mk's only cell and 2 of 5 Ery cells: it is Mk's (enrichment, not majority)
    groups = pd.Series(["Ery", "Ery", "Mk", "Ery", "Ery", "Ery"])
    basin = np.array([0, 0, 0, 1, 1, 1])
    labels, purity = _labels(basin, 3, groups)
    assert labels == ["Mk", "Ery", "unobserved"]
    np.testing.assert_allclose(purity[:2], [1 / 3, 1.0])
    assert np.isnan(purity[2])
    # two basins of one group: suffixes keep the labels unique
    labels, _ = _labels(np.array([0, 0, 1, 1]), 2, pd.Series(["Ery"] * 4))
    assert labels == ["Ery", "Ery_2"]


def test_myeloid_true_network_attractors_are_the_fates(myeloid_default):
    """The true field behind gcl.datasets.myeloid() has stable attractors matching Ery, Mk,
    Gran and Mono, and the observed cells of each fate develop into them."""
    from gclandscape.datasets._myeloid import MYELOID_FATES
    from gclandscape.datasets._simulate import _FateNamer, _parse_fates, field_from_truth

    truth = myeloid_default.uns[Key.uns.truth]
    genes = [str(g) for g in truth["regulators"]]
    keep = np.random.default_rng(0).choice(myeloid_default.n_obs, 800, replace=False)
    states = np.asarray(truth["state"], dtype=np.float64)[keep]
    celltype = myeloid_default.obs["celltype"].iloc[keep].reset_index(drop=True)
    res = _attractor_analysis(
        field_from_truth(truth), states, genes=genes, groups=celltype, max_path_saddles=0
    )
    att = res["attractors"]
    namer = _FateNamer(genes, _parse_fates(MYELOID_FATES, genes))
    fate_of = {
        row["label"]: namer._by_condition(row[genes].to_numpy(float) > 0.5)
        for _, row in att.iterrows()
    }
    for fate in ("Ery", "Mk", "Gran", "Mono"):
        assert fate_of.get(fate) == fate, (fate, fate_of)
    # every differentiated cell lies in the basin of its own fate's attractor
    basin_label = np.asarray(res["labels"])[res["basin"]]
    done = celltype.to_numpy() != "progenitor"
    assert np.mean(basin_label[done] == celltype.to_numpy()[done]) > 0.98
    assert set(res["paths"].columns) >= {"from", "to", "barrier_forward", "barrier_backward"}


@pytest.mark.slow
def test_fitted_myeloid_genome_recovers_fates(myeloid_fitted):
    """Measured (seed 0): Ery 0.72, Mk 0.78, Gran 0.61, Mono 0.73 purity (progenitor cells
    in each basin are what lowers it; the differentiated cells all fall in their own
    fate's basin). The issue asks for >= 3 of 4 at 0.7, the goal is 4."""
    adata, land = myeloid_fitted
    att = land.attractors.set_index("label")
    fates = ["Ery", "Mk", "Gran", "Mono"]
    assert set(fates) <= set(att.index)
    assert sum(att.loc[f, "purity"] >= 0.7 for f in fates) >= 3
    assert (att.loc[fates, "purity"] >= 0.55).all()
    basin = adata.obs[Key.basin("gcl_landscape")].astype(str)
    done = adata.obs["celltype"].astype(str) != "progenitor"
    assert (basin[done] == adata.obs["celltype"].astype(str)[done]).mean() > 0.95
    assert land.params["states"] == "layers['gcl_drift_state']"


# ---------------------------------------------------------------------------------- bad input
def test_no_genome_names_fit_grn():
    adata = ad.AnnData(np.zeros((5, 2)))
    with pytest.raises(GclError, match="fit_grn"):
        gcl.landscape.fit_landscape(adata)


def test_missing_basis_lists_obsm_keys():
    adata = _toggle_adata(5.0, n=10)
    adata.obsm["X_pca"] = np.zeros((adata.n_obs, 2))
    with pytest.raises(GclError, match=r"X_tsne.*Available: X_pca"):
        gcl.landscape.fit_landscape(adata, basis="X_tsne")


def test_missing_groupby_lists_columns():
    adata = _toggle_adata(5.0, n=10)
    with pytest.raises(GclError, match=r"'cell_type'.*Available: celltype"):
        gcl.landscape.fit_landscape(adata, groupby="cell_type")


def test_genes_missing_from_adata():
    adata = _toggle_adata(5.0, n=10)
    gcl.landscape.Genome(["A", "C"], W_TOGGLE, b=5.0).write_to_adata(adata, "other")
    with pytest.raises(GclError, match="C"):
        gcl.landscape.fit_landscape(adata, genome_key="other")


def test_diverging_genome_names_the_step():
    # negative degradation: expression grows like exp(20 t), so the Euler steps overflow
    adata = _toggle_adata(5.0, n=10)
    genome = gcl.landscape.Genome(["A", "B"], W_TOGGLE, b=5.0, gamma=-20.0)
    genome.write_to_adata(adata)
    with pytest.raises(GclDivergenceError, match=r"dt = 0\.1"):
        gcl.landscape.fit_landscape(adata)
    assert "gcl_landscape" not in adata.uns


def test_a_numerous_transient_group_does_not_take_a_fates_basin():
    # half of 340 progenitors relax into each fate's basin; the fates have 136 and 200 cells
    groups = pd.Series(["progenitor"] * 340 + ["A"] * 136 + ["B"] * 200)
    basin = np.r_[np.zeros(170, int), np.ones(170, int), np.zeros(136, int), np.ones(200, int)]
    labels, purity = _labels(basin, 2, groups)
    # a majority vote would call basin 0 "progenitor" (170 vs 136 cells)
    assert labels == ["A", "B"]
    np.testing.assert_allclose(purity, [136 / 306, 200 / 370])
    # most progenitors staying in a basin of their own: it is theirs
    groups = pd.Series(["progenitor"] * 100 + ["A"] * 50)
    basin = np.r_[np.zeros(90, int), np.ones(10, int), np.ones(50, int)]
    assert _labels(basin, 2, groups)[0] == ["progenitor", "A"]
