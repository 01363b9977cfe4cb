"""Shared pieces of the landscape figures: the energy grid and cell colours read from the
results, the attractor and saddle tables, and the frame and axis labels of the basis."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import GclError
from .._keys import Key
from ._utils import categorical_colors, energy_levels, outlined

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from ..landscape import Landscape

_ENERGIES = ("U", "U_empirical")


def _energy_grid(land: Landscape, energy: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if energy not in _ENERGIES:
        raise GclError(
            f"energy={energy!r}: use 'U' (quasi-potential of the genome) or 'U_empirical' "
            "(-ln density of the observed cells)."
        )
    g = land.grid
    return np.asarray(g["x"]), np.asarray(g["y"]), np.asarray(g[energy])


def _cell_energy(adata: Any, key: str, n: int) -> np.ndarray | None:
    from anndata import AnnData

    if isinstance(adata, AnnData) and Key.energy(key) in adata.obs and adata.n_obs == n:
        return adata.obs[Key.energy(key)].to_numpy(dtype=np.float64)
    return None


def _energy_with_levels(
    adata: Any, land: Landscape, key: str, energy: str, n_levels: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x``, ``y``, the energy grid and ``n_levels`` contour levels scaled to the cells'
    energies: the stored per-cell ``U`` when there is one, else the grid under the cells."""
    x, y, U = _energy_grid(land, energy)
    ref = _cell_energy(adata, key, len(land.coords)) if energy == "U" else None
    if ref is None and land.coords.size:
        ref = _z_on_grid(x, y, U, land.coords[:, 0], land.coords[:, 1])
    return x, y, U, energy_levels(U, ref, n_levels)


def _cell_colors(
    adata: Any, land: Landscape, key: str, color: str | None
) -> tuple[Any, dict[str, Any] | None]:
    """Per-cell colours (and the legend's category → colour map) of the landscape's cells."""
    from anndata import AnnData

    if not isinstance(adata, AnnData):
        if color is not None:
            raise GclError(
                f"color={color!r} needs the AnnData: pass adata instead of the Landscape."
            )
        return "0.55", None
    if adata.n_obs != len(land.coords):
        raise GclError(
            f"the landscape in adata.uns[{key!r}] has {len(land.coords)} cells but adata has "
            f"{adata.n_obs}; draw it with the AnnData it was fitted on, or re-run "
            "gcl.landscape.fit_landscape(adata)."
        )
    if color is None:
        groupby = str(land.params.get("groupby", "") or "")
        color = groupby if groupby in adata.obs else Key.basin(key)
        if color not in adata.obs:
            return "0.55", None
    elif color not in adata.obs:
        raise GclError(
            f"color={color!r} is not a column of adata.obs. Available: "
            f"{', '.join(map(str, adata.obs.columns)) or '(none)'}."
        )
    col = adata.obs[color]
    if col.dtype.kind in "fiu" and not hasattr(col, "cat"):
        return col.to_numpy(dtype=np.float64), None
    return categorical_colors(adata, color)


def _stable(land: Landscape) -> Any:
    att = land.attractors
    return att[att["stable"].astype(bool)] if "stable" in att else att


def _draw_attractors(ax: Axes, att: Any, *, size: float = 140, labels: bool = True) -> None:
    """White stars at the stable attractors (gid ``"attractors"``) on a 2-D axes, each with
    its outlined label (gid ``"attractor_label"``) when ``labels``."""
    a = ax.scatter(
        att["basis_1"],
        att["basis_2"],
        marker="*",
        s=size,
        c="white",
        edgecolors="k",
        linewidths=0.7,
        zorder=5,
    )
    a.set_gid("attractors")
    if not labels:
        return
    for _, r in att.iterrows():
        t = ax.annotate(
            str(r["label"]),
            (r["basis_1"], r["basis_2"]),
            xytext=(5, 5),
            textcoords="offset points",
            fontweight="bold",
            zorder=6,
        )
        outlined(t)
        t.set_gid("attractor_label")


def _index1(land: Landscape) -> Any:
    sad = land.saddles
    if len(sad) == 0 or "type" not in sad:
        return sad
    keep = sad["type"].astype(str) == "saddle"
    if "index" in sad:
        keep &= sad["index"].to_numpy() == 1
    return sad[keep]


def _z_on_grid(x: np.ndarray, y: np.ndarray, U: np.ndarray, px: Any, py: Any) -> np.ndarray:
    """Energy of the nearest grid node under each point (a 3-D drawing's height)."""
    j = np.clip(np.searchsorted(x, px) - 1, 0, len(x) - 1)
    i = np.clip(np.searchsorted(y, py) - 1, 0, len(y) - 1)
    return U[i, j]


def _frame(ax: Axes, land: Landscape, *extra: np.ndarray) -> None:
    """Axis limits: the energy grid, widened to the attractors, saddles, paths and ``extra``
    points outside it (a fixed point can lie beyond the observed cells)."""
    x, y = np.asarray(land.grid["x"]), np.asarray(land.grid["y"])
    pts = [np.array([[x[0], y[0]], [x[-1], y[-1]]])]
    for frame in (land.attractors, land.saddles):
        if len(frame) and {"basis_1", "basis_2"} <= set(frame.columns):
            pts.append(frame[["basis_1", "basis_2"]].to_numpy(dtype=float))
    pts.append(np.asarray(land.path_basis, dtype=float).reshape(-1, 2))
    pts += [np.asarray(e, dtype=float).reshape(-1, 2) for e in extra]
    allp = np.concatenate(pts)
    allp = allp[np.isfinite(allp).all(1)]
    lo, hi = allp.min(0), allp.max(0)
    outside = (lo < [x[0], y[0]]) | (hi > [x[-1], y[-1]])
    pad = np.where(outside, 0.03 * (hi - lo), 0.0)
    ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
    ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])


def _basis_labels(ax: Axes, land: Landscape) -> None:
    name = land.basis.split(":", 1)[0].upper() if land.basis.startswith("pca:") else land.basis
    ax.set_xlabel(f"{name} 1")
    ax.set_ylabel(f"{name} 2")
