"""Issue 19 §4: a genome with a fast gene (a fitted gamma of 169 on 50,000 myeloid cells) must
not make ``gclandscape run`` diverge: the Euler step follows the genome's stiffness."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import expit

import gclandscape as gcl
from gclandscape._defaults import DT, RELAX_DT
from gclandscape._errors import GclDivergenceError, GclError
from gclandscape.engine import LinearField, SigmoidField
from gclandscape.engine._root_finding import STEP_SAFETY, stable_dt

W_TOGGLE = [[0.0, -10.0], [-10.0, 0.0]]
FAST = 169.0  # the degradation rate that made the 50,000-cell run diverge


def _toggle_attractors() -> np.ndarray:
    """The toggle's two stable states (x' = s(5 - 10 y) - x, y' = s(5 - 10 x) - y), by brentq
    on x = s(5 - 10 s(5 - 10 x)); the symmetric saddle (0.5, 0.5) is left out."""

    def g(x: float) -> float:
        return x - expit(5.0 - 10.0 * expit(5.0 - 10.0 * x))

    lo, hi = brentq(g, 0.0, 0.3, xtol=1e-14), brentq(g, 0.7, 1.0, xtol=1e-14)
    return np.array([[lo, expit(5.0 - 10.0 * lo)], [hi, expit(5.0 - 10.0 * hi)]])


def _fast_toggle() -> gcl.landscape.Genome:
    """The toggle with gene A 169 times faster (alpha and gamma both 169): same fixed points,
    but a fixed Euler step of 0.1 overshoots A's decay 17-fold and diverges."""
    return gcl.landscape.Genome(["A", "B"], W_TOGGLE, b=5.0, alpha=[FAST, 1.0], gamma=[FAST, 1.0])


def _adata(genome: gcl.landscape.Genome, n: int = 120) -> ad.AnnData:
    x = np.random.default_rng(0).uniform(0, 1, (n, 2))
    adata = ad.AnnData(x)
    adata.var_names = ["A", "B"]
    adata.obs["celltype"] = np.where(x[:, 0] > x[:, 1], "A-high", "B-high")
    genome.write_to_adata(adata)
    return adata


def test_stable_dt_halves_the_step_for_a_fast_decay():
    assert stable_dt(LinearField([[-1.0]]), [[1.0]], 0.1) == 0.1
    # 0.1 * 169 = 16.9 -> four halvings: 0.1 / 16 * 169 = 1.06 <= 1.8 (three: 2.1, unstable)
    assert stable_dt(LinearField([[-FAST]]), [[1.0]], 0.1) == pytest.approx(0.1 / 16)
    # 0.1 * 16.5 = 1.65: stable as it is (the default myeloid genome's largest rate)
    assert stable_dt(LinearField([[-16.5]]), [[1.0]], 0.1) == 0.1
    assert stable_dt(LinearField([[-19.0]]), [[1.0]], 0.1) == 0.05
    # the plain toggle is not stiff: the default steps stay as they were
    toggle = SigmoidField(W_TOGGLE, b=5.0)
    x = np.random.default_rng(0).uniform(0, 1, (50, 2))
    assert stable_dt(toggle, x, RELAX_DT) == RELAX_DT
    assert stable_dt(toggle, x, DT) == DT
    # a growing direction diverges at any step: it does not shrink the step
    assert stable_dt(LinearField([[50.0]]), [[1.0]], 0.1) == 0.1
    with pytest.raises(GclError, match="dt_max"):
        stable_dt(toggle, x, 0.0)


def test_stable_dt_safety_bounds_dt_times_rho():
    """safety=1 (a steady-state genome's step): no overshoot on any decaying mode."""
    # 0.4 * 1.8 = 0.72 <= 1 keeps 0.4; 0.4 * 3 = 1.2 halves once (0.6); 1.8 would keep it
    assert stable_dt(LinearField([[-1.8]]), [[1.0]], 0.4, safety=1.0) == 0.4
    assert stable_dt(LinearField([[-3.0]]), [[1.0]], 0.4, safety=1.0) == 0.2
    assert stable_dt(LinearField([[-3.0]]), [[1.0]], 0.4) == 0.4
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(GclError, match="safety"):
            stable_dt(LinearField([[-3.0]]), [[1.0]], 0.4, safety=bad)


@pytest.fixture(scope="module")
def fast_fitted() -> tuple[ad.AnnData, gcl.landscape.Landscape]:
    adata = _adata(_fast_toggle())
    return adata, gcl.landscape.fit_landscape(adata, groupby="celltype")


def test_fit_landscape_fast_gene_lands_on_the_toggle_attractors(fast_fitted):
    adata, land = fast_fitted
    assert land.params["dt"] < RELAX_DT
    assert land.params["dt"] * FAST <= STEP_SAFETY
    got = land.attractors.set_index("label")[["A", "B"]]
    want = _toggle_attractors()
    np.testing.assert_allclose(got.loc["B-high"].to_numpy(), want[0], atol=1e-6)
    np.testing.assert_allclose(got.loc["A-high"].to_numpy(), want[1], atol=1e-6)
    # A follows B at once (A = s(5 - 10 B)), so B alone picks the fate: the basin boundary
    # is near B = 0.5 (the saddle's level), not the diagonal of the plain toggle
    basin = adata.obs["gcl_landscape_basin"].astype(str).to_numpy()
    b = adata.X[:, 1]
    clear = np.abs(b - 0.5) > 0.1
    assert clear.sum() > 80
    assert (basin[clear] == np.where(b[clear] > 0.5, "B-high", "A-high")).all()


def test_fixed_step_diverges_on_the_fast_gene(monkeypatch):
    """What the run hit before the step followed the stiffness (the guard of the test above)."""
    import gclandscape.engine._fixed_points as fixed_points
    import gclandscape.landscape._landscape as landscape

    def fixed(field, states, dt_max, **kw):
        return dt_max

    monkeypatch.setattr(landscape, "stable_dt", fixed)
    monkeypatch.setattr(fixed_points, "stable_dt", fixed)
    with pytest.raises(GclDivergenceError, match="gamma from 1 to 169"):
        gcl.landscape.fit_landscape(_adata(_fast_toggle()), groupby="celltype")


def test_perturb_fast_gene_knockout(fast_fitted):
    """gcl.sim develops the fast genome with a stable step: knocking out B leaves every cell
    in the A-high state, at the toggle's A level."""
    from gclandscape.sim._simulation import step

    adata, _ = fast_fitted
    assert step(_fast_toggle(), adata.X) * FAST <= STEP_SAFETY
    res = gcl.sim.perturb(adata, gcl.sim.Knockout("B"), n_cells=60, n_null=0)
    assert res.lost_fates == ["B-high"]
    # A with B knocked out: x_A = s(5) (noise 0.05 moves the mean little)
    assert float(res.expression.loc["A", "perturbed"]) == pytest.approx(expit(5.0), abs=0.02)
    # the result records the steps it was developed with, not the package's default
    assert res.params["dt"] < DT
    assert res.params["dt"] * FAST <= STEP_SAFETY
    assert res.params["dt_perturbed"] * FAST <= STEP_SAFETY
