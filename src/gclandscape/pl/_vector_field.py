"""The vector-field figure: the genome's drift on the basis grid over the energy surface."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from .._errors import GclError
from .._keys import Key
from ._landscape_parts import (
    _basis_labels,
    _draw_attractors,
    _energy_with_levels,
    _frame,
    _stable,
)
from ._utils import (
    get_landscape,
    new_axes,
)

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..landscape import Landscape

__all__ = ["vector_field"]


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
        _, _, U, lev = _energy_with_levels(adata, land, key, energy, 16)
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
        _draw_attractors(ax, _stable(land), size=120, labels=False)
    _frame(ax, land)
    _basis_labels(ax, land)
    return fig
