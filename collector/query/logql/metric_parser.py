"""LogQL metric queries -> syntax tree: range and vector aggregations, binary operators, label_replace.

Operator precedence is PromQL's (Loki's grammar follows it): `or` < `and`/`unless` < comparisons < `+ -` <
`* / %` < `^` (right-associative). Range aggregations are checked as Loki checks them: which functions need
`| unwrap`, which refuse it, and which accept `by`/`without`.
"""

from __future__ import annotations

from collector.query.logql.ast import (
    BinaryOp,
    LabelFilter,
    LabelReplace,
    Literal,
    MetricExpr,
    ParseError,
    RangeAggregation,
    Unwrap,
    VectorAggregation,
    VectorMatching,
)
from collector.query.logql.lexer import duration_ns
from collector.query.logql.log_parser import LogParser, check_regex

LOG_RANGE_FUNCTIONS = ("count_over_time", "rate", "bytes_over_time", "bytes_rate", "absent_over_time")
UNWRAP_FUNCTIONS = (
    "sum_over_time",
    "avg_over_time",
    "max_over_time",
    "min_over_time",
    "first_over_time",
    "last_over_time",
    "stdvar_over_time",
    "stddev_over_time",
    "quantile_over_time",
    "rate",
    "rate_counter",
    "absent_over_time",
)
RANGE_FUNCTIONS = tuple(dict.fromkeys(LOG_RANGE_FUNCTIONS + UNWRAP_FUNCTIONS))
_GROUPABLE = (
    "avg_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "quantile_over_time",
    "max_over_time",
    "min_over_time",
    "first_over_time",
    "last_over_time",
)
VECTOR_AGGREGATIONS = (
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "sort",
    "sort_desc",
)
_UNWRAP_CONVERSIONS = ("duration", "duration_seconds", "bytes")
# Binary operators by precedence level, loosest first.
_LEVELS: tuple[tuple[str, ...], ...] = (
    ("or",),
    ("and", "unless"),
    ("==", "!=", ">", ">=", "<", "<="),
    ("+", "-"),
    ("*", "/", "%"),
)
_COMPARISON_OPS = _LEVELS[2]


