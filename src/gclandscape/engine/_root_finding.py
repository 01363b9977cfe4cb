"""The local numerics of the fixed-point search: relaxation, batched Newton, polishing, grouping.

:func:`_relax` integrates states until they stop moving (attractors), :func:`_newton` is a
batched Levenberg–Marquardt on the speed ``|f(x)|²`` that converges to fixed points of any
stability (saddles), :func:`_polish` finishes one candidate with scipy's root finder,
:func:`_leader_cluster` groups nearby states, and :func:`stable_dt` picks an Euler step the
field's stiffness allows.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch

from .._errors import GclError
from ._field_checks import VectorField, _as_states, _prepare_field
from ._integrate import integrate
from ._jacobian import _jac, _jac_chunked

#: Euler steps keep ``dt * rho <= STEP_SAFETY`` for the Jacobian's spectral radius ``rho``:
#: forward Euler is stable on a real decay rate ``rho`` only below ``dt * rho = 2``. 1.8 halves
#: the step only where the fixed one is unstable or nearly so at an observed state (10 %
#: margin for states the estimate did not see): the default myeloid genome of
#: ``gclandscape run`` (largest gamma 11.4, ``rho`` up to 16.5 at its cells) keeps 0.1, as
#: before; a fitted gamma of 169 gets 0.1 / 16.
STEP_SAFETY = 1.8
#: At most this many of the given states (evenly spaced rows) estimate the stiffness.
N_STIFFNESS = 200


def stable_dt(
    field: VectorField,
    states: Any,
    dt_max: float,
    *,
    args: Any = None,
    n_states: int = N_STIFFNESS,
    safety: float = STEP_SAFETY,
) -> float:
    """The largest Euler step ``dt_max / 2**k`` with ``dt * rho <= safety`` (1.8) at the given
    states.

    ``rho`` is the largest modulus of the field's Jacobian eigenvalues with a negative real
    part (decaying directions) at up to ``n_states`` of ``states`` (evenly spaced rows). A
    fitted genome whose degradation rate ``gamma`` is large (fast genes) makes the forward
    Euler step of a fixed ``dt`` diverge once ``dt * gamma > 2``; this step stays stable.
    Growing directions are left out: they grow at any step, and a smaller one would only
    delay the divergence. The row sums of ``|J|`` bound ``rho`` from above, so fields within
    that bound keep ``dt_max`` without an eigenvalue computation.
    Halving (rather than ``1 / rho``) keeps simulated times whole multiples of the step.

    Parameters
    ----------
    field
        Vector field ``field(t, x, args) -> dx/dt`` on ``(n, G)`` tensors.
    states
        ``(n, G)`` states where the stiffness is measured (observed cells, start states).
    dt_max
        The step wanted; returned unchanged for a field that is not stiff there.
    args
        Passed to ``field``.
    n_states
        At most this many states are used.
    safety
        Bound on ``dt * rho``: 1.8 keeps forward Euler stable (it diverges from 2 on); 1
        keeps it from overshooting on any decaying mode (``1 - dt * rho >= 0``).

    Returns
    -------
    The step, ``dt_max`` divided by a power of 2.

    Raises
    ------
    GclError
        ``dt_max`` not a positive number, bad ``states``, or a Jacobian that is not finite
        (the field is NaN there).

    Examples
    --------
    >>> from gclandscape.engine import LinearField
    >>> stable_dt(LinearField([[-1.0]]), [[1.0]], 0.1)
    0.1
    >>> stable_dt(LinearField([[-169.0]]), [[1.0]], 0.1)  # 0.1 / 2**4 * 169 = 1.06
    0.00625
    """
    if not (isinstance(dt_max, int | float) and math.isfinite(dt_max) and dt_max > 0):
        raise GclError(f"dt_max must be a positive number; got {dt_max!r}.")
    x = _as_states(states, "states")
    pick = np.unique(np.linspace(0, len(x) - 1, min(len(x), max(1, int(n_states)))).round())
    fn = _prepare_field(field, x.shape[1], args)
    jac = _jac_chunked(fn, torch.as_tensor(x[pick.astype(np.int64)], dtype=torch.float64), args)
    bound = float(jac.abs().sum(2).amax())
    if not math.isfinite(bound):
        raise GclError(
            "the vector field's Jacobian is not finite at the given states; check the field "
            "(its parameters or the states) for NaN or infinite values."
        )
    if not (isinstance(safety, int | float) and math.isfinite(safety) and safety > 0):
        raise GclError(f"safety must be a positive number; got {safety!r}.")
    if bound * dt_max <= safety:
        return float(dt_max)
    ev = torch.linalg.eigvals(jac)
    decaying = ev[ev.real < 0]
    if not len(decaying):
        return float(dt_max)
    rho = float(decaying.abs().amax())
    halvings = max(0, math.ceil(math.log2(rho * dt_max / safety) - 1e-12))
    return float(dt_max) / 2**halvings


def _speed(fn: VectorField, x: torch.Tensor, args: Any) -> torch.Tensor:
    with torch.no_grad():
        return fn(0.0, x, args).abs().amax(dim=1)


def _leader_cluster(x: np.ndarray, tol: float, order: np.ndarray | None = None) -> np.ndarray:
    """Labels grouping rows within ``tol`` (max-norm) of a group's leader, in ``order``.

    Rows are first snapped to a grid of step ``tol`` (``np.unique``) so that thousands of
    identical end states cost one comparison; the unique rows are then grouped greedily.
    """
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=int)
    order = np.arange(n) if order is None else np.asarray(order)
    key = np.round(x / tol)  # float keys: no integer overflow for huge states
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    # process unique rows in the order of their best member
    rank = np.empty(n, dtype=int)
    rank[order] = np.arange(n)
    best = np.full(len(first), n, dtype=int)
    np.minimum.at(best, inverse, rank)
    urows = x[order[best]]  # best member's state per unique key
    ulab = np.full(len(first), -1, dtype=int)
    n_groups = 0
    for u in np.argsort(best):
        if ulab[u] >= 0:
            continue
        close = (np.abs(urows - urows[u]).max(axis=1) <= tol) & (ulab < 0)
        ulab[close] = n_groups
        n_groups += 1
    return ulab[inverse]


def _polish(fn: VectorField, args: Any, x0: np.ndarray, tol: float) -> tuple[np.ndarray, float]:
    """Polish one candidate with scipy's root finder and the autograd Jacobian."""
    from scipy.optimize import root

    def fun(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return fn(0.0, torch.from_numpy(x)[None, :], args)[0].numpy()

    def jac(x: np.ndarray) -> np.ndarray:
        return _jac(fn, torch.from_numpy(x)[None, :], args)[0].numpy()

    best, best_res = x0, float(np.abs(fun(x0)).max())
    if best_res <= tol * 1e-3:
        return best, best_res
    for method, options in (("hybr", {"xtol": 1e-13}), ("lm", {"xtol": 1e-13, "ftol": 1e-14})):
        with np.errstate(all="ignore"):
            try:
                sol = root(fun, best, jac=jac, method=method, options=options)
            except (ValueError, np.linalg.LinAlgError):  # pragma: no cover - scipy edge cases
                continue
        if np.isfinite(sol.x).all():
            res = float(np.abs(fun(sol.x)).max())
            if np.isfinite(res) and res < best_res:
                best, best_res = sol.x, res
        if best_res <= tol:
            break
    return best, best_res


def _relax(
    fn: VectorField,
    x0: np.ndarray,
    args: Any,
    *,
    t_max: float,
    dt: float,
    conv_tol: float,
    nonnegative: bool,
    device: Any,
    dtype: torch.dtype = torch.float64,
) -> tuple[np.ndarray, np.ndarray]:
    """Integrate all states in chunks until each one's speed is below ``conv_tol``.

    ``dtype`` is the precision of the integration (``fn`` must compute in it); the end
    states and speeds are returned as float64 arrays either way.
    """
    steps = max(1, min(200, math.ceil(t_max / dt)))
    chunk = steps * dt
    x = torch.as_tensor(x0, dtype=dtype, device=device)
    speed = _speed(fn, x, args)
    t = 0.0
    while t < t_max - 1e-12:
        active = ~(speed <= conv_tol)
        if not bool(active.any()):
            break
        idx = active.nonzero().reshape(-1)
        with torch.no_grad():
            sol = integrate(
                fn, x[idx], t_max=min(chunk, t_max - t), dt=dt, args=args,
                nonnegative=nonnegative, device=x.device,
            )  # fmt: skip
        x[idx] = sol.x
        speed[idx] = _speed(fn, sol.x, args)
        t += chunk
    return x.cpu().double().numpy(), speed.cpu().double().numpy()


def _cast_field(fn: VectorField, dtype: torch.dtype) -> VectorField:
    """``fn`` computing in ``dtype``: a module is copied and cast (its arithmetic then runs in
    ``dtype``), any other field has its output cast."""
    if isinstance(fn, torch.nn.Module):
        return copy.deepcopy(fn).to(dtype=dtype).requires_grad_(False)

    def cast(t: Any, x: torch.Tensor, args: Any) -> torch.Tensor:
        return fn(t, x, args).to(dtype)

    return cast


def _newton(
    fn: VectorField, args: Any, x0: torch.Tensor, *, tol: float, n_iter: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Batched Levenberg–Marquardt on ``|f(x)|²`` from many starts; returns states and speed.

    Each start stops once ``max |f| <= tol``, after 4 steps that reduce ``|f|²`` by less
    than 1 % (a local minimum of the speed with ``f != 0``, a "ghost"), or when the damping
    blows up (no descent direction).
    """
    x = x0.clone()
    with torch.no_grad():
        F = fn(0.0, x, args)
    sq = (F**2).sum(1)
    sq = torch.where(torch.isfinite(sq), sq, torch.full_like(sq, math.inf))
    lam = torch.full_like(sq, 1e-6)
    stall = torch.zeros_like(sq, dtype=torch.long)
    eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    for _ in range(n_iter):
        active = (F.abs().amax(1) > tol) & (lam < 1e6) & (stall < 4) & torch.isfinite(sq)
        if not bool(active.any()):
            break
        idx = active.nonzero().reshape(-1)
        J = _jac_chunked(fn, x[idx], args)
        JT = J.transpose(1, 2)
        JTJ = JT @ J
        scale = JTJ.diagonal(dim1=1, dim2=2).mean(1).clamp_min(1e-12)
        A = JTJ + (lam[idx] * scale)[:, None, None] * eye
        g = (JT @ F[idx, :, None])[..., 0]
        step = torch.linalg.solve(A, -g)
        xn = x[idx] + step
        with torch.no_grad():
            Fn = fn(0.0, xn, args)
        sqn = (Fn**2).sum(1)
        better = torch.isfinite(sqn) & (sqn < sq[idx])
        slow = better & (sqn > 0.99 * sq[idx])
        stall[idx] = torch.where(slow, stall[idx] + 1, torch.where(better, 0, stall[idx]))
        b_idx = idx[better]
        x[b_idx] = xn[better]
        F[b_idx] = Fn[better]
        sq[b_idx] = sqn[better]
        lam[idx] = torch.where(better, lam[idx] / 5.0, lam[idx] * 8.0).clamp_min(1e-12)
    return x.cpu().numpy(), F.abs().amax(1).cpu().numpy()
