"""Neighbour smoothing of cell states (kNN moments): shared by the drift and its deviation."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def _row_normalise(m: sp.spmatrix) -> sp.csr_matrix:
    d = np.asarray(m.sum(axis=1)).ravel()
    d[d == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / d) @ m)


def smooth_states(x: np.ndarray, graph: sp.spmatrix, n_steps: int) -> np.ndarray:
    """Average states over the neighbour graph ``n_steps`` times (kNN moments, as scVelo's ``Ms``).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> g = sp.csr_matrix(np.array([[0, 1.0], [1.0, 0]]))
    >>> smooth_states(np.array([[0.0], [2.0]]), g, 1).ravel().tolist()
    [1.0, 1.0]
    """
    smooth = _row_normalise(sp.csr_matrix(graph) + sp.eye(graph.shape[0], format="csr"))
    return _smoothed(smooth, x, {n_steps})[n_steps]


def _smoothed(smooth: sp.csr_matrix, x: np.ndarray, steps: set[int]) -> dict[int, np.ndarray]:
    """``{k: S^k x}`` for every ``k`` in ``steps``, from one run of repeated averaging with the
    row-stochastic ``smooth`` (values identical to :func:`smooth_states` for each ``k``)."""
    x = np.asarray(x, dtype=np.float64)
    out = {k: x for k in steps if k == 0}
    for k in range(1, max(steps) + 1):
        x = smooth @ x
        if k in steps:
            out[k] = x
    return out
