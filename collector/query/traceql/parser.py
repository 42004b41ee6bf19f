"""TraceQL text -> syntax tree, for one spanset filter `{ ... }` with `&&`, `||` and parentheses.

Errors are PermanentError naming the offset in the query, so the API answers 400 with where it failed.
"""

from __future__ import annotations

import re

from collector.errors import PermanentError
from collector.query.traceql.ast import (
    INTRINSICS,
    KINDS,
    OPERATORS,
    SCOPED_INTRINSICS,
    STATUSES,
    And,
    Comparison,
    Expr,
    Field,
    Literal,
    MatchAll,
    Or,
)
from collector.query.traceql.durations import parse_go_duration

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<duration>\d+(?:\.\d+)?(?:ns|us|µs|μs|ms|s|m|h)(?:\d+(?:\.\d+)?(?:ns|us|µs|μs|ms|s|m|h))*)(?![\w.])
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?![\w.])
    | (?P<op>&&|\|\||=~|!~|!=|>=|<=|=|>|<|\{|\}|\(|\))
    | (?P<field>(?:resource|span)?\.(?:"(?:[^"\\]|\\.)*"|[\w.\-/:]+)|(?:span:|trace:)?[A-Za-z_]\w*)
    )""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), text[1:-1])


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(query):
            if query[pos:].strip() == "":
                break
            m = _TOKEN.match(query, pos)
            if m is None or m.lastgroup is None:
                at = len(query) - len(query[pos:].lstrip())
                raise self.error(f"unexpected {query[at : at + 10]!r}", at)
            self.tokens.append((m.lastgroup, m.group(m.lastgroup), m.start(m.lastgroup)))
            pos = m.end()
        self.i = 0

    def error(self, message: str, at: int | None = None) -> PermanentError:
        if at is None:
            at = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.query)
        return PermanentError(f"q: TraceQL at offset {at}: {message}", field="q")

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, kind: str, text: str | None = None) -> str:
        tok = self.peek()
        if tok is None or tok[0] != kind or (text is not None and tok[1] != text):
            want = text or kind
            got = "end of query" if tok is None else repr(tok[1])
            raise self.error(f"expected {want}, found {got}")
        self.i += 1
        return tok[1]

    def at(self, text: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] == "op" and tok[1] == text

    def spanset(self) -> Expr:
        self.take("op", "{")
        if self.at("}"):
            self.i += 1
            expr: Expr = MatchAll()
        else:
            expr = self.or_expr()
            self.take("op", "}")
        if self.peek() is not None:
            raise self.error("only one spanset filter { ... } is supported")
        return expr

    def or_expr(self) -> Expr:
        left = self.and_expr()
        while self.at("||"):
            self.i += 1
            left = Or(left, self.and_expr())
        return left

    def and_expr(self) -> Expr:
        left = self.primary()
        while self.at("&&"):
            self.i += 1
            left = And(left, self.primary())
        return left

    def primary(self) -> Expr:
        if self.at("("):
            self.i += 1
            expr = self.or_expr()
            self.take("op", ")")
            return expr
        field = self.field()
        tok = self.peek()
        if tok is None or tok[0] != "op" or tok[1] not in OPERATORS:
            raise self.error(f"expected an operator ({' '.join(OPERATORS)}) after {field}")
        self.i += 1
        return Comparison(field, tok[1], self.literal())

    def field(self) -> Field:
        text = self.take("field")
        text = SCOPED_INTRINSICS.get(text, text)
        if text in INTRINSICS:
            return Field("intrinsic", text)
        scope, dot, name = text.partition(".")
        if not dot:
            raise self.error(f"{text!r} is not an intrinsic ({', '.join(INTRINSICS)}) nor an attribute", None)
        if name.startswith('"'):
            name = _unquote(name)
        if scope == "":
            return Field("any", name)
        return Field("span" if scope == "span" else "resource", name)

    def literal(self) -> Literal:
        tok = self.peek()
        if tok is None:
            raise self.error("expected a value")
        kind, text, _ = tok
        self.i += 1
        if kind == "string":
            return Literal("string", _unquote(text))
        if kind == "duration":
            return Literal("duration", parse_go_duration(text, "q"))
        if kind == "number":
            if re.fullmatch(r"-?\d+", text):
                return Literal("int", int(text))
            return Literal("float", float(text))
        if kind == "field" and text in ("true", "false"):
            return Literal("bool", text == "true")
        if kind == "field" and text in STATUSES:
            return Literal("status", text)
        if kind == "field" and text in KINDS:
            return Literal("kind", text)
        self.i -= 1
        raise self.error(f"{text!r} is not a value (string, number, duration, true/false, status or kind)")


def parse(query: str) -> Expr:
    """The filter of a TraceQL query `{ ... }`; an empty or blank query means `{}` (every span)."""
    if not query.strip():
        return MatchAll()
    return _Parser(query).spanset()
