"""Figures of the landscape: ``landscape``, ``vector_field`` and ``trajectories``.

They draw what :func:`gclandscape.landscape.fit_landscape` and :func:`gclandscape.sim.perturb`
stored and compute nothing: the energy surfaces, the drift on the grid, the attractors,
saddles, minimum-action paths and simulated trajectories all come from the results.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .._errors import GclError
from .._keys import Key
from ._utils import (
    PERTURBED_COLOR,
    WT_COLOR,
    categorical_colors,
    check_result,
    energy_levels,
    get_landscape,
    new_axes,
    outlined,
)

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..landscape import Landscape
    from ..sim import PerturbationResult

__all__ = ["landscape", "trajectories", "vector_field"]

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


def landscape(
    adata: AnnData | Landscape,
    *,
    key: str = Key.uns.landscape,
    kind: Literal["contour", "surface"] = "contour",
    energy: Literal["U", "U_empirical"] = "U",
    color: str | None = None,
    cells: bool = True,
    saddles: bool = True,
    paths: bool = True,
    labels: bool = True,
    legend: bool = True,
    levels: int = 16,
    cmap: str = "Greys_r",
    point_size: float | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """The energy landscape on its 2-D basis: filled contours (or a 3-D surface) of the
    quasi-potential, cells as points, attractors and saddles marked, transition paths drawn.

    Draws what :func:`~gclandscape.landscape.fit_landscape` stored; computes nothing.

    Parameters
    ----------
    adata
        Annotated data matrix with a landscape in ``.uns[key]`` (or a
        :class:`~gclandscape.landscape.Landscape`; the cells are then grey).
    key
        Key of the landscape.
    kind
        ``"contour"`` (filled contours) or ``"surface"`` (3-D surface; ``ax`` must then be a
        3-D axes).
    energy
        ``"U"``, the quasi-potential ``-ln P_ss`` of the genome, or ``"U_empirical"``,
        ``-ln`` density of the observed cells.
    color
        ``.obs`` column colouring the cells; default: the landscape's ``groupby`` column,
        else the basin column.
    cells, saddles, paths, labels, legend
        Draw the cells, the index-1 saddles (crosses), the minimum-action paths, the
        attractors' labels and the cells' legend.
    levels
        Number of contour levels, from 0 to a little above the energy of 95 % of the cells
        (higher energies share the top colour).
    cmap
        Colormap of the energy.
    point_size
        Marker size of the cells (default scales with the number of cells).
    ax
        Axes to draw in; a new figure when ``None``.
    figsize
        Size of the new figure (inches).

    Returns
    -------
    The :class:`~matplotlib.figure.Figure`. Artists carry gids: ``"attractors"`` (one marker
    per stable attractor), ``"saddles"``, ``"path"`` (one line per path), ``"cells"``.

    Raises
    ------
    GclError
        No landscape under ``key`` (run :func:`~gclandscape.landscape.fit_landscape`), an
        unknown ``kind``, ``energy`` or ``color`` column, a 2-D ``ax`` for a surface.

    Examples
    --------
    >>> import anndata as ad, numpy as np, gclandscape as gcl
    >>> toggle = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
    >>> adata = ad.AnnData(np.random.default_rng(0).uniform(0, 1, (100, 2)))
    >>> adata.var_names = ["A", "B"]
    >>> toggle.write_to_adata(adata)
    >>> _ = gcl.landscape.fit_landscape(adata)
    >>> fig = gcl.pl.landscape(adata)
    >>> [len(c.get_offsets()) for c in fig.axes[0].collections if c.get_gid() == "attractors"]
    [2]
    """
    if kind not in ("contour", "surface"):
        raise GclError(f"kind={kind!r}: use 'contour' or 'surface'.")
    land = get_landscape(adata, key)
    x, y, U = _energy_grid(land, energy)
    cell_colors, lut = _cell_colors(adata, land, key, color) if cells else (None, None)
    ref = _cell_energy(adata, key, len(land.coords)) if energy == "U" else None
    if ref is None and land.coords.size:
        ref = _z_on_grid(x, y, U, land.coords[:, 0], land.coords[:, 1])
    lev = energy_levels(U, ref, levels)
    att, sad = _stable(land), _index1(land)
    size = (
        point_size
        if point_size is not None
        else float(np.clip(2e3 / max(len(land.coords), 1), 1, 20))
    )
    if figsize is None and ax is None:
        figsize = (4.6, 3.8) if kind == "contour" else (5.0, 4.2)
    fig, ax = new_axes(ax, figsize, projection="3d" if kind == "surface" else None)
    label = "quasi-potential U" if energy == "U" else "empirical potential"

    if kind == "contour":
        from matplotlib import patheffects

        cs = ax.contourf(
            x, y, np.clip(U, 0, lev[-1]), levels=lev, cmap=cmap, extend="max", alpha=0.8
        )
        cs.set_gid("energy")
        ax.contour(x, y, U, levels=lev, colors="k", linewidths=0.25, alpha=0.35)
        fig.colorbar(cs, ax=ax, label=label, location="bottom", shrink=0.6, aspect=30)
        if cells:
            sc = ax.scatter(
                *land.coords.T,
                s=size,
                c=cell_colors,
                linewidths=0,
                alpha=0.7,
                rasterized=len(land.coords) > 500,
            )
            sc.set_gid("cells")
        if paths:
            for p in np.asarray(land.path_basis):
                (line,) = ax.plot(p[:, 0], p[:, 1], color="white", lw=1.4)
                line.set_path_effects([patheffects.withStroke(linewidth=2.4, foreground="0.15")])
                line.set_gid("path")
        if saddles and len(sad):
            s = ax.scatter(
                sad["basis_1"],
                sad["basis_2"],
                marker="X",
                s=40,
                c="#f0a202",
                edgecolors="k",
                linewidths=0.5,
                zorder=4,
            )
            s.set_gid("saddles")
        a = ax.scatter(
            att["basis_1"],
            att["basis_2"],
            marker="*",
            s=140,
            c="white",
            edgecolors="k",
            linewidths=0.7,
            zorder=5,
        )
        a.set_gid("attractors")
        if labels:
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
        _frame(ax, land)
    else:
        xx, yy = np.meshgrid(x, y)
        Z = np.clip(U, 0, lev[-1])
        surf = ax.plot_surface(
            xx,
            yy,
            Z,
            cmap=cmap,
            linewidth=0,
            antialiased=True,
            alpha=0.85,
            vmin=0,
            vmax=lev[-1],
            rcount=len(y),
            ccount=len(x),
        )
        surf.set_gid("energy")
        if cells:
            zc = _z_on_grid(x, y, Z, *land.coords.T)
            sc = ax.scatter(
                *land.coords.T, zc, s=size, c=cell_colors, linewidths=0, alpha=0.6, depthshade=False
            )
            sc.set_gid("cells")
        if paths:
            for p in np.asarray(land.path_basis):
                (line,) = ax.plot(
                    p[:, 0], p[:, 1], _z_on_grid(x, y, Z, p[:, 0], p[:, 1]), color="white", lw=1.6
                )
                line.set_gid("path")
        if saddles and len(sad):
            zs = _z_on_grid(x, y, Z, sad["basis_1"], sad["basis_2"])
            s = ax.scatter(
                sad["basis_1"],
                sad["basis_2"],
                zs,
                marker="X",
                s=40,
                c="#f0a202",
                edgecolors="k",
                depthshade=False,
            )
            s.set_gid("saddles")
        za = _z_on_grid(x, y, Z, att["basis_1"], att["basis_2"])
        a = ax.scatter(
            att["basis_1"],
            att["basis_2"],
            za,
            marker="*",
            s=140,
            c="white",
            edgecolors="k",
            depthshade=False,
        )
        a.set_gid("attractors")
        if labels:
            for (_, r), z in zip(att.iterrows(), za, strict=True):
                t = ax.text(r["basis_1"], r["basis_2"], z, f" {r['label']}", fontweight="bold")
                outlined(t)
                t.set_gid("attractor_label")
        ax.set_zlabel(label)
    if cells and lut and legend:
        from matplotlib.lines import Line2D

        handles = [
            Line2D([], [], ls="", marker="o", ms=4, color=c, label=k) for k, c in lut.items()
        ]
        ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0.0,
        )
    _basis_labels(ax, land)
    return fig


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


def vector_field(
    adata: AnnData | Landscape,
    *,
    key: str = Key.uns.landscape,
    energy: Literal["U", "U_empirical"] | None = "U",
    density: float = 1.2,
    color: str = "k",
    attractors: bool = True,
    cmap: str = "Greys_r",
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Streamlines of the genome's drift on the landscape's basis, over its energy.

    Draws ``grid["u"]``, ``grid["v"]`` that :func:`~gclandscape.landscape.fit_landscape`
    stored (the drift at the observed cells projected on the basis and averaged onto the
    grid; blank where no cells are near), with line width proportional to the speed.

    Parameters
    ----------
    adata
        Annotated data matrix with a landscape in ``.uns[key]`` (or a
        :class:`~gclandscape.landscape.Landscape`).
    key
        Key of the landscape.
    energy
        Energy drawn under the streamlines (``"U"``, ``"U_empirical"`` or ``None``).
    density
        Streamline density (:meth:`matplotlib.axes.Axes.streamplot`).
    color
        Colour of the streamlines.
    attractors
        Mark the stable attractors.
    cmap
        Colormap of the energy.
    ax
        Axes to draw in; a new figure when ``None``.
    figsize
        Size of the new figure (inches).

    Returns
    -------
    The :class:`~matplotlib.figure.Figure` (the streamlines have gid ``"streamlines"``).

    Raises
    ------
    GclError
        No landscape under ``key``, or a landscape stored before the drift was part of it
        (re-run :func:`~gclandscape.landscape.fit_landscape`).

    Examples
    --------
    >>> import anndata as ad, numpy as np, gclandscape as gcl
    >>> toggle = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
    >>> adata = ad.AnnData(np.random.default_rng(0).uniform(0, 1, (100, 2)))
    >>> adata.var_names = ["A", "B"]
    >>> toggle.write_to_adata(adata)
    >>> _ = gcl.landscape.fit_landscape(adata)
    >>> fig = gcl.pl.vector_field(adata)
    >>> [c.get_gid() for c in fig.axes[0].collections if c.get_gid() == "streamlines"]
    ['streamlines']
    """
    land = get_landscape(adata, key)
    g = land.grid
    if "u" not in g or "v" not in g:
        raise GclError(
            f"the landscape in .uns[{key!r}] has no drift on its grid (it was stored by an "
            "older gclandscape); re-run gcl.landscape.fit_landscape(adata) to add it."
        )
    x, y = np.asarray(g["x"]), np.asarray(g["y"])
    u, v = np.asarray(g["u"]), np.asarray(g["v"])
    if not np.isfinite(u).any():
        raise GclError(
            f"the drift on the grid of .uns[{key!r}] is empty (no cells near any grid point)."
        )
    if figsize is None and ax is None:
        figsize = (4.2, 3.8)
    fig, ax = new_axes(ax, figsize)
    if energy is not None:
        _, _, U = _energy_grid(land, energy)
        ref = _cell_energy(adata, key, len(land.coords)) if energy == "U" else None
        if ref is None and land.coords.size:
            ref = _z_on_grid(x, y, U, land.coords[:, 0], land.coords[:, 1])
        lev = energy_levels(U, ref, 16)
        cs = ax.contourf(x, y, np.clip(U, 0, lev[-1]), levels=lev, cmap=cmap, extend="max")
        cs.set_gid("energy")
        fig.colorbar(
            cs,
            ax=ax,
            shrink=0.8,
            label="quasi-potential U" if energy == "U" else "empirical potential",
        )
    speed = np.hypot(u, v)
    top = np.nanmax(speed)
    width = 0.4 + 1.6 * np.nan_to_num(speed / top if top > 0 else speed)
    um = np.ma.masked_invalid(u)
    vm = np.ma.masked_invalid(v)
    sp = ax.streamplot(
        x,
        y,
        um,
        vm,
        density=density,
        color=color,
        linewidth=width,
        arrowsize=0.7,
        broken_streamlines=True,
    )
    sp.lines.set_gid("streamlines")
    if attractors:
        att = _stable(land)
        a = ax.scatter(
            att["basis_1"],
            att["basis_2"],
            marker="*",
            s=120,
            c="white",
            edgecolors="k",
            linewidths=0.7,
            zorder=5,
        )
        a.set_gid("attractors")
    _frame(ax, land)
    _basis_labels(ax, land)
    return fig


