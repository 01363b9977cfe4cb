"""Shared plumbing of the figures: the publication style, new figures, input checks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import GclError

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..landscape import Genome, Landscape

#: Colours of activating and repressing edges, and of wild type and perturbed.
ACTIVATION, REPRESSION = "#c23b22", "#2b6cb0"
WT_COLOR, PERTURBED_COLOR = "#2f6690", "#d1495b"
_SANS = ("Arial", "Helvetica", "Liberation Sans", "DejaVu Sans")


@contextmanager
def style(*, font_size: float = 7.0, dpi: int = 300, font: str | None = None) -> Iterator[None]:
    """Publication style for the figures drawn inside the block.

    Small sans-serif fonts (Arial or Helvetica when installed, else DejaVu Sans), no top and
    right spines, thin lines, editable text in PDF and SVG (TrueType fonts, text kept as text)
    and ``dpi`` for raster export. The settings apply to figures created and saved inside the
    ``with`` block (:func:`matplotlib.rc_context`); export to PDF, SVG or PNG with
    ``fig.savefig(path)``.

    Parameters
    ----------
    font_size
        Base font size in points (titles +1, tick labels -1).
    dpi
        Resolution of raster exports (``savefig``).
    font
        Font family to use first; by default the first installed of Arial, Helvetica,
        Liberation Sans and DejaVu Sans.

    Examples
    --------
    >>> import gclandscape as gcl
    >>> from matplotlib.figure import Figure
    >>> with gcl.pl.style(font_size=6):
    ...     fig = Figure()
    ...     ax = fig.add_subplot()
    >>> ax.spines["top"].get_visible(), ax.xaxis.label.get_fontsize()
    (False, 6.0)
    """
    import matplotlib as mpl
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    families = [f for f in ((font,) if font else ()) + _SANS if f in installed] or ["sans-serif"]
    rc = {
        "font.family": "sans-serif",
        "font.sans-serif": families + list(mpl.rcParams["font.sans-serif"]),
        "font.size": font_size,
        "axes.titlesize": font_size + 1,
        "axes.labelsize": font_size,
        "xtick.labelsize": font_size - 1,
        "ytick.labelsize": font_size - 1,
        "legend.fontsize": font_size - 1,
        "legend.frameon": False,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.linewidth": 0.6,
        "xtick.major.width": 0.6,
        "ytick.major.width": 0.6,
        "xtick.major.size": 2.5,
        "ytick.major.size": 2.5,
        "lines.linewidth": 1.0,
        "patch.linewidth": 0.5,
        "figure.dpi": 100,
        "savefig.dpi": dpi,
        "savefig.bbox": "tight",
        "savefig.pad_inches": 0.02,
        "pdf.fonttype": 42,
        "ps.fonttype": 42,
        "svg.fonttype": "none",
        "image.cmap": "viridis",
    }
    with mpl.rc_context(rc):
        yield


def new_axes(
    ax: Axes | None, figsize: tuple[float, float] | None, *, projection: str | None = None
) -> tuple[Figure, Axes]:
    """``ax``'s figure and ``ax``, or a new :class:`~matplotlib.figure.Figure` (no pyplot
    state) with one axes."""
    if ax is not None:
        from matplotlib.axes import Axes

        if not isinstance(ax, Axes):
            raise GclError(f"ax must be a matplotlib Axes, got {type(ax).__name__}.")
        if projection == "3d" and getattr(ax, "name", "") != "3d":
            raise GclError(
                "kind='surface' needs a 3-D axes: pass ax=fig.add_subplot(projection='3d') "
                "or leave ax=None."
            )
        try:
            return ax.get_figure(root=True), ax
        except TypeError:  # matplotlib < 3.10
            return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot(projection=projection)


def get_landscape(adata: Any, key: str) -> Landscape:
    """The landscape stored in ``adata.uns[key]`` (or ``adata`` itself when it is one)."""
    from ..landscape import Landscape

    if isinstance(adata, Landscape):
        return adata
    _check_adata(adata)
    return Landscape.from_adata(adata, key)


def get_genome(adata: Any, key: str) -> Genome:
    """The genome stored in ``adata.uns[key]`` (or ``adata`` itself when it is one)."""
    from ..landscape import Genome

    if isinstance(adata, Genome):
        return adata
    _check_adata(adata)
    return Genome.from_adata(adata, key)


def _check_adata(adata: Any) -> None:
    from anndata import AnnData

    if not isinstance(adata, AnnData):
        raise GclError(
            f"expected an AnnData (or a gcl.landscape result), got {type(adata).__name__}."
        )


def check_result(obj: Any, cls_name: str, maker: str) -> None:
    """Raise unless ``obj`` is a ``gcl.sim.<cls_name>``."""
    from .. import sim

    cls = getattr(sim, cls_name)
    if not isinstance(obj, cls):
        raise GclError(f"expected a gcl.sim.{cls_name} (from {maker}), got {type(obj).__name__}.")


def categorical_colors(adata: AnnData, column: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Per-cell colours of a categorical ``.obs`` column and the category → colour map
    (``.uns[f"{column}_colors"]`` when scanpy stored one, else tab10/tab20)."""
    from matplotlib import colormaps

    values = adata.obs[column].astype("category")
    cats = [str(c) for c in values.cat.categories]
    stored = adata.uns.get(f"{column}_colors")
    if stored is not None and len(stored) == len(cats):
        palette = [str(c) for c in stored]
    else:
        cmap = colormaps["tab10" if len(cats) <= 10 else "tab20"]
        palette = [cmap(i % cmap.N) for i in range(len(cats))]
    lut = dict(zip(cats, palette, strict=True))
    codes = values.cat.codes.to_numpy()
    colors = np.array([palette[c] if c >= 0 else (0.8, 0.8, 0.8, 1.0) for c in codes], dtype=object)
    return colors, lut


def energy_levels(U: np.ndarray, reference: np.ndarray | None, n: int) -> np.ndarray:
    """About ``n`` round contour levels from 0 to the energy range that matters: the 95th
    percentile of the energy at the cells (``reference``) plus a quarter, else the grid's 60th
    percentile (far from every cell the quasi-potential of a kernel density grows without
    bound)."""
    from matplotlib.ticker import MaxNLocator

    finite = U[np.isfinite(U)]
    if reference is not None and np.isfinite(reference).any():
        top = 1.25 * float(np.nanpercentile(reference, 95))
    else:
        top = float(np.percentile(finite, 60)) if len(finite) else 1.0
    if not top > 0:
        top = float(finite.max()) if len(finite) and finite.max() > 0 else 1.0
    levels = MaxNLocator(max(int(n), 2)).tick_values(0.0, top)
    return levels[levels >= 0]


def outlined(text: Any) -> None:
    """A white outline around ``text`` so that it reads on dark and light backgrounds."""
    from matplotlib import patheffects

    text.set_path_effects([patheffects.withStroke(linewidth=2.0, foreground="white")])
