"""Issue 19 §4: ``gclandscape run``'s screen step simulates each knockout once; the
whole-transcriptome predictions come from the screen's own simulations."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import gclandscape as gcl
from gclandscape._pipeline._context import RunContext
from gclandscape._pipeline._steps_genome import step_screen

N_SIM = 60  # cells per condition of the screen (the null's use N_NULL_CELLS)


@pytest.fixture(scope="module")
def fitted() -> ad.AnnData:
    """A three-gene genome: the toggle A ⊣ B ⊣ A, and C activated by A (a gene whose level a
    knockout of B raises)."""
    w = [[0.0, -10.0, 0.0], [-10.0, 0.0, 0.0], [6.0, 0.0, 0.0]]
    genome = gcl.landscape.Genome(["A", "B", "C"], w, b=[5.0, 5.0, -3.0])
    x = np.random.default_rng(1).uniform(0, 1, (150, 3))
    adata = ad.AnnData(x)
    adata.var_names = ["A", "B", "C"]
    adata.obs["celltype"] = pd.Categorical(np.where(x[:, 0] > x[:, 1], "A-high", "B-high"))
    genome.write_to_adata(adata)
    gcl.landscape.fit_landscape(adata, groupby="celltype")
    return adata


def _spy(monkeypatch) -> list[tuple[str | None, int]]:
    """Record (perturbation name, n_cells) of every simulation, wherever it is called from."""
    from gclandscape.sim import _perturb, _screen, _simulation, _statistics

    calls: list[tuple[str | None, int]] = []
    real = _simulation.simulate

    def spy(setup, perturbation, *, n_cells, seed, n_save=None):
        calls.append((None if perturbation is None else perturbation.name, n_cells))
        return real(setup, perturbation, n_cells=n_cells, seed=seed, n_save=n_save)

    for mod in (_simulation, _screen, _perturb, _statistics):
        monkeypatch.setattr(mod, "simulate", spy)
    return calls


def test_screen_step_simulates_each_knockout_once(fitted, tmp_path, monkeypatch):
    calls = _spy(monkeypatch)
    ctx = RunContext(
        adata=fitted, out=tmp_path, input="toy", groupby="celltype", work=fitted.copy(),
        n_sim_cells=N_SIM,
    )  # fmt: skip
    step_screen(ctx)
    screened = [(name, n) for name, n in calls if n == N_SIM]  # the null's cells are other
    assert sorted(screened, key=str) == [("A KO", N_SIM), ("B KO", N_SIM), ("C KO", N_SIM),
                                         (None, N_SIM)]  # fmt: skip
    assert list(ctx.log2fc.columns) == ["A KO", "B KO", "C KO"]
    assert ctx.summary["screen"]["strongest"] in ("A KO", "B KO")
    calls.clear()

    # the old path: gcl.sim.perturb of each knockout with the screen's settings (same seed)
    for gene in ("A", "B", "C"):
        old = gcl.sim.perturb(
            fitted, gcl.sim.Knockout(gene), n_cells=N_SIM, seed=0, decode=False, n_null=0
        )
        pd.testing.assert_series_equal(
            ctx.log2fc[old.perturbation], old.log2fc.rename(old.perturbation),
            check_names=False, check_index_type=False, rtol=0, atol=0,
        )  # fmt: skip
    assert calls.count((None, N_SIM)) == 3  # the old path simulated the wild type each time
    # the fate-shift figure's result: the same fates as the old path's
    strongest = ctx.strongest.perturbation
    old = gcl.sim.perturb(
        fitted, gcl.sim.Knockout(strongest.split()[0]), n_cells=N_SIM, seed=0, decode=False,
        n_null=0,
    )  # fmt: skip
    pd.testing.assert_frame_equal(ctx.strongest.fates, old.fates)
    # B's knockout raises C (A -> C)
    assert ctx.log2fc.loc["C", "B KO"] > 0.5
