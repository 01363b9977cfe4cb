"""gcl.sim on a genome ensemble (issue 18 §2): every member develops the same cells with the
same noise, ``p_lost`` is the share of members in which a fate is lost, fractions are means
over members, and intervals resample members and cells."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import gclandscape as gcl
from _pair import G1, G2, pair_adata
from gclandscape._errors import GclError
from gclandscape.sim._perturb import perturb_members
from gclandscape.sim._screen import screen_members

KW = {"n_cells": 200, "n_null": 0}


@pytest.fixture(scope="module")
def pair():
    return pair_adata(200)


def test_knockout_lost_in_one_member_of_two_gives_p_lost_one_half(pair):
    res = gcl.sim.perturb(pair, gcl.sim.Knockout("F"), **KW)
    f = res.fates
    assert f.loc["A-high", "p_lost"] == 0.5
    assert f.loc["B-high", "p_lost"] == 0.0
    assert res.lost_fates == ["A-high"]  # p_lost >= 0.5
    assert res.params["n_genomes"] == 2
    assert res.trajectories["wt"].shape == (len(res.times), 50, 2)  # the first member's paths
    # each member alone: G1 keeps A-high untouched (F only follows), G2 loses all of it
    one = perturb_members(pair, gcl.sim.Knockout("F"), [G1], **KW).fates
    two = perturb_members(pair, gcl.sim.Knockout("F"), [G2], **KW).fates
    assert one.loc["A-high", "p_lost"] == 0.0
    assert two.loc["A-high", "p_lost"] == 1.0
    assert one.loc["A-high", "delta"] == 0.0  # same cells and noise: exactly unchanged
    assert two.loc["A-high", "perturbed"] == 0.0
    # the ensemble's fractions are the members' means
    for col in ("wt", "perturbed", "delta"):
        np.testing.assert_allclose(f[col], (one[col] + two[col]) / 2)
    # the interval resamples members: it reaches from no change (G1 twice) to G2's loss
    assert f.loc["A-high", "ci_high"] == 0.0
    assert f.loc["A-high", "ci_low"] <= 0.9 * two.loc["A-high", "delta"]
    # the median member's test: one member shows no change at all
    assert f.loc["A-high", "p_value"] > 0.05
    assert two.loc["A-high", "p_value"] < 1e-6


def test_the_data_cannot_tell_a_from_f_but_both_lose_b_high(pair):
    table = gcl.sim.screen(pair, "knockouts", n_cells=200, n_null=2, progress=False)
    p_lost = table.set_index(["perturbation", "fate"])["p_lost"]
    assert p_lost[("A KO", "A-high")] == 0.5
    assert p_lost[("F KO", "A-high")] == 0.5
    assert p_lost[("B KO", "B-high")] == 1.0  # B holds the switch in both members
    assert p_lost[("B KO", "A-high")] == 0.0
    lost = table.loc[table["lost"], ["perturbation", "fate"]].values.tolist()
    assert lost == [["A KO", "A-high"], ["B KO", "B-high"], ["F KO", "A-high"]]
    # every row as perturb computes it
    one = gcl.sim.perturb(pair, gcl.sim.Knockout("F"), n_cells=200, n_null=2).to_frame()
    mine = table[table["perturbation"] == "F KO"].reset_index(drop=True)
    cols = list(one.columns)
    pd.testing.assert_frame_equal(mine[cols], one[cols], check_dtype=False)


def test_members_share_start_cells_and_noise(pair):
    # the same genome twice is the genome once: identical cells, so identical fractions,
    # p_lost still 0 or 1, and intervals no wider
    once = perturb_members(pair, gcl.sim.Knockout("A"), [G1], **KW).fates
    twice = perturb_members(pair, gcl.sim.Knockout("A"), [G1, G1], **KW).fates
    np.testing.assert_allclose(
        twice[["wt", "perturbed", "p_lost"]], once[["wt", "perturbed", "p_lost"]]
    )
    np.testing.assert_allclose(twice["p_value"], once["p_value"])


def test_screen_members_entry_point_and_bad_members(pair):
    table = screen_members(pair, [gcl.sim.Knockout("F")], [G2], n_cells=100, n_null=0)
    assert table.set_index("fate").loc["A-high", "p_lost"] == 1.0
    other = gcl.landscape.Genome(["A", "B", "C"], np.zeros((3, 3)))
    with pytest.raises(GclError, match="same genes"):
        perturb_members(pair, gcl.sim.Knockout("A"), [G1, other], **KW)
    with pytest.raises(GclError, match="empty"):
        perturb_members(pair, gcl.sim.Knockout("A"), [], **KW)


def test_checkpoint_fingerprint_covers_every_member(pair, tmp_path):
    kw = {"n_cells": 60, "n_null": 0, "progress": False, "checkpoint": tmp_path}
    a = screen_members(pair, [gcl.sim.Knockout("F")], [G1, G2], **kw)
    b = screen_members(pair, [gcl.sim.Knockout("F")], [G1, G1], **kw)
    assert a.set_index("fate").loc["A-high", "p_lost"] == 0.5
    assert b.set_index("fate").loc["A-high", "p_lost"] == 0.0  # not read from a's file
    assert len(list(tmp_path.glob("*.parquet"))) == 2


def test_ensemble_survives_h5ad(pair, tmp_path):
    path = tmp_path / "pair.h5ad"
    pair.write_h5ad(path)
    back = ad.read_h5ad(path)
    res = gcl.sim.perturb(back, gcl.sim.Knockout("F"), **KW)
    assert res.fates.loc["A-high", "p_lost"] == 0.5
