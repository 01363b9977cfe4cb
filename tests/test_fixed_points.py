"""Fixed points, their stability and the Jacobian, against analytic answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import brentq
from scipy.special import expit

from gclandscape._errors import GclDivergenceError, GclError
from gclandscape.engine import BooleanHillField, LinearField, SigmoidField
from gclandscape.engine._fixed_points import (
    FixedPoints,
    classify_fixed_points,
    find_fixed_points,
    fixed_point_starts,
    jacobian,
)


def _roots(h, lo, hi, n=20001):
    """All sign changes of h on a fine grid, refined with brentq."""
    grid = np.linspace(lo, hi, n)
    vals = h(grid)
    idx = np.flatnonzero(np.sign(vals[:-1]) * np.sign(vals[1:]) < 0)
    return np.array([brentq(h, grid[i], grid[i + 1], xtol=1e-15) for i in idx])


def toggle_reference(w, b1, b2, a=1.0, g=1.0):
    """Fixed points of x1 = k σ(-w x2 + b1), x2 = k σ(-w x1 + b2), k = a / g, by x1."""
    k = a / g
    x2_of = lambda x1: k * expit(-w * x1 + b2)  # noqa: E731
    x1s = _roots(lambda x1: x1 - k * expit(-w * x2_of(x1) + b1), 1e-12, k)
    return np.stack([x1s, x2_of(x1s)], axis=1)


def toggle(w=10.0, b1=5.0, b2=5.0, a=1.0, g=1.0):
    return SigmoidField([[0.0, -w], [-w, 0.0]], b=[b1, b2], alpha=a, gamma=g)


STARTS = np.random.default_rng(0).random((60, 2))


# ----------------------------------------------------------------------------- jacobian
def test_jacobian_linear_is_the_matrix():
    A = np.array([[-1.0, 2.0, 0.5], [0.0, -3.0, 1.0], [0.3, 0.0, -2.0]])
    J = jacobian(LinearField(A), np.random.default_rng(1).random((7, 3)))
    assert J.shape == (7, 3, 3)
    np.testing.assert_allclose(J.numpy(), np.broadcast_to(A, (7, 3, 3)), atol=1e-14)


def test_jacobian_sigmoid_closed_form_equals_autograd():
    r = np.random.default_rng(2)
    W = r.normal(0, 2, (5, 5))
    f = SigmoidField(W, b=r.normal(size=5), alpha=r.random(5) + 0.5, gamma=r.random(5) + 0.5)
    x = r.random((9, 5))
    # the closed form (SigmoidField) and the generic autograd pass (a plain wrapper)
    J_fast = jacobian(f, x).numpy()
    J_auto = jacobian(lambda t, z, args: f(t, z, args), x).numpy()
    s = expit(x @ W.T + f.b.numpy())
    J_ref = (f.alpha.numpy() * s * (1 - s))[:, :, None] * W - np.diag(f.gamma.numpy())
    np.testing.assert_allclose(J_fast, J_ref, atol=1e-12)
    np.testing.assert_allclose(J_auto, J_ref, atol=1e-12)


def test_jacobian_respects_args_override():
    f = SigmoidField([[0.0, -10.0], [-10.0, 0.0]], b=5.0)
    x = np.array([[0.3, 0.6]])
    J = jacobian(f, x, {"gamma": torch.tensor([2.0, 3.0])}).numpy()[0]
    J1 = jacobian(f, x).numpy()[0]
    np.testing.assert_allclose(np.diag(J - J1), [-1.0, -2.0], atol=1e-12)


# ----------------------------------------------------------------------------- toggle switch
@pytest.fixture(scope="module")
def toggle_fp():
    return find_fixed_points(toggle(), STARTS)


def test_toggle_symmetric_two_attractors_one_saddle(toggle_fp):
    fp = toggle_fp
    assert fp.type.tolist() == ["stable", "stable", "saddle"]
    assert fp.index.tolist() == [0, 0, 1]
    ref = toggle_reference(10.0, 5.0, 5.0)
    assert len(ref) == 3
    # attractors (sorted by x1) and saddle at the brentq solutions
    att = fp.attractors[np.argsort(fp.attractors[:, 0])]
    np.testing.assert_allclose(att, ref[[0, 2]], atol=1e-4)
    # the symmetric saddle solves x = σ(-w x + b) on the diagonal
    x_diag = brentq(lambda x: x - expit(-10.0 * x + 5.0), 0.0, 1.0, xtol=1e-15)
    np.testing.assert_allclose(fp.saddles[0], [x_diag, x_diag], atol=1e-4)
    np.testing.assert_allclose(fp.saddles[0], ref[1], atol=1e-4)
    # every start went to one of the two attractors, half-and-half by symmetry
    assert fp.n_starts[:2].sum() == len(STARTS)
    assert fp.residual.max() < 1e-9


def test_toggle_eigenvalues_match_analytic(toggle_fp):
    # at the saddle (s, s): J = [[-1, -w σ'], [-w σ', -1]] -> -1 ± w σ'(z)
    s = toggle_fp.saddles[0, 0]
    sp = expit(-10 * s + 5) * (1 - expit(-10 * s + 5))
    ev = toggle_fp.eigenvalues[2]
    np.testing.assert_allclose(ev.real, [-1 + 10 * sp, -1 - 10 * sp], atol=1e-10)
    assert (toggle_fp.max_real[:2] < 0).all()


def test_toggle_asymmetric_moves_as_the_analytic_solution():
    ref_sym = toggle_reference(10.0, 5.0, 5.0)
    ref = toggle_reference(10.0, 5.5, 5.0)  # gene 1 has the higher basal production
    fp = find_fixed_points(toggle(b1=5.5), STARTS)
    assert sorted(fp.type.tolist()) == ["saddle", "stable", "stable"]
    found = fp.states[np.argsort(fp.states[:, 0])]
    np.testing.assert_allclose(found, ref, atol=1e-4)
    # the analytic solution moves both attractors towards high x1 / low x2, and the saddle
    # towards the disfavoured attractor (x1 low), enlarging the favoured basin
    att, sad = [0, 2], 1
    assert (ref[att, 0] > ref_sym[att, 0]).all()
    assert (ref[att, 1] < ref_sym[att, 1]).all()
    assert ref[sad, 0] < ref[sad, 1]
    # ... and the search found them there (the shifts are far beyond the 1e-4 tolerance)
    assert (np.abs(ref - ref_sym) > 3e-3).all(axis=1).any()
    assert fp.saddles[0][0] < fp.saddles[0][1] - 0.04


def test_toggle_monostable_for_weak_repression():
    # w σ'(z) < 1 at the symmetric point: a single stable state on the diagonal
    fp = find_fixed_points(toggle(w=2.0, b1=1.0, b2=1.0), STARTS)
    assert fp.type.tolist() == ["stable"]
    x = brentq(lambda x: x - expit(-2.0 * x + 1.0), 0.0, 1.0, xtol=1e-15)
    np.testing.assert_allclose(fp.states[0], [x, x], atol=1e-6)


def test_boolean_hill_toggle_uses_autograd_and_finds_saddle():
    from gclandscape.datasets._rules import parse_rules

    f = BooleanHillField.from_network(parse_rules("A = not B\nB = not A"), hill=4.0, threshold=0.5)
    fp = find_fixed_points(f, STARTS)
    assert fp.type.tolist() == ["stable", "stable", "saddle"]
    # on the diagonal: x = 1 - h(x), h(x) = x^4 / (0.5^4 + x^4)
    x = brentq(lambda x: x - (1 - x**4 / (0.5**4 + x**4)), 0.0, 1.0, xtol=1e-15)
    np.testing.assert_allclose(fp.saddles[0], [x, x], atol=1e-6)
    # and the attractors satisfy x1 = 1 - h(x2), x2 = 1 - h(x1)
    h = lambda x: x**4 / (0.5**4 + x**4)  # noqa: E731
    for x1, x2 in fp.attractors:
        assert abs(x1 - (1 - h(x2))) < 1e-8
        assert abs(x2 - (1 - h(x1))) < 1e-8
        assert abs(x1 - x2) > 0.5


# ----------------------------------------------------------------------------- linear systems
def test_linear_stable_system():
    A = np.array([[-1.0, 2.0], [0.0, -3.0]])
    c = np.array([1.0, 2.0])
    fp = find_fixed_points(LinearField(A, c=c), np.random.default_rng(3).normal(size=(40, 2)))
    assert fp.type.tolist() == ["stable"]
    np.testing.assert_allclose(fp.states[0], -np.linalg.solve(A, c), atol=1e-10)
    np.testing.assert_allclose(np.sort(fp.eigenvalues[0].real), [-3.0, -1.0], atol=1e-10)
    np.testing.assert_allclose(fp.eigenvalues[0].imag, 0.0, atol=1e-12)
    assert fp.n_starts[0] == 40


def test_linear_saddle_is_classified_with_index():
    fp = classify_fixed_points(
        LinearField([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 2.0]]), [[0.0, 0.0, 0.0]]
    )
    assert fp.type.tolist() == ["saddle"]
    assert fp.index.tolist() == [2]
    np.testing.assert_allclose(fp.eigenvalues[0].real, [2.0, 1.0, -1.0])


def hopf(t, x, args):
    """Unstable spiral at 0 (eigenvalues 1 ± 2i) inside a stable limit cycle r = 1."""
    r2 = (x**2).sum(1, keepdim=True)
    rot = torch.stack([-x[:, 1], x[:, 0]], 1)
    return (1.0 - r2) * x + 2.0 * rot


def test_unstable_spiral_inside_limit_cycle_is_unstable():
    starts = np.random.default_rng(4).uniform(-2, 2, (80, 2))
    fp = find_fixed_points(hopf, starts, t_max=30.0, dt=0.02)
    assert fp.type.tolist() == ["unstable"]
    assert fp.index.tolist() == [2]
    np.testing.assert_allclose(fp.states[0], [0.0, 0.0], atol=1e-10)
    np.testing.assert_allclose(np.sort_complex(fp.eigenvalues[0]), [1 - 2j, 1 + 2j], atol=1e-10)
    assert len(find_fixed_points(hopf, starts, t_max=30.0, dt=0.02, include_unstable=False)) == 0


def test_saddles_false_returns_attractors_only():
    fp = find_fixed_points(toggle(), STARTS, saddles=False)
    assert fp.type.tolist() == ["stable", "stable"]


# ----------------------------------------------------------------------------- other fields
def test_grn_model_float32_module_is_analysed_in_float64():
    from gclandscape.engine._grn import GRNModel

    model = GRNModel(4, hidden=3, generator=torch.Generator().manual_seed(0))
    starts = np.random.default_rng(5).random((30, 4))
    fp = find_fixed_points(model, starts, saddles=False)
    assert len(fp) >= 1
    assert (fp.type == "stable").all()
    # the user's module is untouched: still float32 and trainable
    assert all(p.dtype == torch.float32 and p.requires_grad for p in (model.V, model.c))
    with torch.no_grad():
        f = model.double()(0.0, torch.from_numpy(fp.states), None).numpy()
    assert np.abs(f).max() < 1e-8  # float64 precision, not float32's 1e-7


# ----------------------------------------------------------------------------- errors
def test_stiff_field_gets_a_stable_step_and_divergence_names_the_step():
    # a stable but stiff field: Euler with dt = 0.1 would multiply by -4 every step; the step
    # follows the field's stiffness (stable_dt), so the fixed point at 0 is found
    stiff = LinearField([[-50.0]])
    fps = find_fixed_points(stiff, np.ones((3, 1)), dt=0.1)
    assert len(fps) == 1
    np.testing.assert_allclose(fps.states, [[0.0]], atol=1e-6)
    # a field that grows without bound keeps the step asked for and diverges, naming it
    with pytest.raises(GclDivergenceError, match=r"dt = 0\.1"):
        find_fixed_points(LinearField([[50.0]]), np.ones((3, 1)), dt=0.1)


def test_bad_inputs():
    f = toggle()
    with pytest.raises(GclError, match="NaN"):
        find_fixed_points(f, np.array([[0.1, np.nan]]))
    with pytest.raises(GclError, match="non-empty"):
        find_fixed_points(f, np.zeros((0, 2)))
    with pytest.raises(GclError, match="shape"):
        find_fixed_points(lambda t, x, a: x[:, :1], np.ones((2, 2)))
    with pytest.raises(GclError, match="callable"):
        find_fixed_points("toggle", np.ones((2, 2)))
    with pytest.raises(GclError, match="dt"):
        find_fixed_points(f, np.ones((2, 2)), dt=-1.0)
    with pytest.raises(GclError, match="genes"):
        fixed_point_starts(np.ones((3, 2)), attractors=np.ones((2, 3)))


# ----------------------------------------------------------------------------- helpers
def test_fixed_point_starts():
    x = np.random.default_rng(0).random((500, 3))
    s = fixed_point_starts(x, n_jitter=2, max_states=100, attractors=np.eye(3), n_between=2, seed=1)
    assert s.shape == (100 * 3 + 3 * 2, 3)
    assert (s >= 0).all()
    np.testing.assert_array_equal(
        s,
        fixed_point_starts(
            x, n_jitter=2, max_states=100, attractors=np.eye(3), n_between=2, seed=1
        ),
    )
    # the first 100 rows are observed states, the last 6 lie between attractor pairs
    assert {tuple(r) for r in s[:100]} <= {tuple(r) for r in x}
    np.testing.assert_allclose(s[-6:].sum(1), 1.0)


def test_fixed_points_frame_and_select(toggle_fp):
    df = toggle_fp.to_frame(genes=["A", "B"])
    assert list(df.columns) == ["type", "index", "max_real", "n_starts", "residual", "A", "B"]
    assert df["type"].tolist() == ["stable", "stable", "saddle"]
    sub = toggle_fp.select(toggle_fp.is_stable)
    assert isinstance(sub, FixedPoints)
    assert len(sub) == 2
    with pytest.raises(GclError, match="genes"):
        toggle_fp.to_frame(genes=["A"])


def embedded_toggles(n_genes=20, seed=1):
    """Two textbook toggles (genes 0-1 and 2-3) driving ``n_genes - 4`` downstream genes.

    Nothing feeds back into the toggles, so the fixed points are the products of the toggles'
    ones: 4 stable points, 4 index-1 saddles (one toggle at its saddle), 1 index-2 saddle, with
    the toggle genes at the 2-gene values.
    """
    r = np.random.default_rng(seed)
    W = r.normal(0, 1.0, (n_genes, n_genes)) * (r.random((n_genes, n_genes)) < 0.2)
    W[:4, :] = 0.0
    W[:, :4] *= 3.0
    b = r.normal(0, 1, n_genes)
    for i, j in ((0, 1), (2, 3)):
        W[i, j] = W[j, i] = -10.0
        b[i] = b[j] = 5.0
    return SigmoidField(W, b=b)


def test_embedded_toggles_all_fixed_points_in_20_genes():
    f = embedded_toggles()
    starts = fixed_point_starts(np.random.default_rng(2).random((300, 20)), n_jitter=1)
    fp = find_fixed_points(f, starts)
    assert fp.type.tolist() == ["stable"] * 4 + ["saddle"] * 5
    assert fp.index.tolist() == [0] * 4 + [1] * 4 + [2]
    lo, mid, hi = toggle_reference(10.0, 5.0, 5.0)[:, 0]
    pairs = {(round(a, 6), round(b, 6)) for a, b in fp.states[:, :2]} | {
        (round(a, 6), round(b, 6)) for a, b in fp.states[:, 2:4]
    }
    assert pairs == {
        (round(lo, 6), round(hi, 6)),
        (round(hi, 6), round(lo, 6)),
        (round(mid, 6), round(mid, 6)),
    }
    # the index counts the toggles sitting at their saddle
    at_saddle = (np.abs(fp.states[:, [0, 2]] - mid) < 1e-6).sum(1)
    np.testing.assert_array_equal(at_saddle, fp.index)
    # downstream genes sit at their own fixed point given the toggles
    np.testing.assert_allclose(f(0.0, torch.from_numpy(fp.states), None).numpy(), 0.0, atol=1e-9)
    assert fp.n_starts[:4].sum() == len(starts)
