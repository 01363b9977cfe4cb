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

    from ..sim import MutationalScan, PerturbationResult

__all__ = ["fate_shift", "mutational_scan", "screen"]

_SCREEN_COLUMNS = ("perturbation", "fate")


def stars(p: float) -> str:
    """Significance mark of a p-value: ``***`` < 0.001, ``**`` < 0.01, ``*`` < 0.05, else ``""``."""
    if not np.isfinite(p):
        return ""
    return "***" if p < 1e-3 else "**" if p < 1e-2 else "*" if p < 0.05 else ""


def fate_shift(
    result: PerturbationResult,
    *,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Wild-type vs perturbed fate fractions, with the perturbed fractions' 95 % intervals and
    significance stars.

    Draws ``result.fates`` of :func:`~gclandscape.sim.perturb`: for each fate a grey bar (wild
    type) and a red bar (perturbed) whose error bar is ``wt + [ci_low, ci_high]`` (the paired
    bootstrap interval of the change); stars above mark ``p_value`` < 0.05 (*), < 0.01 (**),
    < 0.001 (***).

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
    stars ``"significance"``.

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
    """
    check_result(result, "PerturbationResult", "gcl.sim.perturb")
    fates = result.fates
    if fates.empty:
        raise GclError(
            f"the result of {result.perturbation!r} has no fates (a genome fitted in "
            "steady-state mode); plot result.expression or result.log2fc instead."
        )
    if figsize is None and ax is None:
        figsize = (1.6 + 0.55 * len(fates), 2.6)
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
    for p in b2.patches:
        p.set_gid("perturbed")
    top = np.maximum(wt, hi)
    for k, p in enumerate(fates["p_value"].to_numpy(dtype=float)):
        mark = stars(p)
        if mark:
            t = ax.text(pos[k], top[k] + 0.03, mark, ha="center", va="bottom")
            t.set_gid("significance")
    ax.set_xticks(
        pos, names, rotation=30 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center"
    )
    ax.set_ylabel("fraction of cells")
    ax.set_ylim(0, max(1.0, float(top.max()) + 0.12))
    ax.legend(loc="upper right")
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
    fate fraction on a diverging scale centred on 0, rows and columns clustered.

    Draws the tidy table of :func:`~gclandscape.sim.screen`. The order of rows and of columns
    is the leaf order of an average-linkage hierarchical clustering of their profiles
    (:func:`scipy.cluster.hierarchy.linkage`, optimal leaf ordering); cells with
    ``p_value`` < 0.05 get a dot.

    Parameters
    ----------
    table
        The DataFrame of :func:`~gclandscape.sim.screen` (columns ``perturbation``, ``fate``,
        ``value`` and, for the dots, ``p_value``).
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
    whose array is perturbations × fates.

    Raises
    ------
    GclError
        Not a DataFrame, missing columns, an empty table.

    Examples
    --------
    >>> import pandas as pd, gclandscape as gcl
    >>> table = pd.DataFrame({"perturbation": ["A KO", "A KO", "B KO", "B KO"],
    ...                       "fate": ["A-high", "B-high"] * 2,
    ...                       "delta": [-0.5, 0.5, 0.5, -0.5], "p_value": [1e-4] * 4})
    >>> fig = gcl.pl.screen(table)
    >>> [im.get_array().shape for im in fig.axes[0].images]
    [(2, 2)]
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
    if figsize is None and ax is None:
        figsize = (1.6 + 0.45 * data.shape[1], 1.0 + 0.22 * data.shape[0])
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
    if mark_significant and "p_value" in t.columns:
        p = t.pivot_table(index="perturbation", columns="fate", values="p_value", aggfunc="min")
        p = p.reindex(index=mat.index, columns=mat.columns).to_numpy(dtype=float)
        i, j = np.nonzero(np.nan_to_num(p, nan=1.0) < 0.05)
        if len(i):
            dots = ax.scatter(j, i, s=6, c="k", marker="o", linewidths=0)
            dots.set_gid("significant")
    fig.colorbar(
        im, ax=ax, label=f"{value} (fate fraction)" if value == "delta" else value, shrink=0.8
    )
    return fig


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
