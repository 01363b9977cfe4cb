"""Tools: thin scanpy glue for the time signal.

``pseudotime`` computes diffusion pseudotime from a root group; ``drift`` estimates a per-cell
dx/dt. Functions load their module on first use so ``import gclandscape`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {"pseudotime": "._pseudotime", "drift": "._drift"}

__all__ = ["drift", "pseudotime"]

if TYPE_CHECKING:  # pragma: no cover
    from ._drift import drift
    from ._pseudotime import pseudotime


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
