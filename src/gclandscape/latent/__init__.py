"""Latent cell states with scvi-tools.

``fit`` trains an scVI, LDVAE (linearly decoded) or scANVI model on counts and writes the
latent cell states; the returned :class:`LatentModel` encodes new cells and decodes latent
points back to whole-transcriptome expression. ``load`` restores a saved model. scvi-tools
is imported only when these are used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {"fit": "._model", "load": "._model", "LatentModel": "._model"}

__all__ = ["LatentModel", "fit", "load"]

if TYPE_CHECKING:  # pragma: no cover
    from ._model import LatentModel, fit, load


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gclandscape.latent' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
