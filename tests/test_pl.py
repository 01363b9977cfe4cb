"""gcl.pl: every figure on a hand-built toggle switch (artists and image regression), on the
fitted myeloid default and on the Paul15 counts; bad input; the drift grid they draw.

Baseline images live in ``tests/baseline_images/``; regenerate them after an intended change
with ``GCL_UPDATE_BASELINES=1 python -m pytest tests/test_pl.py -k baseline`` and look at them
before committing.
"""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import gclandscape as gcl
from gclandscape._errors import GclError
from gclandscape._keys import Key

BASELINES = Path(__file__).parent / "baseline_images"
UPDATE = os.environ.get("GCL_UPDATE_BASELINES", "") not in ("", "0")
#: RMS tolerance of the image comparison (0-255 grey levels), low-DPI images.
TOL = 12.0
DPI = 50


# ---------------------------------------------------------------------------------- helpers
def _gid(artists, gid):
    return [a for a in artists if a.get_gid() == gid]


def _offsets(ax, gid):
    return sum(len(c.get_offsets()) for c in _gid(ax.collections, gid))


def _toggle() -> ad.AnnData:
    """Deterministic toggle switch: 120 cells around each attractor, 30 mirrored pairs on the
    separatrix side of each (progenitors), states in ``.X``."""
    genome = gcl.landscape.Genome(["A", "B"], [[0.0, -10.0], [-10.0, 0.0]], b=5.0)
    fp = genome.fixed_points(seed=0)
    stable = fp[fp["type"] == "stable"].sort_values("A")[["A", "B"]].to_numpy()
    gen = np.random.default_rng(0)
    n, m = 120, 30
    x = np.concatenate(
        [
            stable[1] + 0.07 * gen.standard_normal((n, 2)),
            stable[0] + 0.07 * gen.standard_normal((n, 2)),
        ]
    )
    mid = np.column_stack([0.5 + gen.uniform(0.02, 0.3, m), np.zeros(m)])
    mid[:, 1] = 1.0 - mid[:, 0] + 0.04 * gen.standard_normal(m)
    x = np.concatenate([np.clip(x, 0.0, 1.0), mid, mid[:, ::-1]])
    adata = ad.AnnData(x)
    adata.var_names = ["A", "B"]
    adata.obs["celltype"] = pd.Categorical(np.where(x[:, 0] > x[:, 1], "A-high", "B-high"))
    genome.write_to_adata(adata)
    return adata


@pytest.fixture(scope="module")
def toggle():
    adata = _toggle()
    land = gcl.landscape.fit_landscape(adata, groupby="celltype")
    res = gcl.sim.perturb(adata, gcl.sim.Knockout("A"), n_cells=200, n_null=0)
    table = gcl.sim.screen(adata, "knockouts", n_cells=200, n_null=0, progress=False)
    scan = gcl.sim.mutational_scan(adata, n_mutations=8, n_cells=100, progress=False)
    return adata, land, res, table, scan


def _figures(adata, res, table, scan) -> dict:
    """Every figure once (the image-regression set)."""
    return {
        "landscape": lambda: gcl.pl.landscape(adata),
        "landscape_surface": lambda: gcl.pl.landscape(adata, kind="surface"),
        "vector_field": lambda: gcl.pl.vector_field(adata),
        "grn": lambda: gcl.pl.grn(adata),
        "fate_shift": lambda: gcl.pl.fate_shift(res),
        "trajectories": lambda: gcl.pl.trajectories(adata, res, n_paths=10),
        "screen": lambda: gcl.pl.screen(table),
        "mutational_scan": lambda: gcl.pl.mutational_scan(scan),
    }


