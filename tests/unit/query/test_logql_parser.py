"""The LogQL parser: a table of queries and the trees they give, and a table of refused queries."""

from __future__ import annotations

import pytest

from collector.query.logql.ast import (
    BinaryOp,
    DropKeep,
    LabelAnd,
    LabelComparison,
    LabelFilter,
    LabelFormat,
    LabelOr,
    LineFilter,
    LineFormat,
    Literal,
    LogQuery,
    Matcher,
    ParseError,
    Parser,
    Query,
    RangeAggregation,
    VectorAggregation,
)
from collector.query.logql.parser import parse

SEL = (Matcher("app", "=", "x"),)
MINUTE = 60_000_000_000

CASES: list[tuple[str, Query]] = [
    ('{app="x"}', LogQuery(SEL)),
    (
        '{app="x", env!="dev", job=~"a|b", pod!~"t.*"}',
        LogQuery(
            (
                Matcher("app", "=", "x"),
                Matcher("env", "!=", "dev"),
                Matcher("job", "=~", "a|b"),
                Matcher("pod", "!~", "t.*"),
            )
        ),
    ),
    (
        '{app="x"} |= "a" != "b" |~ "c+" !~ `d\\w`',
        LogQuery(SEL, (LineFilter("|=", "a"), LineFilter("!=", "b"), LineFilter("|~", "c+"), LineFilter("!~", "d\\w"))),
    ),
    ('{app="x"} |= "say \\"hi\\"\\n"', LogQuery(SEL, (LineFilter("|=", 'say "hi"\n'),))),
    ('{app="x"} | json | logfmt', LogQuery(SEL, (Parser("json"), Parser("logfmt")))),
    (
        '{app="x"} | level="error"',
        LogQuery(SEL, (LabelFilter(LabelComparison("level", "=", "error", "string")),)),
    ),
    (
        '{app="x"} | status >= 500 and level=~"err.*" or duration > 1.5s',
        LogQuery(
            SEL,
            (
                LabelFilter(
                    LabelOr(
                        LabelAnd(
                            LabelComparison("status", ">=", 500.0, "number"),
                            LabelComparison("level", "=~", "err.*", "string"),
                        ),
                        LabelComparison("duration", ">", 1.5, "duration"),
                    )
                ),
            ),
        ),
    ),
    (
        '{app="x"} | status = 200, size < 1KiB',
        LogQuery(
            SEL,
            (
                LabelFilter(
                    LabelAnd(
                        LabelComparison("status", "==", 200.0, "number"), LabelComparison("size", "<", 1024.0, "bytes")
                    )
                ),
            ),
        ),
    ),
    (
        '{app="x"} | (a="1" or b="2") and c!="3"',
        LogQuery(
            SEL,
            (
                LabelFilter(
                    LabelAnd(
                        LabelOr(LabelComparison("a", "=", "1", "string"), LabelComparison("b", "=", "2", "string")),
                        LabelComparison("c", "!=", "3", "string"),
                    )
                ),
            ),
        ),
    ),
    ('{app="x"} | line_format "{{.msg}} {{ .level }}"', LogQuery(SEL, (LineFormat("{{.msg}} {{ .level }}"),))),
    (
        '{app="x"} | label_format dst=src, lvl="{{.level}}"',
        LogQuery(SEL, (LabelFormat((("dst", "src", False), ("lvl", "{{.level}}", True))),)),
    ),
    (
        '{app="x"} | drop a, b="v" | keep c',
        LogQuery(SEL, (DropKeep(False, (("a", None), ("b", "v"))), DropKeep(True, (("c", None),)))),
    ),
    ('count_over_time({app="x"}[5m])', RangeAggregation("count_over_time", LogQuery(SEL), 5 * MINUTE)),
    (
        'rate({app="x"} |= "err" [1m30s])',
        RangeAggregation("rate", LogQuery(SEL, (LineFilter("|=", "err"),)), 90 * 1_000_000_000),
    ),
    ('bytes_over_time({app="x"}[1h])', RangeAggregation("bytes_over_time", LogQuery(SEL), 60 * MINUTE)),
    ('bytes_rate({app="x"}[10s])', RangeAggregation("bytes_rate", LogQuery(SEL), 10_000_000_000)),
    (
        'sum by (level) (rate({app="x"} |= "x" [1m]))',
        VectorAggregation("sum", RangeAggregation("rate", LogQuery(SEL, (LineFilter("|=", "x"),)), MINUTE), ("level",)),
    ),
    (
        'sum(count_over_time({app="x"}[1m])) without (pod)',
        VectorAggregation("sum", RangeAggregation("count_over_time", LogQuery(SEL), MINUTE), ("pod",), True),
    ),
    (
        'topk(3, sum by (a, b) (count_over_time({app="x"}[1m])))',
        VectorAggregation(
            "topk",
            VectorAggregation("sum", RangeAggregation("count_over_time", LogQuery(SEL), MINUTE), ("a", "b")),
            param=3.0,
        ),
    ),
    ("vector(1)+vector(1)", BinaryOp("+", Literal(1.0, True), Literal(1.0, True))),
    ("1 + 2 * 3", BinaryOp("+", Literal(1.0), BinaryOp("*", Literal(2.0), Literal(3.0)))),
    ("(1 + 2) * 3", BinaryOp("*", BinaryOp("+", Literal(1.0), Literal(2.0)), Literal(3.0))),
]


@pytest.mark.parametrize(("text", "tree"), CASES, ids=[c[0] for c in CASES])
def test_parse(text: str, tree: Query) -> None:
    assert parse(text) == tree


REFUSED = [
    ("", "unexpected end of input"),
    ('{app="x"', "expecting"),
    ("{}", "at least one"),
    ('{app=~".*"}', "at least one"),
    ('{app="x"} |= ', "a quoted string"),
    ('{app="x"} |~ "("', "invalid regular expression"),
    ('{app="x"} | regexp "(?P<a>.)"', "not supported"),
    ('{app="x"} | status > "a"', "needs a number"),
    ('count_over_time({app="x"})', "expecting '['"),
    ('sum(rate({app="x"}[0s]))', "positive"),
    ('{app="x"} extra', "end of query"),
]


@pytest.mark.parametrize(("text", "message"), REFUSED, ids=[r[0] or "empty" for r in REFUSED])
def test_refused(text: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text)
    assert message in str(info.value)
    assert str(info.value).startswith("parse error at line 1, col ")