class MetricParser(LogParser):
    def metric_expr(self, level: int = 0) -> MetricExpr:
        if level == len(_LEVELS):
            return self.metric_power()
        left = self.metric_expr(level + 1)
        while self.peek().kind in ("op", "name") and self.peek().text in _LEVELS[level]:
            op = self.next()
            return_bool = False
            if op.text in _COMPARISON_OPS and self.peek().kind == "name" and self.peek().text == "bool":
                self.next()
                return_bool = True
            matching = self.vector_matching(op.text)
            right = self.metric_expr(level + 1)
            if op.text in _COMPARISON_OPS and not return_bool and _is_scalar(left) and _is_scalar(right):
                raise ParseError("comparisons between scalars must use BOOL modifier", op.pos)
            if op.text in ("and", "or", "unless") and (_is_scalar(left) or _is_scalar(right)):
                raise ParseError(f"set operator {op.text} not allowed in binary scalar expression", op.pos)
            if matching is not None and (_is_scalar(left) or _is_scalar(right)):
                raise ParseError("vector matching only allowed between vectors", op.pos)
            left = BinaryOp(op.text, left, right, return_bool, matching)
        return left

    def vector_matching(self, op: str) -> VectorMatching | None:
        """`on (...)` / `ignoring (...)` and `group_left (...)` / `group_right (...)` after an operator."""
        tok = self.peek()
        if tok.kind != "name" or tok.text not in ("on", "ignoring") or self.peek(1).text != "(":
            return None
        self.next()
        labels = self.label_list()
        card = "one-to-one"
        include: tuple[str, ...] = ()
        side = self.peek()
        if side.kind == "name" and side.text in ("group_left", "group_right"):
            if op in ("and", "or", "unless"):
                raise ParseError(f"no grouping allowed for {op} operation", side.pos)
            self.next()
            card = "many-to-one" if side.text == "group_left" else "one-to-many"
            include = self.label_list() if self.peek().text == "(" else ()
        return VectorMatching(tok.text == "on", labels, card, tuple(include))

    def label_list(self) -> tuple[str, ...]:
        self.expect("(")
        names: list[str] = []
        while self.peek().text != ")":
            names.append(self.expect_kind("name", "a label name").text)
            if self.peek().text == ",":
                self.next()
            elif self.peek().text != ")":
                raise self.fail("',' or ')'")
        self.expect(")")
        return tuple(names)

    def metric_power(self) -> MetricExpr:
        base = self.metric_unary()
        if self.peek().kind == "op" and self.peek().text == "^":
            self.next()
            return BinaryOp("^", base, self.metric_power())  # right-associative
        return base

    def metric_unary(self) -> MetricExpr:
        tok = self.peek()
        if tok.kind == "number":
            self.next()
            return Literal(float(tok.text))
        if tok.text in ("-", "+") and tok.kind == "op":
            self.next()
            inner = self.metric_power()
            if isinstance(inner, Literal) and not inner.vector and tok.text == "-":
                return Literal(-inner.value)
            return inner if tok.text == "+" else BinaryOp("*", inner, Literal(-1.0))
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
        if tok.kind == "name" and tok.text == "label_replace":
            return self.label_replace()
        if tok.kind == "name" and tok.text in RANGE_FUNCTIONS:
            return self.range_aggregation()
        if tok.kind == "name" and tok.text in VECTOR_AGGREGATIONS:
            return self.vector_aggregation()
        raise self.fail("a metric query (count_over_time, rate, sum_over_time, sum, ...)")

    def label_replace(self) -> LabelReplace:
        self.next()
        self.expect("(")
        expr = self.metric_expr()
        args: list[str] = []
        for what in ("the destination label", "the replacement", "the source label", "the regex"):
            self.expect(",")
            args.append(self.expect_kind("string", f"{what} as a quoted string").value)
        self.expect(")")
        check_regex(args[3], self.peek().pos)
        return LabelReplace(expr, args[0], args[1], args[2], args[3])

    def range_aggregation(self) -> RangeAggregation:
        fn_tok = self.next()
        fn = fn_tok.text
        self.expect("(")
        param: float | None = None
        if fn == "quantile_over_time":
            negative = self.peek().text == "-"
            if negative:
                self.next()
            param = float(self.expect_kind("number", "the quantile of quantile_over_time").text)
            param = -param if negative else param
            self.expect(",")
        matchers = self.selector()
        range_ns: int | None = None
        if self.peek().text == "[":  # the range may follow the selector, before the pipeline
            range_ns = self.range_literal()
        query = self.log_query(unwrap_ends=True, matchers=matchers)
        unwrap = self.unwrap() if self.peek().text == "|" else None
        if range_ns is None:
            range_ns = self.range_literal()
        offset_ns = 0
        if self.peek().kind == "name" and self.peek().text == "offset":
            self.next()
            offset_ns = duration_ns(self.expect_kind("duration", "a duration such as 1h").text)
        self.expect(")")
        grouping: tuple[str, ...] | None = None
        without = False
        if self.peek().kind == "name" and self.peek().text in ("by", "without"):
            grouping, without = self.grouping()
        _validate_range(fn, unwrap, grouping, fn_tok.pos)
        return RangeAggregation(fn, query, range_ns, unwrap, offset_ns, param, grouping, without)

    def range_literal(self) -> int:
        self.expect("[")
        tok = self.expect_kind("duration", "a range such as 5m")
        self.expect("]")
        range_ns = duration_ns(tok.text)
        if range_ns <= 0:
            raise ParseError("the range must be positive", tok.pos)
        return range_ns

    def unwrap(self) -> Unwrap:
        self.expect("|")
        self.expect("unwrap")
        conversion = "float"
        if self.peek().text in _UNWRAP_CONVERSIONS and self.peek(1).text == "(":
            conversion = self.next().text
            self.expect("(")
            label = self.expect_kind("name", "a label name").text
            self.expect(")")
        else:
            label = self.expect_kind("name", "a label name").text
        post: list[LabelFilter] = []
        while self.peek().text == "|":
            self.next()
            post.append(LabelFilter(self.label_or()))
        return Unwrap(label, conversion, tuple(post))

    def vector_aggregation(self) -> VectorAggregation:
        op = self.next().text
        grouping, without = self.grouping()
        self.expect("(")
        param: float | None = None
        if op in ("topk", "bottomk"):
            param = float(self.expect_kind("number", f"the k of {op}").text)
            self.expect(",")
        expr = self.metric_expr()
        self.expect(")")
        if not grouping and not without:
            grouping, without = self.grouping()
        if op in ("sort", "sort_desc") and (grouping or without):
            raise ParseError(f"{op} does not take by or without", self.peek().pos)
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


def _is_scalar(expr: MetricExpr) -> bool:
    if isinstance(expr, Literal):
        return not expr.vector
    if isinstance(expr, BinaryOp):
        return _is_scalar(expr.left) and _is_scalar(expr.right)
    return False


def _validate_range(fn: str, unwrap: Unwrap | None, grouping: tuple[str, ...] | None, pos: int) -> None:
    # Loki's RangeAggregationExpr.validate, message for message.
    if grouping is not None and fn not in _GROUPABLE:
        raise ParseError(f"grouping not allowed for {fn} aggregation", pos)
    if unwrap is not None and fn not in UNWRAP_FUNCTIONS:
        raise ParseError(f"invalid aggregation {fn} with unwrap", pos)
    if unwrap is None and fn not in LOG_RANGE_FUNCTIONS:
        raise ParseError(f"invalid aggregation {fn} without unwrap", pos)