# ---------------------------------------------------------------------------------- drift grid
def test_drift_grid_points_into_the_attractors(toggle):
    """fit_landscape stores the genome's drift on the grid: around each attractor it points
    inwards, it is NaN far from the cells, and it round-trips through h5ad."""
    _adata, land, *_ = toggle
    g = land.grid
    assert g["u"].shape == g["v"].shape == g["U"].shape == (len(g["y"]), len(g["x"]))
    X, Y = np.meshgrid(g["x"], g["y"])
    for _, r in land.attractors.iterrows():
        dx, dy = X - r["basis_1"], Y - r["basis_2"]
        d = np.hypot(dx, dy)
        ring = (d > 0.1) & (d < 0.25) & np.isfinite(g["u"])
        assert ring.sum() > 50
        cos = -(dx * g["u"] + dy * g["v"])[ring] / (d[ring] * np.hypot(g["u"], g["v"])[ring])
        assert np.mean(cos > 0) > 0.9, r["label"]
    # the corners of the grid are far from every cell
    assert np.isnan(g["u"][0, 0])
    assert np.isnan(g["v"][-1, -1])
    assert 0.05 < np.isfinite(g["u"]).mean() < 0.9


def test_drift_grid_on_a_nonlinear_basis():
    """On a nonlinear basis (kNN map from model states) the drift agrees with the drift
    carried through the exact map: measured median cosine 0.99, 92 % of grid points > 0.7."""
    from gclandscape.landscape._energy import _drift_grid

    adata = _toggle()
    x = np.asarray(adata.X, dtype=np.float64)

    def embed(s):
        return np.column_stack([s[:, 0] - s[:, 1], 3 * (s[:, 0] + s[:, 1] - 1) ** 2 + s[:, 0]])

    adata.obsm["X_emb"] = embed(x)
    land = gcl.landscape.fit_landscape(adata, basis="X_emb")
    g = land.grid
    field = gcl.landscape.Genome.from_adata(adata).field()
    u, v = _drift_grid(field, x, embed, g["x"], g["y"], land.coords)
    ok = np.isfinite(g["u"]) & np.isfinite(u)
    assert ok.sum() > 100
    cos = (g["u"] * u + g["v"] * v)[ok] / (np.hypot(g["u"], g["v"]) * np.hypot(u, v))[ok]
    assert np.median(cos) > 0.95
    assert np.mean(cos > 0.7) > 0.85


def test_drift_grid_round_trips(toggle, tmp_path):
    adata, land, *_ = toggle
    path = tmp_path / "t.h5ad"
    adata.write_h5ad(path)
    back = gcl.landscape.Landscape.from_adata(ad.read_h5ad(path))
    np.testing.assert_array_equal(back.grid["u"], land.grid["u"])
    np.testing.assert_array_equal(back.grid["v"], land.grid["v"])


# ---------------------------------------------------------------------------------- artists
def test_landscape_artists(toggle):
    adata, land, *_ = toggle
    fig = gcl.pl.landscape(adata)
    ax = fig.axes[0]
    n_stable = int(land.attractors["stable"].sum())
    assert n_stable == 2
    assert _offsets(ax, "attractors") == n_stable
    assert sorted(t.get_text() for t in _gid(ax.texts, "attractor_label")) == ["A-high", "B-high"]
    assert _offsets(ax, "saddles") == 1
    assert len(_gid(ax.lines, "path")) == len(land.paths) == 1
    assert _offsets(ax, "cells") == adata.n_obs
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["A-high", "B-high"]
    # the white attractor stars sit where the landscape says
    att = _gid(ax.collections, "attractors")[0].get_offsets()
    np.testing.assert_allclose(att, land.attractors[["basis_1", "basis_2"]].to_numpy())


def test_landscape_options(toggle):
    adata, land, *_ = toggle
    fig = gcl.pl.landscape(adata, cells=False, saddles=False, paths=False, labels=False)
    ax = fig.axes[0]
    assert _offsets(ax, "cells") == 0
    assert _offsets(ax, "saddles") == 0
    assert not _gid(ax.lines, "path")
    assert not _gid(ax.texts, "attractor_label")
    assert ax.get_legend() is None
    # a Landscape object draws without the AnnData (grey cells, no legend)
    fig = gcl.pl.landscape(land, energy="U_empirical")
    assert _offsets(fig.axes[0], "attractors") == 2
    surf = gcl.pl.landscape(adata, kind="surface")
    assert surf.axes[0].name == "3d"
    assert _offsets(surf.axes[0], "attractors") == 2


