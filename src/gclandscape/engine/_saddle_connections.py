"""Saddle connections: which attractors each index-1 saddle joins, found by descending from
the saddle along both ends of its unstable direction."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .._defaults import DT, T_RELAX
from .._utils import logger
from ._field_checks import VectorField, _attractors_and_saddles, _prepare_field
from ._integrate import integrate
from ._jacobian import _jac
from ._root_finding import _relax, _speed


def _unstable_direction(fn: VectorField, args: Any, s: np.ndarray) -> tuple[np.ndarray, int]:
    """Unit eigenvector of the most unstable eigenvalue at ``s`` and the saddle's index."""
    ev, vec = torch.linalg.eig(_jac(fn, torch.from_numpy(s)[None], args)[0].cpu())
    ev, vec = ev.numpy(), vec.numpy()
    k = int(np.argmax(ev.real))
    u = np.real(vec[:, k])
    if np.linalg.norm(u) == 0:  # a complex pair: use the imaginary part
        u = np.imag(vec[:, k])
    return u / np.linalg.norm(u), int((ev.real > 1e-7).sum())


def _displaced(s: np.ndarray, u: np.ndarray, eps: float) -> np.ndarray:
    """``s ± eps u`` plus a fixed generic nudge of size ``1e-3 eps``.

    The nudge breaks exact symmetries (two genes with identical rules) that would otherwise
    keep the descent on an invariant subspace and land it on another saddle.
    """
    nudge = 1e-3 * eps * np.random.default_rng(0).standard_normal(len(s))
    return np.stack([s + eps * u + nudge, s - eps * u + nudge])


def _descents(
    fn: VectorField, args: Any, s: np.ndarray, u: np.ndarray, *, eps: float, t_max: float, dt: float
) -> torch.Tensor:
    """Both branches of the unstable manifold: integrate ``s ± eps u`` until they stop moving.

    Returns the trajectories, ``(n_steps + 1, 2, G)``, each starting at the saddle.
    """
    x = torch.from_numpy(_displaced(s, u, eps))
    steps = max(1, min(200, math.ceil(t_max / dt)))
    chunk = steps * dt
    out = [torch.from_numpy(np.stack([s, s])), x]
    t = 0.0
    with torch.no_grad():
        while t < t_max - 1e-12:
            sol = integrate(
                fn, x, t_max=min(chunk, t_max - t), dt=dt, args=args, n_save=steps + 1,
                nonnegative=False,
            )  # fmt: skip
            out.append(sol.xs[1:])
            x = sol.x
            t += chunk
            if float(_speed(fn, x, args).max()) < 1e-9:
                break
    return torch.cat([o if o.ndim == 3 else o[None] for o in out])


def saddle_connections(
    field: VectorField,
    attractors: Any,
    saddles: Any,
    *,
    args: Any = None,
    eps: float = 1e-4,
    t_max: float = T_RELAX,
    dt: float = DT,
    match_tol: float = 1e-2,
) -> np.ndarray:
    """Which attractors each saddle connects, from the two ends of its unstable manifold.

    Each saddle ``s`` is displaced to ``s ± eps·u`` along the unit eigenvector ``u`` of its
    most unstable eigenvalue (plus a fixed generic nudge of size ``1e-3 eps`` that keeps the
    ends off exactly symmetric subspaces), both states are integrated deterministically until they stop
    moving, and each end is assigned to the nearest attractor within ``match_tol`` (max-norm).

    Parameters
    ----------
    field
        Vector field ``field(t, x, args) -> dx/dt``.
    attractors
        ``(k, G)`` stable fixed points.
    saddles
        ``(m, G)`` saddles.
    args
        Passed to ``field``.
    eps
        Size of the displacement along the unstable direction.
    t_max, dt
        Integration of the two ends.
    match_tol
        An end further than this from every attractor gets -1.

    Returns
    -------
    ``(m, 2)`` int array of attractor rows (-1: no attractor reached, or a saddle that is not
    index-1). A saddle connects two attractors when both entries are ``>= 0`` and differ.

    Examples
    --------
    >>> from gclandscape.engine import SigmoidField
    >>> from gclandscape.engine import saddle_connections
    >>> toggle = SigmoidField([[0.0, -10.0], [-10.0, 0.0]], b=5.0)
    >>> att = [[0.992812, 0.007188], [0.007188, 0.992812]]
    >>> sorted(saddle_connections(toggle, att, [[0.5, 0.5]])[0].tolist())
    [0, 1]
    """
    att, sad = _attractors_and_saddles(attractors, saddles)
    g = att.shape[1]
    out = np.full((len(sad), 2), -1, dtype=int)
    if len(sad) == 0:
        return out
    fn = _prepare_field(field, g, args)
    starts, rows = [], []
    for i, s in enumerate(sad):
        u, index = _unstable_direction(fn, args, s)
        if index != 1:
            logger.info("saddle %d has %d unstable directions; not an index-1 saddle", i, index)
            continue
        starts.extend(_displaced(s, u, eps))
        rows.append(i)
    if not rows:
        return out
    ends, _ = _relax(
        fn, np.asarray(starts), args, t_max=t_max, dt=dt, conv_tol=1e-9, nonnegative=False,
        device=torch.device("cpu"),
    )  # fmt: skip
    dist = np.abs(ends[:, None, :] - att[None, :, :]).max(axis=2)  # (2r, k)
    near = np.where(dist.min(1) <= match_tol, dist.argmin(1), -1)
    out[rows] = near.reshape(-1, 2)
    return out
