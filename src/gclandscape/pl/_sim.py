"""Figures of in-silico perturbations: ``fate_shift``, ``screen`` and ``mutational_scan``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .._errors import GclError
from ._utils import PERTURBED_COLOR, WT_COLOR, check_result, new_axes

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.image import AxesImage

    from ..sim import MutationalScan, PerturbationResult

__all__ = ["fate_shift", "mutational_scan", "screen"]

_SCREEN_COLUMNS = ("perturbation", "fate")
#: A ``p_lost`` strictly between these bounds is an uncertain call: drawn hatched and lighter.
#: Outside them at least 80 % of the members agree: the figures treat that as a settled call
#: (the calibration goal of issue 18 judges the same two groups of calls).
UNCERTAIN = (0.2, 0.8)
_HATCH = "////"


def stars(p: float) -> str:
    """Significance mark of a p-value: ``***`` < 0.001, ``**`` < 0.01, ``*`` < 0.05, else ``""``."""
    if not np.isfinite(p):
        return ""
    return "***" if p < 1e-3 else "**" if p < 1e-2 else "*" if p < 0.05 else ""


def uncertain(p_lost: np.ndarray) -> np.ndarray:
    """Which ``p_lost`` values are uncertain calls (strictly inside :data:`UNCERTAIN`)."""
    p = np.asarray(p_lost, dtype=float)
    return (p > UNCERTAIN[0]) & (p < UNCERTAIN[1])


def fate_shift(
    result: PerturbationResult,
    *,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Wild-type vs perturbed fate fractions, with the perturbed fractions' 95 % intervals,
    significance stars and, for a genome ensemble, each fate's ``p_lost``.

    Draws ``result.fates`` of :func:`~gclandscape.sim.perturb`: for each fate a grey bar (wild
    type) and a red bar (perturbed) whose error bar is ``wt + [ci_low, ci_high]`` (the paired
    bootstrap interval of the change); stars above mark ``p_value`` < 0.05 (*), < 0.01 (**),
    < 0.001 (***).

    ``p_lost`` is the share of the fitted genome ensemble's members
    (``fit_grn(..., n_genomes=K)``) in which the fate is lost: fewer than 1 % of that member's
    perturbed cells reach it while at least 1 % of its wild-type cells do. Near 1 every member
    loses the fate, near 0 none does, and near 0.5 the wild-type data cannot decide between
    genomes that disagree. With an ensemble each fate is labelled ``p_lost 0.40`` above its
    bars, and an uncertain call (0.2 < ``p_lost`` < 0.8) has its perturbed bar hatched and
    lighter. A single genome's ``p_lost`` is only 0 or 1 and carries no uncertainty: no labels
    are drawn and the legend says "single genome".

    Parameters
    ----------
    result
        A :class:`~gclandscape.sim.PerturbationResult`.
    ax
        Axes to draw in; a new figure when ``None``.
    figsize
        Size of the new figure (inches).

    Returns
    -------
    The :class:`~matplotlib.figure.Figure`; bars carry gids ``"wt"`` and ``"perturbed"``, the
    stars ``"significance"``, the ensemble's ``p_lost`` labels ``"p_lost"``.

    Raises
    ------
    GclError
        Not a ``PerturbationResult``, or one without fates (a steady-state genome: plot
        ``result.expression`` instead).

    Examples
    --------
    >>> import anndata as ad, numpy as np, gclandscape as gcl
    >>> toggle = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
    >>> x = np.random.default_rng(0).uniform(0, 1, (100, 2))
    >>> adata = ad.AnnData(x)
    >>> adata.var_names = ["A", "B"]
    >>> adata.obs["celltype"] = np.where(x[:, 0] > x[:, 1], "A-high", "B-high")
    >>> toggle.write_to_adata(adata)
    >>> _ = gcl.landscape.fit_landscape(adata, groupby="celltype")
    >>> res = gcl.sim.perturb(adata, gcl.sim.Knockout("A"), n_cells=100, n_null=0)
    >>> fig = gcl.pl.fate_shift(res)
    >>> [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "significance"]
    ['***', '***']
    >>> fig.axes[0].get_legend().get_title().get_text().splitlines()[0]
    'single genome: no p_lost'
    """
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Patch

    check_result(result, "PerturbationResult", "gcl.sim.perturb")
    fates = result.fates
    if fates.empty:
        raise GclError(
            f"the result of {result.perturbation!r} has no fates (a genome fitted in "
            "steady-state mode); plot result.expression or result.log2fc instead."
        )
    n_genomes = int(result.params.get("n_genomes", 1))
    ensemble = n_genomes > 1 and "p_lost" in fates.columns
    if figsize is None and ax is None:
        # the legend goes beside the bars; an ensemble's "p_lost 0.40" labels are wider than
        # a bar pair
        figsize = (3.0 + (0.75 if ensemble else 0.55) * len(fates), 2.6)
    fig, ax = new_axes(ax, figsize)
    names = [str(f) for f in fates.index]
    pos = np.arange(len(names))
    wt = fates["wt"].to_numpy(dtype=float)
    pt = fates["perturbed"].to_numpy(dtype=float)
    lo = np.clip(wt + fates["ci_low"].to_numpy(dtype=float), 0, 1)
    hi = np.clip(wt + fates["ci_high"].to_numpy(dtype=float), 0, 1)
    err = np.vstack([np.clip(pt - lo, 0, None), np.clip(hi - pt, 0, None)])
    width = 0.38
    b1 = ax.bar(pos - width / 2, wt, width, color=WT_COLOR, label="wild type")
    b2 = ax.bar(
        pos + width / 2,
        pt,
        width,
        color=PERTURBED_COLOR,
        label=result.perturbation,
        yerr=err,
        error_kw={"elinewidth": 0.8, "capsize": 2},
    )
    for p in b1.patches:
        p.set_gid("wt")
    p_lost = fates["p_lost"].to_numpy(dtype=float) if ensemble else np.zeros(len(fates))
    light = to_rgba(PERTURBED_COLOR, 0.35)
    for p, weak in zip(b2.patches, uncertain(p_lost), strict=True):
        p.set_gid("perturbed")
        if weak:  # the bar averages members that disagree: it must not read as a firm call
            p.set_facecolor(light)
            p.set_edgecolor(PERTURBED_COLOR)
            p.set_hatch(_HATCH)
    top = np.maximum(wt, hi)
    if ensemble:
        for k, v in enumerate(p_lost):
            t = ax.text(pos[k], top[k] + 0.03, f"p_lost {v:.2f}", ha="center", va="bottom",
                        fontsize="x-small")  # fmt: skip
            t.set_gid("p_lost")
    for k, p in enumerate(fates["p_value"].to_numpy(dtype=float)):
        mark = stars(p)
        if mark:
            # above the p_lost label when there is one (offset in points: any figure size)
            t = ax.annotate(mark, (pos[k], top[k] + 0.03), xytext=(0, 7 if ensemble else 0),
                            textcoords="offset points", ha="center", va="bottom")  # fmt: skip
            t.set_gid("significance")
    ax.set_xticks(
        pos, names, rotation=30 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center"
    )
    ax.set_ylabel("fraction of cells")
    ax.set_ylim(0, max(1.0, float(top.max()) + (0.2 if ensemble else 0.12)))
    # proxies: a BarContainer's legend entry copies its first bar, which may be hatched
    handles = [b1, Patch(color=PERTURBED_COLOR, label=result.perturbation)]
    if ensemble:
        handles.append(
            Patch(facecolor=light, edgecolor=PERTURBED_COLOR, hatch=_HATCH,
                  label=f"uncertain: {UNCERTAIN[0]} < p_lost < {UNCERTAIN[1]}")
        )  # fmt: skip
        title = f"p_lost: share of {n_genomes} genomes\nin which the fate is lost"
    else:
        title = "single genome: no p_lost\n(fit_grn(n_genomes=K) gives it)"
    # beside the axes: inside, it would cover the bars that reach 1 and their stars
    ax.legend(handles=handles, title=title, loc="upper left", bbox_to_anchor=(1.0, 1.0),
              alignment="left", title_fontsize="x-small")  # fmt: skip
    return fig


