"""Perturbations of a genome: knockouts, knockdowns, overexpression and edge mutations.

A perturbation is a tuple of atomic edits; perturbations compose with ``+`` (like cellrank's
kernels), and :meth:`gclandscape.landscape.Genome.mutate` applies them to a new genome. They
live in the landscape layer, beside the genome they edit, so that ``Genome.mutate`` needs
nothing from ``gcl.sim``; users reach them as ``gcl.sim.Knockout`` etc.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .._errors import GclError

# Atomic edit kinds
KNOCKOUT = "knockout"
KNOCKDOWN = "knockdown"
OVEREXPRESSION = "overexpression"
EDGE = "edge"


@dataclass(frozen=True)
class Edit:
    """One atomic edit: ``kind`` on ``gene`` (for edges: ``gene`` is the source and ``target``
    the target), with ``value`` the knockdown/edge factor or the overexpression level."""

    kind: str
    gene: str
    target: str | None = None
    value: float | None = None

    def label(self) -> str:
        if self.kind == KNOCKOUT:
            return f"{self.gene} KO"
        if self.kind == KNOCKDOWN:
            return f"{self.gene} KD×{self.value:g}"
        if self.kind == OVEREXPRESSION:
            return f"{self.gene} OE" + ("" if self.value is None else f"={self.value:g}")
        return f"{self.gene}→{self.target} ×{self.value:g}"


def _as_genes(genes: str | Iterable[str], what: str) -> tuple[str, ...]:
    out = (genes,) if isinstance(genes, str) else tuple(str(g) for g in genes)
    if not out:
        raise GclError(f"{what} needs at least one gene name.")
    return out


def _value(value: object, what: str, *, upper: float = math.inf, fix: str = "") -> float:
    """``value`` as a finite float in ``[0, upper]``, or a :class:`GclError` naming the fix.

    Checked when the perturbation is built, because a non-finite level reaches the integrator
    only later and comes back as a divergence that blames the time step."""
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise GclError(f"{what} must be a number, got {value!r}.{fix}") from None
    if not (math.isfinite(out) and 0.0 <= out <= upper):
        bound = "non-negative" if upper == math.inf else f"in [0, {upper:g}]"
        raise GclError(f"{what} must be a finite number {bound}, got {out}.{fix}")
    return out


class Perturbation:
    """A set of edits to a genome; combine perturbations with ``+``.

    Use the constructors :class:`Knockout`, :class:`Knockdown`, :class:`Overexpression` and
    :class:`EdgeMutation`.

    Examples
    --------
    >>> import gclandscape as gcl
    >>> p = gcl.sim.Knockout("Gata1") + gcl.sim.Overexpression("Pu.1", level=1.5)
    >>> p.name
    'Gata1 KO + Pu.1 OE=1.5'
    """

    def __init__(self, edits: Sequence[Edit]):
        self.edits: tuple[Edit, ...] = tuple(edits)

    def __add__(self, other: Perturbation) -> Perturbation:
        if not isinstance(other, Perturbation):
            return NotImplemented
        return Perturbation(self.edits + other.edits)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Perturbation) and self.edits == other.edits

    def __hash__(self) -> int:
        return hash(self.edits)

    @property
    def name(self) -> str:
        """Human-readable label, e.g. ``"Gata1 KO + Spi1 OE"``."""
        return " + ".join(e.label() for e in self.edits)

    @property
    def genes(self) -> list[str]:
        """Every gene the perturbation names (sources and targets)."""
        out: list[str] = []
        for e in self.edits:
            out += [e.gene] + ([e.target] if e.target is not None else [])
        return list(dict.fromkeys(out))

    def __repr__(self) -> str:
        return f"Perturbation({self.name!r})"

    def check(self, genes: Sequence[str]) -> None:
        """Raise :class:`~gclandscape._errors.GclError` if a named gene is not in ``genes``,
        suggesting close matches.

        Examples
        --------
        >>> import gclandscape as gcl
        >>> gcl.sim.Knockout("Gata1").check(["Gata1", "Gata2"])
        """
        known = [str(g) for g in genes]
        known_set = set(known)
        for gene in self.genes:
            if gene not in known_set:
                close = difflib.get_close_matches(gene, known, n=3, cutoff=0.6)
                lowered = [g for g in known if g.lower() == gene.lower()]
                hint = lowered or close
                raise GclError(
                    f"{self.name}: gene {gene!r} is not in the genome"
                    + (f"; did you mean {', '.join(map(repr, hint))}?" if hint else ".")
                    + f" The genome has {len(known)} genes"
                    + (f": {', '.join(known[:20])}{' ...' if len(known) > 20 else ''}.")
                )


class Knockout(Perturbation):
    """Knock out genes: their production is removed (the level decays from where it is).

    Examples
    --------
    >>> import gclandscape as gcl
    >>> gcl.sim.Knockout(["Gata1", "Fli1"]).name
    'Gata1 KO + Fli1 KO'
    """

    def __init__(self, genes: str | Iterable[str]):
        super().__init__([Edit(KNOCKOUT, g) for g in _as_genes(genes, "Knockout")])


class Knockdown(Perturbation):
    """Knock down genes: their production is multiplied by ``factor`` (0 < factor < 1).

    Examples
    --------
    >>> import gclandscape as gcl
    >>> gcl.sim.Knockdown("Gata1", 0.3).name
    'Gata1 KD×0.3'
    """

    def __init__(self, genes: str | Iterable[str], factor: float):
        factor = _value(
            factor, "Knockdown factor", upper=1.0,
            fix=" 0 is a knockout, 1 changes nothing; use Overexpression to raise a gene.",
        )  # fmt: skip
        super().__init__([Edit(KNOCKDOWN, g, value=factor) for g in _as_genes(genes, "Knockdown")])


class Overexpression(Perturbation):
    """Overexpress genes: clamp them at ``level`` (default: twice the highest observed level).

    Examples
    --------
    >>> import gclandscape as gcl
    >>> gcl.sim.Overexpression("Pu.1").name
    'Pu.1 OE'
    """

    def __init__(self, genes: str | Iterable[str], level: float | None = None):
        if level is not None:
            level = _value(
                level, "Overexpression level",
                fix=" Leave it out for twice the highest observed level.",
            )  # fmt: skip
        super().__init__(
            [Edit(OVEREXPRESSION, g, value=level) for g in _as_genes(genes, "Overexpression")]
        )


class EdgeMutation(Perturbation):
    """Scale the regulation ``source → target`` by ``factor`` (0 removes the edge).

    Examples
    --------
    >>> import gclandscape as gcl
    >>> gcl.sim.EdgeMutation("Gata1", "Pu.1", 0.0).name
    'Gata1→Pu.1 ×0'
    """

    def __init__(self, source: str, target: str, factor: float):
        factor = _value(
            factor, "EdgeMutation factor", fix=" 0 removes the edge, 2 doubles its weight."
        )
        super().__init__([Edit(EDGE, str(source), target=str(target), value=factor)])
