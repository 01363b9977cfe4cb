"""Small helpers shared across namespaces (logging, random generators, checks)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

logger = logging.getLogger("gclandscape")


def rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """Return a NumPy generator from a seed or pass a generator through.

    Examples
    --------
    >>> bool(rng(0).integers(10) == rng(0).integers(10))
    True
    """
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def dense(m: Any) -> np.ndarray:
    """``m`` (a scipy sparse matrix, or anything array-like) as a dense float64 array.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> dense(sp.csr_matrix([[0, 2]])).tolist(), dense([[1, 0]]).dtype.name
    ([[0.0, 2.0]], 'float64')
    """
    return np.asarray(m.toarray() if hasattr(m, "toarray") else m, dtype=np.float64)
