"""LogQL text -> syntax tree (ast.py), by recursive descent over the tokens of lexer.py.

Anything outside the subset of PROTOCOLS.md §5 is refused with a ParseError that names the column,
rather than being half-understood.
"""

from __future__ import annotations

import re

from collector.query.logql.ast import (
    BinaryOp,
    DropKeep,
    LabelAnd,
    LabelComparison,
    LabelFilter,
    LabelFormat,
    LabelOr,
    LabelPredicate,
    LineFilter,
    LineFormat,
    Literal,
    LogQuery,
    Matcher,
    MetricExpr,
    ParseError,
    Parser,
    Query,
    RangeAggregation,
    Stage,
    VectorAggregation,
)
from collector.query.logql.lexer import Token, bytes_value, duration_ns, tokenize

RANGE_FUNCTIONS = ("count_over_time", "rate", "bytes_over_time", "bytes_rate")
VECTOR_AGGREGATIONS = ("sum", "avg", "min", "max", "count", "topk")
_LINE_FILTER_OPS = ("|=", "!=", "|~", "!~")
_COMPARISONS = ("=", "!=", "=~", "!~", "==", ">", ">=", "<", "<=")


def parse(text: str) -> Query:
    """A LogQL query; raises ParseError."""
    p = _Parser(tokenize(text))
    query: Query = p.log_query() if p.peek().text == "{" else p.metric_expr()
    p.expect_end()
    return query


def parse_selector(text: str) -> LogQuery:
    """A log query (a stream selector, possibly with a pipeline): the `query`/`match[]` of label endpoints."""
    query = parse(text)
    if not isinstance(query, LogQuery):
        raise ParseError("only a stream selector is allowed here", 0)
    return query


class _Parser:
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

    def log_query(self) -> LogQuery:
        matchers = self.selector()
        stages: list[Stage] = []
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.text in _LINE_FILTER_OPS:
                self.next()
                value = self.expect_kind("string", "a quoted string").value
                if tok.text in ("|~", "!~"):
                    _check_regex(value, tok.pos)
                stages.append(LineFilter(tok.text, value))
            elif tok.kind == "op" and tok.text == "|":
                self.next()
                stages.append(self.stage())
            else:
                return LogQuery(tuple(matchers), tuple(stages))

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
                _check_regex(value, op.pos)
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
            return LineFormat(self.expect_kind("string", "a quoted template").value)
        if tok.kind == "name" and tok.text == "label_format":
            self.next()
            return self.label_format()
        if tok.kind == "name" and tok.text in ("drop", "keep") and self.peek(1).text not in _COMPARISONS:
            self.next()
            return self.drop_keep(tok.text == "keep")
        if tok.kind == "name" and tok.text in ("regexp", "pattern", "unpack", "unwrap", "decolorize"):
            raise ParseError(f"the {tok.text} stage is not supported", tok.pos)
        return LabelFilter(self.label_or())

    def label_format(self) -> LabelFormat:
        out: list[tuple[str, str, bool]] = []
        while True:
            dst = self.expect_kind("name", "a label name").text
            self.expect("=")
            src = self.next()
            if src.kind == "string":
                out.append((dst, src.value, True))
            elif src.kind == "name":
                out.append((dst, src.text, False))
            else:
                self.i -= 1
                raise self.fail("a label name or a quoted template")
            if self.peek().text != ",":
                return LabelFormat(tuple(out))
            self.next()

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
        negative = self.peek().text == "-"
        if negative:
            self.next()
        val = self.next()
        sign = -1.0 if negative else 1.0
        if val.kind == "string" and not negative:
            if op.text not in ("=", "!=", "=~", "!~"):
                raise ParseError(f"operator {op.text} needs a number, a duration or a byte size", op.pos)
            if op.text in ("=~", "!~"):
                _check_regex(val.value, op.pos)
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

    # -- metric queries ---------------------------------------------------------------------------

    def metric_expr(self) -> MetricExpr:
        left = self.metric_term()
        while self.peek().kind == "op" and self.peek().text in ("+", "-"):
            op = self.next().text
            left = BinaryOp(op, left, self.metric_term())
        return left

    def metric_term(self) -> MetricExpr:
        left = self.metric_unary()
        while self.peek().kind == "op" and self.peek().text in ("*", "/", "%"):
            op = self.next().text
            left = BinaryOp(op, left, self.metric_unary())
        return left

    def metric_unary(self) -> MetricExpr:
        tok = self.peek()
        if tok.kind == "number":
            self.next()
            return Literal(float(tok.text))
        if tok.text == "-" and self.peek(1).kind == "number":
            self.next()
            return Literal(-float(self.next().text))
        if tok.text == "(":
            self.next()
            inner = self.metric_expr()
            self.expect(")")
            return inner
        if tok.kind == "name" and tok.text == "vector":
            self.next()
            self.expect("(")
            negative = self.peek().text == "-"
            if negative:
                self.next()
            number = float(self.expect_kind("number", "a number").text)
            self.expect(")")
            return Literal(-number if negative else number, vector=True)
        if tok.kind == "name" and tok.text in RANGE_FUNCTIONS:
            return self.range_aggregation()
        if tok.kind == "name" and tok.text in VECTOR_AGGREGATIONS:
            return self.vector_aggregation()
        raise self.fail("a metric query (count_over_time, rate, bytes_over_time, bytes_rate, sum, ...)")

    def range_aggregation(self) -> RangeAggregation:
        fn = self.next().text
        self.expect("(")
        query = self.log_query()
        self.expect("[")
        range_tok = self.expect_kind("duration", "a range such as 5m")
        self.expect("]")
        self.expect(")")
        range_ns = duration_ns(range_tok.text)
        if range_ns <= 0:
            raise ParseError("the range must be positive", range_tok.pos)
        return RangeAggregation(fn, query, range_ns)

    def vector_aggregation(self) -> VectorAggregation:
        op = self.next().text
        grouping, without = self.grouping()
        self.expect("(")
        param: float | None = None
        if op == "topk":
            param = float(self.expect_kind("number", "the k of topk").text)
            self.expect(",")
        expr = self.metric_expr()
        self.expect(")")
        if not grouping and not without:
            grouping, without = self.grouping()
        return VectorAggregation(op, expr, grouping, without, param)

    def grouping(self) -> tuple[tuple[str, ...], bool]:
        tok = self.peek()
        if tok.kind != "name" or tok.text not in ("by", "without"):
            return (), False
        self.next()
        self.expect("(")
        names: list[str] = []
        while self.peek().text != ")":
            names.append(self.expect_kind("name", "a label name").text)
            if self.peek().text == ",":
                self.next()
        self.expect(")")
        return tuple(names), tok.text == "without"


def _matches_nonempty(m: Matcher) -> bool:
    # Loki refuses selectors that would match every stream (each matcher also matches the empty value).
    if m.op == "=":
        return m.value != ""
    if m.op == "=~":
        return re.fullmatch(m.value, "") is None
    return False


def _check_regex(value: str, pos: int) -> None:
    try:
        re.compile(value)
    except re.error as exc:
        raise ParseError(f"invalid regular expression {value!r}: {exc}", pos) from None
