"""InfluxDB line protocol: conformance tables for the parser and formatter, plus properties over any input."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.codecs.line_protocol import (
    MAX_ERROR_TEXT,
    MAX_TIME_NS,
    MIN_TIME_NS,
    PRECISION_NS,
    RESERVED_KEYS,
    LineError,
    Points,
    _parse_fast,
    _parse_slow,
    _Reject,
    format_line,
    parse_lines,
    rewrite_lines,
)

NOW = 42

Row = tuple[str, dict[str, str], str, str, Any, int]


def rows(points: Points) -> list[Row]:
    return list(
        zip(
            points.measurement,
            points.tags,
            points.field,
            points.kind,
            points.value,
            points.timestamp_ns,
            strict=True,
        )
    )


def same_value(a: Any, b: Any) -> bool:
    """Equal, of the same type, and for floats bit for bit (so -0.0 differs from 0.0)."""
    return type(a) is type(b) and (repr(a) == repr(b) if isinstance(a, float) else a == b)


def parse_one(line: str, precision: str = "ns") -> list[Row]:
    points, errors = parse_lines(line.encode(), precision=precision, now_ns=NOW)
    assert errors == []
    assert points.lines == 1
    return rows(points)


def bool_case(spelling: str, value: bool) -> tuple[str, list[Row]]:
    return f"m f={spelling}", [("m", {}, "f", "bool", value, NOW)]


# Lines that parse: (line, [(measurement, tags, field, kind, value, timestamp_ns), ...]).
VALID: list[tuple[str, list[Row]]] = [
    ("cpu value=1", [("cpu", {}, "value", "float", 1.0, NOW)]),
    # measurement escapes: comma and space; `=` and quotes are literal; `\\` is one backslash
    (r"c\,p\ u v=1", [("c,p u", {}, "v", "float", 1.0, NOW)]),
    ("c=p v=1", [("c=p", {}, "v", "float", 1.0, NOW)]),
    (r"c\=p v=1", [("c\\=p", {}, "v", "float", 1.0, NOW)]),
    ('"cpu" v=1', [('"cpu"', {}, "v", "float", 1.0, NOW)]),
    (r"c\\ v=1", [("c\\", {}, "v", "float", 1.0, NOW)]),
    (r"c\\\ d v=1", [("c\\ d", {}, "v", "float", 1.0, NOW)]),
    (r"c\x v=1", [("c\\x", {}, "v", "float", 1.0, NOW)]),
    ("c\u00e9\U0001f600 v=1", [("c\u00e9\U0001f600", {}, "v", "float", 1.0, NOW)]),
    # tag keys and values escape comma, `=` and space
    (r"m,t\ k=v\,a\=b\ c f=1", [("m", {"t k": "v,a=b c"}, "f", "float", 1.0, NOW)]),
    (r"m,k=a\\ f=1", [("m", {"k": "a\\"}, "f", "float", 1.0, NOW)]),
    (r"m,k=C:\path f=1", [("m", {"k": "C:\\path"}, "f", "float", 1.0, NOW)]),
    ('m,k="v" f=1', [("m", {"k": '"v"'}, "f", "float", 1.0, NOW)]),
    ("m,b=2,a=1 f=1", [("m", {"b": "2", "a": "1"}, "f", "float", 1.0, NOW)]),
    ("m,k=v\tw f=1", [("m", {"k": "v\tw"}, "f", "float", 1.0, NOW)]),
    # field keys escape comma, `=` and space; quotes are literal
    (r"m f\,x\=y\ z=1", [("m", {}, "f,x=y z", "float", 1.0, NOW)]),
    ('m "f"=1', [("m", {}, '"f"', "float", 1.0, NOW)]),
    # string values escape `"` and `\`; any other backslash is literal
    (r'm s="a \"q\" b"', [("m", {}, "s", "string", 'a "q" b', NOW)]),
    (r'm s="back\\slash"', [("m", {}, "s", "string", "back\\slash", NOW)]),
    (r'm s="c:\path"', [("m", {}, "s", "string", "c:\\path", NOW)]),
    # a backslash before the closing quote escapes it: the string runs on to the next quote
    (r'm s="c:\path\"" 3', [("m", {}, "s", "string", 'c:\\path"', 3)]),
    ('m s="a,b c=d"', [("m", {}, "s", "string", "a,b c=d", NOW)]),
    ('m s=""', [("m", {}, "s", "string", "", NOW)]),
    (r'm s="\\"', [("m", {}, "s", "string", "\\", NOW)]),
    ('m s="tab\there \U0001f600"', [("m", {}, "s", "string", "tab\there \U0001f600", NOW)]),
    ('m s="x" 7', [("m", {}, "s", "string", "x", 7)]),
    # floats (the default numeric type)
    ("m f=1.0", [("m", {}, "f", "float", 1.0, NOW)]),
    ("m f=-1.5e10", [("m", {}, "f", "float", -1.5e10, NOW)]),
    ("m f=1e+78", [("m", {}, "f", "float", 1e78, NOW)]),
    ("m f=1.E+78", [("m", {}, "f", "float", 1e78, NOW)]),
    ("m f=2E-3", [("m", {}, "f", "float", 0.002, NOW)]),
    ("m f=.5", [("m", {}, "f", "float", 0.5, NOW)]),
    ("m f=-.5", [("m", {}, "f", "float", -0.5, NOW)]),
    ("m f=5.", [("m", {}, "f", "float", 5.0, NOW)]),
    ("m f=-0", [("m", {}, "f", "float", -0.0, NOW)]),
    ("m f=0.1", [("m", {}, "f", "float", 0.1, NOW)]),
    ("m f=1e-400", [("m", {}, "f", "float", 0.0, NOW)]),
    ("m f=1.7976931348623157e308", [("m", {}, "f", "float", 1.7976931348623157e308, NOW)]),
    ("m f=007", [("m", {}, "f", "float", 7.0, NOW)]),
    # signed and unsigned integers
    ("m f=1i", [("m", {}, "f", "int", 1, NOW)]),
    ("m f=-0i", [("m", {}, "f", "int", 0, NOW)]),
    ("m f=9223372036854775807i", [("m", {}, "f", "int", 2**63 - 1, NOW)]),
    ("m f=-9223372036854775808i", [("m", {}, "f", "int", -(2**63), NOW)]),
    ("m f=0u", [("m", {}, "f", "uint", 0, NOW)]),
    ("m f=18446744073709551615u", [("m", {}, "f", "uint", 2**64 - 1, NOW)]),
    # every boolean spelling
    *[bool_case(b, True) for b in ("t", "T", "true", "True", "TRUE")],
    *[bool_case(b, False) for b in ("f", "F", "false", "False", "FALSE")],
    # several fields, in line order; a repeated field key: the last value wins
    (
        'm,h=a f=1,i=2i,s="x",b=t 9',
        [
            ("m", {"h": "a"}, "f", "float", 1.0, 9),
            ("m", {"h": "a"}, "i", "int", 2, 9),
            ("m", {"h": "a"}, "s", "string", "x", 9),
            ("m", {"h": "a"}, "b", "bool", True, 9),
        ],
    ),
    ("m f=1,f=2i", [("m", {}, "f", "int", 2, NOW)]),
    ("m f=1,g=2,f=3", [("m", {}, "f", "float", 3.0, NOW), ("m", {}, "g", "float", 2.0, NOW)]),
    # timestamps
    ("m f=1 0", [("m", {}, "f", "float", 1.0, 0)]),
    ("m f=1 -1", [("m", {}, "f", "float", 1.0, -1)]),
    ("m f=1 0001", [("m", {}, "f", "float", 1.0, 1)]),
    ("m f=1 1700000000000000000", [("m", {}, "f", "float", 1.0, 1700000000000000000)]),
    ("m f=1 9223372036854775806", [("m", {}, "f", "float", 1.0, MAX_TIME_NS)]),
    ("m f=1 -9223372036854775806", [("m", {}, "f", "float", 1.0, MIN_TIME_NS)]),
    # whitespace: leading blanks, runs of blanks between sections, trailing spaces
    ("   m f=1", [("m", {}, "f", "float", 1.0, NOW)]),
    ("\t m f=1", [("m", {}, "f", "float", 1.0, NOW)]),
    ("m   f=1   5", [("m", {}, "f", "float", 1.0, 5)]),
    ("m \t f=1 \t5", [("m", {}, "f", "float", 1.0, 5)]),
    ("m f=1 5   ", [("m", {}, "f", "float", 1.0, 5)]),
    ("m f=1   ", [("m", {}, "f", "float", 1.0, NOW)]),
    ("m f=1\r", [("m", {}, "f", "float", 1.0, NOW)]),
    ("m\tx f=1", [("m\tx", {}, "f", "float", 1.0, NOW)]),
]


@pytest.mark.parametrize(("line", "expected"), VALID)
def test_valid_line(line: str, expected: list[Row]) -> None:
    got = parse_one(line)
    assert [r[:4] for r in got] == [r[:4] for r in expected]
    assert [r[5] for r in got] == [r[5] for r in expected]
    for g, e in zip(got, expected, strict=True):
        assert same_value(g[4], e[4]), (g, e)


ERRORS: list[tuple[str, str]] = [
    # structure
    ("cpu", "missing fields"),
    ("cpu   ", "missing fields"),
    ("cpu,t=v", "missing fields"),
    (r"c\ v=1", "missing fields"),  # the escaped space swallows the separator
    (r"m,k=a\ f=1", "invalid tag format"),  # the value runs on to `a f`, then meets `=`
    (r"m,k=a\ f", "missing fields"),
    (",t=v f=1", "missing measurement"),
    ("  ,f=1", "missing measurement"),
    # tags
    ("m, f=1", "missing tag key"),
    ("m,=v f=1", "missing tag key"),
    ("m,t=v, f=1", "missing tag key"),
    ("m,t f=1", "invalid tag format"),
    ("m,t,u=v f=1", "invalid tag format"),
    ("m,t= f=1", "missing tag value"),
    ("m,t=,u=v f=1", "missing tag value"),
    ("m,t=a=b f=1", "invalid tag format"),
    ("m,t=a,t=b f=1", "duplicate tags"),
    (r"m,t\ =a,t\ =b f=1", "duplicate tags"),
    ("m,time=x f=1", 'invalid tag key "time"'),
    ("m,_field=x f=1", 'invalid tag key "_field"'),
    ("m,_measurement=x f=1", 'invalid tag key "_measurement"'),
    # fields
    ("m f", "invalid field format"),
    ("m f 1", "invalid field format"),
    ("m f=1,g", "invalid field format"),
    ("m =1", "missing field key"),
    ("m f=1,", "missing field key"),
    ("m f=1,,g=2", "missing field key"),
    ("m f=1, 5", "missing field key"),
    ("m f=", "missing field value"),
    ("m f= 5", "missing field value"),
    ("m f=,g=1", "missing field value"),
    ("m time=1", 'invalid field key "time"'),
    ("m f=1,time=2", 'invalid field key "time"'),
    ("m _field=1", 'invalid field key "_field"'),
    # strings
    ('m f="abc', "unbalanced quotes"),
    ('m f="abc\\"', "unbalanced quotes"),
    ('m f="', "unbalanced quotes"),
    ('m f="a"b', "invalid field format"),
    ('m f="a"=1', "invalid field format"),
    # booleans
    ("m f=yes", "invalid boolean"),
    ("m f=tru", "invalid boolean"),
    ("m f=TRue", "invalid boolean"),
    ("m f=truex", "invalid boolean"),
    ("m f=\u0661", "invalid boolean"),  # a non-ASCII digit
    # numbers
    ("m f=nan", "invalid number"),
    ("m f=NaN", "invalid number"),
    ("m f=inf", "invalid number"),
    ("m f=Inf", "invalid number"),
    ("m f=-inf", "invalid number"),
    ("m f=+inf", "invalid number"),
    ("m f=+1", "invalid number"),
    ("m f=-", "invalid number"),
    ("m f=.", "invalid number"),
    ("m f=1.1.1", "invalid number"),
    ("m f=1e", "invalid number"),
    ("m f=1e5.5", "invalid number"),
    ("m f=e5", "invalid boolean"),
    ("m f=1e400", "invalid number"),
    ("m f=-1e400", "invalid number"),
    ("m f=1_000", "invalid number"),
    ("m f=0x10", "invalid number"),
    ("m f=1\u00a05", "invalid number"),
    ("m f=1\t5", "invalid number"),
    ("m f=1.5i", "invalid number"),
    ("m f=1e3i", "invalid number"),
    ("m f=i", "invalid number"),
    ("m f=1i2", "invalid number"),
    ("m f=1ii", "invalid number"),
    ("m f=-i", "invalid number"),
    ("m f=9223372036854775808i", "integer out of range"),
    ("m f=-9223372036854775809i", "integer out of range"),
    ("m f=-1u", "invalid number"),
    ("m f=1.0u", "invalid number"),
    ("m f=1iu", "invalid number"),
    ("m f=18446744073709551616u", "unsigned integer out of range"),
    # timestamps
    ("m f=1 1.5", "bad timestamp"),
    ("m f=1 abc", "bad timestamp"),
    ("m f=1 1e9", "bad timestamp"),
    ("m f=1 +5", "bad timestamp"),
    ("m f=1 -", "bad timestamp"),
    ("m f=1 5 6", "bad timestamp"),
    ("m f=1 5x", "bad timestamp"),
    ("m f=1 5\t", "bad timestamp"),
    ("m f=1 \u0661\u0662", "bad timestamp"),
    ("m f=1 9223372036854775807", "time outside range"),
    ("m f=1 -9223372036854775807", "time outside range"),
    ("m f=1 99999999999999999999999", "time outside range"),
]


@pytest.mark.parametrize(("line", "reason"), ERRORS)
def test_bad_line(line: str, reason: str) -> None:
    points, errors = parse_lines(line.encode(), now_ns=NOW)
    assert errors == [LineError(1, line, reason)]
    assert points.lines == 0
    assert rows(points) == []


@pytest.mark.parametrize(
    ("precision", "timestamp", "expected"),
    [
        ("ns", "1", 1),
        ("n", "-7", -7),
        ("us", "2", 2_000),
        ("u", "2", 2_000),
        ("ms", "3", 3_000_000),
        ("s", "1700000000", 1_700_000_000_000_000_000),
        ("s", "-1", -1_000_000_000),
        ("m", "2", 120_000_000_000),
        ("h", "2", 7_200_000_000_000),
        ("ns", "", NOW),  # no timestamp: now, truncated to the precision as InfluxDB does
        ("s", "", 0),
        ("h", "", 0),
    ],
)
def test_precision(precision: str, timestamp: str, expected: int) -> None:
    assert parse_one(f"m f=1 {timestamp}", precision)[0][5] == expected


@pytest.mark.parametrize(("precision", "timestamp"), [("s", "9223372037"), ("h", "2562048"), ("ms", "-9223372036855")])
def test_precision_overflow(precision: str, timestamp: str) -> None:
    _, errors = parse_lines(f"m f=1 {timestamp}".encode(), precision=precision, now_ns=NOW)
    assert [e.reason for e in errors] == ["time outside range"]


@pytest.mark.parametrize("precision", ["", "x", "NS", "sec", "\u00b5s", "M"])
def test_unknown_precision_raises(precision: str) -> None:
    with pytest.raises(ValueError, match="unknown precision"):
        parse_lines(b"", precision=precision)


def test_partial_batch_reports_line_numbers_and_keeps_good_lines() -> None:
    body = (
        b"# a comment\r\n"  # 1
        b"cpu,host=a usage=1 10\r\n"  # 2
        b"\r\n"  # 3
        b"cpu,host=b usage=oops 20\n"  # 4: bad
        b"   # indented comment\n"  # 5
        b" \t \n"  # 6
        b"cpu,host=c usage=3i,idle=4u 30\n"  # 7
        b"cpu usage=5,bad=\n"  # 8: bad, and its good field must not be stored
        b"mem free=7 40"  # 9: no final newline
    )
    points, errors = parse_lines(body, now_ns=NOW)
    assert errors == [
        LineError(4, "cpu,host=b usage=oops 20", "invalid boolean"),
        LineError(8, "cpu usage=5,bad=", "missing field value"),
    ]
    assert points.lines == 3
    assert [(r[0], r[1], r[2], r[4], r[5]) for r in rows(points)] == [
        ("cpu", {"host": "a"}, "usage", 1.0, 10),
        ("cpu", {"host": "c"}, "usage", 3, 30),
        ("cpu", {"host": "c"}, "idle", 4, 30),
        ("mem", {}, "free", 7.0, 40),
    ]


@pytest.mark.parametrize(
    "body",
    [b"", b"\n", b"\r\n\r\n", b"# only a comment", b"#m f=1\n  #x\n\t#y", b"   \n\t\n"],
)
def test_nothing_to_parse(body: bytes) -> None:
    points, errors = parse_lines(body, now_ns=NOW)
    assert (points.lines, rows(points), errors) == (0, [], [])


def test_rows_of_a_line_share_one_tags_dict() -> None:
    points, _ = parse_lines(b"m,a=1 f=1,g=2\nm,a=1 f=3", now_ns=NOW)
    assert points.tags[0] is points.tags[1]
    assert points.tags[1] is not points.tags[2]
    assert points.rows == 3


def test_raw_newline_ends_a_string_value() -> None:
    _, errors = parse_lines(b'm s="a\nb"', now_ns=NOW)
    assert errors == [LineError(1, 'm s="a', "unbalanced quotes"), LineError(2, 'b"', "missing fields")]


def test_invalid_utf8_line_is_an_error_and_other_lines_parse() -> None:
    points, errors = parse_lines(b"m f=1\nm\xff f=1\n#\xfe comment\nm f=2", now_ns=NOW)
    assert [(e.line, e.reason) for e in errors] == [(2, "invalid UTF-8")]
    assert errors[0].text == "m\ufffd f=1"
    assert points.value == [1.0, 2.0]


def test_error_text_is_truncated_and_drops_the_carriage_return() -> None:
    line = "m " + "x" * 500
    _, errors = parse_lines((line + "\r\n").encode(), now_ns=NOW)
    assert errors[0].text == line[:MAX_ERROR_TEXT]
    _, errors = parse_lines(b"bad\r\n", now_ns=NOW)
    assert errors[0].text == "bad"


def test_missing_timestamp_defaults_to_the_clock() -> None:
    before = time.time_ns()
    points, _ = parse_lines(b"m f=1")
    assert before <= points.timestamp_ns[0] <= time.time_ns()


# format_line: (measurement, tags, fields, timestamp_ns, expected line)
FORMAT: list[tuple[str, dict[str, str], dict[str, tuple[str, Any]], int | None, str]] = [
    ("cpu", {}, {"v": ("float", 1.0)}, None, "cpu v=1.0"),
    ("c p,u", {"b": "2", "a": "x y"}, {"v": ("float", 1)}, 5, r"c\ p\,u,a=x\ y,b=2 v=1.0 5"),
    ("a=b", {"k,=": "v,= "}, {"f k": ("int", 1)}, -3, r"a=b,k\,\==v\,\=\  f\ k=1i -3"),
    (
        "m",
        {},
        {
            "x": ("bool", False),
            "f": ("float", 0.1),
            "i": ("int", -3),
            "u": ("uint", 2**64 - 1),
            "s": ("string", 'a"b\\c'),
            "t": ("bool", True),
        },
        None,
        r'm f=0.1,i=-3i,s="a\"b\\c",t=true,u=18446744073709551615u,x=false',
    ),
    # a backslash is doubled only where it would otherwise escape: before an escapable char or at the end
    ("m", {"k": "C:\\path"}, {"f": ("float", 2.5)}, None, r"m,k=C:\path f=2.5"),
    ("m\\", {"k": "a\\"}, {"f\\": ("float", 2.5)}, None, r"m\\,k=a\\ f\\=2.5"),
    ("m\\=", {"k": "a\\,b"}, {"f": ("float", 2.5)}, None, r"m\=,k=a\\\,b f=2.5"),
    ("m", {"k": "a\\\\b"}, {"f": ("float", 2.5)}, None, r"m,k=a\\\b f=2.5"),
    ('"m"', {'"k"': '"v"'}, {'"f"': ("string", "")}, None, '"m","k"="v" "f"=""'),
    # floats use repr: shortest exact text
    ("m", {}, {"f": ("float", 1e78)}, None, "m f=1e+78"),
    ("m", {}, {"f": ("float", -0.0)}, None, "m f=-0.0"),
    ("m", {}, {"f": ("float", 5e-324)}, None, "m f=5e-324"),
    ("m", {}, {"f": ("float", 1.7976931348623157e308)}, 0, "m f=1.7976931348623157e+308 0"),
]


@pytest.mark.parametrize(("measurement", "tags", "fields", "ts", "expected"), FORMAT)
def test_format_line(
    measurement: str, tags: dict[str, str], fields: dict[str, tuple[str, Any]], ts: int | None, expected: str
) -> None:
    line = format_line(measurement, tags, fields, ts)
    assert line == expected
    got = parse_one(line)
    assert {r[2]: (r[3], r[4]) for r in got} == {k: (kind, v) for k, (kind, v) in fields.items()}
    assert all(r[0] == measurement and r[1] == tags for r in got)


@pytest.mark.parametrize(
    ("measurement", "tags", "fields", "ts"),
    [
        ("", {}, {"f": ("float", 1.0)}, None),
        ("#m", {}, {"f": ("float", 1.0)}, None),
        ("\tm", {}, {"f": ("float", 1.0)}, None),
        ("m\nx", {}, {"f": ("float", 1.0)}, None),
        ("m", {}, {}, None),
        ("m", {"k": ""}, {"f": ("float", 1.0)}, None),
        ("m", {"": "v"}, {"f": ("float", 1.0)}, None),
        ("m", {"k": "a\nb"}, {"f": ("float", 1.0)}, None),
        ("m", {"time": "v"}, {"f": ("float", 1.0)}, None),
        ("m", {}, {"time": ("float", 1.0)}, None),
        ("m", {}, {"": ("float", 1.0)}, None),
        ("m", {}, {"\tf": ("float", 1.0)}, None),
        ("m", {}, {"f": ("float", math.nan)}, None),
        ("m", {}, {"f": ("float", math.inf)}, None),
        ("m", {}, {"f": ("float", "1")}, None),
        ("m", {}, {"f": ("float", True)}, None),
        ("m", {}, {"f": ("int", 2**63)}, None),
        ("m", {}, {"f": ("int", 1.0)}, None),
        ("m", {}, {"f": ("int", True)}, None),
        ("m", {}, {"f": ("uint", -1)}, None),
        ("m", {}, {"f": ("uint", 2**64)}, None),
        ("m", {}, {"f": ("string", "a\nb")}, None),
        ("m", {}, {"f": ("string", 1)}, None),
        ("m", {}, {"f": ("bool", 1)}, None),
        ("m", {}, {"f": ("double", 1.0)}, None),
        ("m", {}, {"f": ("float", 1.0)}, MAX_TIME_NS + 1),
        ("m", {}, {"f": ("float", 1.0)}, MIN_TIME_NS - 1),
    ],
)
def test_format_line_refuses_what_line_protocol_cannot_carry(
    measurement: str, tags: dict[str, str], fields: dict[str, tuple[str, Any]], ts: int | None
) -> None:
    with pytest.raises(ValueError):
        format_line(measurement, tags, fields, ts)


# --- properties -------------------------------------------------------------------------------------

_SPECIALS = ' ,="\\#\t\r'
_chars = st.one_of(st.sampled_from(_SPECIALS), st.characters(codec="utf-8", exclude_characters="\n"))
_names = st.text(_chars, min_size=1, max_size=12)
_keys = _names.filter(lambda k: k not in RESERVED_KEYS)
_values = st.one_of(
    st.tuples(st.just("float"), st.floats(allow_nan=False, allow_infinity=False)),
    st.tuples(st.just("int"), st.integers(-(2**63), 2**63 - 1)),
    st.tuples(st.just("uint"), st.integers(0, 2**64 - 1)),
    st.tuples(st.just("string"), st.text(_chars, max_size=20)),
    st.tuples(st.just("bool"), st.booleans()),
)
_points = st.tuples(
    _names.filter(lambda m: m[0] not in "#\t"),
    st.dictionaries(_keys, _names, max_size=4),
    st.dictionaries(_keys.filter(lambda k: k[0] != "\t"), _values, min_size=1, max_size=4),
    st.none() | st.integers(MIN_TIME_NS, MAX_TIME_NS),
)


@given(st.lists(_points, min_size=1, max_size=4), st.sampled_from(["\n", "\r\n"]))
def test_format_then_parse_round_trips(points: list[Any], newline: str) -> None:
    lines = [format_line(*p) for p in points]
    parsed, errors = parse_lines(newline.join(lines).encode(), now_ns=NOW)
    assert errors == []
    assert parsed.lines == len(points)
    got = rows(parsed)
    i = 0
    for measurement, tags, fields, ts in points:
        line_rows = got[i : i + len(fields)]
        i += len(fields)
        assert {r[0] for r in line_rows} == {measurement}
        assert all(r[1] == tags for r in line_rows)
        assert {r[5] for r in line_rows} == {NOW if ts is None else ts}
        assert {r[2] for r in line_rows} == set(fields)
        for r in line_rows:
            kind, value = fields[r[2]]
            assert r[3] == kind
            assert same_value(r[4], float(value) if kind == "float" else value)
        # the canonical form is a fixed point
        reparsed = {r[2]: (r[3], r[4]) for r in line_rows}
        assert format_line(measurement, tags, reparsed, line_rows[0][5]) == format_line(
            measurement, tags, fields, NOW if ts is None else ts
        )
    assert i == len(got)


def _check_invariants(body: bytes, points: Points, errors: list[LineError]) -> None:
    n_lines = body.count(b"\n") + 1
    columns: list[list[Any]] = [
        points.measurement,
        points.tags,
        points.field,
        points.kind,
        points.value,
        points.timestamp_ns,
    ]
    assert len({len(c) for c in columns}) == 1
    assert points.lines <= points.rows
    assert points.lines + len(errors) <= n_lines
    numbers = [e.line for e in errors]
    assert numbers == sorted(set(numbers))
    assert all(1 <= e.line <= n_lines and len(e.text) <= MAX_ERROR_TEXT and e.reason for e in errors)
    types = {"float": float, "int": int, "uint": int, "string": str, "bool": bool}
    for kind, value in zip(points.kind, points.value, strict=True):
        assert type(value) is types[kind]
    assert all(MIN_TIME_NS <= t <= MAX_TIME_NS or t == NOW for t in points.timestamp_ns)


@given(st.binary(max_size=300), st.sampled_from(sorted(PRECISION_NS)))
def test_arbitrary_bytes_never_raise(body: bytes, precision: str) -> None:
    points, errors = parse_lines(body, precision=precision, now_ns=NOW)
    _check_invariants(body, points, errors)


_lp_text = st.text(st.one_of(st.sampled_from('mft,= "\\#\t\r\n01-.eiuTF'), st.characters()), max_size=80)


@given(_lp_text, st.sampled_from(sorted(PRECISION_NS)))
def test_line_protocol_like_text_never_raises(text: str, precision: str) -> None:
    body = text.encode("utf-8", errors="surrogatepass")
    points, errors = parse_lines(body, precision=precision, now_ns=NOW)
    _check_invariants(body, points, errors)


_line = st.text(st.sampled_from('mft,= "\\\t01-.eiuT\u00e9'), min_size=1, max_size=30)


@given(_line)
def test_fast_path_agrees_with_the_full_scanner(line: str) -> None:
    fast = _parse_fast(line)
    try:
        slow = _parse_slow(line)
    except _Reject:
        assert fast is None
        return
    if fast is not None:
        assert fast[:2] == slow[:2] and fast[3] == slow[3]
        assert list(fast[2]) == list(slow[2])
        assert all(same_value(fast[2][k][1], slow[2][k][1]) and fast[2][k][0] == slow[2][k][0] for k in fast[2])


@pytest.mark.parametrize(
    ("precision", "expected_ns"),
    [("ns", 1_700_000_000_123_456_789), ("us", 1_700_000_000_123_456_000), ("s", 1_700_000_000_000_000_000)],
)
def test_untimed_points_get_the_receipt_time_truncated_to_the_precision(precision: str, expected_ns: int) -> None:
    points, _ = parse_lines(b"m f=1\nm f=2 7\nm f=3", precision=precision, now_ns=1_700_000_000_123_456_789)
    assert points.timestamp_ns[0] == points.timestamp_ns[2] == expected_ns
    assert points.untimed == [1, 3]
    assert points.received * PRECISION_NS[precision] == expected_ns


REWRITES = [
    pytest.param(b"m f=1 5\nm f=2 6", set(), [], b"m f=1 5\nm f=2 6", id="nothing-to-do"),
    pytest.param(b"m f=1\nbad\nm f=2 6", {2}, [1], b"m f=1 99\nm f=2 6", id="drop-and-stamp"),
    pytest.param(b"m f=1  \t\r\nm f=2", set(), [1, 2], b"m f=1 99\nm f=2 99", id="trailing-blanks"),
    pytest.param(b'm s="a b" \n', set(), [1], b'm s="a b" 99\n', id="string-field"),
]


@pytest.mark.parametrize(("body", "drop", "stamp", "expected"), REWRITES)
def test_rewrite_lines(body: bytes, drop: set[int], stamp: list[int], expected: bytes) -> None:
    out = rewrite_lines(body, drop, stamp, 99)
    assert out == expected
    if stamp and not drop:  # what is forwarded parses to the same points, with the stamped time
        points, errors = parse_lines(out, now_ns=1)
        assert not errors and 99 in points.timestamp_ns
