"""The landscape's fixed-point search for large genomes: fewer starts, a float32
relaxation, and a second search from cells that reach no attractor found only when they
lead somewhere new (gclandscape.landscape._attractors, engine.find_fixed_points)."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

import gclandscape as gcl
from gclandscape import engine
from gclandscape._errors import GclError
from gclandscape.engine import SigmoidField, find_fixed_points
from gclandscape.landscape import _attractors
from gclandscape.landscape._attractors import _attractor_analysis, _has_new, _max_starts

W_TOGGLE = [[0.0, -10.0], [-10.0, 0.0]]


def _searches(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The fixed-point searches that ran, by their log line."""
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("found ")]


def test_max_starts_scales_down_for_large_genomes():
    # unchanged up to 50 genes (the myeloid genome has 11)
    assert _max_starts(2) == _max_starts(11) == _max_starts(50) == 1000
    # then MAX_STARTS * 50 / G: Paul15's 200 genes get 250 observed starts
    assert _max_starts(51) == 980
    assert _max_starts(200) == 250
    assert _max_starts(100_000) == 100  # never below MIN_STARTS
    assert _max_starts(200, max_starts=80) == 80  # never above the caller's cap


def test_has_new_compares_on_the_max_norm():
    known = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert not _has_new(np.zeros((0, 2)), known)
    assert not _has_new(known[::-1] + 5e-5, known)
    assert _has_new(np.array([[0.0, 1.0 + 2e-4]]), known)
    assert _has_new(known, np.zeros((0, 2)))


#: dtypes of the states the recording field below was called with (a global: the search
#: works on copies of the module)
SEEN: list[torch.dtype] = []


class _RecordingToggle(torch.nn.Module):
    """The toggle switch x' = sigmoid(5 - 10 y) - x (and symmetric), noting its input dtype."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("w", torch.tensor([[0.0, -10.0], [-10.0, 0.0]]))

    def forward(self, t, x, args=None):
        SEEN.append(x.dtype)
        return torch.sigmoid(x @ self.w.T + 5.0) - x


def test_float32_relaxation_finds_the_same_fixed_points():
    starts = np.random.default_rng(0).random((60, 2))
    ref = find_fixed_points(_RecordingToggle(), starts)
    SEEN.clear()
    fp = find_fixed_points(_RecordingToggle(), starts, relax_dtype=torch.float32)
    assert torch.float32 in SEEN  # the relaxation
    assert torch.float64 in SEEN  # Newton, polishing, classification
    assert fp.type.tolist() == ref.type.tolist() == ["stable", "stable", "saddle"]
    np.testing.assert_allclose(fp.states, ref.states, atol=1e-9)
    assert fp.states.dtype == np.float64
    assert (fp.residual <= 1e-9).all()
    assert fp.n_starts.tolist() == ref.n_starts.tolist()
    with pytest.raises(GclError, match=r"relax_dtype must be torch\.float32 or torch\.float64"):
        find_fixed_points(_RecordingToggle(), starts, relax_dtype=torch.float16)


def test_large_genome_search_uses_fewer_starts(monkeypatch):
    dtypes = []
    original = engine.find_fixed_points

    def spy(*args, **kwargs):
        dtypes.append(kwargs["relax_dtype"])
        return original(*args, **kwargs)

    monkeypatch.setattr(engine, "find_fixed_points", spy)
    # 200 independent genes (W = 0): one attractor, x_i = sigmoid(b_i)
    n_genes = 200
    b = np.linspace(-2.0, 2.0, n_genes)
    field = SigmoidField(np.zeros((n_genes, n_genes)), b=b)
    states = np.random.default_rng(0).uniform(0.0, 1.0, (300, n_genes))
    res = _attractor_analysis(field, states, genes=[f"g{i}" for i in range(n_genes)])
    # 250 observed states, one jittered copy each, 200 random box states
    assert res["n_starts"] == 250 * 2 + 200
    assert dtypes == [torch.float32]
    np.testing.assert_allclose(res["attractor_states"], [1.0 / (1.0 + np.exp(-b))], atol=1e-8)
    assert res["basin"].tolist() == [0] * 300


def test_fit_landscape_records_the_starts():
    genome = gcl.landscape.Genome(["A", "B"], W_TOGGLE, b=5.0)
    x = np.random.default_rng(0).uniform(0, 1, (300, 2))
    adata = ad.AnnData(x)
    adata.var_names = ["A", "B"]
    genome.write_to_adata(adata)
    land = gcl.landscape.fit_landscape(adata)
    assert land.params["n_starts"] == 300 * 2 + 200


def test_stuck_cells_do_not_repeat_the_full_search(caplog):
    """Cells sitting on the toggle's saddle never reach an attractor: their end states are
    relaxed again (attractors only), find nothing new, and the full search is not rerun."""
    field = SigmoidField(W_TOGGLE, b=5.0)
    gen = np.random.default_rng(1)
    a_high = np.clip(np.array([1.0, 0.0]) + 0.05 * gen.standard_normal((20, 2)), 0, 1)
    states = np.concatenate([a_high, a_high[:, ::-1], [[0.5, 0.5], [0.5, 0.5]]])
    groups = pd.Series(["A"] * 20 + ["B"] * 20 + ["mid", "mid"])
    with caplog.at_level(logging.INFO, logger="gclandscape"):
        res = _attractor_analysis(field, states, genes=["A", "B"], groups=groups)
    found = _searches(caplog)
    assert len(found) == 2, found
    assert found[0].startswith("found 3 fixed points (2 stable, 1 saddles)")
    assert found[1] == "found 1 fixed points (0 stable, 1 saddles) from 1 starts"
    assert "2 cells did not reach an attractor" in caplog.text
    assert sorted(res["labels"]) == ["A", "B"]
    assert len(res["saddle_states"]) == 1
    np.testing.assert_allclose(res["saddle_states"][0], [0.5, 0.5], atol=1e-9)


def test_missed_attractor_is_found_by_the_second_search(caplog, monkeypatch):
    """With one observed start and no box starts the first search sees only A-high; the
    B-high cell develops to an attractor it does not know, so the search runs again and
    finds B-high and the saddle between them."""
    monkeypatch.setattr(_attractors, "N_BOX", 0)
    field = SigmoidField(W_TOGGLE, b=5.0)
    gen = np.random.default_rng(0)
    a_high = np.clip(np.array([1.0, 0.0]) + 0.05 * gen.standard_normal((20, 2)), 0, 1)
    states = np.concatenate([a_high, [[0.05, 0.95]]])
    groups = pd.Series(["A"] * 20 + ["B"])
    with caplog.at_level(logging.INFO, logger="gclandscape"):
        res = _attractor_analysis(field, states, genes=["A", "B"], groups=groups, max_starts=1)
    found = _searches(caplog)
    assert [f.split(" from ")[0] for f in found] == [
        "found 1 fixed points (1 stable, 0 saddles)",  # the first search: A-high only
        "found 1 fixed points (1 stable, 0 saddles)",  # the B-high cell's end state
        "found 3 fixed points (2 stable, 1 saddles)",  # the full search again
    ]
    assert res["labels"] == ["A", "B"]
    assert res["basin"].tolist() == [0] * 20 + [1]
    b_high = res["attractor_states"][1]
    assert b_high[1] > 0.9 > 0.1 > b_high[0]
    np.testing.assert_allclose(res["saddle_states"][0], [0.5, 0.5], atol=1e-9)
