"""Parser for Boolean gene-regulatory networks (rule files, rule text, signed edge lists).

A rule file is untrusted input, so rules are read by a tokenizer and a recursive-descent
parser, never by ``eval``. Four text formats are recognised:

``target = expression`` lines (gclandscape's own ``.rules`` format, also scanpy's ``sim_models``)
    ``#`` starts a comment; an empty right-hand side declares an *input* gene (held at its
    initial level). scanpy's optional coupling list (lines ``target source strength``, usually
    after a ``# coupling list:`` comment) is kept in :attr:`BooleanNetwork.couplings`.
BoolODE (``Gene<TAB>Rule`` with that header line)
    Next to a file ``NAME.txt``, ``NAME_ics.txt`` (initial conditions) and ``NAME-inputs.txt``
    (input genes and their values) are read when present.
PyBoolNet ``.bnet`` (``targets, factors`` header, ``target, expression`` lines)
Signed edge list (lines ``source target +`` / ``source target -``, or a DataFrame)
    Converted to rules as documented in :func:`network_from_edges`.

Expressions use ``and``/``or``/``not`` (also ``&``, ``|``, ``!``), parentheses and the constants
``True``/``False``/``1``/``0``; ``not`` binds tighter than ``and``, which binds tighter than ``or``
(Python's precedence). Gene names start with a letter or ``_`` and may contain letters, digits,
``_`` and ``.`` (``Pu.1``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import GclError, GclFileNotFoundError, GclFormatError

__all__ = [
    "And",
    "BooleanNetwork",
    "Const",
    "Not",
    "Or",
    "Var",
    "as_network",
    "network_from_edges",
    "parse_expression",
    "parse_rules",
    "read_rules",
]

# --------------------------------------------------------------------------------------------
# expression tree
# Every node has ``op`` ("var", "const", "not", "and", "or"); the engine's BooleanHillField
# compiles any tree following this protocol (``name`` for var, ``value`` for const, ``args``).


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
    >>> e = parse_expression("a and not b")
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


# --------------------------------------------------------------------------------------------
# tokenizer and recursive-descent parser

_TOKEN = re.compile(
    r"(?P<ws>\s+)|(?P<lpar>\()|(?P<rpar>\))|(?P<and>&&?)|(?P<or>\|\|?)|(?P<not>[!~])"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)|(?P<number>[0-9]+(?:\.[0-9]*)?)"
)
_KEYWORDS = {
    "and": "and",
    "AND": "and",
    "or": "or",
    "OR": "or",
    "not": "not",
    "NOT": "not",
    "True": "const",
    "true": "const",
    "TRUE": "const",
    "False": "const",
    "false": "const",
    "FALSE": "const",
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")


@dataclass(frozen=True)
class _Tok:
    kind: str  # name, const, and, or, not, lpar, rpar, end
    text: str
    col: int  # 1-based column in the line


def _where(source: str, lineno: int | None) -> str:
    return f"{source}, line {lineno}" if lineno is not None else source


def _tokenize(text: str, *, source: str, lineno: int | None, col0: int) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise GclFormatError(
                f"{_where(source, lineno)}, column {col0 + pos + 1}: unexpected character "
                f"{text[pos]!r} in rule {text.strip()!r}; expected a gene name, 'and', 'or', "
                "'not', '(', ')', True/False or 1/0."
            )
        kind = m.lastgroup
        word = m.group()
        col = col0 + pos + 1
        pos = m.end()
        if kind == "ws":
            continue
        if kind == "name" and word in _KEYWORDS:
            kind = _KEYWORDS[word]
        elif kind == "number":
            if word not in ("0", "1", "0.", "1.", "0.0", "1.0"):
                raise GclFormatError(
                    f"{_where(source, lineno)}, column {col}: unexpected number {word!r} in rule "
                    f"{text.strip()!r}; only the constants 1 and 0 (True/False) are allowed."
                )
            kind = "const"
        toks.append(_Tok(kind, word, col))
    toks.append(_Tok("end", "end of rule", col0 + len(text) + 1))
    return toks


class _Parser:
    def __init__(self, text: str, *, source: str, lineno: int | None, col0: int):
        self.text = text
        self.source = source
        self.lineno = lineno
        self.toks = _tokenize(text, source=source, lineno=lineno, col0=col0)
        self.i = 0

    def _peek(self) -> _Tok:
        return self.toks[self.i]

    def _fail(self, expected: str) -> GclFormatError:
        tok = self._peek()
        shown = "end of rule" if tok.kind == "end" else repr(tok.text)
        return GclFormatError(
            f"{_where(self.source, self.lineno)}, column {tok.col}: unexpected {shown} in rule "
            f"{self.text.strip()!r}; expected {expected}."
        )

    def parse(self) -> Expr:
        if self._peek().kind == "end":
            raise self._fail("an expression")
        expr = self._or()
        if self._peek().kind != "end":
            raise self._fail("'and', 'or' or the end of the rule")
        return expr

    def _or(self) -> Expr:
        args = [self._and()]
        while self._peek().kind == "or":
            self.i += 1
            args.append(self._and())
        if len(args) == 1:
            return args[0]
        flat: list[Expr] = []
        for a in args:
            flat.extend(a.args if isinstance(a, Or) else (a,))
        return Or(tuple(flat))

    def _and(self) -> Expr:
        args = [self._not()]
        while self._peek().kind == "and":
            self.i += 1
            args.append(self._not())
        if len(args) == 1:
            return args[0]
        flat: list[Expr] = []
        for a in args:
            flat.extend(a.args if isinstance(a, And) else (a,))
        return And(tuple(flat))

    def _not(self) -> Expr:
        if self._peek().kind == "not":
            self.i += 1
            return Not(self._not())
        return self._atom()

    def _atom(self) -> Expr:
        tok = self._peek()
        if tok.kind == "name":
            self.i += 1
            return Var(tok.text)
        if tok.kind == "const":
            self.i += 1
            return Const(tok.text in ("True", "true", "TRUE") or tok.text.startswith("1"))
        if tok.kind == "lpar":
            self.i += 1
            expr = self._or()
            if self._peek().kind != "rpar":
                raise self._fail("')' to close the '(' opened at column " + str(tok.col))
            self.i += 1
            return expr
        raise self._fail("a gene name, 'not', '(' or a constant")


def parse_expression(
    text: str, *, source: str = "<rule>", lineno: int | None = None, col0: int = 0
) -> Expr:
    """Parse one Boolean expression into a tree of :class:`Var`/:class:`Not`/:class:`And`/...

    Parameters
    ----------
    text
        The expression, e.g. ``"(Gata1 or Gata2) and not Pu.1"``.
    source, lineno, col0
        Where the text came from, used in error messages.

    Returns
    -------
    The expression tree (nested ``and``/``or`` are flattened).

    Raises
    ------
    GclFormatError
        Naming the line, column, offending token and what was expected.

    Examples
    --------
    >>> str(parse_expression("(a or b) and not c"))
    '(a or b) and not c'
    """
    return _Parser(text, source=source, lineno=lineno, col0=col0).parse()


# --------------------------------------------------------------------------------------------
# the network


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


def _check_defined(
    order: list[str],
    rules: dict[str, Expr | None],
    where: dict[str, int | None],
    source: str,
    inputs: Mapping[str, float],
) -> tuple[str, ...]:
    genes = list(order)
    for target in order:
        expr = rules[target]
        if expr is None:
            continue
        for name in _variables(expr):
            if name in rules:
                continue
            if name in inputs:
                rules[name] = None
                genes.append(name)
                continue
            raise GclFormatError(
                f"{_where(source, where.get(target))}: the rule for {target!r} uses gene "
                f"{name!r}, which has no rule. Add a rule for {name!r} (an empty right-hand side "
                "'" + name + " =' declares an input gene) or pass it in `inputs`."
            )
    for name in inputs:
        if name not in rules:
            rules[name] = None
            genes.append(name)
    return tuple(genes)


def _valid_name(name: str, source: str, lineno: int | None) -> str:
    if not _NAME.match(name):
        raise GclFormatError(
            f"{_where(source, lineno)}: {name!r} is not a valid gene name; expected a name "
            "starting with a letter or '_' made of letters, digits, '_' and '.'."
        )
    if name in _KEYWORDS:
        raise GclFormatError(
            f"{_where(source, lineno)}: {name!r} is a keyword and cannot be a gene name."
        )
    return name


def _strip_comment(line: str) -> str:
    return line.split("#", 1)[0].rstrip()


def _meaningful(lines: list[str]) -> list[tuple[int, str]]:
    return [
        (i + 1, ln) for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")
    ]


_SIGNS = {
    "+": 1,
    "1": 1,
    "+1": 1,
    "activation": 1,
    "activator": 1,
    "activates": 1,
    "-": -1,
    "-1": -1,
    "repression": -1,
    "repressor": -1,
    "represses": -1,
    "inhibition": -1,
}


def parse_rules(
    text: str,
    *,
    source: str = "<text>",
    inputs: Mapping[str, float] | None = None,
    initial: Mapping[str, float] | None = None,
    name: str = "",
) -> BooleanNetwork:
    """Parse a Boolean network from text in any supported format (detected from the content).

    Parameters
    ----------
    text
        Rule text: ``target = expression`` lines, BoolODE ``Gene<TAB>Rule`` table, ``.bnet``,
        or a signed edge list (``source target +/-`` lines).
    source
        Name used in error messages (a file name).
    inputs
        Input genes (used in rules but without a rule of their own) and their constant levels.
    initial
        Initial levels of genes (missing genes start at 0).
    name
        Label of the network.

    Returns
    -------
    :class:`BooleanNetwork`

    Raises
    ------
    GclFormatError
        Unknown format, malformed rule, duplicate rule, or a gene used without a rule; the
        message names the line, the offending token and what was expected.

    Examples
    --------
    >>> net = parse_rules("Gata1 = (Gata1 or Gata2) and not Pu.1\\nGata2 =\\nPu.1 = not Gata1")
    >>> net.inputs
    ('Gata2',)
    """
    inputs = dict(inputs or {})
    lines = text.splitlines()
    body = _meaningful(lines)
    if not body:
        raise GclFormatError(f"{source}: no rules found (the text is empty or only comments).")
    first = body[0][1]
    head = first.split("\t")[0].strip().lower()
    if head in ("gene", "genes") and "\t" in first:
        kind = "boolode"
    elif first.replace(" ", "").lower().startswith("targets,factors"):
        kind = "bnet"
    elif any("=" in _strip_comment(ln) for _, ln in body):
        kind = "rules"
    elif all(len(ln.split()) == 3 for _, ln in body):
        return network_from_edges(text, source=source, name=name)
    else:
        raise GclFormatError(
            f"{source}, line {body[0][0]}: cannot tell the format from {first.strip()!r}; "
            "expected 'target = expression' lines, a BoolODE table with header 'Gene<TAB>Rule', "
            "a .bnet file with header 'targets, factors', or 'source target +/-' edge lines."
        )

    rules: dict[str, Expr | None] = {}
    where: dict[str, int | None] = {}
    order: list[str] = []
    couplings: list[tuple[str, str, float]] = []
    in_coupling = False
    for lineno, raw in enumerate(lines, start=1):
        if kind == "rules" and raw.lstrip().startswith("#"):
            in_coupling = in_coupling or "coupling" in raw.lower()
            continue
        line = _strip_comment(raw) if kind in ("rules", "bnet") else raw.rstrip("\r\n")
        if not line.strip() or (kind == "boolode" and line.lstrip().startswith("#")):
            continue
        if kind in ("boolode", "bnet") and lineno == body[0][0]:
            continue  # header
        if kind == "boolode":
            if "\t" not in line:
                raise GclFormatError(
                    f"{source}, line {lineno}: expected 'Gene<TAB>Rule' (tab-separated) but got "
                    f"{line.strip()!r}."
                )
            target, rhs = line.split("\t", 2)[:2]
            col0 = len(target) + 1
        elif kind == "bnet":
            if "," not in line:
                raise GclFormatError(
                    f"{source}, line {lineno}: expected 'target, expression' but got {line.strip()!r}."
                )
            target, rhs = line.split(",", 1)
            col0 = len(target) + 1
        else:
            if "=" not in line:
                parts = line.split()
                if len(parts) == 3 and (in_coupling or _is_float(parts[2])):
                    if not _is_float(parts[2]):
                        raise GclFormatError(
                            f"{source}, line {lineno}: unexpected {parts[2]!r} in the coupling "
                            "list; expected 'target source strength' with a number."
                        )
                    couplings.append((parts[0], parts[1], float(parts[2])))
                    continue
                raise GclFormatError(
                    f"{source}, line {lineno}: expected 'target = expression' but got "
                    f"{line.strip()!r} (no '=')."
                )
            if in_coupling:
                raise GclFormatError(
                    f"{source}, line {lineno}: unexpected rule {line.strip()!r} inside the "
                    "coupling list; expected 'target source strength'."
                )
            target, rhs = line.split("=", 1)
            col0 = len(target) + 1
        target = _valid_name(target.strip(), source, lineno)
        if target in rules:
            raise GclFormatError(
                f"{source}, line {lineno}: a second rule for {target!r} (first on line "
                f"{where[target]}); give each gene exactly one rule."
            )
        rules[target] = (
            parse_expression(rhs, source=source, lineno=lineno, col0=col0) if rhs.strip() else None
        )
        where[target] = lineno
        order.append(target)
    genes = _check_defined(order, rules, where, source, inputs)
    for t, s, _ in couplings:
        for g in (t, s):
            if g not in rules:
                raise GclFormatError(
                    f"{source}: the coupling list names gene {g!r}, which has no rule."
                )
    init = {g: float(v) for g, v in (initial or {}).items()}
    for g, v in inputs.items():
        init.setdefault(g, float(v))
    for g in init:
        if g not in rules:
            raise GclError(f"{source}: initial level given for unknown gene {g!r}; known: {genes}.")
    cdf = pd.DataFrame(couplings, columns=["target", "source", "strength"]) if couplings else None
    return BooleanNetwork(genes, {g: rules[g] for g in genes}, init, cdf, name)


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def network_from_edges(
    edges: pd.DataFrame | str | Sequence[tuple[str, str, object]],
    *,
    source: str = "<edges>",
    name: str = "",
) -> BooleanNetwork:
    """Build a Boolean network from a signed edge list.

    The rule of each target is ``(OR of its activators) AND NOT (OR of its repressors)``; a
    target with only repressors is on unless repressed (``not (r1 or r2 ...)``), and a gene
    with no incoming edge is constitutively on (rule ``True``: constant basal production).

    Parameters
    ----------
    edges
        A DataFrame with columns ``source``, ``target``, ``sign`` (also accepted: BEELINE's
        ``Gene1``, ``Gene2``, ``Type``), a list of ``(source, target, sign)`` tuples, or text
        with one ``source target sign`` per line (whitespace or comma separated; an optional
        header line ``source target sign``; ``#`` comments). Signs: ``+``/``-``, ``1``/``-1``,
        ``activation``/``repression``.
    source, name
        Used in error messages and as the network's label.

    Returns
    -------
    :class:`BooleanNetwork`

    Examples
    --------
    >>> net = network_from_edges("A B -\\nB A -")
    >>> net.rule_text()
    {'A': 'not B', 'B': 'not A'}
    """
    rows: list[tuple[str, str, object, int | None]] = []
    if isinstance(edges, pd.DataFrame):
        cols = {c.lower(): c for c in edges.columns}
        names = None
        for cand in (("source", "target", "sign"), ("gene1", "gene2", "type")):
            if all(c in cols for c in cand):
                names = [cols[c] for c in cand]
        if names is None:
            raise GclFormatError(
                f"{source}: an edge DataFrame needs columns 'source', 'target', 'sign' (or "
                f"'Gene1', 'Gene2', 'Type'); got {list(edges.columns)}."
            )
        rows = [(str(s), str(t), g, None) for s, t, g in edges[names].itertuples(index=False)]
    elif isinstance(edges, str):
        for lineno, raw in enumerate(edges.splitlines(), start=1):
            line = _strip_comment(raw).strip()
            if not line:
                continue
            parts = [p for p in re.split(r"[\s,]+", line) if p]
            if len(parts) != 3:
                raise GclFormatError(
                    f"{source}, line {lineno}: expected 'source target sign' but got {line!r}."
                )
            if [p.lower() for p in parts] in (
                ["source", "target", "sign"],
                ["gene1", "gene2", "type"],
            ):
                continue
            rows.append((parts[0], parts[1], parts[2], lineno))
    else:
        rows = [(str(r[0]), str(r[1]), r[2], None) for r in edges]
    if not rows:
        raise GclFormatError(f"{source}: the edge list is empty.")

    order: list[str] = []
    act: dict[str, list[str]] = {}
    rep: dict[str, list[str]] = {}
    for s, t, sign, lineno in rows:
        for g in (s, t):
            _valid_name(g, source, lineno)
            if g not in order:
                order.append(g)
        key = str(sign).strip().lower()
        if isinstance(sign, int | float | np.integer | np.floating) and not isinstance(sign, bool):
            key = "1" if sign > 0 else "-1" if sign < 0 else "0"
        if key not in _SIGNS:
            raise GclFormatError(
                f"{_where(source, lineno)}: unexpected sign {sign!r} on edge {s} -> {t}; "
                "expected '+' or '-' (also 1/-1, activation/repression)."
            )
        bucket = act if _SIGNS[key] > 0 else rep
        lst = bucket.setdefault(t, [])
        if s not in lst:
            lst.append(s)

    def any_of(names: list[str]) -> Expr:
        return Var(names[0]) if len(names) == 1 else Or(tuple(Var(n) for n in names))

    rules: dict[str, Expr | None] = {}
    for g in order:
        a, r = act.get(g, []), rep.get(g, [])
        if not a and not r:
            rules[g] = Const(True)
        elif not r:
            rules[g] = any_of(a)
        elif not a:
            rules[g] = Not(any_of(r))
        else:
            rules[g] = And((any_of(a), Not(any_of(r))))
    return BooleanNetwork(tuple(order), rules, {}, None, name)


# --------------------------------------------------------------------------------------------
# files


def _parse_list(text: str) -> list[str]:
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return [p.strip().strip("'\"") for p in text.split(",") if p.strip()]


def _read_ics(path: Path) -> dict[str, float]:
    """Read a BoolODE initial-condition file (``Genes<TAB>Values`` with list literals)."""
    out: dict[str, float] = {}
    lines = _meaningful(path.read_text().splitlines())
    for lineno, line in lines[1:]:
        parts = line.split("\t")
        if len(parts) < 2:
            raise GclFormatError(
                f"{path}, line {lineno}: expected \"['g1', 'g2']<TAB>[1, 1]\" but got {line!r}."
            )
        genes, values = _parse_list(parts[0]), _parse_list(parts[1])
        if len(genes) != len(values):
            raise GclFormatError(
                f"{path}, line {lineno}: {len(genes)} genes but {len(values)} values."
            )
        for g, v in zip(genes, values):
            try:
                out[g] = float(v)
            except ValueError:
                raise GclFormatError(
                    f"{path}, line {lineno}: initial value {v!r} of {g!r} is not a number."
                ) from None
    return out


def _read_inputs(path: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for lineno, line in _meaningful(path.read_text().splitlines())[1:]:
        parts = line.split()
        if len(parts) != 2 or not _is_float(parts[1]):
            raise GclFormatError(f"{path}, line {lineno}: expected 'gene<TAB>value', got {line!r}.")
        out[parts[0]] = float(parts[1])
    return out


def read_rules(path: str | Path) -> BooleanNetwork:
    """Read a rule file; BoolODE companions ``NAME_ics.txt`` and ``NAME-inputs.txt`` are used.

    Parameters
    ----------
    path
        A rule file (``.rules``, ``.txt``, ``.bnet``) or an edge list (``.csv``/``.tsv``
        with columns ``source``, ``target``, ``sign``).

    Returns
    -------
    :class:`BooleanNetwork`

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "toggle.rules"
    >>> _ = p.write_text("A = not B\\nB = not A\\n")
    >>> read_rules(p).genes
    ('A', 'B')
    """
    path = Path(path)
    if not path.is_file():
        raise GclFileNotFoundError(
            f"rule file {str(path)!r} does not exist; pass an existing path or the rule text itself."
        )
    if path.suffix.lower() in (".csv", ".tsv"):
        df = pd.read_csv(path, sep=None, engine="python")
        return network_from_edges(df, source=str(path), name=path.stem)
    text = path.read_text()
    stem = path.stem
    ics = path.with_name(f"{stem}_ics.txt")
    inp = path.with_name(f"{stem}-inputs.txt")
    inputs = _read_inputs(inp) if inp.is_file() else {}
    initial = _read_ics(ics) if ics.is_file() else {}
    return parse_rules(text, source=str(path), inputs=inputs, initial=initial, name=stem)


def as_network(network: object) -> BooleanNetwork:
    """Turn a path, rule text, edge DataFrame/list or :class:`BooleanNetwork` into a network.

    A string is read as a file when it has no line break, no ``=`` and no tab; otherwise it is
    rule (or edge) text.

    Examples
    --------
    >>> as_network("A = not B\\nB = not A").genes
    ('A', 'B')
    """
    if isinstance(network, BooleanNetwork):
        return network
    if isinstance(network, Path):
        return read_rules(network)
    if isinstance(network, str):
        if "\n" not in network and "=" not in network and "\t" not in network:
            return read_rules(network)
        return parse_rules(network)
    if isinstance(network, pd.DataFrame):
        return network_from_edges(network)
    if (
        isinstance(network, Sequence)
        and network
        and all(isinstance(r, Sequence) and len(r) == 3 for r in network)
    ):
        return network_from_edges(list(network))
    raise GclError(
        f"cannot use a {type(network).__name__} as a network; pass a rule file path, rule text, "
        "a BooleanNetwork, or a signed edge list (DataFrame with source, target, sign)."
    )
