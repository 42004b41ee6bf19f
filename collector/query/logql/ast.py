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
    """`|= "s"`, `!= "s"`, `|~ "re"`, `!~ "re"`: a condition on the current line.

    `alternatives` holds the values after `or` (`|= "a" or "b"`: any matches; `!= "a" or "b"`: none does);
    `ip` marks `|= ip("192.168.0.0/16")`, which matches a line holding an address in the range."""

    op: str
    value: str
    alternatives: tuple[str, ...] = ()
    ip: bool = False

    @property
    def plain(self) -> bool:
        """One literal or regex, which the store can apply itself."""
        return not self.alternatives and not self.ip


@dataclass(frozen=True)
class Parser:
    """`| json`, `| logfmt`, `| unpack`, `| regexp "re"` or `| pattern "p"`: extracts labels from the line."""

    kind: str
    param: str = ""


@dataclass(frozen=True)
class Decolorize:
    """`| decolorize`: strips ANSI colour sequences from the line."""


@dataclass(frozen=True)
class LabelComparison:
    """`name op value`; `kind` says how the value compares: string, number, duration (seconds), bytes, or ip
    (`addr = ip("10.0.0.0/8")`: the value holds an address in the range)."""

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


Stage = LineFilter | Parser | Decolorize | LabelFilter | LineFormat | LabelFormat | DropKeep


@dataclass(frozen=True)
class Unwrap:
    """`| unwrap label`, `| unwrap duration(label)` (seconds) or `| unwrap bytes(label)`, then label filters
    applied after the conversion (`| unwrap latency | __error__=""`)."""

    label: str
    conversion: str = "float"  # float, duration, duration_seconds or bytes
    post_filters: tuple[LabelFilter, ...] = ()


@dataclass(frozen=True)
class LogQuery:
    matchers: tuple[Matcher, ...]
    stages: tuple[Stage, ...] = ()


@dataclass(frozen=True)
class RangeAggregation:
    """`fn([param,] log query [| unwrap ...] [range] [offset o]) [by|without (labels)]`.

    Windows are (t - offset - range, t - offset]; `grouping` is None when the query names no by/without."""

    fn: str
    query: LogQuery
    range_ns: int
    unwrap: Unwrap | None = None
    offset_ns: int = 0
    param: float | None = None
    grouping: tuple[str, ...] | None = None
    without: bool = False


@dataclass(frozen=True)
class VectorAggregation:
    """`sum|avg|min|max|count|stddev|stdvar|topk|bottomk|sort|sort_desc [by|without (labels)] ([k,] expr)`."""

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
class VectorMatching:
    """`on (labels)` or `ignoring (labels)`, then `group_left (include)` or `group_right (include)`."""

    on: bool = False
    labels: tuple[str, ...] = ()
    card: str = "one-to-one"  # one-to-one, many-to-one (group_left) or one-to-many (group_right)
    include: tuple[str, ...] = ()


@dataclass(frozen=True)
class BinaryOp:
    """Arithmetic (+ - * / % ^), comparisons (== != > >= < <=, filtering or `bool`) and set operations
    (and, or, unless); vectors match on identical label sets unless `matching` says otherwise."""

    op: str
    left: MetricExpr
    right: MetricExpr
    return_bool: bool = False
    matching: VectorMatching | None = None


@dataclass(frozen=True)
class LabelReplace:
    """`label_replace(expr, "dst", "replacement", "src", "regex")`, as PromQL's (the regex fully anchored)."""

    expr: MetricExpr
    dst: str
    replacement: str
    src: str
    regex: str


MetricExpr = RangeAggregation | VectorAggregation | Literal | BinaryOp | LabelReplace
Query = LogQuery | MetricExpr


@dataclass
class ParseError(Exception):
    """A query Loki would refuse with 400; the message names the column."""

    message: str
    column: int = 0
    extra: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"parse error at line 1, col {self.column + 1}: {self.message}"
