"""The fate-aware time of ``gcl.tl.pseudotime(method="committor")``: terminal cell types from
the PAGA tree, and the committor between the root's earliest cells and those types' cells.

Diffusion pseudotime is a distance from the root: a fate whose cells lie close to the root in
expression comes out *before* most progenitors (measured on the generalisation suite: one
fate of ``random25_s125`` at a median DPT of 0.25 against 0.42 for the progenitors; Spearman
with the simulation clock 0.43). The committor orders by what a cell is heading for: the
probability that a random walk on the kNN graph from the cell reaches a terminal cell type
before it reaches the root's earliest cells (transition path theory's committor; Metzner,
Schütte & Vanden-Eijnden 2009). It is 0 at the root, 1 on the later half of each terminal
type's cells, and harmonic in between, so a fate comes after the progenitors that feed it
whatever its distance from the root (the same network: Spearman 0.82). It is not the default
time of the package: over the suite's dev split it left the knockout calls where DPT had them
(``benchmarks/README.md``, "Eleventh session").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

#: Share of the root group's cells, earliest by diffusion pseudotime, where the committor is 0.
ROOT_SHARE = 0.05
#: A terminal group's cells at or above this quantile of its diffusion pseudotime are where
#: the committor is 1.
TERMINAL_LATE = 0.5
#: A group is a terminal candidate when it holds at least this share of the non-root cells.
MIN_TERMINAL_SHARE = 0.05


def terminal_groups(
    group_connectivities: np.ndarray, groups: list[str], labels: np.ndarray, root: str
) -> list[str]:
    """The leaves of the groups' maximum spanning tree, other than the root (PAGA's tree).

    Groups holding less than :data:`MIN_TERMINAL_SHARE` of the non-root cells are left out
    of the tree first (a handful of cells in another pattern would otherwise hang from a fate
    as a leaf and make the fate look intermediate). The tree is
    :func:`scipy.sparse.csgraph.minimum_spanning_tree` of ``1 / connectivity``, as
    :func:`scanpy.tl.paga` builds ``connectivities_tree``; an intermediate type (a GMP between
    progenitors and monocytes) has two tree neighbours and is not terminal.

    Parameters
    ----------
    group_connectivities
        Groups × groups connectivities (``.uns["paga"]["connectivities"]``).
    groups
        The groups' names, in the matrix's order.
    labels
        Every cell's group.
    root
        The root group.

    Returns
    -------
    Terminal group names, sorted.

    Examples
    --------
    >>> import numpy as np
    >>> conn = np.array([[0, .9, 0, 0], [.9, 0, .8, .7], [0, .8, 0, .1], [0, .7, .1, 0]])
    >>> labels = np.repeat(["p", "gmp", "mono", "gran"], 10)
    >>> terminal_groups(conn, ["p", "gmp", "mono", "gran"], labels, "p")
    ['gran', 'mono']
    """
    from scipy.sparse.csgraph import minimum_spanning_tree

    labels = np.asarray(labels).astype(str)
    shares = pd.Series(labels[labels != root]).value_counts(normalize=True)
    keep = [
        i for i, g in enumerate(groups) if g == root or shares.get(g, 0.0) >= MIN_TERMINAL_SHARE
    ]
    conn = np.asarray(group_connectivities, dtype=np.float64)[np.ix_(keep, keep)]
    conn = np.maximum(conn, conn.T)
    with np.errstate(divide="ignore"):
        dist = np.where(conn > 0, 1.0 / np.where(conn > 0, conn, 1.0), 0.0)
    tree = minimum_spanning_tree(sp.csr_matrix(dist)).toarray()
    degree = ((tree + tree.T) > 0).sum(axis=1)
    names = [groups[i] for i in keep]
    return sorted(g for g, d in zip(names, degree, strict=True) if d == 1 and g != root)


def committor(graph: sp.spmatrix, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Probability that a random walk on ``graph`` from each cell reaches ``end`` before ``start``.

    The harmonic function of the graph Laplacian with value 0 on ``start`` and 1 on ``end``
    (one sparse solve per connected component). A component without ``start`` cells is NaN
    (no walk from the root reaches it: it has no place in the order, ``end`` cells included);
    one without ``end`` cells is 0.

    Parameters
    ----------
    graph
        Symmetric sparse cells × cells weights (a kNN graph's connectivities).
    start, end
        Boolean masks of the cells where the value is 0 and 1 (disjoint).

    Returns
    -------
    The committor of every cell, in [0, 1] or NaN.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> chain = sp.diags([np.ones(4), np.ones(4)], [-1, 1], shape=(5, 5))
    >>> q = committor(chain, np.eye(5, dtype=bool)[0], np.eye(5, dtype=bool)[4])
    >>> q.round(2).tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    from scipy.sparse.csgraph import connected_components
    from scipy.sparse.linalg import spsolve

    w = sp.csr_matrix(graph, dtype=np.float64)
    w = (w + w.T) * 0.5
    n = w.shape[0]
    q = np.full(n, np.nan)
    q[start] = 0.0
    q[end] = 1.0
    _, comp = connected_components(w, directed=False)
    laplacian = (sp.diags(np.asarray(w.sum(axis=1)).ravel()) - w).tocsr()
    boundary = start | end
    for c in np.unique(comp):
        cells = comp == c
        inner = np.flatnonzero(cells & ~boundary)
        if not (cells & start).any():
            q[cells] = np.nan
            continue
        if not (cells & end).any():
            q[inner] = 0.0
            continue
        if not inner.size:
            continue
        fixed = np.flatnonzero(cells & boundary)
        rhs = -(laplacian[inner][:, fixed] @ q[fixed])
        q[inner] = spsolve(laplacian[inner][:, inner].tocsc(), rhs)
    return np.clip(q, 0.0, 1.0)
