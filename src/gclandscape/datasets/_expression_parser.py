"""Tokenizer and recursive-descent parser of Boolean rule expressions (never ``eval``).

``not`` binds tighter than ``and``, which binds tighter than ``or`` (Python's precedence);
``&``/``|``/``!`` are accepted too, with the constants ``True``/``False``/``1``/``0``. Gene names
start with a letter or ``_`` and may contain letters, digits, ``_`` and ``.`` (``Pu.1``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .._errors import GclFormatError
from ._expression import And, Const, Expr, Not, Or, Var

__all__ = ["parse_expression"]

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
        return self._chain("or", self._and, Or)

    def _and(self) -> Expr:
        return self._chain("and", self._not, And)

    def _chain(self, op: str, operand: Callable[[], Expr], node: type[And | Or]) -> Expr:
        """``operand (op operand)*`` as one flat ``node`` (``a or (b or c)`` is ``Or(a, b, c)``);
        a single operand is returned as it is."""
        args = [operand()]
        while self._peek().kind == op:
            self.i += 1
            args.append(operand())
        if len(args) == 1:
            return args[0]
        flat: list[Expr] = []
        for a in args:
            flat.extend(a.args if isinstance(a, node) else (a,))
        return node(tuple(flat))

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
