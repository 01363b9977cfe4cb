"""The perturbation types, kept importable from their former place: they live in
:mod:`gclandscape.landscape._perturbations` (the layer ``Genome.mutate`` imports)."""

from __future__ import annotations

from ..landscape._perturbations import (
    EDGE,
    KNOCKDOWN,
    KNOCKOUT,
    OVEREXPRESSION,
    EdgeMutation,
    Edit,
    Knockdown,
    Knockout,
    Overexpression,
    Perturbation,
)

__all__ = [
    "EDGE",
    "KNOCKDOWN",
    "KNOCKOUT",
    "OVEREXPRESSION",
    "EdgeMutation",
    "Edit",
    "Knockdown",
    "Knockout",
    "Overexpression",
    "Perturbation",
]
