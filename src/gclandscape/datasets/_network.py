"""The Boolean network: one rule (expression tree) per gene, with initial levels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._expression import Expr, _signed_inputs, evaluate

__all__ = ["BooleanNetwork"]


@dataclass(frozen=True)
class BooleanNetwork:
    """A Boolean gene-regulatory network: one rule per gene.

    Attributes
    ----------
    genes
        Gene names, in file order (genes defined by rules, then inputs first referenced).
    rules
        Gene → expression tree; ``None`` marks an *input* gene (no rule: its level is held at
        its initial value).
    initial
        Initial levels read with the rules (BoolODE ``_ics.txt``, input values); genes not
        listed start at 0.
    couplings
        Optional table (``target``, ``source``, ``strength``) from scanpy's coupling list.
    name
        A label (the file stem).

    Examples
    --------
    >>> from gclandscape.datasets._rules import parse_rules
    >>> net = parse_rules("A = not B\\nB = not A")
    >>> net.genes
    ('A', 'B')
    >>> net.edges().values.tolist()
    [['B', 'A', -1], ['A', 'B', -1]]
    """

    genes: tuple[str, ...]
    rules: dict[str, Expr | None]
    initial: dict[str, float] = field(default_factory=dict)
    couplings: pd.DataFrame | None = None
    name: str = ""

    @property
    def n_genes(self) -> int:
        return len(self.genes)

    @property
    def inputs(self) -> tuple[str, ...]:
        """Genes without a rule."""
        return tuple(g for g in self.genes if self.rules[g] is None)

    def edges(self) -> pd.DataFrame:
        """Signed edge list implied by the rules.

        Returns
        -------
        DataFrame with columns ``source``, ``target``, ``sign``: +1 where the source appears
        under an even number of ``not``, -1 under an odd number, 0 where it appears both ways.
        Rows follow the order of targets, then of first occurrence in the rule.
        """
        rows = []
        for target in self.genes:
            expr = self.rules[target]
            if expr is None:
                continue
            for source, signs in _signed_inputs(expr).items():
                sign = next(iter(signs)) if len(signs) == 1 else 0
                rows.append((source, target, sign))
        return pd.DataFrame(rows, columns=["source", "target", "sign"]).astype(
            {"source": str, "target": str, "sign": np.int64}
        )

    def rule_text(self) -> dict[str, str]:
        """Each gene's rule as canonical text ("" for inputs)."""
        return {g: ("" if r is None else str(r)) for g, r in self.rules.items()}

    def to_text(self) -> str:
        """The network in gclandscape's ``target = expression`` format (parsable again)."""
        lines = [f"# {self.name}"] if self.name else []
        lines += [f"{g} = {t}".rstrip() for g, t in self.rule_text().items()]
        return "\n".join(lines) + "\n"

    def step(self, state: Mapping[str, np.ndarray | bool]) -> dict[str, np.ndarray]:
        """One synchronous Boolean update (inputs keep their value)."""
        return {
            g: (np.asarray(state[g], dtype=bool) if r is None else evaluate(r, state))
            for g, r in self.rules.items()
        }