def test_drawing_into_given_axes_and_no_pyplot_state(toggle):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    adata, _land, res, table, scan = toggle
    before = plt.get_fignums()
    outer = Figure()
    a1, a2 = outer.subplots(1, 2)
    assert gcl.pl.landscape(adata, ax=a1) is outer
    assert gcl.pl.grn(adata, ax=a2) is outer
    assert _offsets(a1, "attractors") == 2
    assert len(_gid(a2.patches, "grn_edge")) == 2
    for make in _figures(adata, res, table, scan).values():
        assert isinstance(make(), Figure)
    assert plt.get_fignums() == before


def test_vector_field_artists(toggle):
    adata, _land, *_ = toggle
    fig = gcl.pl.vector_field(adata)
    ax = fig.axes[0]
    lines = _gid(ax.collections, "streamlines")
    assert len(lines) == 1
    assert len(lines[0].get_segments()) > 20
    assert _offsets(ax, "attractors") == 2
    assert not _gid(gcl.pl.vector_field(adata, energy=None).axes[0].collections, "energy")


def test_grn_edges_and_nodes():
    genes = ["A", "B", "C", "D"]
    W = np.array([[0, -3.0, 0, 0], [2.0, 0, 0, 0], [1.0, 0.5, 0, 0], [0, 0, -0.2, 0]])
    adata = ad.AnnData(np.zeros((3, 4)))
    adata.var_names = genes
    gcl.landscape.Genome(genes, W).write_to_adata(adata)
    fig = gcl.pl.grn(adata, top_k=3, layout="circular")
    ax = fig.axes[0]
    edges = _gid(ax.patches, "grn_edge")
    assert len(edges) == 3  # the three strongest: B-|A, A->B, A->C
    colors = sorted(tuple(np.round(e.get_edgecolor()[:3], 3)) for e in edges)
    from matplotlib.colors import to_rgb

    from gclandscape.pl._utils import ACTIVATION, REPRESSION

    expected = sorted(tuple(np.round(to_rgb(c), 3)) for c in (REPRESSION, ACTIVATION, ACTIVATION))
    assert colors == expected
    widths = sorted(e.get_linewidth() for e in edges)
    assert widths[0] < widths[-1]  # |weight| 1 < 3
    nodes = _gid(ax.collections, "grn_nodes")[0]
    assert len(nodes.get_offsets()) == 3  # D is joined only by the weakest edge
    sizes = dict(zip(["A", "B", "C"], nodes.get_sizes(), strict=True))
    assert sizes["A"] > sizes["B"] > sizes["C"]  # out-degree 2, 1, 0
    assert sorted(t.get_text() for t in _gid(ax.texts, "grn_label")) == ["A", "B", "C"]
    # all edges when top_k exceeds them, and every layout works
    for layout in ("spring", "kamada_kawai", "shell"):
        fig = gcl.pl.grn(adata, top_k=100, layout=layout)
        assert len(_gid(fig.axes[0].patches, "grn_edge")) == 5


def test_fate_shift_artists(toggle):
    res = toggle[2]
    fig = gcl.pl.fate_shift(res)
    ax = fig.axes[0]
    wt = [p.get_height() for p in _gid(ax.patches, "wt")]
    pt = [p.get_height() for p in _gid(ax.patches, "perturbed")]
    np.testing.assert_allclose(wt, res.fates["wt"])
    np.testing.assert_allclose(pt, res.fates["perturbed"])
    n_sig = int((res.fates["p_value"] < 0.05).sum())
    assert n_sig == 2  # A KO sends every cell to B-high
    assert [t.get_text() for t in _gid(ax.texts, "significance")] == ["***"] * n_sig
    assert [t.get_text() for t in ax.get_xticklabels()] == list(res.fates.index)


