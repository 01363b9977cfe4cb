"""Latent cell states with scvi-tools.

``fit`` trains an scVI, LDVAE (linearly decoded) or scANVI model on counts and writes the
latent cell states; the returned :class:`LatentModel` encodes new cells and decodes latent
points back to whole-transcriptome expression. ``load`` restores a saved model. scvi-tools
is imported only when these are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {"fit": "._fit", "load": "._persist", "LatentModel": "._model"}

__all__ = ["LatentModel", "fit", "load"]

if TYPE_CHECKING:  # pragma: no cover
    from ._fit import fit
    from ._model import LatentModel
    from ._persist import load


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