def screen(
    table: pd.DataFrame,
    *,
    value: str = "delta",
    cluster: bool = True,
    cmap: str = "RdBu_r",
    mark_significant: bool = True,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Heatmap of a perturbation screen: perturbations × fates, coloured by the change in
    fate fraction on a diverging scale centred on 0, rows and columns clustered, with the
    ensemble's ``p_lost`` written where the genomes disagree.

    Draws the tidy table of :func:`~gclandscape.sim.screen`. The order of rows and of columns
    is the leaf order of an average-linkage hierarchical clustering of their profiles
    (:func:`scipy.cluster.hierarchy.linkage`, optimal leaf ordering); cells with
    ``p_value`` < 0.05 get a dot.

    ``p_lost`` is the share of the fitted genome ensemble's members
    (``fit_grn(..., n_genomes=K)``) in which the fate is lost: fewer than 1 % of that member's
    perturbed cells reach it while at least 1 % of its wild-type cells do. Near 0.5 the
    wild-type data cannot decide between genomes that disagree. A cell whose ``p_lost`` lies
    strictly between 0 and 1 (the members disagree) shows its value below the dot, and an
    uncertain call (0.2 < ``p_lost`` < 0.8) is hatched. Cells with ``p_lost`` 0 or 1 (every
    member agrees) look as without an ensemble; a single genome's ``p_lost`` is always 0 or 1,
    so its heatmap has no marks and the legend says so.

    Parameters
    ----------
    table
        The DataFrame of :func:`~gclandscape.sim.screen` (columns ``perturbation``, ``fate``,
        ``value`` and, for the marks, ``p_value`` and ``p_lost``).
    value
        Column drawn (``"delta"`` by default).
    cluster
        Order rows and columns by clustering (else the table's order).
    cmap
        Diverging colormap.
    mark_significant
        Dot the cells with ``p_value`` < 0.05.
    ax
        Axes to draw in; a new figure when ``None``.
    figsize
        Size of the new figure (inches); by default it grows with the table.

    Returns
    -------
    The :class:`~matplotlib.figure.Figure`; the heatmap is an image with gid ``"screen"``
    whose array is perturbations × fates; the dots have gid ``"significant"``, the ``p_lost``
    texts ``"p_lost"`` and the hatched cells ``"uncertain"``.

    Raises
    ------
    GclError
        Not a DataFrame, missing columns, an empty table.

    Examples
    --------
    >>> import pandas as pd, gclandscape as gcl
    >>> table = pd.DataFrame({"perturbation": ["A KO", "A KO", "B KO", "B KO"],
    ...                       "fate": ["A-high", "B-high"] * 2,
    ...                       "delta": [-0.5, 0.5, 0.5, -0.5], "p_value": [1e-4] * 4,
    ...                       "p_lost": [0.6, 0.0, 0.0, 1.0]})
    >>> fig = gcl.pl.screen(table, cluster=False)
    >>> [im.get_array().shape for im in fig.axes[0].images]
    [(2, 2)]
    >>> [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "p_lost"]
    ['0.60']
    """
    import pandas as pd

    if not isinstance(table, pd.DataFrame):
        raise GclError(f"screen draws the DataFrame of gcl.sim.screen, got {type(table).__name__}.")
    missing = [c for c in (*_SCREEN_COLUMNS, value) if c not in table.columns]
    if missing:
        raise GclError(
            f"the screen table lacks the column(s) {', '.join(missing)}; pass the DataFrame "
            "returned by gcl.sim.screen (columns perturbation, fate, delta, ...)."
        )
    if table.empty:
        raise GclError("the screen table is empty: nothing to draw.")
    rows = list(dict.fromkeys(table["perturbation"].astype(str)))
    cols = list(dict.fromkeys(table["fate"].astype(str)))
    t = table.assign(perturbation=table["perturbation"].astype(str), fate=table["fate"].astype(str))
    mat = t.pivot_table(index="perturbation", columns="fate", values=value, aggfunc="mean")
    mat = mat.reindex(index=rows, columns=cols)
    if cluster:
        filled = mat.fillna(0.0).to_numpy(dtype=float)
        mat = mat.iloc[_leaf_order(filled), _leaf_order(filled.T)]
    data = mat.to_numpy(dtype=float)
    marks = "p_lost" in t.columns
    if figsize is None and ax is None:
        # the p_lost legend above the heatmap needs about 2 inches of axes width: narrower,
        # it would spill to the right and push the colour bar away
        width = 1.6 + 0.45 * data.shape[1]
        figsize = (max(width, 3.2) if marks else width, 1.0 + 0.22 * data.shape[0])
    fig, ax = new_axes(ax, figsize)
    top = float(np.nanmax(np.abs(data))) if np.isfinite(data).any() else 1.0
    top = top if top > 0 else 1.0
    im = ax.imshow(
        np.ma.masked_invalid(data),
        cmap=cmap,
        vmin=-top,
        vmax=top,
        aspect="auto",
        interpolation="nearest",
    )
    im.set_gid("screen")
    ax.set_xticks(np.arange(data.shape[1]), list(mat.columns), rotation=45, ha="right")
    ax.set_yticks(np.arange(data.shape[0]), list(mat.index))
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)

    def cells(column: str, agg: str) -> np.ndarray:
        """``column`` as a matrix in the heatmap's order."""
        m = t.pivot_table(index="perturbation", columns="fate", values=column, aggfunc=agg)
        return m.reindex(index=mat.index, columns=mat.columns).to_numpy(dtype=float)

    handles = []
    if mark_significant and "p_value" in t.columns:
        i, j = np.nonzero(np.nan_to_num(cells("p_value", "min"), nan=1.0) < 0.05)
        if len(i):
            dots = ax.scatter(j, i, s=6, c="k", marker="o", linewidths=0, label="p < 0.05")
            dots.set_gid("significant")
            handles.append(dots)
    if marks:
        more, title = _mark_p_lost(ax, im, cells("p_lost", "mean"))
        # above the heatmap: beside it sits the colour bar, below it the fate names
        ax.legend(handles=handles + more, title=title, loc="lower left", bbox_to_anchor=(0, 1),
                  alignment="left", title_fontsize="x-small", fontsize="x-small")  # fmt: skip
    fig.colorbar(
        im, ax=ax, label=f"{value} (fate fraction)" if value == "delta" else value, shrink=0.8
    )
    return fig


def _mark_p_lost(ax: Axes, im: AxesImage, p_lost: np.ndarray) -> tuple[list, str | None]:
    """Write ``p_lost`` in the cells where the ensemble's members disagree and hatch the
    uncertain ones; the legend's handles and title that explain them."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    for r, c in zip(*np.nonzero(uncertain(p_lost)), strict=True):
        box = Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, hatch=_HATCH, edgecolor="0.3",
                        linewidth=0)  # fmt: skip
        box.set_gid("uncertain")
        ax.add_patch(box)
    i, j = np.nonzero((p_lost > 0) & (p_lost < 1))  # NaN (no such pair) compares False
    rgba = im.to_rgba(im.get_array())
    for r, c in zip(i, j, strict=True):
        # black or white, whichever reads on the cell's colour (Rec. 601 luma); a box of the
        # cell's colour keeps the hatching from crossing the digits; below the p-value dot
        dark = float(np.dot(rgba[r, c, :3], [0.299, 0.587, 0.114])) < 0.5
        txt = ax.text(c, r + 0.28, f"{p_lost[r, c]:.2f}", ha="center", va="center",
                      fontsize="xx-small", color="w" if dark else "k",
                      bbox={"boxstyle": "square,pad=0.1", "fc": rgba[r, c], "lw": 0})  # fmt: skip
        txt.set_gid("p_lost")
    if not len(i):
        return [], "every p_lost is 0 or 1:\none genome, or all members agree"
    number = Line2D([], [], linestyle="none", marker="$0.5$", markersize=9, color="k",
                    markeredgewidth=0, label="p_lost: share of genomes losing the fate")  # fmt: skip
    hatch = Patch(fill=False, hatch=_HATCH, edgecolor="0.3", linewidth=0,
                  label=f"uncertain: {UNCERTAIN[0]} < p_lost < {UNCERTAIN[1]}")  # fmt: skip
    return [number, hatch], "unmarked: all members agree"


def _leaf_order(x: np.ndarray) -> np.ndarray:
    """Leaf order of an average-linkage clustering of the rows of ``x`` (input order for < 3
    rows)."""
    if len(x) < 3:
        return np.arange(len(x))
    from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering
    from scipy.spatial.distance import pdist

    d = pdist(x, metric="euclidean")
    z = linkage(d, method="average")
    return leaves_list(optimal_leaf_ordering(z, d))


def mutational_scan(
    scan: MutationalScan,
    *,
    axes: Sequence[Axes] | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Robustness and evolvability of the genome, and the pleiotropy distribution of its
    edges.

    Left: the fractions of mutants that keep every wild-type fate (robustness) and that reach
    a novel attractor (evolvability), with 95 % Wilson intervals from the number of mutants.
    Right: how many fates losing one edge moves, over the edges lost in the scan.

    Parameters
    ----------
    scan
        A :class:`~gclandscape.sim.MutationalScan` from :func:`~gclandscape.sim.mutational_scan`.
    axes
        Two axes to draw in; a new figure with two panels when ``None``.
    figsize
        Size of the new figure (inches).

    Returns
    -------
    The :class:`~matplotlib.figure.Figure`; the summary bars carry gids ``"robustness"`` and
    ``"evolvability"``, the pleiotropy bars ``"pleiotropy"``.

    Raises
    ------
    GclError
        Not a ``MutationalScan``; ``axes`` not two axes.

    Examples
    --------
    >>> import anndata as ad, numpy as np, gclandscape as gcl
    >>> toggle = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
    >>> adata = ad.AnnData(np.random.default_rng(0).uniform(0, 1, (100, 2)))
    >>> adata.var_names = ["A", "B"]
    >>> toggle.write_to_adata(adata)
    >>> _ = gcl.landscape.fit_landscape(adata)
    >>> scan = gcl.sim.mutational_scan(adata, n_mutations=4, n_cells=50, progress=False)
    >>> fig = gcl.pl.mutational_scan(scan)
    >>> len(fig.axes)
    2
    """
    check_result(scan, "MutationalScan", "gcl.sim.mutational_scan")
    from scipy.stats import binomtest

    if axes is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize or (5.0, 2.2), layout="constrained")
        ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, 1.6])
    else:
        from matplotlib.axes import Axes

        axes = list(axes)
        if len(axes) != 2 or not all(isinstance(a, Axes) for a in axes):
            raise GclError("axes must be two matplotlib Axes (summary, pleiotropy) or None.")
        ax1, ax2 = axes
        try:
            fig = ax1.get_figure(root=True)
        except TypeError:  # matplotlib < 3.10
            fig = ax1.figure
    table = scan.table
    n = len(table)
    names = ["robustness", "evolvability"]
    values = [scan.robustness, scan.evolvability]
    counts = [int(table["robust"].sum()), int(table["novel"].sum())] if n else [0, 0]
    err = np.zeros((2, 2))
    for k, c in enumerate(counts):
        if n:
            ci = binomtest(c, n).proportion_ci(confidence_level=0.95, method="wilson")
            err[:, k] = [values[k] - ci.low, ci.high - values[k]]
    bars = ax1.bar(
        [0, 1],
        np.nan_to_num(values),
        0.6,
        color=["#4c956c", "#d68c45"],
        yerr=np.clip(err, 0, None),
        error_kw={"elinewidth": 0.8, "capsize": 2},
    )
    for b, name in zip(bars.patches, names, strict=True):
        b.set_gid(name)
    for k, v in enumerate(values):
        if np.isfinite(v):
            ax1.text(k, min(v + err[1, k] + 0.03, 1.02), f"{v:.2f}", ha="center", va="bottom")
    ax1.set_xticks([0, 1], names)
    ax1.set_ylim(0, 1.12)
    ax1.set_ylabel("fraction of mutants")
    ax1.set_title(f"{n} mutants")

    pleio = scan.pleiotropy
    n_fates = len([f for f in scan.fates if f != "novel"]) or 1
    if len(pleio):
        k = pleio["n_fates"].to_numpy(dtype=int)
        support = np.arange(0, max(int(k.max()), n_fates) + 1)
        freq = np.bincount(k, minlength=len(support))[: len(support)]
        pb = ax2.bar(support, freq, 0.7, color="0.45")
        for b in pb.patches:
            b.set_gid("pleiotropy")
        ax2.set_xticks(support)
        from matplotlib.ticker import MaxNLocator

        ax2.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax2.set_title(f"pleiotropy of {len(pleio)} edges")
    else:
        ax2.text(
            0.5, 0.5, "no edge-loss mutants", ha="center", va="center", transform=ax2.transAxes
        )
        ax2.set_title("pleiotropy")
    ax2.set_xlabel("fates moved by losing the edge")
    ax2.set_ylabel("edges")
    return fig
