"""The landscape figure: the energy surface with attractors, saddles, paths and cells.

They draw what :func:`gclandscape.landscape.fit_landscape` and :func:`gclandscape.sim.perturb`
stored and compute nothing: the energy surfaces, the drift on the grid, the attractors,
saddles, minimum-action paths and simulated trajectories all come from the results.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from .._errors import GclError
from .._keys import Key
from ._landscape_parts import (
    _basis_labels,
    _cell_colors,
    _draw_attractors,
    _energy_with_levels,
    _frame,
    _index1,
    _stable,
    _z_on_grid,
)
from ._utils import (
    get_landscape,
    new_axes,
    outlined,
)

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..landscape import Landscape

__all__ = ["landscape"]


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
    x, y, U, lev = _energy_with_levels(adata, land, key, energy, levels)
    cell_colors, lut = _cell_colors(adata, land, key, color) if cells else (None, None)
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
        _draw_attractors(ax, att, labels=labels)
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
