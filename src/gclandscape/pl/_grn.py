"""``gcl.pl.grn``: the genome as a signed directed network."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from .._errors import GclError
from .._keys import Key
from ._utils import ACTIVATION, REPRESSION, get_genome, new_axes

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..landscape import Genome

__all__ = ["grn"]

_LAYOUTS = ("spring", "kamada_kawai", "circular", "shell")


def grn(
    adata: AnnData | Genome,
    *,
    key: str = Key.uns.genome,
    top_k: int = 30,
    layout: Literal["spring", "kamada_kawai", "circular", "shell"] = "kamada_kawai",
    seed: int = 0,
    labels: bool = True,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """The genome's signed directed network: its ``top_k`` strongest edges.

    Edges are the genome's (:meth:`~gclandscape.landscape.Genome.edges`, weight = production
    Jacobian averaged over cells for a fitted genome) with the largest ``|weight|``:
    activations red with arrow heads, repressions blue with bar heads, width proportional to
    ``|weight|``. Nodes are the genes these edges join, sized by their out-degree among the
    drawn edges. Positions come from a :mod:`networkx` layout.

    Parameters
    ----------
    adata
        Annotated data matrix with a genome in ``.uns[key]`` (or a
        :class:`~gclandscape.landscape.Genome`).
    key
        Key of the genome.
    top_k
        Number of edges drawn (all of them when the genome has fewer).
    layout
        networkx layout: ``"kamada_kawai"``, ``"spring"``, ``"circular"`` or ``"shell"``.
    seed
        Seed of the spring layout.
    labels
        Write the gene names on the nodes.
    ax
        Axes to draw in; a new figure when ``None``.
    figsize
        Size of the new figure (inches).

    Returns
    -------
    The :class:`~matplotlib.figure.Figure`; each drawn edge is a patch with gid
    ``"grn_edge"``, the nodes a collection with gid ``"grn_nodes"``.

    Raises
    ------
    GclError
        No genome under ``key`` (run :func:`~gclandscape.landscape.fit_grn`), ``top_k`` not
        a positive integer, an unknown layout, a genome without edges.

    Examples
    --------
    >>> import anndata as ad, numpy as np, gclandscape as gcl
    >>> adata = ad.AnnData(np.zeros((2, 2)))
    >>> adata.var_names = ["A", "B"]
    >>> gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0).write_to_adata(adata)
    >>> fig = gcl.pl.grn(adata)
    >>> sum(p.get_gid() == "grn_edge" for p in fig.axes[0].patches)
    2
    """
    import networkx as nx
    from matplotlib.patches import ArrowStyle

    if not isinstance(top_k, int | np.integer) or isinstance(top_k, bool) or top_k < 1:
        raise GclError(f"top_k must be a positive integer, got {top_k!r}.")
    if layout not in _LAYOUTS:
        raise GclError(f"layout={layout!r}: use one of {', '.join(_LAYOUTS)}.")
    genome = get_genome(adata, key)
    edges = genome.edges().head(int(top_k))
    if edges.empty:
        raise GclError("the genome has no edges (every weight is 0): nothing to draw.")
    graph = nx.DiGraph()
    for r in edges.itertuples(index=False):
        graph.add_edge(str(r.source), str(r.target), signed_weight=float(r.weight))
    nodes = [g for g in genome.genes if g in graph]  # the genome's order
    if layout == "spring":
        pos = nx.spring_layout(graph, seed=seed, weight=None)
    elif layout == "kamada_kawai":
        # distances from |weight|-free hops; an undirected copy keeps one-way chains compact
        pos = (
            nx.kamada_kawai_layout(graph.to_undirected(), weight=None)
            if len(nodes) > 2
            else nx.circular_layout(graph)
        )
    elif layout == "circular":
        pos = nx.circular_layout(graph)
    else:
        pos = nx.shell_layout(graph)

    if figsize is None and ax is None:
        figsize = (3.8, 3.4)
    fig, ax = new_axes(ax, figsize)
    out_degree = np.array([graph.out_degree(n) for n in nodes], dtype=float)
    sizes = 320.0 + 120.0 * out_degree
    node_art = nx.draw_networkx_nodes(
        graph,
        pos,
        nodelist=nodes,
        node_size=sizes,
        node_color="#f2f2f2",
        edgecolors="0.2",
        linewidths=0.8,
        ax=ax,
    )
    node_art.set_gid("grn_nodes")
    node_art.set_zorder(3)
    w = np.abs(edges["weight"].to_numpy(dtype=float))
    widths = 0.5 + 2.5 * w / w.max()
    size_of = dict(zip(nodes, sizes, strict=True))
    for r, width in zip(edges.itertuples(index=False), widths, strict=True):
        u, v = str(r.source), str(r.target)
        positive = r.weight > 0
        patches = nx.draw_networkx_edges(
            graph,
            pos,
            edgelist=[(u, v)],
            width=float(width),
            ax=ax,
            arrows=True,
            edge_color=ACTIVATION if positive else REPRESSION,
            arrowstyle="-|>" if positive else ArrowStyle("-[", widthB=0.9, lengthB=0.0),
            arrowsize=10,
            node_size=[size_of[n] for n in nodes],
            nodelist=nodes,
            connectionstyle="arc3,rad=0.15",
        )
        for p in patches if isinstance(patches, list) else [patches]:
            p.set_gid("grn_edge")
    if labels:
        texts = nx.draw_networkx_labels(
            graph, pos, labels={n: n for n in nodes}, ax=ax, font_size=None
        )
        for t in texts.values():
            t.set_zorder(4)
            t.set_gid("grn_label")
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=ACTIVATION, label="activation"),
        Line2D([], [], color=REPRESSION, label="repression"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.0)
    ax.set_axis_off()
    # arrows do not move the data limits: frame the nodes (a layout may put all on a line)
    xy = np.array([pos[n] for n in nodes], dtype=float)
    lo, hi = xy.min(0), xy.max(0)
    half = np.maximum((hi - lo) / 2, 0.5 * float(np.max(hi - lo)) or 1.0) * 1.25
    mid = (lo + hi) / 2
    ax.set_xlim(mid[0] - half[0], mid[0] + half[0])
    ax.set_ylim(mid[1] - half[1], mid[1] + half[1])
    return fig
