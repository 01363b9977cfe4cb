"""Preprocessing: thin scanpy glue.

``recipe`` runs QC, filtering of empty cells and genes, log-normalisation into a layer, highly
variable genes and PCA. Functions load their module on first use so ``import gclandscape``
stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {"recipe": "._recipe"}

__all__ = ["recipe"]

if TYPE_CHECKING:  # pragma: no cover
    from ._recipe import recipe


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
