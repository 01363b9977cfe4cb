"""Minimum-action paths and barrier heights, against analytic answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gclandscape._errors import GclError
from gclandscape.engine import SigmoidField
from gclandscape.engine._fixed_points import find_fixed_points
from gclandscape.engine._paths import (
    minimum_action_path,
    saddle_connections,
    transition_paths,
)

R = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)


def double_well(c=0.0):
    """``f = -(I + c R) ∇V`` with ``V = (x² - 1)² + y²``.

    The rotational part ``-c R ∇V`` is orthogonal to ``∇V``, so for every ``c`` the
    quasi-potential is exactly ``U = 2 V``: both barriers are ``2 (V(0) - V(±1)) = 2``, while
    for ``c != 0`` the system is not a gradient system and the minimum-action path is curved.
    """

    def f(t, x, args):
        g = torch.stack([4 * x[:, 0] * (x[:, 0] ** 2 - 1), 2 * x[:, 1]], 1)
        return -(g + c * g @ R.T)

    return f


def toggle(b1=5.0, b2=5.0):
    return SigmoidField([[0.0, -10.0], [-10.0, 0.0]], b=[b1, b2])


STARTS = np.random.default_rng(0).random((60, 2))


def embedded_toggles(n_genes=20, seed=1):
    """Two toggles (genes 0-1, 2-3) driving downstream genes that do not feed back."""
    r = np.random.default_rng(seed)
    W = r.normal(0, 1.0, (n_genes, n_genes)) * (r.random((n_genes, n_genes)) < 0.2)
    W[:4, :] = 0.0
    W[:, :4] *= 3.0
    b = r.normal(0, 1, n_genes)
    for i, j in ((0, 1), (2, 3)):
        W[i, j] = W[j, i] = -10.0
        b[i] = b[j] = 5.0
    return SigmoidField(W, b=b)


@pytest.fixture(scope="module")
def gradient_path():
    return minimum_action_path(double_well(), [-1.0, 0.0], [1.0, 0.0], n_points=40)


def test_gradient_double_well_barrier_is_twice_the_potential_difference(gradient_path):
    tp = gradient_path
    assert tp.barrier_forward == pytest.approx(2.0, rel=2e-3)
    assert tp.barrier_backward == pytest.approx(2.0, rel=2e-3)
    # the saddle was found on the path (none given) and polished to the origin
    np.testing.assert_allclose(tp.saddle, [0.0, 0.0], atol=1e-9)
    assert tp.saddle_position == 39
    np.testing.assert_allclose(tp.path[tp.saddle_position], tp.saddle, atol=1e-12)
    # gradient system: the path is the x axis, from A through the saddle to B
    np.testing.assert_allclose(tp.path[:, 1], 0.0, atol=1e-8)
    np.testing.assert_allclose(tp.path[[0, -1]], [[-1.0, 0.0], [1.0, 0.0]])
    # the action accumulates uphill and stays flat downhill
    assert tp.action[tp.saddle_position] == pytest.approx(tp.barrier_forward)
    assert tp.action[-1] - tp.action[tp.saddle_position] < 1e-3
    assert np.all(np.diff(tp.action) > -1e-12)
    assert tp.converged


def test_noise_rescales_the_barrier(gradient_path):
    tp = minimum_action_path(double_well(), [-1.0, 0.0], [1.0, 0.0], n_points=40, noise=0.5)
    assert tp.barrier_forward == pytest.approx(gradient_path.barrier_forward / 0.25, rel=1e-6)
    # per-gene noise: only y noisier -> the straight path costs the same (it moves in x only)
    tp2 = minimum_action_path(double_well(), [-1.0, 0.0], [1.0, 0.0], n_points=40, noise=[1.0, 3.0])
    assert tp2.barrier_forward == pytest.approx(gradient_path.barrier_forward, rel=1e-6)


def test_one_dimensional_gradient_barrier():
    # f = -V'(x), V = x^4/4 - x^2/2: wells at ±1, saddle at 0, barrier 2 (V(0) - V(1)) = 0.5
    def f(t, x, args):
        return x - x**3

    tp = minimum_action_path(f, [-1.0], [1.0], saddle=[0.0], n_points=40)
    assert tp.barrier_forward == pytest.approx(0.5, rel=1e-3)
    assert tp.barrier_backward == pytest.approx(0.5, rel=1e-3)
    assert tp.saddle_id == -1


def test_non_gradient_double_well_keeps_the_quasi_potential():
    tp = minimum_action_path(double_well(c=1.0), [-1.0, 0.0], [1.0, 0.0], n_points=40)
    assert tp.barrier_forward == pytest.approx(2.0, rel=5e-3)
    assert tp.barrier_backward == pytest.approx(2.0, rel=5e-3)
    np.testing.assert_allclose(tp.saddle, [0.0, 0.0], atol=1e-9)
    # the uphill path is curved, not the straight line a gradient system would take, and
    # is strictly cheaper than the straight line (whose action is larger)
    assert np.abs(tp.path[:40, 1]).max() > 0.2
    straight = minimum_action_path(
        double_well(c=1.0), [-1.0, 0.0], [1.0, 0.0], n_points=40, max_rounds=0
    )
    assert straight.barrier_forward > 2.1


def test_toggle_switch_symmetric_barriers_are_equal():
    fp = find_fixed_points(toggle(), STARTS)
    df = transition_paths(toggle(), fp.attractors, fp.saddles, n_points=30)
    assert len(df) == 1
    row = df.iloc[0]
    assert (row.source, row.target, row.saddle) == (0, 1, 0)
    assert row.barrier_forward > 0.01
    assert row.barrier_forward == pytest.approx(row.barrier_backward, rel=1e-3)
    # the paths run attractor -> saddle -> attractor
    np.testing.assert_allclose(row.path[0], fp.attractors[0], atol=1e-12)
    np.testing.assert_allclose(row.path[-1], fp.attractors[1], atol=1e-12)
    np.testing.assert_allclose(row.path[29], fp.saddles[0], atol=1e-12)
    np.testing.assert_allclose(row.path_reverse[0], fp.attractors[1], atol=1e-12)
    # by the symmetry x1 <-> x2 the reverse path is the mirror image of the forward one
    np.testing.assert_allclose(row.path_reverse[:30], row.path[:30, ::-1], atol=1e-3)


def test_toggle_switch_asymmetric_favoured_attractor_has_the_higher_barrier():
    f = toggle(b1=5.5)  # gene 1 favoured
    fp = find_fixed_points(f, STARTS)
    att = fp.attractors
    hi = int(np.argmax(att[:, 0]))  # the x1-high (favoured) attractor
    tp = minimum_action_path(f, att[hi], att[1 - hi], saddles=fp.saddles, n_points=30)
    assert tp.saddle_id == 0
    np.testing.assert_allclose(tp.saddle, fp.saddles[0], atol=1e-9)
    assert tp.barrier_forward > 1.2 * tp.barrier_backward
    # the symmetric switch lies in between
    sym = find_fixed_points(toggle(), STARTS)
    b_sym = minimum_action_path(
        toggle(), sym.attractors[0], sym.attractors[1], saddle=sym.saddles[0], n_points=30
    )
    assert tp.barrier_backward < b_sym.barrier_forward < tp.barrier_forward


def test_saddle_connections():
    fp = find_fixed_points(toggle(), STARTS)
    conn = saddle_connections(toggle(), fp.attractors, fp.states)
    # rows: attractor, attractor, saddle -> only the saddle connects the two attractors
    assert conn[:2].tolist() == [[-1, -1], [-1, -1]]
    assert sorted(conn[2].tolist()) == [0, 1]
    # with one attractor missing the far end is unmatched
    one = saddle_connections(toggle(), fp.attractors[:1], fp.saddles)
    assert sorted(one[0].tolist()) == [-1, 0]


def test_transition_paths_without_saddles_is_empty():
    fp = find_fixed_points(toggle(), STARTS, saddles=False)
    df = transition_paths(toggle(), fp.attractors, np.zeros((0, 2)))
    assert len(df) == 0
    assert "barrier_forward" in df.columns


def test_bad_inputs():
    f = double_well()
    with pytest.raises(GclError, match="not a fixed point"):
        minimum_action_path(f, [-0.5, 0.0], [1.0, 0.0])
    with pytest.raises(GclError, match="saddle is not a fixed point"):
        minimum_action_path(f, [-1.0, 0.0], [1.0, 0.0], saddle=[0.1, 0.0])
    with pytest.raises(GclError, match="noise"):
        minimum_action_path(f, [-1.0, 0.0], [1.0, 0.0], noise=-1.0)
    with pytest.raises(GclError, match="same state"):
        minimum_action_path(f, [1.0, 0.0], [1.0, 0.0])
    with pytest.raises(GclError, match="genes"):
        minimum_action_path(f, [-1.0, 0.0], [1.0, 0.0, 0.0])
    with pytest.raises(GclError, match="n_points"):
        minimum_action_path(f, [-1.0, 0.0], [1.0, 0.0], n_points=2)


def test_embedded_toggle_barriers_equal_the_two_gene_toggle():
    """Downstream genes that do not feed back follow the flow for free, so every barrier of
    two toggles embedded in 20 genes equals the 2-gene toggle's barrier."""
    fp2 = find_fixed_points(toggle(), STARTS)
    ref = minimum_action_path(
        toggle(), fp2.attractors[0], fp2.attractors[1], saddle=fp2.saddles[0], n_points=30
    ).barrier_forward
    f = embedded_toggles()
    fp = find_fixed_points(f, np.random.default_rng(2).random((100, 20)))
    df = transition_paths(f, fp.attractors, fp.saddles, n_points=30)
    # 4 attractors on a square: 4 edges, each through one index-1 saddle
    assert len(df) == 4
    assert sorted(df["saddle"].tolist()) == [0, 1, 2, 3]
    np.testing.assert_allclose(df["barrier_forward"], ref, rtol=3e-3)
    np.testing.assert_allclose(df["barrier_backward"], ref, rtol=3e-3)
    # each edge flips exactly one toggle
    for s, t in zip(df["source"], df["target"]):
        flipped = np.abs(fp.attractors[s, :4] - fp.attractors[t, :4]) > 0.5
        assert flipped.sum() == 2
