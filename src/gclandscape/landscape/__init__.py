"""The genome and its landscape: ``Genome``, ``fit_grn``, ``fit_landscape``.

Names load their module on first use so ``import gclandscape`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "Genome": "._genome",
    "fit_grn": "._fit_grn",
    "Landscape": "._landscape",
    "fit_landscape": "._landscape",
}

__all__ = ["Genome", "Landscape", "fit_grn", "fit_landscape"]

if TYPE_CHECKING:  # pragma: no cover
    from ._fit_grn import fit_grn
    from ._genome import Genome
    from ._landscape import Landscape, fit_landscape


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
