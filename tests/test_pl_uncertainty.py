"""The genome ensemble's uncertainty in the figures (issue 18 §2): ``gcl.pl.fate_shift`` labels
each fate with ``p_lost`` and hatches the uncertain calls, ``gcl.pl.screen`` writes ``p_lost``
where the members disagree and hatches the uncertain cells; a single genome's figures carry
only a legend that says so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba

import gclandscape as gcl
from _pair import pair_adata
from gclandscape.pl._sim import UNCERTAIN, uncertain
from gclandscape.pl._utils import PERTURBED_COLOR


def _gid(artists, gid):
    return [a for a in artists if a.get_gid() == gid]


def _result(p_lost, *, n_genomes: int, p_value=None) -> gcl.sim.PerturbationResult:
    """A hand-built result over three fates whose columns are known."""
    names = ["Ery", "Mk", "Mono"][: len(p_lost)]
    wt = np.array([0.4, 0.3, 0.3])[: len(p_lost)]
    pt = np.array([0.1, 0.3, 0.6])[: len(p_lost)]
    fates = pd.DataFrame(
        {
            "wt": wt,
            "perturbed": pt,
            "delta": pt - wt,
            "ci_low": pt - wt - 0.05,
            "ci_high": pt - wt + 0.05,
            "p_value": [0.5] * len(p_lost) if p_value is None else p_value,
            "p_lost": p_lost,
        },
        index=pd.Index(names, name="fate"),
    )
    return gcl.sim.PerturbationResult(
        perturbation="Gata1 KO", fates=fates, expression=pd.DataFrame(), log2fc=pd.Series(),
        decoded=None, score=0.3, null_scores=np.zeros(0), trajectories={}, times=np.zeros(0),
        params={"n_genomes": n_genomes},
    )  # fmt: skip


def _table(p_lost: dict) -> pd.DataFrame:
    """A screen table, 3 knockouts × 2 fates, with the given ``p_lost`` per (row, fate)."""
    rows = []
    for k, pert in enumerate(["A KO", "B KO", "C KO"]):
        for f, sign in (("F1", -1), ("F2", 1)):
            rows.append((pert, f, sign * 0.1 * (k + 1), 1e-4, p_lost.get((pert, f), 0.0)))
    return pd.DataFrame(rows, columns=["perturbation", "fate", "delta", "p_value", "p_lost"])


def _cell_of(ax, artist_xy) -> tuple[str, str]:
    """The (perturbation, fate) labels of the heatmap cell at data point ``artist_xy``."""
    rows = [t.get_text() for t in ax.get_yticklabels()]
    cols = [t.get_text() for t in ax.get_xticklabels()]
    x, y = artist_xy
    return rows[round(y)], cols[round(x)]


# ---------------------------------------------------------------------------------- fate_shift
def test_fate_shift_labels_each_fate_with_p_lost_and_hatches_the_uncertain_one():
    res = _result([0.4, 0.0, 1.0], n_genomes=5)
    ax = gcl.pl.fate_shift(res).axes[0]
    labels = _gid(ax.texts, "p_lost")
    assert [t.get_text() for t in labels] == ["p_lost 0.40", "p_lost 0.00", "p_lost 1.00"]
    assert [round(t.get_position()[0]) for t in labels] == [0, 1, 2]  # above its own fate
    bars = _gid(ax.patches, "perturbed")
    np.testing.assert_allclose([b.get_height() for b in bars], res.fates["perturbed"])
    # Ery (p_lost 0.40) is uncertain: hatched and lighter; the settled calls are solid
    assert bars[0].get_hatch()
    assert bars[0].get_facecolor()[3] < 0.5
    for b in bars[1:]:
        assert not b.get_hatch()
        assert b.get_facecolor() == pytest.approx(to_rgba(PERTURBED_COLOR))
    legend = ax.get_legend()
    assert "share of 5 genomes" in legend.get_title().get_text()
    entries = [t.get_text() for t in legend.get_texts()]
    assert entries == ["wild type", "Gata1 KO", "uncertain: 0.2 < p_lost < 0.8"]
    # the legend's perturbed entry is solid even though the first bar is hatched
    assert not legend.legend_handles[1].get_hatch()
    assert legend.legend_handles[2].get_hatch()


def test_fate_shift_stars_sit_above_the_p_lost_label():
    res = _result([0.6, 0.0, 0.0], n_genomes=3, p_value=[1e-4, 0.5, 0.02])
    fig = gcl.pl.fate_shift(res)
    ax = fig.axes[0]
    fig.draw_without_rendering()  # lays out the text, so extents are the drawn ones
    stars = _gid(ax.texts, "significance")
    assert [t.get_text() for t in stars] == ["***", "*"]
    labels = {round(t.get_position()[0]): t for t in _gid(ax.texts, "p_lost")}
    for s, fate in zip(stars, (0, 2), strict=True):
        label = labels[fate].get_window_extent()
        assert s.get_window_extent().y0 >= label.y1 - 1  # no overlap (1 px of rounding)


def test_fate_shift_single_genome_has_no_p_lost_labels_only_a_legend_note():
    res = _result([1.0, 0.0, 0.0], n_genomes=1)
    ax = gcl.pl.fate_shift(res).axes[0]
    assert _gid(ax.texts, "p_lost") == []
    assert not any(b.get_hatch() for b in ax.patches)
    assert ax.get_legend().get_title().get_text().startswith("single genome: no p_lost")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["wild type", "Gata1 KO"]


def test_uncertain_bounds_are_strict():
    p = np.array([0.0, UNCERTAIN[0], 0.21, 0.5, 0.79, UNCERTAIN[1], 1.0, np.nan])
    assert uncertain(p).tolist() == [False, False, True, True, True, False, False, False]
    # an ensemble whose calls are settled at the bounds draws no hatching
    ax = gcl.pl.fate_shift(_result([0.2, 0.8, 0.0], n_genomes=5)).axes[0]
    assert not any(b.get_hatch() for b in ax.patches)
    assert [t.get_text() for t in _gid(ax.texts, "p_lost")][:2] == ["p_lost 0.20", "p_lost 0.80"]


# ---------------------------------------------------------------------------------- screen
def test_screen_writes_p_lost_where_members_disagree_and_hatches_uncertain_cells():
    known = {("A KO", "F1"): 0.5, ("B KO", "F2"): 0.9, ("C KO", "F1"): 1.0}
    table = _table(known)
    ax = gcl.pl.screen(table).axes[0]
    # texts: every cell with 0 < p_lost < 1, at that cell, with its value
    texts = {_cell_of(ax, t.get_position()): t.get_text() for t in _gid(ax.texts, "p_lost")}
    assert texts == {("A KO", "F1"): "0.50", ("B KO", "F2"): "0.90"}
    # hatching: only the uncertain cell (0.9 is a settled call, 1.0 unanimous)
    boxes = _gid(ax.patches, "uncertain")
    assert len(boxes) == 1
    assert boxes[0].get_hatch()
    assert _cell_of(ax, boxes[0].get_center()) == ("A KO", "F1")
    legend = ax.get_legend()
    entries = [t.get_text() for t in legend.get_texts()]
    assert entries == [
        "p < 0.05",
        "p_lost: share of genomes losing the fate",
        "uncertain: 0.2 < p_lost < 0.8",
    ]
    assert legend.get_title().get_text() == "unmarked: all members agree"
    # the heatmap itself is still the table's delta
    (im,) = _gid(ax.images, "screen")
    d = table.set_index(["perturbation", "fate"])["delta"]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    cols = [t.get_text() for t in ax.get_xticklabels()]
    drawn = {(r, c): im.get_array()[i, j] for i, r in enumerate(rows) for j, c in enumerate(cols)}
    assert drawn == pytest.approx(d.to_dict())


def test_screen_single_genome_draws_no_marks_only_the_legend_note():
    table = _table({("A KO", "F1"): 1.0, ("C KO", "F1"): 1.0})  # p_lost 0 or 1 everywhere
    ax = gcl.pl.screen(table).axes[0]
    assert _gid(ax.texts, "p_lost") == []
    assert _gid(ax.patches, "uncertain") == []
    assert ax.get_legend().get_title().get_text().startswith("every p_lost is 0 or 1")
    # same heatmap and dots as a table without p_lost, which gets no legend
    bare = gcl.pl.screen(table.drop(columns="p_lost")).axes[0]
    assert bare.get_legend() is None
    np.testing.assert_array_equal(
        _gid(ax.images, "screen")[0].get_array(), _gid(bare.images, "screen")[0].get_array()
    )
    assert len(_gid(ax.collections, "significant")[0].get_offsets()) == 6


# ---------------------------------------------------------------------------------- end to end
def test_non_identifiable_pair_is_drawn_uncertain():
    """A and F are equal in the wild type: the genome where A holds the switch and the one
    where F does fit the data alike, and only one of them loses A-high on knocking out F."""
    adata = pair_adata(150)
    res = gcl.sim.perturb(adata, gcl.sim.Knockout("F"), n_cells=150, n_null=0)
    ax = gcl.pl.fate_shift(res).axes[0]
    assert [t.get_text() for t in _gid(ax.texts, "p_lost")] == ["p_lost 0.50", "p_lost 0.00"]
    assert [bool(b.get_hatch()) for b in _gid(ax.patches, "perturbed")] == [True, False]
    table = gcl.sim.screen(adata, [gcl.sim.Knockout("F"), gcl.sim.Knockout("B")], n_cells=150,
                           n_null=0, progress=False)  # fmt: skip
    ax = gcl.pl.screen(table).axes[0]
    (box,) = _gid(ax.patches, "uncertain")
    assert _cell_of(ax, box.get_center()) == ("F KO", "A-high")
