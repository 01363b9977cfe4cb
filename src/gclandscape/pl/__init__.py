"""Publication figures of gclandscape results (matplotlib; they draw, never compute).

``landscape``, ``vector_field`` and ``trajectories`` draw a landscape from
:func:`~gclandscape.landscape.fit_landscape` (and a perturbation's simulated paths);
``grn`` the genome's signed network; ``fate_shift``, ``screen`` and ``mutational_scan`` the
results of :mod:`gclandscape.sim`. Every function returns the :class:`~matplotlib.figure.Figure`
(save it with ``fig.savefig("fig.pdf")``) and never calls ``show()``; single-panel ones take
``ax=``. ``style()`` is a publication style context.

Names load their module on first use so ``import gclandscape`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "fate_shift": "._sim",
    "grn": "._grn",
    "landscape": "._landscape",
    "mutational_scan": "._sim",
    "screen": "._sim",
    "style": "._utils",
    "trajectories": "._trajectories",
    "vector_field": "._vector_field",
}

__all__ = [
    "fate_shift",
    "grn",
    "landscape",
    "mutational_scan",
    "screen",
    "style",
    "trajectories",
    "vector_field",
]

if TYPE_CHECKING:  # pragma: no cover
    from ._grn import grn
    from ._landscape import landscape
    from ._sim import fate_shift, mutational_scan, screen
    from ._trajectories import trajectories
    from ._utils import style
    from ._vector_field import vector_field


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
