"""LogQL log queries -> syntax tree: stream selectors and pipelines, by recursive descent over lexer.py tokens.

Anything outside the supported subset is refused with a ParseError that names the column, rather than being
half-understood.
"""

from __future__ import annotations

import re

from collector.query.logql.ast import (
    Decolorize,
    DropKeep,
    LabelAnd,
    LabelComparison,
    LabelFilter,
    LabelFormat,
    LabelOr,
    LabelPredicate,
    LineFilter,
    LineFormat,
    LogQuery,
    Matcher,
    ParseError,
    Parser,
    Stage,
)
from collector.query.logql.extractors import PatternExtractor, RegexpExtractor
from collector.query.logql.lexer import Token, bytes_value, duration_ns
from collector.query.logql.line_filters import ip_range
from collector.query.logql.regex import compile_go
from collector.query.logql.templates import Template, TemplateError

_LINE_FILTER_OPS = ("|=", "!=", "|~", "!~")
COMPARISONS = ("=", "!=", "=~", "!~", "==", ">", ">=", "<", "<=")
_COMPARISONS = COMPARISONS


class LogParser:
    """Recursive descent over tokens: stream selectors and log pipelines (metric_parser.py extends it)."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        tok = self.peek()
        self.i += 1
        return tok

    def fail(self, expected: str) -> ParseError:
        tok = self.peek()
        found = "end of input" if tok.kind == "end" else repr(tok.text)
        return ParseError(f"syntax error: unexpected {found}, expecting {expected}", tok.pos)

    def expect(self, text: str) -> Token:
        if self.peek().text != text or self.peek().kind == "string":
            raise self.fail(repr(text))
        return self.next()

    def expect_kind(self, kind: str, what: str) -> Token:
        if self.peek().kind != kind:
            raise self.fail(what)
        return self.next()

    def expect_end(self) -> None:
        if self.peek().kind != "end":
            raise self.fail("end of query")

    # -- log queries ------------------------------------------------------------------------------

    def log_query(self, unwrap_ends: bool = False, matchers: list[Matcher] | None = None) -> LogQuery:
        """A selector and its pipeline; with `unwrap_ends`, the pipeline stops before `| unwrap`."""
        if matchers is None:
            matchers = self.selector()
        stages: list[Stage] = []
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.text in _LINE_FILTER_OPS:
                self.next()
                stages.append(self.line_filter(tok))
            elif tok.kind == "op" and tok.text == "|" and not (unwrap_ends and self.peek(1).text == "unwrap"):
                self.next()
                stages.append(self.stage())
            else:
                return LogQuery(tuple(matchers), tuple(stages))

    def line_filter(self, op: Token) -> LineFilter:
        """The value(s) after a line filter operator: `"s"`, `ip("cidr")`, each possibly followed by `or "t"`."""
        is_ip = self.peek().kind == "name" and self.peek().text == "ip" and self.peek(1).text == "("
        if is_ip and op.text not in ("|=", "!="):
            raise ParseError(f"ip() needs |= or != , not {op.text}", op.pos)
        values = [self.line_filter_value(op, is_ip)]
        while self.peek().kind == "name" and self.peek().text == "or":
            self.next()
            values.append(self.line_filter_value(op, is_ip))
        return LineFilter(op.text, values[0], tuple(values[1:]), is_ip)

    def line_filter_value(self, op: Token, is_ip: bool) -> str:
        if not is_ip:
            value = self.expect_kind("string", "a quoted string").value
            if op.text in ("|~", "!~"):
                check_regex(value, op.pos)
            return value
        self.expect("ip")
        self.expect("(")
        tok = self.expect_kind("string", "a quoted address, CIDR or range")
        self.expect(")")
        try:
            ip_range(tok.value)
        except ValueError:
            raise ParseError(f"invalid ip filter {tok.value!r}", tok.pos) from None
        return tok.value

    def selector(self) -> list[Matcher]:
        self.expect("{")
        matchers: list[Matcher] = []
        while self.peek().text != "}":
            name = self.expect_kind("name", "a label name").text
            op = self.next()
            if op.kind != "op" or op.text not in ("=", "!=", "=~", "!~"):
                self.i -= 1
                raise self.fail("one of = != =~ !~")
            value = self.expect_kind("string", "a quoted string").value
            if op.text in ("=~", "!~"):
                check_regex(value, op.pos)
            matchers.append(Matcher(name, op.text, value))
            if self.peek().text == ",":
                self.next()
            elif self.peek().text != "}":
                raise self.fail("',' or '}'")
        self.expect("}")
        if not any(_matches_nonempty(m) for m in matchers):
            raise ParseError(
                "queries require at least one regexp or equality matcher that does not have an empty-compatible "
                'value. For instance, app=~".*" does not meet this requirement, but app=~".+" will',
                self.peek().pos,
            )
        return matchers

    def stage(self) -> Stage:
        tok = self.peek()
        if tok.kind == "name" and tok.text in ("json", "logfmt") and self.peek(1).text not in _COMPARISONS:
            self.next()
            return Parser(tok.text)
        if tok.kind == "name" and tok.text == "line_format":
            self.next()
            return LineFormat(self.template(self.expect_kind("string", "a quoted template")))
        if tok.kind == "name" and tok.text == "label_format":
            self.next()
            return self.label_format()
        if tok.kind == "name" and tok.text in ("drop", "keep") and self.peek(1).text not in _COMPARISONS:
            self.next()
            return self.drop_keep(tok.text == "keep")
        if tok.kind == "name" and tok.text in ("regexp", "pattern") and self.peek(1).kind == "string":
            self.next()
            param = self.next()
            try:
                (RegexpExtractor if tok.text == "regexp" else PatternExtractor)(param.value)
            except (ValueError, re.error) as exc:
                raise ParseError(f"invalid {tok.text} expression {param.value!r}: {exc}", param.pos) from None
            return Parser(tok.text, param.value)
        if tok.kind == "name" and tok.text in ("unpack", "decolorize") and self.peek(1).text not in _COMPARISONS:
            self.next()
            return Parser("unpack") if tok.text == "unpack" else Decolorize()
        if tok.kind == "name" and tok.text == "unwrap":
            raise ParseError("unwrap is only allowed in a range aggregation such as sum_over_time", tok.pos)
        return LabelFilter(self.label_or())

    def label_format(self) -> LabelFormat:
        out: list[tuple[str, str, bool]] = []
        while True:
            dst = self.expect_kind("name", "a label name").text
            self.expect("=")
            src = self.next()
            if src.kind == "string":
                out.append((dst, self.template(src), True))
            elif src.kind == "name":
                out.append((dst, src.text, False))
            else:
                self.i -= 1
                raise self.fail("a label name or a quoted template")
            if self.peek().text != ",":
                return LabelFormat(tuple(out))
            self.next()

    @staticmethod
    def template(tok: Token) -> str:
        try:
            Template(tok.value)
        except TemplateError as exc:
            raise ParseError(f"invalid template {tok.value!r}: {exc}", tok.pos) from None
        return tok.value

    def drop_keep(self, keep: bool) -> DropKeep:
        out: list[tuple[str, str | None]] = []
        while True:
            name = self.expect_kind("name", "a label name").text
            value: str | None = None
            if self.peek().text == "=":
                self.next()
                value = self.expect_kind("string", "a quoted string").value
            out.append((name, value))
            if self.peek().text != ",":
                return DropKeep(keep, tuple(out))
            self.next()

    def label_or(self) -> LabelPredicate:
        left = self.label_and()
        while self.peek().kind == "name" and self.peek().text == "or":
            self.next()
            left = LabelOr(left, self.label_and())
        return left

    def label_and(self) -> LabelPredicate:
        left = self.label_primary()
        while (self.peek().kind == "name" and self.peek().text == "and") or self.peek().text == ",":
            self.next()
            left = LabelAnd(left, self.label_primary())
        return left

    def label_primary(self) -> LabelPredicate:
        if self.peek().text == "(":
            self.next()
            inner = self.label_or()
            self.expect(")")
            return inner
        name = self.expect_kind("name", "a label filter, a parser or a formatting stage").text
        op = self.next()
        if op.kind != "op" or op.text not in _COMPARISONS:
            self.i -= 1
            raise self.fail("a comparison operator")
        if self.peek().kind == "name" and self.peek().text == "ip" and self.peek(1).text == "(":
            if op.text not in ("=", "!="):
                raise ParseError(f"ip() needs = or !=, not {op.text}", op.pos)
            return LabelComparison(name, op.text, self.line_filter_value(op, is_ip=True), "ip")
        negative = self.peek().text == "-"
        if negative:
            self.next()
        val = self.next()
        sign = -1.0 if negative else 1.0
        if val.kind == "string" and not negative:
            if op.text not in ("=", "!=", "=~", "!~"):
                raise ParseError(f"operator {op.text} needs a number, a duration or a byte size", op.pos)
            if op.text in ("=~", "!~"):
                check_regex(val.value, op.pos)
            return LabelComparison(name, op.text, val.value, "string")
        if op.text in ("=~", "!~"):
            raise ParseError(f"operator {op.text} needs a quoted regular expression", op.pos)
        numeric_op = "==" if op.text == "=" else op.text
        if val.kind == "number":
            return LabelComparison(name, numeric_op, sign * float(val.text), "number")
        if val.kind == "duration":
            return LabelComparison(name, numeric_op, sign * duration_ns(val.text) / 1e9, "duration")
        if val.kind == "bytes":
            return LabelComparison(name, numeric_op, sign * bytes_value(val.text), "bytes")
        self.i -= 1
        raise self.fail("a quoted string, a number, a duration or a byte size")


def _matches_nonempty(m: Matcher) -> bool:
    # Loki refuses selectors that would match every stream (each matcher also matches the empty value).
    if m.op == "=":
        return m.value != ""
    if m.op == "=~":
        return compile_go(m.value).fullmatch("") is None
    return False


def check_regex(value: str, pos: int) -> None:
    try:
        compile_go(value)
    except re.error as exc:
        raise ParseError(f"invalid regular expression {value!r}: {exc}", pos) from None
