"""The trajectories figure: a perturbation's simulated wild-type and mutant paths on the landscape."""

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
    PERTURBED_COLOR,
    WT_COLOR,
    check_result,
    get_landscape,
    new_axes,
)

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..landscape import Landscape
    from ..sim import PerturbationResult

__all__ = ["trajectories"]


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
        _, _, U, lev = _energy_with_levels(adata, land, key, energy, 12)
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
    _draw_attractors(ax, _stable(land))
    ax.legend(loc="best")
    # widened to paths that leave the grid (a knockout can push cells off the manifold)
    _frame(ax, land, *(np.asarray(traj[n])[:, :n_paths] for n in ("wt", "perturbed")))
    ax.set_title(result.perturbation)
    _basis_labels(ax, land)
    return fig
