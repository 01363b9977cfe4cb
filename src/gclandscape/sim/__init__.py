"""In-silico perturbation: edit the genome, re-run development, compare.

``Knockout``, ``Knockdown``, ``Overexpression`` and ``EdgeMutation`` compose with ``+`` and are
applied by :meth:`gclandscape.landscape.Genome.mutate`.
"""

from __future__ import annotations

from ._perturbations import EdgeMutation, Knockdown, Knockout, Overexpression, Perturbation

__all__ = ["EdgeMutation", "Knockdown", "Knockout", "Overexpression", "Perturbation"]