def test_significance_stars():
    from gclandscape.pl._sim import stars

    assert [stars(p) for p in (1e-4, 5e-3, 0.03, 0.2, np.nan)] == ["***", "**", "*", "", ""]


def test_trajectories_artists(toggle):
    adata, _land, res, *_ = toggle
    fig = gcl.pl.trajectories(adata, res, n_paths=7)
    ax = fig.axes[0]
    n_traj = res.trajectories["wt"].shape[1]
    assert len(_gid(ax.lines, "wt")) == len(_gid(ax.lines, "perturbed")) == min(7, n_traj)
    wt_line = _gid(ax.lines, "wt")[0]
    np.testing.assert_allclose(wt_line.get_xydata(), res.trajectories["wt"][:, 0])
    assert _offsets(ax, "perturbed_end") == min(7, n_traj)
    assert ax.get_title() == res.perturbation


def test_screen_heatmap(toggle):
    *_, table, _ = toggle
    fig = gcl.pl.screen(table)
    ax = fig.axes[0]
    (im,) = _gid(ax.images, "screen")
    n_pert, n_fates = table["perturbation"].nunique(), table["fate"].nunique()
    assert im.get_array().shape == (n_pert, n_fates) == (2, 2)
    lo, hi = im.get_clim()
    assert lo == -hi
    assert hi == pytest.approx(table["delta"].abs().max())
    # the drawn value of each (row, column) is the table's delta
    rows = [t.get_text() for t in ax.get_yticklabels()]
    cols = [t.get_text() for t in ax.get_xticklabels()]
    d = table.set_index(["perturbation", "fate"])["delta"]
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            assert im.get_array()[i, j] == pytest.approx(d[(r, c)])


