"""Small helpers shared across namespaces (logging, random generators, checks)."""

from __future__ import annotations

import logging

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
