"""The landscape's energy surfaces on a 2-D basis: the quasi-potential and empirical potential
grids, and the drift arrows on the grid (the basis itself: :mod:`._cell_states`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

#: Grid points per axis of the energy surfaces.
GRID = 60


def _log_density(points: np.ndarray, at: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Log density of ``points`` at ``at`` (Gaussian KDE, Scott's bandwidth, per-axis scale)."""
    from sklearn.neighbors import KernelDensity

    kde = KernelDensity(kernel="gaussian", bandwidth="scott", rtol=1e-6).fit(points / scale)
    return kde.score_samples(at / scale) - float(np.log(scale).sum())


def _energy(
    coords: np.ndarray, simulated: np.ndarray, extra: np.ndarray, n_grid: int = GRID
) -> dict[str, np.ndarray]:
    """Grid of the basis with the quasi-potential and the empirical potential, plus the
    quasi-potential interpolated (linearly, from the grid) at the cells (``coords``) and at
    ``extra`` points (fixed points; points outside the grid take the value at its edge)."""
    from scipy.interpolate import RegularGridInterpolator

    lo, hi = coords.min(0), coords.max(0)
    pad = 0.1 * np.where(hi > lo, hi - lo, 1.0)
    x = np.linspace(lo[0] - pad[0], hi[0] + pad[0], n_grid)
    y = np.linspace(lo[1] - pad[1], hi[1] + pad[1], n_grid)
    xx, yy = np.meshgrid(x, y)
    at = np.column_stack([xx.ravel(), yy.ravel()])
    sd = coords.std(0)
    scale = np.where(sd > 0, sd, 1.0)

    def potential(points: np.ndarray) -> np.ndarray:
        logp = _log_density(points, at, scale)
        finite = np.isfinite(logp)
        floor = logp[finite].min() if finite.any() else 0.0
        u = -np.where(finite, logp, floor)
        return (u - u.min()).reshape(n_grid, n_grid)

    U, U_emp = potential(simulated), potential(coords)
    interp = RegularGridInterpolator((y, x), U)

    def at_points(p: np.ndarray) -> np.ndarray:
        if len(p) == 0:
            return np.zeros(0)
        q = np.column_stack([np.clip(p[:, 1], y[0], y[-1]), np.clip(p[:, 0], x[0], x[-1])])
        return interp(q)

    return {
        "x": x,
        "y": y,
        "U": U,
        "U_empirical": U_emp,
        "cells": at_points(coords),
        "extra": at_points(extra),
    }


def _drift_grid(
    field: Any,
    states: np.ndarray,
    to_basis: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    coords: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The genome's drift projected on the basis and averaged onto the grid ``(x, y)``.

    At every observed state ``s`` the drift ``f(s)`` is carried through the basis map by a
    central finite step, ``(B(s + h f) - B(s - h f)) / 2h`` (exact for a linear basis; for the
    kNN map the step, a twentieth of the cells' spread, moves each state among its
    neighbours), and the projected drifts of the cells are averaged onto the grid with a
    Gaussian kernel of two grid steps (neighbours within three kernel widths,
    :class:`sklearn.neighbors.NearestNeighbors`). Grid points with less than one cell's worth
    of kernel weight nearby are NaN. Returns ``(u, v)``, each ``(n, n)`` like ``grid["U"]``.
    """
    import torch
    from sklearn.neighbors import NearestNeighbors

    with torch.no_grad():
        f = field(0.0, torch.as_tensor(states, dtype=torch.float32), None)
    f = np.asarray(f.numpy(), dtype=np.float64)
    speed = np.linalg.norm(f, axis=1)
    typical = float(np.median(speed[speed > 0])) if (speed > 0).any() else 1.0
    h = 0.05 * float(np.linalg.norm(states.std(0)) or 1.0) / typical
    proj = (to_basis(states + h * f) - to_basis(states - h * f)) / (2.0 * h)
    step = np.array([x[1] - x[0], y[1] - y[0]]) if len(x) > 1 else np.ones(2)
    step = np.where(step > 0, step, 1.0)
    width = 2.0
    xx, yy = np.meshgrid(x, y)
    at = np.column_stack([xx.ravel(), yy.ravel()]) / step
    nn = NearestNeighbors(radius=3.0 * width).fit(coords / step)
    dist, idx = nn.radius_neighbors(at)
    u = np.full(len(at), np.nan)
    v = np.full(len(at), np.nan)
    for k, (d, i) in enumerate(zip(dist, idx, strict=True)):
        w = np.exp(-0.5 * (d / width) ** 2)
        if w.sum() >= 1.0:
            u[k], v[k] = (w @ proj[i]) / w.sum()
    n = len(y), len(x)
    return u.reshape(n), v.reshape(n)