def test_screen_clusters_similar_rows():
    """Rows with the same profile end up next to each other."""
    fates = ["F1", "F2", "F3"]
    profiles = {"a": [0.5, -0.5, 0], "b": [-0.4, 0.4, 0], "c": [0.45, -0.5, 0.05],
                "d": [-0.4, 0.5, 0.0]}  # fmt: skip
    table = pd.DataFrame(
        [(k, f, v) for k, p in profiles.items() for f, v in zip(fates, p, strict=True)],
        columns=["perturbation", "fate", "delta"],
    )
    ax = gcl.pl.screen(table).axes[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    pos = {r: i for i, r in enumerate(rows)}
    assert abs(pos["a"] - pos["c"]) == 1
    assert abs(pos["b"] - pos["d"]) == 1
    unclustered = gcl.pl.screen(table, cluster=False).axes[0]
    assert [t.get_text() for t in unclustered.get_yticklabels()] == list(profiles)


def test_mutational_scan_panels(toggle):
    scan = toggle[4]
    fig = gcl.pl.mutational_scan(scan)
    assert len(fig.axes) == 2
    ax1, ax2 = fig.axes
    (rob,) = _gid(ax1.patches, "robustness")
    (evo,) = _gid(ax1.patches, "evolvability")
    assert rob.get_height() == pytest.approx(scan.robustness)
    assert evo.get_height() == pytest.approx(scan.evolvability)
    bars = _gid(ax2.patches, "pleiotropy")
    assert sum(b.get_height() for b in bars) == len(scan.pleiotropy)
    counts = np.bincount(scan.pleiotropy["n_fates"].to_numpy(int), minlength=len(bars))
    np.testing.assert_array_equal([b.get_height() for b in bars], counts[: len(bars)])


@pytest.mark.parametrize(
    ("fmt", "magic"), [("pdf", b"%PDF"), ("svg", b"<?xml"), ("png", b"\x89PNG")]
)
def test_export(toggle, tmp_path, fmt, magic):
    adata, *_ = toggle
    with gcl.pl.style():
        fig = gcl.pl.landscape(adata)
        path = tmp_path / f"landscape.{fmt}"
        fig.savefig(path)
    assert path.read_bytes().startswith(magic)
    assert path.stat().st_size > 1000


def test_style_context():
    import matplotlib as mpl

    before = mpl.rcParams["savefig.dpi"], mpl.rcParams["axes.spines.top"]
    with gcl.pl.style(font_size=9, dpi=600):
        assert mpl.rcParams["savefig.dpi"] == 600
        assert mpl.rcParams["font.size"] == 9
        assert mpl.rcParams["axes.spines.right"] is False
        assert mpl.rcParams["pdf.fonttype"] == 42
    assert (mpl.rcParams["savefig.dpi"], mpl.rcParams["axes.spines.top"]) == before


# ---------------------------------------------------------------------------------- bad input
def test_missing_landscape_names_fit_landscape():
    adata = ad.AnnData(np.zeros((3, 2)))
    for f in (gcl.pl.landscape, gcl.pl.vector_field):
        with pytest.raises(GclError, match="fit_landscape"):
            f(adata)
    with pytest.raises(GclError, match="fit_landscape"):
        gcl.pl.landscape(adata, key="elsewhere")
    with pytest.raises(GclError, match="fit_grn"):
        gcl.pl.grn(adata)


def test_landscape_stored_without_drift_says_rerun(toggle):
    adata, land, *_ = toggle
    old = ad.AnnData(adata.X.copy())
    d = land.to_dict()
    d["grid"] = {k: v for k, v in d["grid"].items() if k not in ("u", "v")}
    old.uns["old_land"] = d
    with pytest.raises(GclError, match=r"re-run gcl\.landscape\.fit_landscape"):
        gcl.pl.vector_field(old, key="old_land")
    # the other figures still draw an old landscape
    assert _offsets(gcl.pl.landscape(old, key="old_land").axes[0], "attractors") == 2


def test_wrong_object_types(toggle):
    adata, _land, res, table, scan = toggle
    with pytest.raises(GclError, match="PerturbationResult"):
        gcl.pl.fate_shift(table)
    with pytest.raises(GclError, match="PerturbationResult"):
        gcl.pl.trajectories(adata, scan)
    with pytest.raises(GclError, match="MutationalScan"):
        gcl.pl.mutational_scan(res)
    with pytest.raises(GclError, match="DataFrame"):
        gcl.pl.screen(res)
    with pytest.raises(GclError, match="lacks the column"):
        gcl.pl.screen(table.drop(columns="delta"))
    with pytest.raises(GclError, match="empty"):
        gcl.pl.screen(table.iloc[:0])
    with pytest.raises(GclError, match="AnnData"):
        gcl.pl.landscape(np.zeros((3, 2)))
    with pytest.raises(GclError, match="Axes"):
        gcl.pl.landscape(adata, ax="left")


def test_bad_options(toggle):
    from matplotlib.figure import Figure

    adata, _land, res, *_ = toggle
    with pytest.raises(GclError, match="contour"):
        gcl.pl.landscape(adata, kind="heatmap")
    with pytest.raises(GclError, match="U_empirical"):
        gcl.pl.landscape(adata, energy="V")
    with pytest.raises(GclError, match="celltype"):  # lists the available columns
        gcl.pl.landscape(adata, color="cell_type")
    with pytest.raises(GclError, match="3-D axes"):
        gcl.pl.landscape(adata, kind="surface", ax=Figure().add_subplot())
    with pytest.raises(GclError, match="top_k"):
        gcl.pl.grn(adata, top_k=0)
    with pytest.raises(GclError, match="layout"):
        gcl.pl.grn(adata, layout="hairball")
    with pytest.raises(GclError, match="n_paths"):
        gcl.pl.trajectories(adata, res, n_paths=0)
    with pytest.raises(GclError, match="two matplotlib Axes"):
        gcl.pl.mutational_scan(toggle[4], axes=[Figure().add_subplot()])
    # a landscape of other cells
    with pytest.raises(GclError, match="fitted on"):
        gcl.pl.landscape(adata[:10].copy())


def test_does_not_modify_adata(toggle):
    adata, _land, res, table, scan = toggle
    uns_keys, obs_cols = set(adata.uns), list(adata.obs.columns)
    table_before = table.copy()
    for make in _figures(adata, res, table, scan).values():
        make()
    assert set(adata.uns) == uns_keys
    assert list(adata.obs.columns) == obs_cols
    pd.testing.assert_frame_equal(table, table_before)


# ---------------------------------------------------------------------------------- images
@pytest.mark.parametrize(
    "name",
    ["landscape", "landscape_surface", "vector_field", "grn", "fate_shift", "trajectories",
     "screen", "mutational_scan"],
)  # fmt: skip
def test_baseline_images(toggle, tmp_path, name):
    """Each figure of the toggle switch against its stored low-DPI baseline."""
    from matplotlib.testing.compare import compare_images

    adata, _land, res, table, scan = toggle
    with gcl.pl.style():
        fig = _figures(adata, res, table, scan)[name]()
        baseline = BASELINES / f"{name}.png"
        if UPDATE:
            BASELINES.mkdir(exist_ok=True)
            fig.savefig(baseline, dpi=DPI)
            pytest.skip(f"baseline written: {baseline}")
        actual = tmp_path / f"{name}.png"
        fig.savefig(actual, dpi=DPI)
    assert baseline.exists(), f"no baseline {baseline}; run with GCL_UPDATE_BASELINES=1"
    err = compare_images(str(baseline), str(actual), tol=TOL)
    assert err is None, err


def test_image_comparison_catches_a_change(toggle, tmp_path):
    """The tolerance is tight enough that a different figure fails."""
    from matplotlib.testing.compare import compare_images

    adata, *_ = toggle
    if UPDATE:
        pytest.skip("updating baselines")
    with gcl.pl.style():
        fig = gcl.pl.landscape(adata, energy="U_empirical", cmap="viridis")
        actual = tmp_path / "landscape.png"
        fig.savefig(actual, dpi=DPI)
    assert compare_images(str(BASELINES / "landscape.png"), str(actual), tol=TOL) is not None


# ---------------------------------------------------------------------------------- myeloid
@pytest.fixture(scope="module")
def myeloid(myeloid_fitted):
    return myeloid_fitted


@pytest.mark.slow
def test_myeloid_landscape_grn_vector_field(myeloid):
    adata, land = myeloid
    n_stable = int(land.attractors["stable"].sum())
    assert n_stable >= 4
    for kind in ("contour", "surface"):
        ax = gcl.pl.landscape(adata, kind=kind).axes[0]
        assert _offsets(ax, "attractors") == n_stable
        n_saddles = int(((land.saddles["type"] == "saddle") & (land.saddles["index"] == 1)).sum())
        assert _offsets(ax, "saddles") == n_saddles
        assert len(_gid(ax.lines, "path")) == len(land.paths)
        labels = {t.get_text().strip() for t in _gid(ax.texts, "attractor_label")}
        assert {"Ery", "Mk", "Gran", "Mono"} <= labels
    ax = gcl.pl.landscape(adata).axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == list(adata.obs["celltype"].cat.categories)
    # every attractor lies inside the drawn frame
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    a = land.attractors
    assert ((a["basis_1"] >= x0) & (a["basis_1"] <= x1)).all()
    assert ((a["basis_2"] >= y0) & (a["basis_2"] <= y1)).all()
    genome = gcl.landscape.Genome.from_adata(adata)
    for k in (5, 15):
        ax = gcl.pl.grn(adata, top_k=k).axes[0]
        assert len(_gid(ax.patches, "grn_edge")) == min(k, len(genome.edges()))
    ax = gcl.pl.vector_field(adata).axes[0]
    assert len(_gid(ax.collections, "streamlines")[0].get_segments()) > 20


@pytest.fixture(scope="module")
def myeloid_sim(myeloid):
    adata, _land = myeloid
    res = gcl.sim.perturb(adata, gcl.sim.Knockout("Gata1"), n_cells=200, n_null=0)
    kos = [gcl.sim.Knockout(g) for g in ("Gata1", "Pu.1", "Fli1")]
    table = gcl.sim.screen(adata, kos, n_cells=200, n_null=0, progress=False)
    scan = gcl.sim.mutational_scan(adata, n_mutations=20, progress=False)
    return res, table, scan


@pytest.mark.slow
def test_myeloid_perturbation_figures(myeloid, myeloid_sim, tmp_path):
    adata, _land = myeloid
    res, table, scan = myeloid_sim
    ax = gcl.pl.fate_shift(res).axes[0]
    assert len(_gid(ax.patches, "perturbed")) == len(res.fates)
    assert "Ery" in res.lost_fates
    n_sig = int((res.fates["p_value"] < 0.05).sum())
    assert len(_gid(ax.texts, "significance")) == n_sig >= 2
    ax = gcl.pl.trajectories(adata, res).axes[0]
    assert len(_gid(ax.lines, "perturbed")) == min(30, res.trajectories["perturbed"].shape[1])
    ax = gcl.pl.screen(table).axes[0]
    (im,) = _gid(ax.images, "screen")
    assert im.get_array().shape == (3, table["fate"].nunique())
    fig = gcl.pl.mutational_scan(scan)
    assert _gid(fig.axes[0].patches, "robustness")[0].get_height() == pytest.approx(scan.robustness)
    for fmt in ("pdf", "svg", "png"):
        with gcl.pl.style():
            fig.savefig(tmp_path / f"scan.{fmt}")
        assert (tmp_path / f"scan.{fmt}").stat().st_size > 1000


# ---------------------------------------------------------------------------------- Paul15
@pytest.mark.slow
@pytest.mark.shared_data
def test_paul15_every_figure(shared_data, tmp_path):
    adata = gcl.io.read(shared_data / "paul15" / "paul15_240genes.h5ad")
    gcl.pp.recipe(adata, n_top_genes=100)
    genome = gcl.landscape.fit_grn(
        adata, genes=30, root="Multipotent progenitors", groupby="celltype", n_bootstrap=0
    )
    land = gcl.landscape.fit_landscape(adata, groupby="celltype")
    n_stable = int(land.attractors["stable"].sum())
    assert n_stable >= 1
    ax = gcl.pl.landscape(adata).axes[0]
    assert _offsets(ax, "attractors") == n_stable
    assert _offsets(ax, "cells") == adata.n_obs
    assert len(_gid(ax.lines, "path")) == len(land.paths)
    assert _offsets(gcl.pl.landscape(adata, kind="surface").axes[0], "attractors") == n_stable
    ax = gcl.pl.grn(adata, top_k=25).axes[0]
    assert len(_gid(ax.patches, "grn_edge")) == min(25, len(genome.edges()))
    assert _gid(gcl.pl.vector_field(adata).axes[0].collections, "streamlines")
    gene = "Klf1" if "Klf1" in genome.genes else genome.genes[0]
    res = gcl.sim.perturb(adata, gcl.sim.Knockout(gene), n_cells=100, n_null=0)
    assert len(_gid(gcl.pl.fate_shift(res).axes[0].patches, "wt")) == len(res.fates)
    assert _gid(gcl.pl.trajectories(adata, res).axes[0].lines, "wt")
    kos = [gcl.sim.Knockout(g) for g in genome.genes[:3]]
    table = gcl.sim.screen(adata, kos, n_cells=100, n_null=0, progress=False)
    (im,) = _gid(gcl.pl.screen(table).axes[0].images, "screen")
    assert im.get_array().shape == (3, table["fate"].nunique())
    scan = gcl.sim.mutational_scan(adata, n_mutations=6, n_cells=100, progress=False)
    assert len(gcl.pl.mutational_scan(scan).axes) == 2
    with gcl.pl.style():
        gcl.pl.landscape(adata).savefig(tmp_path / "paul15.pdf")
    assert (tmp_path / "paul15.pdf").read_bytes().startswith(b"%PDF")
    assert Key.basin("gcl_landscape") in adata.obs
