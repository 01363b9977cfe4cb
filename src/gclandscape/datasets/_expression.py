"""Boolean expression trees of gene rules and their evaluation on Boolean values.

Every node has ``op`` (``"var"``, ``"const"``, ``"not"``, ``"and"``, ``"or"``); the engine's
:class:`~gclandscape.engine.BooleanHillField` compiles any tree following this protocol
(``name`` for var, ``value`` for const, ``args`` for the others).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["And", "Const", "Expr", "Not", "Or", "Var", "evaluate"]


@dataclass(frozen=True)
class Var:
    """A gene's level used as an input."""

    name: str
    op = "var"

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Const:
    """The constant ``True`` or ``False``."""

    value: bool
    op = "const"

    def __str__(self) -> str:
        return "True" if self.value else "False"


@dataclass(frozen=True)
class Not:
    """Logical negation."""

    arg: Expr
    op = "not"

    @property
    def args(self) -> tuple[Expr, ...]:
        return (self.arg,)

    def __str__(self) -> str:
        inner = str(self.arg)
        return f"not {inner}" if isinstance(self.arg, Var | Const | Not) else f"not ({inner})"


@dataclass(frozen=True)
class And:
    """Logical conjunction of two or more terms."""

    args: tuple[Expr, ...]
    op = "and"

    def __str__(self) -> str:
        return " and ".join(f"({a})" if isinstance(a, Or) else str(a) for a in self.args)


@dataclass(frozen=True)
class Or:
    """Logical disjunction of two or more terms."""

    args: tuple[Expr, ...]
    op = "or"

    def __str__(self) -> str:
        return " or ".join(str(a) for a in self.args)


Expr = Var | Const | Not | And | Or


def _variables(expr: Expr) -> list[str]:
    """Gene names used in an expression, in order of first occurrence."""
    out: dict[str, None] = {}

    def walk(e: Expr) -> None:
        if isinstance(e, Var):
            out.setdefault(e.name, None)
        elif not isinstance(e, Const):
            for a in e.args:
                walk(a)

    walk(expr)
    return list(out)


def _signed_inputs(expr: Expr) -> dict[str, set[int]]:
    """Map each input gene to the signs (+1/-1) of its occurrences (parity of NOTs above)."""
    out: dict[str, set[int]] = {}

    def walk(e: Expr, sign: int) -> None:
        if isinstance(e, Var):
            out.setdefault(e.name, set()).add(sign)
        elif isinstance(e, Not):
            walk(e.arg, -sign)
        elif isinstance(e, And | Or):
            for a in e.args:
                walk(a, sign)

    walk(expr, 1)
    return out


def evaluate(expr: Expr, state: Mapping[str, np.ndarray | bool]) -> np.ndarray:
    """Evaluate an expression on Boolean values (vectorised over NumPy arrays).

    Examples
    --------
    >>> import numpy as np
    >>> e = And((Var("a"), Not(Var("b"))))
    >>> evaluate(e, {"a": np.array([True, True]), "b": np.array([False, True])}).tolist()
    [True, False]
    """
    if isinstance(expr, Var):
        return np.asarray(state[expr.name], dtype=bool)
    if isinstance(expr, Const):
        return np.asarray(expr.value)
    if isinstance(expr, Not):
        return ~evaluate(expr.arg, state)
    vals = [evaluate(a, state) for a in expr.args]
    if isinstance(expr, And):
        return np.logical_and.reduce(np.broadcast_arrays(*vals))
    return np.logical_or.reduce(np.broadcast_arrays(*vals))
