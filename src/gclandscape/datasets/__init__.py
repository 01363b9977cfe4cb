"""Built-in and simulated datasets.

``myeloid`` is the embedded default (the Krumsiek et al. 2011 myeloid network, simulated by our
own engine, with its truth); ``simulate`` turns any Boolean-rule or signed-edge network into
counts plus truth; ``krumsiek11`` and ``toggleswitch`` are the ones scanpy ships; ``paul15``
downloads (once, with a checksum) or reads the full Paul et al. 2015 dataset;
``random_network`` draws a random Boolean network that branches into at least two fates;
``prior_network`` downloads (once, with a checksum) or reads a curated signed TF → target
network (CollecTRI) to use as ``fit_grn``'s prior.

Functions load their module on first use so ``import gclandscape`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "simulate": "._simulate",
    "myeloid": "._myeloid",
    "krumsiek11": "._builtin",
    "toggleswitch": "._builtin",
    "paul15": "._paul15",
    "random_network": "._random",
    "prior_network": "._prior",
    "available": "._registry",
    "load": "._registry",
}

__all__ = [
    "available",
    "krumsiek11",
    "load",
    "myeloid",
    "paul15",
    "prior_network",
    "random_network",
    "simulate",
    "toggleswitch",
]

if TYPE_CHECKING:  # pragma: no cover
    from ._builtin import krumsiek11, toggleswitch
    from ._myeloid import myeloid
    from ._paul15 import paul15
    from ._prior import prior_network
    from ._random import random_network
    from ._registry import available, load
    from ._simulate import simulate


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
