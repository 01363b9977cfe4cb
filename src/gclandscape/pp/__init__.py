"""Preprocessing: thin scanpy glue.

``recipe`` runs QC, filtering of empty cells and genes, log-normalisation into a layer, highly
variable genes and PCA. Functions load their module on first use so ``import gclandscape``
stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {"recipe": "._recipe"}

__all__ = ["recipe"]

if TYPE_CHECKING:  # pragma: no cover
    from ._recipe import recipe


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gclandscape.pp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
