"""Tools: thin scanpy glue for the time signal.

``pseudotime`` computes diffusion pseudotime from a root group; ``drift`` estimates a per-cell
dx/dt. Functions load their module on first use so ``import gclandscape`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {"pseudotime": "._pseudotime", "drift": "._drift"}

__all__ = ["drift", "pseudotime"]

if TYPE_CHECKING:  # pragma: no cover
    from ._drift import drift
    from ._pseudotime import pseudotime


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gclandscape.tl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
