"""The genome and its landscape: ``Genome``, ``fit_grn``, ``fit_landscape``.

Names load their module on first use so ``import gclandscape`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "Genome": "._genome",
    "fit_grn": "._fit_grn",
}

__all__ = ["Genome", "fit_grn"]

if TYPE_CHECKING:  # pragma: no cover
    from ._fit_grn import fit_grn
    from ._genome import Genome


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gclandscape.landscape' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
