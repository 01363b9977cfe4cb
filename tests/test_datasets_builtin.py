"""scanpy's shipped datasets as gclandscape returns them, and the dataset registry."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gclandscape as gcl
from gclandscape._errors import GclError
from gclandscape._keys import Key


def test_krumsiek11_labels_and_names():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Observation names are not unique" warning
        adata = gcl.datasets.krumsiek11()
    assert adata.shape == (640, 11)
    assert adata.obs_names.is_unique
    assert list(adata.var_names[:2]) == ["Gata2", "Gata1"]
    counts = adata.obs[Key.obs.celltype].value_counts()
    assert counts.to_dict() == {"progenitor": 320, "Ery": 80, "Mk": 80, "Gran": 80, "Mono": 80}
    # scanpy's column is kept and maps one to one
    pairs = set(zip(adata.obs["cell_type"].astype(str), adata.obs[Key.obs.celltype].astype(str)))
    assert pairs == {
        ("progenitor", "progenitor"),
        ("Ery", "Ery"),
        ("Mk", "Mk"),
        ("Mo", "Mono"),
        ("Neu", "Gran"),
    }
    # four trajectories of 160 steps; each ends in the fate scanpy's highlights name
    assert adata.obs[Key.obs.trajectory].value_counts().to_dict() == {
        0: 160,
        1: 160,
        2: 160,
        3: 160,
    }
    last = adata.obs[adata.obs[Key.obs.sim_time] == 159]
    assert last[Key.obs.celltype].astype(str).tolist() == ["Mono", "Ery", "Mk", "Gran"]
    assert adata.obs_names[0] == "krumsiek11_t0_0"


def test_krumsiek11_fates_match_marker_genes():
    """Ery cells have Gata1 and EKLF on; Gran cells Cebpa and Gfi1: the labels fit the values."""
    adata = gcl.datasets.krumsiek11()
    x = adata.to_df()
    ct = adata.obs[Key.obs.celltype]
    assert x.loc[ct == "Ery", "EKLF"].mean() > 0.5 > x.loc[ct == "Mono", "EKLF"].mean()
    assert x.loc[ct == "Gran", "Gfi1"].mean() > 0.5 > x.loc[ct == "Ery", "Gfi1"].mean()


def test_toggleswitch_labels_follow_the_winning_gene():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        adata = gcl.datasets.toggleswitch()
    assert adata.shape == (200, 2)
    assert adata.obs_names.is_unique
    x = np.asarray(adata.X)
    ct = adata.obs[Key.obs.celltype].astype(str).to_numpy()
    assert (x[ct == "0-high", 0] - x[ct == "0-high", 1] > 0.5).all()
    assert (x[ct == "1-high", 1] - x[ct == "1-high", 0] > 0.5).all()
    assert (np.abs(x[ct == "progenitor", 0] - x[ct == "progenitor", 1]) <= 0.5).all()
    # the first trajectory commits to gene 0, the second to gene 1; both start undecided
    traj = adata.obs[Key.obs.trajectory].to_numpy()
    assert set(ct[traj == 0]) == {"progenitor", "0-high"}
    assert set(ct[traj == 1]) == {"progenitor", "1-high"}
    assert ct[0] == ct[100] == "progenitor"


def test_builtin_returns_fresh_objects():
    a = gcl.datasets.krumsiek11()
    a.obs[Key.obs.celltype] = "changed"
    b = gcl.datasets.krumsiek11()
    assert "changed" not in set(b.obs[Key.obs.celltype].astype(str))


def test_available_table():
    table = gcl.datasets.available()
    assert list(table.columns) == [
        "name",
        "description",
        "n_obs",
        "n_vars",
        "needs_download",
        "citation",
    ]
    assert set(table["name"]) == {"myeloid", "simulate", "krumsiek11", "toggleswitch", "paul15"}
    rows = table.set_index("name")
    assert rows.loc["paul15", "needs_download"]
    assert not rows.loc["krumsiek11", "needs_download"]
    assert not rows.loc["myeloid", "needs_download"]
    # the listed shapes are the real ones
    for name in ("krumsiek11", "toggleswitch"):
        adata = gcl.datasets.load(name)
        assert (rows.loc[name, "n_obs"], rows.loc[name, "n_vars"]) == adata.shape


def test_load_by_name_and_unknown_name():
    adata = gcl.datasets.load("ToggleSwitch")
    assert adata.shape == (200, 2)
    with pytest.raises(GclError, match="Unknown dataset 'pbmc3k'") as info:
        gcl.datasets.load("pbmc3k")
    for name in ("myeloid", "simulate", "krumsiek11", "toggleswitch", "paul15"):
        assert name in str(info.value)
