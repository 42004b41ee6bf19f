"""The syntax tree of a LogQL query: log queries (selector plus pipeline) and metric queries over them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Matcher:
    """A stream selector term: `label op "value"` with op one of = != =~ !~ (regexes are fully anchored)."""

    label: str
    op: str
    value: str


@dataclass(frozen=True)
class LineFilter:
    """`|= "s"`, `!= "s"`, `|~ "re"`, `!~ "re"`: a condition on the current line."""

    op: str
    value: str


@dataclass(frozen=True)
class Parser:
    """`| json` or `| logfmt`: extracts labels from the line."""

    kind: str


@dataclass(frozen=True)
class LabelComparison:
    """`name op value`; `kind` says how the value compares: string, number, duration (seconds) or bytes."""

    name: str
    op: str
    value: str | float
    kind: str


@dataclass(frozen=True)
class LabelAnd:
    left: LabelPredicate
    right: LabelPredicate


@dataclass(frozen=True)
class LabelOr:
    left: LabelPredicate
    right: LabelPredicate


LabelPredicate = LabelComparison | LabelAnd | LabelOr


@dataclass(frozen=True)
class LabelFilter:
    predicate: LabelPredicate


@dataclass(frozen=True)
class LineFormat:
    template: str


@dataclass(frozen=True)
class LabelFormat:
    """`| label_format dst=src, dst2="{{.x}}"`: (destination, source label or template, is_template)."""

    assignments: tuple[tuple[str, str, bool], ...]


@dataclass(frozen=True)
class DropKeep:
    """`| drop a, b="v"` or `| keep ...`: names, each with an optional exact value condition."""

    keep: bool
    labels: tuple[tuple[str, str | None], ...]


Stage = LineFilter | Parser | LabelFilter | LineFormat | LabelFormat | DropKeep


@dataclass(frozen=True)
class LogQuery:
    matchers: tuple[Matcher, ...]
    stages: tuple[Stage, ...] = ()


@dataclass(frozen=True)
class RangeAggregation:
    """`count_over_time`, `rate`, `bytes_over_time`, `bytes_rate` of a log query over `range_ns`."""

    fn: str
    query: LogQuery
    range_ns: int


@dataclass(frozen=True)
class VectorAggregation:
    """`sum|avg|min|max|count|topk [by|without (labels)] ([k,] expr)`."""

    op: str
    expr: MetricExpr
    grouping: tuple[str, ...] = ()
    without: bool = False
    param: float | None = None


@dataclass(frozen=True)
class Literal:
    """A number, or `vector(n)` (a one-sample vector without labels) when `vector` is set."""

    value: float
    vector: bool = False


@dataclass(frozen=True)
class BinaryOp:
    op: str
    left: MetricExpr
    right: MetricExpr


MetricExpr = RangeAggregation | VectorAggregation | Literal | BinaryOp
Query = LogQuery | MetricExpr


@dataclass
class ParseError(Exception):
    """A query Loki would refuse with 400; the message names the column."""

    message: str
    column: int = 0
    extra: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"parse error at line 1, col {self.column + 1}: {self.message}"
