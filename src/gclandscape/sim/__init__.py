"""In-silico perturbation: edit the genome, re-run development, compare.

``Knockout``, ``Knockdown``, ``Overexpression`` and ``EdgeMutation`` compose with ``+`` and are
applied by :meth:`gclandscape.landscape.Genome.mutate` (they are defined in the landscape
layer, beside the genome, and re-exported here); :func:`perturb` predicts one
perturbation's fate and expression changes, :func:`screen` runs many (locally or on Dask),
:func:`mutational_scan` and :func:`epistasis` analyse the genome as a whole. A genome
ensemble (``fit_grn(..., n_genomes=K)``) is simulated member by member with the same cells
and noise; each fate then gets ``p_lost``, the share of members in which it is lost.
"""

from __future__ import annotations

from ..landscape._perturbations import (
    EdgeMutation,
    Knockdown,
    Knockout,
    Overexpression,
    Perturbation,
)
from ._analyses import MutationalScan, epistasis, mutational_scan
from ._perturb import perturb
from ._result import PerturbationResult
from ._screen import screen

__all__ = [
    "EdgeMutation",
    "Knockdown",
    "Knockout",
    "MutationalScan",
    "Overexpression",
    "Perturbation",
    "PerturbationResult",
    "epistasis",
    "mutational_scan",
    "perturb",
    "screen",
]
