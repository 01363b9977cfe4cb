"""gcl.sim against a hostile user (issue 20 §2): stale or damaged screen checkpoints, sizes
that cannot fit in memory, bad root cells and non-finite perturbation values."""

from __future__ import annotations

import shutil

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import gclandscape as gcl
from gclandscape._errors import GclError

KW = {"n_cells": 60, "n_null": 0, "progress": False}


@pytest.fixture
def toggle():
    """Toggle switch A ⊣ B, B ⊣ A; cells labelled by the winning gene (a fresh copy per test,
    because tests relabel it)."""
    genome = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
    x = np.random.default_rng(0).uniform(0, 1, (120, 2))
    adata = ad.AnnData(x)
    adata.var_names = ["A", "B"]
    adata.obs["celltype"] = pd.Categorical(np.where(x[:, 0] > x[:, 1], "A-high", "B-high"))
    genome.write_to_adata(adata)
    gcl.landscape.fit_landscape(adata, groupby="celltype")
    return adata


def _files(folder):
    return sorted(folder.glob("*.parquet"))


# ------------------------------------------------------------------------------ checkpoints
def test_checkpoint_not_reused_after_relabel_and_refit(toggle, tmp_path):
    first = gcl.sim.screen(toggle, "knockouts", checkpoint=tmp_path, **KW)
    assert set(first["fate"]) == {"A-high", "B-high"}
    toggle.obs["celltype"] = toggle.obs["celltype"].map({"A-high": "Alpha", "B-high": "Beta"})
    gcl.landscape.fit_landscape(toggle, groupby="celltype")
    second = gcl.sim.screen(toggle, "knockouts", checkpoint=tmp_path, **KW)
    assert set(second["fate"]) == {"Alpha", "Beta"}
    assert second.loc[second["lost"], "fate"].tolist() == ["Alpha", "Beta"]


def test_checkpoint_copied_over_another_is_recomputed(toggle, tmp_path):
    full = gcl.sim.screen(toggle, "knockouts", checkpoint=tmp_path, **KW)
    files = _files(tmp_path)
    assert len(files) == 2
    # which file holds which knockout is not known from the name: read them
    by_name = {pd.read_parquet(f)["perturbation"].iloc[0]: f for f in files}
    shutil.copyfile(by_name["A KO"], by_name["B KO"])
    with pytest.warns(UserWarning, match=by_name["B KO"].name):
        again = gcl.sim.screen(toggle, "knockouts", checkpoint=tmp_path, **KW)
    assert again["perturbation"].tolist().count("B KO") == 2  # one row per fate
    pd.testing.assert_frame_equal(again, full)
    # the recomputed file replaced the wrong one
    assert pd.read_parquet(by_name["B KO"])["perturbation"].iloc[0] == "B KO"


def test_truncated_checkpoint_is_recomputed_naming_the_file(toggle, tmp_path):
    full = gcl.sim.screen(toggle, "knockouts", checkpoint=tmp_path, **KW)
    broken = _files(tmp_path)[0]
    data = broken.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match=f"{broken.name}.*unreadable"):
        again = gcl.sim.screen(toggle, "knockouts", checkpoint=tmp_path, **KW)
    pd.testing.assert_frame_equal(again, full)
    pd.read_parquet(broken)  # readable again


def test_checkpoint_leaves_no_temporary_files(toggle, tmp_path):
    gcl.sim.screen(toggle, "knockouts", checkpoint=tmp_path, **KW)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".parquet", ".parquet"]


# ------------------------------------------------------------------------------ sizes
def test_sizes_that_cannot_fit_are_refused_early(toggle, monkeypatch):
    from gclandscape.sim import _simulation

    # whatever the machine: 10^12 cells need terabytes
    with pytest.raises(GclError, match=r"needs about .* GB .* available"):
        gcl.sim.perturb(toggle, gcl.sim.Knockout("A"), n_cells=10**12)
    monkeypatch.setattr(_simulation, "available_memory", lambda: 2 * 1024**3)
    with pytest.raises(GclError, match=r"n_cells=100000000 needs about .* 2\.0 GB available"):
        gcl.sim.perturb(toggle, gcl.sim.Knockout("A"), n_cells=10**8)
    with pytest.raises(GclError, match=r"needs about .* 2\.0 GB available"):
        gcl.sim.screen(toggle, "knockouts", n_cells=10**8, progress=False)
    res = gcl.sim.perturb(toggle, gcl.sim.Knockout("A"), n_cells=50, n_null=0)  # fits
    assert res.lost_fates == ["A-high"]


def test_memory_estimate_grows_with_cells_genes_and_snapshots():
    from gclandscape.sim._simulation import memory_needed

    base = memory_needed(1000, n_genes=10, n_refs=4, n_members=1, n_save=None)
    assert memory_needed(2000, n_genes=10, n_refs=4, n_members=1, n_save=None) == 2 * base
    assert memory_needed(1000, n_genes=20, n_refs=4, n_members=1, n_save=None) > base
    assert memory_needed(1000, n_genes=10, n_refs=4, n_members=2, n_save=None) == 2 * base
    assert memory_needed(1000, n_genes=10, n_refs=4, n_members=1, n_save=41) > 5 * base


# ------------------------------------------------------------------------------ root cells
@pytest.mark.parametrize(
    ("root", "match"),
    [
        (-1, r"non-negative cell positions in \[0, 120\)"),
        ([0, -1], r"non-negative cell positions in \[0, 120\)"),
        (120, r"\[0, 120\)"),
        (True, "integer cell positions"),
        (1.5, "integer cell positions"),
        ([], "non-empty"),
    ],
)
def test_bad_root_cells_are_errors(toggle, root, match):
    with pytest.raises(GclError, match=match):
        gcl.sim.perturb(toggle, gcl.sim.Knockout("A"), root=root, n_cells=20, n_null=0)


def test_root_positions_start_from_those_cells(toggle):
    x = toggle.X
    b_cells = np.flatnonzero(x[:, 1] - x[:, 0] > 0.6)[:5]  # deep in the B-high basin
    assert len(b_cells) == 5
    res = gcl.sim.perturb(toggle, gcl.sim.Knockdown("A", 1.0), root=b_cells, n_cells=40, n_null=0)
    assert res.fates.loc["B-high", "wt"] == 1.0
    assert res.params["start_cells"] == "5 given cells"


# ------------------------------------------------------------------------------ values
@pytest.mark.parametrize(
    "make",
    [
        lambda: gcl.sim.Overexpression("A", level=float("inf")),
        lambda: gcl.sim.Overexpression("A", level=float("nan")),
        lambda: gcl.sim.Overexpression("A", level=-0.5),
        lambda: gcl.sim.EdgeMutation("A", "B", float("inf")),
        lambda: gcl.sim.EdgeMutation("A", "B", float("nan")),
        lambda: gcl.sim.EdgeMutation("A", "B", -1.0),
        lambda: gcl.sim.Knockdown("A", float("nan")),
        lambda: gcl.sim.Knockdown("A", float("inf")),
    ],
)
def test_non_finite_or_negative_values_are_rejected_at_construction(make):
    with pytest.raises(GclError, match="finite"):
        make()


def test_values_that_are_not_numbers_are_rejected():
    with pytest.raises(GclError, match="a number"):
        gcl.sim.Overexpression("A", level="high")
    with pytest.raises(GclError, match="a number"):
        gcl.sim.Knockdown("A", None)
