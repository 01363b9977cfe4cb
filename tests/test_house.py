"""The house rules of issue 20 §1 that code review would otherwise have to remember.

Layers import the engine's GRN fit from ``gclandscape.engine``, not from its private modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import gclandscape.engine as engine
from gclandscape.engine import _grn, _grn_bootstrap, _grn_fit, _grn_penalties

SRC = Path(engine.__file__).resolve().parents[1]


def _imports_from(path: Path) -> list[tuple[str, str, int]]:
    """``(module as written with its leading dots, name, line)`` of each ``from`` import."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        ("." * node.level + (node.module or ""), alias.name, node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    ]


def test_engine_exports_the_grn_fit():
    assert engine.fit_grn_model is _grn_fit.fit
    assert engine.bootstrap_confidence is _grn_bootstrap.bootstrap_confidence
    assert engine.adaptive_penalty_weights is _grn_penalties.adaptive_penalty_weights
    assert engine.edge_scores is _grn.edge_scores
    assert engine.GRNModel is _grn.GRNModel
    # the lazy look-up shim of bootstrap_confidence in _grn_fit is gone: one home
    assert not hasattr(_grn_fit, "bootstrap_confidence")


def test_layers_import_the_grn_fit_from_the_engine_package():
    private = [
        f"{path.relative_to(SRC)}:{line}: from {module} import {name}"
        for path in SRC.rglob("*.py")
        if "engine" not in path.relative_to(SRC).parts
        for module, name, line in _imports_from(path)
        if module.lstrip(".").startswith("engine._grn")
    ]
    assert private == []
