"""Minimum-action transition paths between attractors and their barrier heights.

For the SDE ``dx = f(x) dt + sigma dW`` (additive noise, ``sigma`` a scalar or one value per
gene) the Freidlin–Wentzell action of a path ``phi`` is
``S_T[phi] = 1/2 ∫ |phi' - f(phi)|²_a dt`` with the metric ``|v|²_a = sum_i v_i² / sigma_i²``.
Minimised over the duration ``T`` it becomes the *geometric action* (Heymann &
Vanden-Eijnden's gMAM, Comm. Pure Appl. Math. 2008)

.. math::

    \\hat S[\\phi] = \\int_0^1 \\big(|\\phi'|_a\\,|f(\\phi)|_a - \\langle \\phi', f(\\phi)\\rangle_a\\big)\\, ds,

which does not depend on how the curve is parametrised. The quasi-potential barrier of the
escape from attractor A over the saddle s towards B is the least geometric action of a curve
from A to s, ``ΔU(A→B) = min Ŝ[A→s]``; the descent from s to B (along the saddle's unstable
manifold) costs nothing. In the small-noise limit the stationary density is
``P_ss ∝ exp(-U)`` and the mean escape time grows like ``exp(ΔU)``.

**Normalisation.** Barriers are reported in units of ``-ln P_ss`` for the given ``noise``:
``barrier = min Ŝ`` in the metric of ``noise``. With the default ``noise=1`` this is the
plain Freidlin–Wentzell action ``S``; a scalar ``sigma`` gives ``S / sigma²``. For a gradient
system ``f = -∇V`` with ``noise=1``, ``S = 2 ΔV``, e.g. ``2`` for the double well
``V = (x² - 1)² + y²`` in both directions.

**Discretisation.** The curve is a polyline of ``n_points`` points with fixed end points; the
action is summed over segments with ``f`` at the segment midpoints, the interior points are
optimised with ``torch.optim.LBFGS`` (autograd gradients), and the points are redistributed
to equal arc length (in the noise metric) after every L-BFGS round, until the action changes
by less than ``rtol``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._defaults import DT, T_RELAX
from .._errors import GclError
from .._utils import logger
from ._field_checks import VectorField, _as_states, _attractors_and_saddles, _prepare_field
from ._gmam import _cumulative, _gmam, _noise_weights, _reparam
from ._root_finding import _polish, _speed
from ._saddle_connections import _descents, _unstable_direction, saddle_connections

__all__ = ["TransitionPath", "minimum_action_path", "saddle_connections", "transition_paths"]


def _descent_to(
    traj: torch.Tensor, target: np.ndarray, w: torch.Tensor, n: int
) -> tuple[torch.Tensor, float]:
    """The branch that ends nearer ``target``, cut where it comes closest, ending at ``target``."""
    tgt = torch.from_numpy(target)
    dist = (traj - tgt).abs().amax(dim=2)  # (n_steps, 2)
    k = int(torch.argmin(dist[-1]))
    stop = int(torch.argmin(dist[:, k]))
    path = torch.cat([traj[: stop + 1, k], tgt[None]])
    return _reparam(path, w, n), float(dist[stop, k])


@dataclass
class TransitionPath:
    """A minimum-action transition between two attractors, in both directions.

    Attributes
    ----------
    path
        ``(2 n_points - 1, G)`` states from A up to the saddle (``n_points`` rows, the
        minimum-action uphill curve) and down to B (the deterministic descent).
    path_reverse
        The same from B over the saddle to A (in non-gradient systems the uphill curves of
        the two directions differ).
    action
        ``(2 n_points - 1,)`` cumulative geometric action along ``path`` (flat after the
        saddle).
    action_reverse
        The same along ``path_reverse``.
    barrier_forward
        ``ΔU(A→B)``: least action from A to the saddle, in units of ``-ln P_ss`` for the noise
        used (see the module docstring).
    barrier_backward
        ``ΔU(B→A)``, likewise from B.
    saddle
        ``(G,)`` the index-1 saddle crossed, or ``None`` when none was found (then the
        barriers are the actions of the whole A→B and B→A curves).
    saddle_id
        Row of the matched saddle in the ``saddles`` given, or -1.
    saddle_position
        Row of the saddle in ``path`` (``n_points - 1``), or -1.
    converged
        Whether every path optimisation met ``rtol`` and both descents reached their attractor.

    Examples
    --------
    >>> from gclandscape.engine import SigmoidField
    >>> from gclandscape.engine._paths import minimum_action_path
    >>> toggle = SigmoidField([[0.0, -10.0], [-10.0, 0.0]], b=5.0)
    >>> a, b = [0.992812, 0.007188], [0.007188, 0.992812]
    >>> tp = minimum_action_path(toggle, a, b, saddle=[0.5, 0.5], fixed_tol=1e-5, n_points=20)
    >>> round(tp.barrier_forward / tp.barrier_backward, 3)
    1.0
    """

    path: np.ndarray
    path_reverse: np.ndarray
    action: np.ndarray
    action_reverse: np.ndarray
    barrier_forward: float
    barrier_backward: float
    saddle: np.ndarray | None
    saddle_id: int
    saddle_position: int
    converged: bool


def _saddle_on_path(
    fn: VectorField,
    args: Any,
    path: torch.Tensor,
    a: np.ndarray,
    b: np.ndarray,
    tol: float,
    sep: float,
) -> np.ndarray | None:
    """Polish the local minima of the speed along a path; return the first index-1 saddle."""
    sp = _speed(fn, path, args).numpy()
    inner = np.arange(1, len(sp) - 1)
    is_min = (sp[inner] <= sp[inner - 1]) & (sp[inner] <= sp[inner + 1])
    for i in inner[is_min][np.argsort(sp[inner][is_min])][:5]:
        x, res = _polish(fn, args, path[i].numpy().copy(), tol)
        if res > tol or min(np.abs(x - a).max(), np.abs(x - b).max()) <= sep:
            continue
        if _unstable_direction(fn, args, x)[1] == 1:
            return x
    return None


# ---------------------------------------------------------------------------------- API
def minimum_action_path(
    field: VectorField,
    x_a: Any,
    x_b: Any,
    *,
    args: Any = None,
    saddle: Any = None,
    saddles: Any = None,
    n_points: int = 50,
    noise: Any = 1.0,
    rtol: float = 1e-4,
    max_rounds: int = 100,
    t_max: float = T_RELAX,
    dt: float = DT,
    fixed_tol: float = 1e-6,
    match_tol: float = 1e-3,
) -> TransitionPath:
    """Minimum-action (gMAM) transition paths between two attractors and both barriers.

    Parameters
    ----------
    field
        Vector field ``field(t, x, args) -> dx/dt``, differentiable by torch autograd.
    x_a, x_b
        ``(G,)`` the two attractors (fixed points, e.g. from ``find_fixed_points``).
    args
        Passed to ``field``; overrides must broadcast over any number of rows.
    saddle
        ``(G,)`` the index-1 saddle between them, when known. Without it a full A→B curve is
        optimised first, and the local minima of the speed ``|f|`` along it are polished with a
        root finder until one is an index-1 saddle.
    saddles
        Optional ``(m, G)`` known saddles; ``saddle_id`` is the row within ``match_tol`` of the
        saddle crossed.
    n_points
        Points on each uphill curve (and on each descent).
    noise
        Noise strength ``sigma`` of ``dx = f dt + sigma dW``: a positive scalar or one value per
        gene. Barriers are in units of ``-ln P_ss`` for this noise; a scalar only rescales them
        (``barrier(sigma) = barrier(1) / sigma²``), the paths do not change.
    rtol
        Stop optimising when two L-BFGS rounds in a row lower the action by less than this
        (relative). The discretisation error is larger (about ``1 / n_points²``).
    max_rounds
        Maximal number of L-BFGS rounds (40 iterations each, then an equal-arc-length
        redistribution).
    t_max, dt
        Integration of the descent from the saddle (Euler, ``dt``).
    fixed_tol
        ``x_a``, ``x_b`` and ``saddle`` must satisfy ``max |f(x)| <= fixed_tol``.
    match_tol
        Max-norm distance within which the saddle crossed matches a row of ``saddles``.

    Returns
    -------
    :class:`TransitionPath` with ``barrier_forward`` = ΔU(A→B) and ``barrier_backward`` =
    ΔU(B→A). When the saddle's unstable manifold does not lead to both attractors (A and B
    are not neighbours: the least-action route passes another attractor) a warning is logged
    and ``converged`` is False; :func:`transition_paths` only pairs attractors joined by a
    saddle.

    Raises
    ------
    GclError
        End points or saddle that are not fixed points, mismatched shapes, bad ``noise``.
    GclDivergenceError
        The descent from the saddle diverged; the message names ``dt``.

    Examples
    --------
    >>> import torch
    >>> from gclandscape.engine._paths import minimum_action_path
    >>> def double_well(t, x, args):  # f = -grad V, V = (x^2 - 1)^2 + y^2
    ...     return torch.stack([-4 * x[:, 0] * (x[:, 0] ** 2 - 1), -2 * x[:, 1]], 1)
    >>> tp = minimum_action_path(double_well, [-1.0, 0.0], [1.0, 0.0], n_points=30)
    >>> round(tp.barrier_forward, 2), round(tp.barrier_backward, 2)  # 2 * (V(0) - V(-1))
    (2.0, 2.0)
    """
    a = _as_states(x_a, "x_a")
    g = a.shape[1]
    b = _as_states(x_b, "x_b", g)
    if a.shape[0] != 1 or b.shape[0] != 1:
        raise GclError("x_a and x_b must each be one state of shape (n_genes,).")
    a, b = a[0], b[0]
    if int(n_points) != n_points or n_points < 3:
        raise GclError(f"n_points must be an integer of at least 3; got {n_points!r}.")
    n_points = int(n_points)
    if not (math.isfinite(rtol) and rtol > 0):
        raise GclError(f"rtol must be a positive number; got {rtol!r}.")
    w = _noise_weights(noise, g)
    fn = _prepare_field(field, g, args)
    for name, x in (("x_a", a), ("x_b", b)):
        res = float(_speed(fn, torch.from_numpy(x)[None], args)[0])
        if res > fixed_tol:
            raise GclError(
                f"{name} is not a fixed point of the field (max |f| = {res:.3g} > fixed_tol = "
                f"{fixed_tol:g}); pass attractors from find_fixed_points."
            )
    if np.abs(a - b).max() == 0:
        raise GclError("x_a and x_b are the same state; pass two different attractors.")
    sep = 1e-3 * float(np.abs(a - b).max())
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    converged = True

    s_known = None
    full = None
    if saddle is not None:
        s_known = _as_states(saddle, "saddle", g)[0]
        res = float(_speed(fn, torch.from_numpy(s_known)[None], args)[0])
        if res > fixed_tol:
            raise GclError(
                f"saddle is not a fixed point of the field (max |f| = {res:.3g} > fixed_tol = "
                f"{fixed_tol:g}); pass a saddle from find_fixed_points."
            )
    else:
        full, _, ok = _gmam(
            fn, args, ta, tb, w, 2 * n_points - 1, init=None, max_rounds=max_rounds, rtol=rtol
        )
        converged &= ok
        s_known = _saddle_on_path(fn, args, full, a, b, tol=min(fixed_tol, 1e-9), sep=sep)

    if s_known is None:
        logger.warning("no index-1 saddle found on the A→B path; barriers are whole-path actions")
        rev, _, ok = _gmam(
            fn, args, tb, ta, w, 2 * n_points - 1, init=None, max_rounds=max_rounds, rtol=rtol
        )
        converged &= ok
        act, act_r = _cumulative(fn, args, full, w), _cumulative(fn, args, rev, w)
        return TransitionPath(
            full.numpy(), rev.numpy(), act, act_r, float(act[-1]), float(act_r[-1]), None, -1, -1,
            converged,
        )  # fmt: skip

    ts = torch.from_numpy(s_known)
    u, index = _unstable_direction(fn, args, s_known)
    if index != 1:
        logger.warning("the saddle given has %d unstable directions (expected 1)", index)
    eps = 1e-4 * float(np.abs(a - b).max())
    traj = _descents(fn, args, s_known, u, eps=eps, t_max=t_max, dt=dt)
    halves = {}
    for name, start, target in (("forward", ta, tb), ("backward", tb, ta)):
        init = None
        if full is not None:  # reuse the relevant half of the whole-path optimisation
            k = int(torch.argmin((full - ts).abs().amax(1)))
            init = full[: k + 1] if name == "forward" else full[k:].flip(0)
            init = _reparam(init, w, n_points) if len(init) >= 2 else None
        up, s_up, ok = _gmam(
            fn, args, start, ts, w, n_points, init=init, max_rounds=max_rounds, rtol=rtol
        )
        down, miss = _descent_to(traj, target.numpy(), w, n_points)
        if miss > max(match_tol, 10 * sep):
            logger.warning(
                "the descent from the saddle ends %.3g away from %s; the saddle does not join "
                "the two attractors directly (the path may pass another attractor)",
                miss, "x_b" if name == "forward" else "x_a",
            )  # fmt: skip
            ok = False
        converged &= ok
        path = torch.cat([up, down[1:]])
        halves[name] = (path.numpy(), _cumulative(fn, args, path, w), s_up)

    saddle_id = -1
    if saddles is not None:
        known = _as_states(saddles, "saddles", g)
        dist = np.abs(known - s_known).max(axis=1)
        if dist.min() <= match_tol:
            saddle_id = int(np.argmin(dist))
    return TransitionPath(
        path=halves["forward"][0],
        path_reverse=halves["backward"][0],
        action=halves["forward"][1],
        action_reverse=halves["backward"][1],
        barrier_forward=float(halves["forward"][2]),
        barrier_backward=float(halves["backward"][2]),
        saddle=s_known,
        saddle_id=saddle_id,
        saddle_position=n_points - 1,
        converged=bool(converged),
    )


def transition_paths(
    field: VectorField,
    attractors: Any,
    saddles: Any,
    *,
    args: Any = None,
    n_points: int = 50,
    noise: Any = 1.0,
    rtol: float = 1e-4,
    max_rounds: int = 100,
    t_max: float = T_RELAX,
    dt: float = DT,
    match_tol: float = 1e-2,
    fixed_tol: float = 1e-6,
) -> Any:
    """Minimum-action paths and barriers for every attractor pair joined by an index-1 saddle.

    Connectivity comes from :func:`saddle_connections` (the two ends of each saddle's
    unstable manifold); every saddle that joins two different attractors gives one row, with
    the gMAM paths and barriers of :func:`minimum_action_path` in both directions.

    Parameters
    ----------
    field
        Vector field ``field(t, x, args) -> dx/dt``.
    attractors
        ``(k, G)`` stable fixed points (``FixedPoints.attractors``).
    saddles
        ``(m, G)`` saddles (``FixedPoints.saddles``); saddles that are not index-1 are skipped.
    args, n_points, noise, rtol, max_rounds, t_max, dt, fixed_tol
        As in :func:`minimum_action_path`.
    match_tol
        As in :func:`saddle_connections`.

    Returns
    -------
    pandas DataFrame, one row per connecting saddle, sorted by ``source``, ``target`` and
    ``barrier_forward``: ``source`` and ``target`` (rows of ``attractors``, ``source <
    target``), ``saddle`` (row of ``saddles``), ``barrier_forward`` (ΔU source→target),
    ``barrier_backward`` (ΔU target→source), ``converged``, and the object columns ``path``
    (source → saddle → target, ``(2 n_points - 1, G)``) and ``path_reverse``. When several
    saddles join the same pair, the lowest barrier is the relevant one.

    Examples
    --------
    >>> from gclandscape.engine import SigmoidField
    >>> from gclandscape.engine._paths import transition_paths
    >>> toggle = SigmoidField([[0.0, -10.0], [-10.0, 0.0]], b=5.0)
    >>> att = [[0.992812, 0.007188], [0.007188, 0.992812]]
    >>> df = transition_paths(toggle, att, [[0.5, 0.5]], n_points=20, fixed_tol=1e-5)
    >>> df[["source", "target", "saddle"]].values.tolist()
    [[0, 1, 0]]
    """
    import pandas as pd

    att, sad = _attractors_and_saddles(attractors, saddles)
    cols = [
        "source", "target", "saddle", "barrier_forward", "barrier_backward", "converged", "path",
        "path_reverse",
    ]  # fmt: skip
    conn = saddle_connections(field, att, sad, args=args, t_max=t_max, dt=dt, match_tol=match_tol)
    rows = []
    for k, (i, j) in enumerate(conn):
        if i < 0 or j < 0 or i == j:
            continue
        src, tgt = (int(i), int(j)) if i < j else (int(j), int(i))
        tp = minimum_action_path(
            field, att[src], att[tgt], args=args, saddle=sad[k], n_points=n_points, noise=noise,
            rtol=rtol, max_rounds=max_rounds, t_max=t_max, dt=dt, fixed_tol=fixed_tol,
        )  # fmt: skip
        rows.append(
            {
                "source": src,
                "target": tgt,
                "saddle": k,
                "barrier_forward": tp.barrier_forward,
                "barrier_backward": tp.barrier_backward,
                "converged": tp.converged,
                "path": tp.path,
                "path_reverse": tp.path_reverse,
            }
        )
    df = pd.DataFrame(rows, columns=cols)
    if len(df):
        df = df.sort_values(["source", "target", "barrier_forward"], kind="stable")
        df = df.reset_index(drop=True)
    return df.astype({"source": int, "target": int, "saddle": int, "converged": bool})
