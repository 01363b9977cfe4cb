"""Preprocessing: thin scanpy glue.

``recipe`` runs QC, filtering of empty cells and genes, log-normalisation into a layer, highly
variable genes and PCA; ``annotate_regulators`` flags transcription factors from lists shipped
with the package. Functions load their module on first use so ``import gclandscape``
stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {"recipe": "._recipe", "annotate_regulators": "._regulators"}

__all__ = ["annotate_regulators", "recipe"]

if TYPE_CHECKING:  # pragma: no cover
    from ._recipe import recipe
    from ._regulators import annotate_regulators


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
