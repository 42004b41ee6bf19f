"""The LogQL parser: a table of queries and the trees they give, and a table of refused queries."""

from __future__ import annotations

import pytest

from collector.query.logql.ast import (
    BinaryOp,
    Decolorize,
    DropKeep,
    LabelAnd,
    LabelComparison,
    LabelFilter,
    LabelFormat,
    LabelOr,
    LabelReplace,
    LineFilter,
    LineFormat,
    Literal,
    LogQuery,
    Matcher,
    ParseError,
    Parser,
    Query,
    RangeAggregation,
    Unwrap,
    VectorAggregation,
    VectorMatching,
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
    # issue 6: extra stages and line filters
    (
        '{app="x"} | regexp "(?P<ip>\\S+) (?P<verb>\\w+)" | pattern "<_> <path> <_>" | unpack | decolorize',
        LogQuery(
            SEL,
            (
                Parser("regexp", "(?P<ip>\\S+) (?P<verb>\\w+)"),
                Parser("pattern", "<_> <path> <_>"),
                Parser("unpack"),
                Decolorize(),
            ),
        ),
    ),
    (
        '{app="x"} |= "a" or "b" != `c` or "d" |= ip("10.0.0.0/8") |~ "(?i)err"',
        LogQuery(
            SEL,
            (
                LineFilter("|=", "a", ("b",)),
                LineFilter("!=", "c", ("d",)),
                LineFilter("|=", "10.0.0.0/8", (), ip=True),
                LineFilter("|~", "(?i)err"),
            ),
        ),
    ),
    (
        'sum_over_time({app="x"} | logfmt | unwrap latency [1m])',
        RangeAggregation("sum_over_time", LogQuery(SEL, (Parser("logfmt"),)), MINUTE, Unwrap("latency")),
    ),
    (
        'quantile_over_time(0.99, {app="x"}[5m] | json | unwrap duration(took) | __error__="" offset 1h) by (a)',
        RangeAggregation(
            "quantile_over_time",
            LogQuery(SEL, (Parser("json"),)),
            5 * MINUTE,
            Unwrap("took", "duration", (LabelFilter(LabelComparison("__error__", "=", "", "string")),)),
            offset_ns=60 * MINUTE,
            param=0.99,
            grouping=("a",),
        ),
    ),
    (
        'absent_over_time({app="x"}[1m] offset 5m)',
        RangeAggregation("absent_over_time", LogQuery(SEL), MINUTE, offset_ns=5 * MINUTE),
    ),
    (
        'bottomk(2, count_over_time({app="x"}[1m])) > bool 3 or vector(0)',
        BinaryOp(
            "or",
            BinaryOp(
                ">",
                VectorAggregation("bottomk", RangeAggregation("count_over_time", LogQuery(SEL), MINUTE), param=2.0),
                Literal(3.0),
                return_bool=True,
            ),
            Literal(0.0, True),
        ),
    ),
    ("2 ^ 3 ^ 2", BinaryOp("^", Literal(2.0), BinaryOp("^", Literal(3.0), Literal(2.0)))),
    (
        'rate({app="x"}[1m]) > bool on (a, b) group_left (c) rate({app="x"}[1m])',
        BinaryOp(
            ">",
            RangeAggregation("rate", LogQuery(SEL), MINUTE),
            RangeAggregation("rate", LogQuery(SEL), MINUTE),
            True,
            VectorMatching(True, ("a", "b"), "many-to-one", ("c",)),
        ),
    ),
    (
        'label_replace(rate({app="x"}[1m]), "dst", "$1", "app", "(.*)")',
        LabelReplace(RangeAggregation("rate", LogQuery(SEL), MINUTE), "dst", "$1", "app", "(.*)"),
    ),
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
    ('{app="x"} | regexp "(.)"', "at least one named capture"),
    ('{app="x"} | pattern "<a><b>"', "consecutive capture"),
    ('{app="x"} |= ip("not an ip")', "invalid ip filter"),
    ('{app="x"} | unwrap x', "only allowed in a range aggregation"),
    ('sum_over_time({app="x"}[1m])', "invalid aggregation sum_over_time without unwrap"),
    ('count_over_time({app="x"} | unwrap x [1m])', "invalid aggregation count_over_time with unwrap"),
    ('sum_over_time({app="x"} | unwrap x [1m]) by (a)', "grouping not allowed for sum_over_time"),
    ("1 > 2", "BOOL modifier"),
    ('rate({app="x"}[1m]) and on (a) group_left rate({app="x"}[1m])', "no grouping allowed for and"),
    ('rate({app="x"}[1m]) + on (a) 1', "vector matching only allowed between vectors"),
    ('1 and count_over_time({app="x"}[1m])', "set operator and"),
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
