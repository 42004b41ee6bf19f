"""The C line protocol scanner gives exactly what the Python parser gives, and survives garbage.

Compared end to end on generated bodies (plain lines, escapes, quotes, comments, CRLF, blanks, bad
lines, every precision, numbers at the edges of their ranges, invalid UTF-8): the samples with their
labels and fingerprints, the metadata, the errors, the skipped string fields and the bookkeeping the
forwarder uses (accepted lines, untimed line numbers, receipt time), and per sample and string field
its type as written, line and metric name (what the field type rule judges), and the integers a
double rounds, exactly (what the native read gives back).
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.codecs.influx_metrics import (
    InfluxSamples,
    SeriesMapper,
    columns_to_samples,
    points_to_samples,
)
from collector.codecs.influx_metrics import _name as metric_of
from collector.codecs.line_protocol import KIND_STRING, PRECISION_NS, Points, format_line, parse_lines
from collector.codecs.line_protocol_columns import KIND_CODES, LineScanner, c_scanner_available

pytestmark = pytest.mark.skipif(
    not c_scanner_available(), reason="C scanner not built: run `make venv` (needs gcc and Python headers)"
)

NOW = 1_700_000_000_123_456_789
EXTRA = {"db": "telegraf"}

_plain_name = st.text("abcxyz_019-.:é", min_size=0, max_size=4)
_any_name = st.text('ab=, \\"#\t\r\x00é_', min_size=0, max_size=4)
_name = st.one_of(_plain_name, _plain_name, _any_name, st.sampled_from(["time", "_field", "_measurement", "__name__"]))

_number = st.one_of(
    st.from_regex(r"-?[0-9]{0,22}\.?[0-9]{0,22}([eE][+-]?[0-9]{1,4})?", fullmatch=True),
    st.floats(allow_nan=False).map(repr),
    st.floats(width=32).map(lambda f: f"{f:.9g}"),
    st.integers(-(2**64), 2**64).map(str),
    # around the exactly representable mantissas (2**53) and powers of ten (10**22)
    st.tuples(st.integers(0, 2**54 + 10), st.integers(-26, 26)).map(lambda me: f"{me[0]}e{me[1]}"),
    st.tuples(st.integers(0, 2**54 + 10), st.integers(0, 20)).map(lambda mp: _point(str(mp[0]), mp[1])),
    st.sampled_from(["1e308", "1e309", "-1e309", "2e-400", "9007199254740993", "0.1", "-0", "-0.0", ".5", "5.", "+1"]),
    st.sampled_from(["nan", "inf", "NaN", "-", ".", "1e", "1.2.3", "0x10", "1_0", "\u0661"]),
)


def _point(digits: str, places: int) -> str:
    """digits with a decimal point `places` from the right (zero-padded on the left)."""
    digits = digits.rjust(places + 1, "0")
    return f"{digits[: len(digits) - places]}.{digits[len(digits) - places :]}"


_integer = st.one_of(
    st.integers(-(2**63) - 2, 2**63 + 1),
    st.sampled_from([-(2**63), 2**63 - 1, 0, -1]),
    st.integers(-(10**22), 10**22),
)
_value = st.one_of(
    _number,
    _integer.map(lambda i: f"{i}i"),
    st.integers(-1, 2**64 + 1).map(lambda u: f"{u}u"),
    st.sampled_from(["t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE", "tRUE", "yes", ""]),
    st.text('ab \\"', max_size=4).map(lambda s: f'"{s}"'),
    st.just('"unterminated'),
)
_timestamp = st.one_of(
    st.none(),
    st.integers(-(2**63), 2**63 + 5).map(str),
    st.integers(0, 2**40).map(str),
    st.sampled_from(["", "1.5", "-", "12a", "9223372036854775807", "-9223372036854775808", "0", "-0"]),
)
_blank = st.sampled_from([" ", " ", "  ", "\t", " \t"])


@st.composite
def _crafted_line(draw: st.DrawFn) -> str:
    """A line assembled from tokens: mostly valid and plain, often a little wrong."""
    parts = [draw(_name.filter(lambda s: s != "") | _name)]
    for _ in range(draw(st.integers(0, 3))):
        parts.append(f",{draw(_name)}={draw(_name)}" if draw(st.integers(0, 9)) else f",{draw(_name)}")
    fields = [f"{draw(_name)}={draw(_value)}" for _ in range(draw(st.integers(0, 4)))]
    line = "".join(parts) + draw(_blank) + ",".join(fields)
    ts = draw(_timestamp)
    if ts is not None:
        line += draw(_blank) + ts
    prefix = draw(st.sampled_from(["", "", " ", "\t", "# ", "#"]))
    suffix = draw(st.sampled_from(["", "", "", " ", "\r", " \r", "\t"]))
    return prefix + line + suffix


@st.composite
def _formatted_line(draw: st.DrawFn) -> str:
    """A canonical line from format_line: valid, with escapes wherever the names need them."""
    name = st.text(st.characters(codec="utf-8", exclude_characters="\n"), min_size=1, max_size=5)
    tags = draw(st.dictionaries(name, name, max_size=3))
    fields = draw(
        st.dictionaries(
            name,
            st.one_of(
                st.floats(allow_nan=False, allow_infinity=False).map(lambda f: ("float", f)),
                st.integers(-(2**63), 2**63 - 1).map(lambda i: ("int", i)),
                st.integers(0, 2**64 - 1).map(lambda u: ("uint", u)),
                st.booleans().map(lambda b: ("bool", b)),
                st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=4).map(lambda s: ("string", s)),
            ),
            min_size=1,
            max_size=3,
        )
    )
    try:
        return format_line(draw(name), tags, fields, draw(st.none() | st.integers(-(2**62), 2**62)))
    except ValueError:  # a point line protocol cannot carry: a plain line instead
        return "m f=1"


_line = st.one_of(_crafted_line(), _crafted_line(), _formatted_line(), st.text(max_size=12))


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    lines = [line.encode("utf-8", "surrogatepass") for line in draw(st.lists(_line, max_size=12))]
    if draw(st.integers(0, 9)) == 0:  # invalid UTF-8 somewhere
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from([b"m\xff f=1", b"#\xfe", b"m f=1 \xc3"])))
    if lines and draw(st.integers(0, 4)) == 0:  # a repeated line: the same series and fields again
        lines.append(lines[0])
    newline = draw(st.sampled_from([b"\n", b"\n", b"\r\n"]))
    return newline.join(lines) + draw(st.sampled_from([b"", b"\n", b"\r\n"]))


def _samples(out: InfluxSamples) -> tuple[object, ...]:
    b = out.batch
    values = [struct.pack("<d", v) for v in b.value]  # bit for bit, -0.0 included
    return b.fingerprint, b.timestamp_ms, values, b.series, b.metadata, out.samples, out.skipped_strings


def _typed_rows(points: Points) -> tuple[list[tuple[int, int, str]], list[tuple[int, str, str, str]]]:
    """The reference: per sample (kind code, line, metric name); per string field (line, measurement,
    field, metric name)."""
    numeric, strings = [], []
    for measurement, fld, kind, number in zip(points.measurement, points.field, points.kind, points.line, strict=True):
        if kind == KIND_STRING:
            strings.append((number, measurement, fld, metric_of(measurement, fld)))
        else:
            numeric.append((KIND_CODES[kind], number, metric_of(measurement, fld)))
    return numeric, strings


def _typed_samples(out: InfluxSamples) -> tuple[list[tuple[int, int, str]], list[tuple[int, str, str, str]]]:
    names = out.metric_names
    numeric = list(zip(out.kind.tolist(), out.line.tolist(), [names[c] for c in out.metric.tolist()], strict=True))
    strings = [(n, *out.field_of(out.samples + i), names[c]) for i, (n, c) in enumerate(out.strings)]
    return numeric, strings


def _exact_rows(points: Points) -> list[tuple[int, int, str]]:
    """The reference: (sample row, value, field type) of each integer its double rounds."""
    numeric = [(k, v) for k, v in zip(points.kind, points.value, strict=True) if k != KIND_STRING]
    names = {"int": "integer", "uint": "unsigned"}
    return [(row, int(v), names[k]) for row, (k, v) in enumerate(numeric) if k in names and float(v) != v]


def _exact_samples(out: InfluxSamples) -> list[tuple[int, int, str]]:
    exact = out.batch.exact_integers
    if exact is None:
        return []
    return list(zip(exact.row.tolist(), exact.value, exact.field_type, strict=True))


def _check_same(
    body: bytes,
    precision: str,
    scanner: LineScanner | None = None,
    mapper: SeriesMapper | None = None,
    extra: dict[str, str] = EXTRA,
) -> None:
    points, errors = parse_lines(body, precision, NOW)
    reference = points_to_samples(points, extra)
    for one in (scanner or LineScanner(), LineScanner(use_c=False)):
        columns, col_errors = one.parse(body, precision, NOW)
        assert col_errors == errors
        assert (columns.lines, columns.untimed, columns.received) == (points.lines, points.untimed, points.received)
        mapped = columns_to_samples(columns, extra, mapper)
        assert _exact_samples(mapped) == _exact_rows(points)  # first: _samples turns columns into lists
        assert _samples(mapped) == _samples(reference)
        assert _typed_samples(mapped) == _typed_rows(points)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies(), precision=st.sampled_from(sorted(PRECISION_NS)))
def test_c_path_equals_python_path(body: bytes, precision: str) -> None:
    _check_same(body, precision)


# Kept across examples, small: pairs are remembered, then forgotten (new generations), and local
# entries evicted, all along the run.
_SCANNER = LineScanner(max_entries=40)
_MAPPER = SeriesMapper(max_local_entries=8, max_tables=2)


@settings(max_examples=300, deadline=None)
@given(
    body=bodies(),
    precision=st.sampled_from(["ns", "s"]),
    extra=st.sampled_from([{"db": "a"}, {"db": "b", "rp": "r"}, {"bucket": "c"}]),
)
def test_remembered_pairs_give_the_same_samples(body: bytes, precision: str, extra: dict[str, str]) -> None:
    _check_same(body, precision, _SCANNER, _MAPPER, extra)
    _check_same(body, precision, _SCANNER, _MAPPER, extra)


@settings(max_examples=400, deadline=None)
@given(body=st.binary(max_size=200), precision=st.sampled_from(sorted(PRECISION_NS)))
def test_garbage_never_crashes_and_matches(body: bytes, precision: str) -> None:
    _check_same(body, precision)


@settings(max_examples=200, deadline=None)
@given(body=bodies(), cut=st.integers(0, 400))
def test_truncated_bodies(body: bytes, cut: int) -> None:
    _check_same(body[:cut], "ns")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\n\n",
        b"m,a=1 f=1 1",
        b"m,a=1,a=2 f=1",
        b"m,a=1 f=1,f=2 5",
        b"m,a=1 f=1, 5",
        b"m,a=1  f=1  5  ",
        b"m,a=1 f=1 5 6",
        b"m,time=1 f=1",
        b"m _field=1",
        b"m f=1e309",
        b"m f=9223372036854775808i",
        b"m f=-9223372036854775808i",
        b"m f=18446744073709551615u",
        b"m f=18446744073709551616u",
        b"m f=1 9223372036854775807",
        b"m f=1 -9223372036854775806",
        b"m f=0.30000000000000004,g=123456789012345678901234567890",
        b"m a=1e22,b=1e23,c=1e-22,d=1e-23,e=9007199254740993,f=9007199254740992e22,g=123456789012345678e-5",
        b"m a=9007199254740993e-22,b=4.9e-324,c=2.2250738585072014e-308,d=1.7976931348623157e308,e=000.000e0",
        b'm f=1,s="x" 1\nm f=2',
        b"m,a=b=c f=1",
        b"m,=b f=1",
        b"m, f=1",
        b"\tm f=1\r\n# c\r\n  \r\nm\tf=1",
        b"m f=1\x00",
    ],
)
def test_edge_cases(body: bytes) -> None:
    for precision in sorted(PRECISION_NS):
        _check_same(body, precision)


def test_plain_lines_are_not_left_to_python() -> None:
    """The bench's lines take the C path (else the speed-up is lost without any test failing)."""
    from collector.codecs import _lp_fast  # type: ignore[attr-defined]

    body = b"cpu,host=h1,core=c0 usage_user=1.5,usage_system=2.25,usage_idle=3i 1700000000000000000\n" * 3
    *_, fallback, untimed, accepted, _exact = _lp_fast.Scanner().parse(body, 1, 0)
    assert (fallback, untimed, accepted) == ([], [], 3)


