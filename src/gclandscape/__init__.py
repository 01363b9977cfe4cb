"""gclandscape: fit gene-regulatory landscapes to single-cell data.

The genome is read as a generative model: a gene-regulatory network (the shared latent
variables) is inferred from single-cell data, its energy landscape is computed, and the
inferred genome is re-decoded after edits (knockouts, knockdowns, overexpression) to predict
fate shifts and whole-transcriptome changes.

Namespaces load lazily so that ``import gclandscape as gcl`` stays fast: ``gcl.io``,
``gcl.pp``, ``gcl.latent``, ``gcl.tl``, ``gcl.landscape``, ``gcl.sim``, ``gcl.get``,
``gcl.pl``, ``gcl.datasets`` and ``gcl.engine``.

Examples
--------
>>> import gclandscape as gcl
>>> isinstance(gcl.__version__, str)
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_SUBMODULES = (
    "datasets",
    "engine",
    "get",
    "io",
    "landscape",
    "latent",
    "pl",
    "pp",
    "sim",
    "tl",
)

__all__ = ["__version__", *_SUBMODULES]

if TYPE_CHECKING:  # pragma: no cover
    from . import datasets, engine, get, io, landscape, latent, pl, pp, sim, tl  # noqa: F401


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'gclandscape' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
