"""The geometric minimum action method (gMAM): the discrete action, its noise metric, and
the L-BFGS iteration with equal-arc-length redistribution (see :mod:`gclandscape.engine._paths`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .._errors import GclError
from ._field_checks import VectorField


def _action_segments(
    fn: VectorField, args: Any, path: torch.Tensor, w: torch.Tensor
) -> torch.Tensor:
    """Geometric action of each segment of a polyline (``f`` at the segment midpoints)."""
    d = (path[1:] - path[:-1]) * w
    f = fn(0.0, 0.5 * (path[1:] + path[:-1]), args) * w
    nd = torch.sqrt((d * d).sum(1) + 1e-30)
    nf = torch.sqrt((f * f).sum(1) + 1e-30)
    return nd * nf - (d * f).sum(1)


def _reparam(path: torch.Tensor, w: torch.Tensor, n: int) -> torch.Tensor:
    """Resample a polyline to ``n`` points equally spaced in arc length (noise metric)."""
    seg = ((path[1:] - path[:-1]) * w).norm(dim=1)
    s = torch.cat([seg.new_zeros(1), seg.cumsum(0)])
    if float(s[-1]) == 0.0:
        return path[:1] + torch.linspace(0, 1, n, dtype=path.dtype)[:, None] * (
            path[-1:] - path[:1]
        )
    t = torch.linspace(0.0, float(s[-1]), n, dtype=path.dtype)
    idx = torch.searchsorted(s, t, right=True).clamp(1, len(s) - 1)
    s0, s1 = s[idx - 1], s[idx]
    frac = ((t - s0) / (s1 - s0).clamp_min(1e-300)).clamp(0.0, 1.0)
    out = path[idx - 1] + frac[:, None] * (path[idx] - path[idx - 1])
    out[0], out[-1] = path[0], path[-1]
    return out


def _gmam(
    fn: VectorField,
    args: Any,
    a: torch.Tensor,
    b: torch.Tensor,
    w: torch.Tensor,
    n: int,
    *,
    init: torch.Tensor | None,
    max_rounds: int,
    rtol: float,
) -> tuple[torch.Tensor, float, bool]:
    """Least geometric action polyline from ``a`` to ``b`` (both fixed)."""
    if init is None:
        init = a + torch.linspace(0.0, 1.0, n, dtype=a.dtype)[:, None] * (b - a)
    else:
        init = torch.cat([a[None], init[1:-1], b[None]])
    path = _reparam(init, w, n)
    with torch.no_grad():
        best = float(_action_segments(fn, args, path, w).sum())
    best_path, stall, converged = path, 0, False
    for _ in range(max_rounds):
        inner = path[1:-1].clone().requires_grad_(True)
        opt = torch.optim.LBFGS(
            [inner], lr=1.0, max_iter=40, history_size=20, line_search_fn="strong_wolfe",
            tolerance_grad=1e-12, tolerance_change=1e-15,
        )  # fmt: skip

        def closure(inner: torch.Tensor = inner, opt: torch.optim.LBFGS = opt) -> torch.Tensor:
            opt.zero_grad()
            s = _action_segments(fn, args, torch.cat([a[None], inner, b[None]]), w).sum()
            s.backward()
            return s

        opt.step(closure)
        path = _reparam(torch.cat([a[None], inner.detach(), b[None]]), w, n)
        with torch.no_grad():
            s = float(_action_segments(fn, args, path, w).sum())
        if not math.isfinite(s):
            raise GclError(
                "the action became non-finite during the path optimisation; the vector field "
                "overflows between the end points (check the field, or rescale the states)."
            )
        # the redistribution moves the discrete action by a little every round, so stop
        # when two rounds in a row fail to improve the best action by more than rtol
        if s < best - rtol * max(abs(best), 1e-12):
            stall = 0
        else:
            stall += 1
        if s < best:
            best, best_path = s, path
        if stall >= 2:
            converged = True
            break
    path, s = best_path, best
    return path, s, converged


def _noise_weights(noise: Any, n_genes: int) -> torch.Tensor:
    sig = np.asarray(noise, dtype=np.float64)
    if sig.ndim == 0:
        sig = np.full(n_genes, float(sig))
    if sig.shape != (n_genes,) or not np.isfinite(sig).all() or (sig <= 0).any():
        raise GclError(
            f"noise must be a positive number or a vector of {n_genes} positive numbers "
            f"(the noise strength sigma per gene); got {noise!r}."
        )
    return torch.from_numpy(1.0 / sig)


def _cumulative(fn: VectorField, args: Any, path: torch.Tensor, w: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        seg = _action_segments(fn, args, path, w)
    return np.concatenate([[0.0], seg.cumsum(0).numpy()])
