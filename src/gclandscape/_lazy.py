"""Lazy re-exports for namespace packages, so ``import gclandscape`` stays light."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` that import ``name`` from its submodule on first use.

    Parameters
    ----------
    package
        The package's ``__name__``.
    exports
        Public name → relative submodule (e.g. ``{"recipe": "._recipe"}``).
    namespace
        The package's ``globals()``; a loaded name is cached there.

    Examples
    --------
    >>> getattr_, dir_ = lazy_exports("json", {"JSONDecoder": ".decoder"}, {})
    >>> getattr_("JSONDecoder").__name__, dir_()
    ('JSONDecoder', ['JSONDecoder'])
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(exports[name], package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
