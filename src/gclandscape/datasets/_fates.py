"""Fates of simulated trajectories: settling, naming binarised end states, commitment.

A trajectory's fate is its end state binarised at 0.5, provided it settled; a pattern is named
by the first matching user condition, else by its high genes; a knockout's end state takes the
wild-type name it matches ignoring the knocked-out gene, else ``novel:<high genes>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .._errors import GclError
from ._expression import Expr, evaluate
from ._expression_parser import parse_expression

PROGENITOR = "progenitor"
UNSETTLED = "unsettled"
NOVEL = "novel"


def _high_name(pattern: np.ndarray, genes: Sequence[str]) -> str:
    high = [g for g, v in zip(genes, pattern) if v]
    return "+".join(high) if high else "all-off"


def _parse_fates(fates: Mapping[str, str | Expr] | None, genes: Sequence[str]) -> dict[str, Expr]:
    out: dict[str, Expr] = {}
    for name, cond in (fates or {}).items():
        if name in (PROGENITOR, UNSETTLED) or name.startswith(NOVEL):
            raise GclError(f"fate name {name!r} is reserved; choose another name.")
        expr = parse_expression(cond, source=f"fate {name!r}") if isinstance(cond, str) else cond
        unknown = [g for g in _vars(expr) if g not in genes]
        if unknown:
            raise GclError(
                f"the condition of fate {name!r} uses unknown genes {unknown}; known: {list(genes)}."
            )
        out[name] = expr
    return out


def _vars(expr: Expr) -> list[str]:
    if expr.op == "var":
        return [expr.name]
    if expr.op == "const":
        return []
    return [v for a in expr.args for v in _vars(a)]


class _FateNamer:
    """Names binarised end states: user conditions first, then wild-type patterns, else novel."""

    def __init__(self, genes: Sequence[str], conditions: dict[str, Expr]):
        self.genes = list(genes)
        self.conditions = conditions
        self.wt: dict[bytes, str] = {}  # pattern → name, filled from the wild type
        self.wt_patterns: dict[str, np.ndarray] = {}

    def _by_condition(self, pattern: np.ndarray) -> str | None:
        state = dict(zip(self.genes, pattern))
        for name, cond in self.conditions.items():
            if bool(evaluate(cond, state)):
                return name
        return None

    def name_wt(self, pattern: np.ndarray) -> str:
        key = pattern.tobytes()
        if key not in self.wt:
            name = self._by_condition(pattern) or _high_name(pattern, self.genes)
            self.wt[key] = name
            self.wt_patterns.setdefault(name, pattern)
        return self.wt[key]

    def name_ko(self, pattern: np.ndarray, ko: int) -> str:
        name = self._by_condition(pattern)
        if name is not None:
            return name
        keep = np.ones(len(self.genes), dtype=bool)
        keep[ko] = False
        for key, wt_name in self.wt.items():
            if wt_name in self.conditions:  # named fates are defined by their condition only
                continue
            wt = np.frombuffer(key, dtype=bool)
            if np.array_equal(wt[keep], pattern[keep]):
                return wt_name
        return f"{NOVEL}:{_high_name(pattern, self.genes)}"


def _commit_index(patterns: np.ndarray) -> np.ndarray:
    """First snapshot from which each trajectory's pattern equals its final one for good."""
    same = (patterns == patterns[-1:]).all(axis=2)  # (n_save, n)
    # index after the last snapshot that differs from the final pattern
    differs = ~same
    last_diff = np.where(
        differs.any(axis=0), differs.shape[0] - 1 - np.argmax(differs[::-1], axis=0), -1
    )
    return last_diff + 1


def _settle(xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which trajectories settled (no gene in (0.3, 0.7) on average over the last 10 % of
    the snapshots ``xs``, shape ``(n_save, n, G)``) and their binarised end states."""
    n_save = xs.shape[0]
    tail = max(2, int(np.ceil(0.1 * (n_save - 1))) + 1)
    tail_mean = xs[-tail:].mean(axis=0)  # (N, G)
    settled = ~((tail_mean > 0.3) & (tail_mean < 0.7)).any(axis=1)
    return settled, tail_mean > 0.5
