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

This module reads the formats; the expression tree is in :mod:`._expression`, its parser in
:mod:`._expression_parser` and :class:`BooleanNetwork` in :mod:`._network` (all re-exported
here).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from .._errors import GclError, GclFileNotFoundError, GclFormatError
from .._signs import parse_sign

# The expression tree, its parser and the network class live in their own modules; their
# names stay importable from here, where callers have always imported them.
from ._expression import And, Const, Expr, Not, Or, Var, _variables, evaluate
from ._expression_parser import _valid_name, _where, parse_expression
from ._network import BooleanNetwork

__all__ = [
    "And",
    "BooleanNetwork",
    "Const",
    "Expr",
    "Not",
    "Or",
    "Var",
    "as_network",
    "evaluate",
    "network_from_edges",
    "parse_expression",
    "parse_rules",
    "read_rules",
]


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


def _strip_comment(line: str) -> str:
    return line.split("#", 1)[0].rstrip()


def _meaningful(lines: list[str]) -> list[tuple[int, str]]:
    return [
        (i + 1, ln) for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")
    ]


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
        value = parse_sign(sign)
        if not value:  # None: no sign; 0: neither activation nor repression
            raise GclFormatError(
                f"{_where(source, lineno)}: unexpected sign {sign!r} on edge {s} -> {t}; "
                "expected '+' or '-' (also 1/-1, activation/repression)."
            )
        bucket = act if value > 0 else rep
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