def trajectories(
    adata: AnnData | Landscape,
    result: PerturbationResult,
    *,
    key: str = Key.uns.landscape,
    n_paths: int = 30,
    energy: Literal["U", "U_empirical"] | None = "U",
    cmap: str = "Greys_r",
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Simulated wild-type and perturbed developmental paths over the landscape's contours.

    Draws ``result.trajectories`` (paths of the first simulated cells on the landscape's
    basis, stored by :func:`~gclandscape.sim.perturb`) with their end points, over the energy
    contours and attractors of the landscape.

    Parameters
    ----------
    adata
        Annotated data matrix with the landscape in ``.uns[key]`` the perturbation was
        simulated on (or the :class:`~gclandscape.landscape.Landscape`).
    result
        A :class:`~gclandscape.sim.PerturbationResult`.
    key
        Key of the landscape.
    n_paths
        At most this many paths per condition.
    energy
        Energy drawn under the paths (``"U"``, ``"U_empirical"`` or ``None``).
    cmap
        Colormap of the energy.
    ax
        Axes to draw in; a new figure when ``None``.
    figsize
        Size of the new figure (inches).

    Returns
    -------
    The :class:`~matplotlib.figure.Figure`; the paths carry gids ``"wt"`` and
    ``"perturbed"`` (one line each).

    Raises
    ------
    GclError
        Not a ``PerturbationResult``, a result without trajectories (a steady-state genome),
        no landscape under ``key``.

    Examples
    --------
    >>> import anndata as ad, numpy as np, gclandscape as gcl
    >>> toggle = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
    >>> adata = ad.AnnData(np.random.default_rng(0).uniform(0, 1, (100, 2)))
    >>> adata.var_names = ["A", "B"]
    >>> toggle.write_to_adata(adata)
    >>> _ = gcl.landscape.fit_landscape(adata)
    >>> res = gcl.sim.perturb(adata, gcl.sim.Knockout("A"), n_cells=50, n_null=0)
    >>> fig = gcl.pl.trajectories(adata, res, n_paths=5)
    >>> sum(line.get_gid() == "perturbed" for line in fig.axes[0].lines)
    5
    """
    check_result(result, "PerturbationResult", "gcl.sim.perturb")
    traj = result.trajectories or {}
    if "wt" not in traj or "perturbed" not in traj or np.asarray(traj["wt"]).size == 0:
        raise GclError(
            f"the result of {result.perturbation!r} has no trajectories: a steady-state "
            "genome has no development to draw (plot result.expression instead), or it was "
            "simulated without a landscape."
        )
    if not isinstance(n_paths, int | np.integer) or n_paths < 1:
        raise GclError(f"n_paths must be a positive integer, got {n_paths!r}.")
    land = get_landscape(adata, key)
    if figsize is None and ax is None:
        figsize = (4.2, 3.8)
    fig, ax = new_axes(ax, figsize)
    x, y = np.asarray(land.grid["x"]), np.asarray(land.grid["y"])
    if energy is not None:
        _, _, U = _energy_grid(land, energy)
        ref = _cell_energy(adata, key, len(land.coords)) if energy == "U" else None
        if ref is None and land.coords.size:
            ref = _z_on_grid(x, y, U, land.coords[:, 0], land.coords[:, 1])
        lev = energy_levels(U, ref, 12)
        cs = ax.contourf(
            x, y, np.clip(U, 0, lev[-1]), levels=lev, cmap=cmap, extend="max", alpha=0.6
        )
        cs.set_gid("energy")
    for name, colour in (("wt", WT_COLOR), ("perturbed", PERTURBED_COLOR)):
        paths = np.asarray(traj[name])[:, :n_paths]  # (n_save, n_traj, 2)
        for k in range(paths.shape[1]):
            (line,) = ax.plot(
                paths[:, k, 0],
                paths[:, k, 1],
                color=colour,
                lw=0.7,
                alpha=0.6,
                label=None if k else (result.perturbation if name == "perturbed" else "wild type"),
            )
            line.set_gid(name)
        end = ax.scatter(
            paths[-1, :, 0],
            paths[-1, :, 1],
            s=10,
            color=colour,
            zorder=4,
            edgecolors="k",
            linewidths=0.3,
        )
        end.set_gid(f"{name}_end")
    att = _stable(land)
    a = ax.scatter(
        att["basis_1"],
        att["basis_2"],
        marker="*",
        s=140,
        c="white",
        edgecolors="k",
        linewidths=0.7,
        zorder=5,
    )
    a.set_gid("attractors")
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
    ax.legend(loc="best")
    # widened to paths that leave the grid (a knockout can push cells off the manifold)
    _frame(ax, land, *(np.asarray(traj[n])[:, :n_paths] for n in ("wt", "perturbed")))
    ax.set_title(result.perturbation)
    _basis_labels(ax, land)
    return fig
