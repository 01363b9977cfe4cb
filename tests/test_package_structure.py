"""Conventions every public function follows, checked so that nobody has to remember them.

After scanpy's ``tests/test_package_structure.py``: functions that take ``adata`` take it
first and everything else keyword-only; every public function has a numpydoc docstring with
an Examples section; ``import gclandscape`` loads none of the heavy dependencies.
"""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

import gclandscape as gcl

NAMESPACES = ["io", "pp", "latent", "tl", "landscape", "sim", "get", "pl", "datasets", "engine"]


def _public_functions():
    for ns in NAMESPACES:
        module = importlib.import_module(f"gclandscape.{ns}")
        names = getattr(module, "__all__", [n for n in dir(module) if not n.startswith("_")])
        for name in names:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                yield pytest.param(obj, id=f"{ns}.{name}")


PUBLIC = list(_public_functions())

# DESIGN.md's contract: ``gcl.latent.load(dir, adata)`` takes the model folder first.
ADATA_NOT_FIRST = {"load"}


def test_version():
    assert isinstance(gcl.__version__, str)
    assert gcl.__version__.count(".") >= 1


def test_import_is_light():
    """``import gclandscape`` must not import torch, scvi, scanpy, anndata or matplotlib."""
    code = (
        "import sys, gclandscape as gcl; "
        "heavy = [m for m in ('torch', 'scvi', 'scanpy', 'anndata', 'matplotlib', 'dask') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_namespaces_exist():
    for ns in NAMESPACES:
        assert importlib.import_module(f"gclandscape.{ns}") is getattr(gcl, ns)


@pytest.mark.parametrize("func", PUBLIC)
def test_signature_conventions(func):
    params = list(inspect.signature(func).parameters.values())
    names = [p.name for p in params]
    if "adata" in names and func.__name__ not in ADATA_NOT_FIRST:
        assert names[0] == "adata", f"{func.__qualname__}: adata must come first"
        rest = params[1:]
        positional = [p for p in rest if p.kind is p.POSITIONAL_OR_KEYWORD]
        # one extra positional argument is allowed when it is the subject of the call
        # (a perturbation, a list of genes, a screen spec), as in DESIGN.md
        assert len(positional) <= 1, (
            f"{func.__qualname__}: parameters after adata must be keyword-only, found {positional}"
        )
    if "key_added" in names:
        assert params[names.index("key_added")].kind is inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize("func", PUBLIC)
def test_docstring_has_example(func):
    doc = inspect.getdoc(func) or ""
    assert doc, f"{func.__qualname__} has no docstring"
    assert "Examples\n--------" in doc, f"{func.__qualname__}: numpydoc Examples section missing"
