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


def _target_package(path: Path, module: str) -> tuple[str, str]:
    """``(subpackage, dotted module)`` a ``from`` import in ``path`` reads from."""
    level = len(module) - len(module.lstrip("."))
    rest = module.lstrip(".")
    if level == 0:  # absolute: gclandscape.x.y
        parts = rest.split(".")[1:]
    else:
        parts = list(path.relative_to(SRC).parts[:-1])
        parts = parts[: len(parts) - (level - 1)] + (rest.split(".") if rest else [])
    package = parts[0] if parts and (SRC / parts[0]).is_dir() else ""  # "": a leaf module
    return package, ".".join(parts)


def test_no_private_name_is_imported_across_packages():
    crossings = set()
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        own = rel.parts[0] if len(rel.parts) > 1 else ""
        for module, name, _ in _imports_from(path):
            if not module.startswith(("gclandscape", "..")):
                continue
            package, dotted = _target_package(path, module)
            # a private module (``from .. import _report``) is a leaf module's home, not a name
            target = SRC.joinpath(*dotted.split("."), name) if dotted else SRC / name
            is_module = target.with_suffix(".py").is_file() or target.is_dir()
            private = name.startswith("_") and not name.startswith("__")  # not __version__
            if package != own and private and not is_module:
                crossings.add((rel.as_posix(), dotted, name))
    assert sorted(crossings) == []


def test_the_default_step_and_noise_have_one_home():
    import inspect

    from gclandscape import _defaults
    from gclandscape.datasets import _simulate
    from gclandscape.landscape import Genome
    from gclandscape.sim import _simulation

    def default(func, name):
        return inspect.signature(func).parameters[name].default

    assert default(Genome.develop, "dt") is _defaults.DT
    assert default(_simulate.simulate, "dt") is _defaults.DT
    assert default(_simulate.wild_type_ends, "dt") is _defaults.DT
    assert _simulation.DT is _defaults.DT
    genome = Genome(["A", "B"], [[0.0, 1.0], [1.0, 0.0]])
    assert genome.noise.tolist() == [_defaults.NOISE] * 2
