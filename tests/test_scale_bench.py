"""Helpers of the scale benchmark (benchmarks/scale.py): the goal rows and the screen's list of
perturbations, on cases whose answers are known."""

from __future__ import annotations

import os
import sys
from math import comb
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import scale


def test_ratio_row_times_and_speedup():
    row = scale.ratio_row("fit", 45.0, 30.0, "s", 2.04)
    assert row["measured / goal"] == 1.5
    assert row["met"] == "NO"
    assert row["goal"] == "≤ 30 s"
    assert row["load"] == 2.0
    assert scale.ratio_row("fit", 30.0, 30.0, "s", 0.0)["met"] == "yes"  # the bound is met
    fast = scale.ratio_row("dask", 1.8, 1.7, "x", 1.0, higher_is_better=True)
    assert fast["met"] == "yes"
    assert fast["goal"] == "≥ 1.7 x"
    assert scale.ratio_row("dask", 1.2, 1.7, "x", 1.0, higher_is_better=True)["met"] == "NO"


def test_screen_perturbations_are_distinct_combinations_by_size():
    genes = ["A", "B", "C", "D"]
    perts = scale.screen_perturbations(genes, 8)
    names = [p.name for p in perts]
    assert len(set(names)) == 8
    # all 4 single knockouts first, then the first 4 of the 6 pairs in combination order
    assert [sorted(p.genes) for p in perts[:5]] == [["A"], ["B"], ["C"], ["D"], ["A", "B"]]
    assert [len(p.genes) for p in perts] == [1] * 4 + [2] * 4
    # the full benchmark's 1,000 from the 11 myeloid regulators: sizes 1..5 (1,023 exist)
    eleven = [f"g{i}" for i in range(11)]
    assert sum(comb(11, k) for k in range(1, 5)) < 1000 <= sum(comb(11, k) for k in range(1, 6))
    assert {len(p.genes) for p in scale.screen_perturbations(eleven, 1000)} == {1, 2, 3, 4, 5}
    with pytest.raises(ValueError, match="only 15 knockout combinations"):
        scale.screen_perturbations(genes, 16)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_rss_of_this_process_is_read():
    kib = scale._rss_kib(os.getpid())
    assert 10_000 < kib < 64 * 2**20  # this Python with pytest: more than 10 MiB, < 64 GiB
    assert scale._rss_kib(2**22 + 12345) == 0  # no such process: 0, no error