@pytest.mark.parametrize(
    ("body", "kinds"),
    [
        (b"m a=1,b=-2.5e3,c=.5", ["float", "float", "float"]),
        (b"m a=1i,b=-9223372036854775808i", ["int", "int"]),
        (b"m a=0u,b=18446744073709551615u", ["uint", "uint"]),
        (b"m a=t,b=FALSE,c=True,d=f", ["bool", "bool", "bool", "bool"]),
        (b"m a=1e400", []),  # overflow: a bad line, no rows
        (b"m,h=x a=1,b=2i,c=3u,d=true 5\nm\\,h=y a=1i", ["float", "int", "uint", "bool", "int"]),
    ],
)
def test_kinds_of_the_c_scanner(body: bytes, kinds: list[str]) -> None:
    """Each sample row carries its field's type as written (KIND_CODES), on both paths."""
    for scanner in (LineScanner(), LineScanner(use_c=False)):
        columns, _ = scanner.parse(body, "ns", NOW)
        assert columns.kind.tolist() == [KIND_CODES[k] for k in kinds]


def test_pair_ids_stay_across_bodies_and_reset_past_the_bound() -> None:
    scanner = LineScanner(max_entries=7)
    first, _ = scanner.parse(b"m,h=a f=1,g=2\nm,h=b f=3", "ns", NOW)  # 2 keys, 2 fields, 3 pairs
    again, _ = scanner.parse(b"m,h=b f=4\nm,h=a g=5\nm,h=c f=6", "ns", NOW)
    assert again.generation == first.generation
    assert again.pair_id.tolist() == [first.pair_id[2], first.pair_id[1], 3]
    assert first.pairs[first.pair_id[2]] == (b"m,h=b", "f") and again.pairs[3] == (b"m,h=c", "f")
    later, _ = scanner.parse(b"m,h=d f=1", "ns", NOW)  # 9 entries > 7 when it starts: all forgotten
    assert later.generation != first.generation and later.pair_id.tolist() == [0]
    assert later.pairs == [(b"m,h=d", "f")] and len(first.pairs) == 4  # older columns keep their registry
