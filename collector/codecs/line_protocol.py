"""InfluxDB line protocol: request bodies to columnar points (exact, pure Python) and points back to lines.

Grammar, one point per line: `measurement[,tk=tv...] fk=fv[,fk=fv...] [timestamp]` (PROTOCOLS.md §2).
The rules follow InfluxDB 1.x `models.ParsePoints` and the 2.x line protocol reference; where they
differ or are silent, the choice is stated next to the code:

- Escapes: a backslash before a character that is special in its context is dropped (measurement:
  comma, space; tag keys, tag values, field keys: comma, `=`, space; string values: `"`); `\\` is one
  backslash everywhere (the 2.x rule: "with two contiguous backslashes, the first is an escape"); a
  backslash before anything else, or at the end of the line, is kept literally.
- A raw newline always ends the line, even inside a quoted string: the docs say newlines are not
  supported in tag or field values (1.x would read on to the closing quote).
- Whitespace: leading spaces and tabs are skipped, a trailing `\\r` is dropped, and the sections may be
  separated by a space followed by any run of spaces and tabs (as 1.x `skipWhitespace`).
- Keys `time`, `_field` and `_measurement` (tag or field) reject the line; InfluxDB discards such
  points. Duplicate tag keys reject the line ("duplicate tags", as 1.x). Duplicate field keys do not:
  the last value wins, as InfluxDB's field map does.
- Bodies that are not UTF-8 are parsed line by line; a line that is not UTF-8 is an error.

Errors are per line: a bad line stores nothing and the other lines are still parsed (partial writes).
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

KIND_FLOAT = "float"
KIND_INT = "int"
KIND_UINT = "uint"
KIND_STRING = "string"
KIND_BOOL = "bool"
KINDS = frozenset({KIND_FLOAT, KIND_INT, KIND_UINT, KIND_STRING, KIND_BOOL})

FieldValue = float | int | str | bool

# Nanoseconds per timestamp unit, for the `precision` parameter of both write APIs (v1 and v2 names).
PRECISION_NS: dict[str, int] = {
    "ns": 1,
    "n": 1,
    "us": 1_000,
    "u": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}

# Accepted timestamps in ns, both bounds inclusive (InfluxDB's models.MinNanoTime / MaxNanoTime).
MIN_TIME_NS = -(2**63) + 2
MAX_TIME_NS = 2**63 - 2

# LineError.text keeps at most this many characters of the offending line.
MAX_ERROR_TEXT = 200

RESERVED_KEYS = frozenset({"time", "_field", "_measurement"})

_BOOLS: dict[str, bool] = {
    "t": True,
    "T": True,
    "true": True,
    "True": True,
    "TRUE": True,
    "f": False,
    "F": False,
    "false": False,
    "False": False,
    "FALSE": False,
}
# An unquoted value starting with one of these is read as a number (so `nan`, `inf` are "invalid
# number", as in 1.x); any other unquoted value must be a boolean.
_NUMBER_START = frozenset("0123456789+-.nNiI")

_FLOAT_RE = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INT_RE = re.compile(r"-?[0-9]+")
_UINT_RE = re.compile(r"[0-9]+")
_TIMESTAMP_RE = _INT_RE

# Tokens: a backslash always takes the next character with it while scanning; the separators are
# escapable, so this finds the same boundaries as "escape only the special characters".
_MEASUREMENT_TOKEN = re.compile(r"[^, \\]*(?:\\.?[^, \\]*)*", re.DOTALL)
_NAME_TOKEN = re.compile(r"[^,= \\]*(?:\\.?[^,= \\]*)*", re.DOTALL)
_STRING_TOKEN = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"', re.DOTALL)
_VALUE_TOKEN = re.compile(r"[^, ]*")
_MEASUREMENT_UNESCAPE = re.compile(r"\\([, \\])")
_NAME_UNESCAPE = re.compile(r"\\([,= \\])")
_STRING_UNESCAPE = re.compile(r'\\(["\\])')

# Formatting: double a backslash only where the parser would otherwise read it as an escape (before
# an escapable character or at the end of the name), so names without such backslashes come out as
# InfluxDB writes them.
_MEASUREMENT_ESCAPE = re.compile(r"\\(?=[, \\]|\Z)|[, ]")
_NAME_ESCAPE = re.compile(r"\\(?=[,= \\]|\Z)|[,= ]")


@dataclass(frozen=True)
class LineError:
    line: int  # 1-based line number in the body
    text: str  # the offending line, at most MAX_ERROR_TEXT characters
    reason: str  # "invalid number", "bad timestamp", "missing fields", ...


@dataclass
class Points:
    """Columnar points: one row per (line, field), so a line with 3 fields gives 3 rows.

    The rows of one line share one `tags` dict (callers may key caches on its id). `timestamp_ns` is
    nanoseconds since the epoch, already scaled by the request's precision.
    """

    measurement: list[str] = dataclasses.field(default_factory=list)
    tags: list[dict[str, str]] = dataclasses.field(default_factory=list)
    field: list[str] = dataclasses.field(default_factory=list)
    kind: list[str] = dataclasses.field(default_factory=list)  # "float", "int", "uint", "string", "bool"
    value: list[FieldValue] = dataclasses.field(default_factory=list)
    timestamp_ns: list[int] = dataclasses.field(default_factory=list)
    line: list[int] = dataclasses.field(default_factory=list)  # the 1-based line number of each row
    lines: int = 0  # lines (points) accepted
    # 1-based numbers of the accepted lines that carried no timestamp, and the time they were given
    # (in the request's precision): a forwarder writes it into them, so the peer stores the same time.
    untimed: list[int] = dataclasses.field(default_factory=list)
    received: int = 0

    @property
    def rows(self) -> int:
        return len(self.field)


class _Reject(Exception):
    """A line is bad; `reason` is the LineError reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_Parsed = tuple[str, dict[str, str], dict[str, tuple[str, FieldValue]], int | None]


def parse_lines(body: bytes, precision: str = "ns", now_ns: int | None = None) -> tuple[Points, list[LineError]]:
    """Parse a write body. Raises ValueError only for an unknown precision; bad lines become LineErrors.

    `now_ns` (default: the clock at the call), truncated to the precision, is the timestamp of points
    that carry none.
    """
    scale, default_ns = receipt_time(precision, now_ns)
    try:
        texts = body.decode("utf-8").split("\n")
        undecodable: frozenset[int] = frozenset()
    except UnicodeDecodeError:
        texts, undecodable = _decode_lines(body)
    points = Points()
    errors: list[LineError] = []
    for number, line in enumerate(texts, 1):
        _parse_line(points, errors, number, line, number in undecodable, scale, default_ns)
    points.received = default_ns // scale
    return points, errors


def parse_numbered_lines(lines: list[tuple[int, bytes]], scale: int, default_ns: int) -> tuple[Points, list[LineError]]:
    """Parse some lines of a body, each given with its 1-based number, exactly as parse_lines would
    parse them there (scale and default_ns as receipt_time returns them). Rows carry `line`."""
    points = Points()
    errors: list[LineError] = []
    for number, raw in lines:
        try:
            line, bad = raw.decode("utf-8"), False
        except UnicodeDecodeError:
            line, bad = raw.decode("utf-8", errors="replace"), True
        _parse_line(points, errors, number, line, bad, scale, default_ns)
    points.received = default_ns // scale
    return points, errors


def receipt_time(precision: str, now_ns: int | None = None) -> tuple[int, int]:
    """(ns per unit of `precision`, the timestamp in ns of points that carry none).

    Like InfluxDB (models.parsePoint), a point without a timestamp gets the time of receipt truncated
    to the request's precision. Raises ValueError for an unknown precision.
    """
    scale = PRECISION_NS.get(precision)
    if scale is None:
        raise ValueError(f"unknown precision {precision!r}: use one of {', '.join(PRECISION_NS)}")
    return scale, (time.time_ns() if now_ns is None else now_ns) // scale * scale


def _parse_line(
    points: Points, errors: list[LineError], number: int, line: str, undecodable: bool, scale: int, default_ns: int
) -> None:
    """Append one line's rows to `points`, or its LineError to `errors`; blanks and comments add nothing."""
    if line.endswith("\r"):
        line = line[:-1]
    text = line.lstrip(" \t")
    if not text or text[0] == "#":
        return
    try:
        if undecodable:
            raise _Reject("invalid UTF-8")
        parsed = _parse_fast(text)
        if parsed is None:
            parsed = _parse_slow(text)
        measurement, tags, fields, ts = parsed
        if ts is None:
            ts_ns = default_ns
            points.untimed.append(number)
        else:
            ts_ns = ts * scale
            if not MIN_TIME_NS <= ts_ns <= MAX_TIME_NS:
                raise _Reject("time outside range")
    except _Reject as e:
        errors.append(LineError(number, line[:MAX_ERROR_TEXT], e.reason))
        return
    points.lines += 1
    for key, (kind, value) in fields.items():
        points.measurement.append(measurement)
        points.tags.append(tags)
        points.field.append(key)
        points.kind.append(kind)
        points.value.append(value)
        points.timestamp_ns.append(ts_ns)
        points.line.append(number)


def rewrite_lines(body: bytes, drop: set[int], stamp: list[int], timestamp: int) -> bytes:
    """`body` without the lines numbered in `drop`, with `timestamp` appended to those in `stamp`.

    Line numbers are 1-based, as in LineError and Points.untimed. A stamped line loses its trailing
    whitespace first: a line ends with a field value, where unescaped blanks carry no meaning.
    """
    if not drop and not stamp:
        return body
    stamped = set(stamp)
    out = []
    for number, line in enumerate(body.split(b"\n"), 1):
        if number in drop:
            continue
        if number in stamped:
            line = line.rstrip(b" \t\r") + b" %d" % timestamp
        out.append(line)
    return b"\n".join(out)


def _decode_lines(body: bytes) -> tuple[list[str], frozenset[int]]:
    """Lines of a body that is not valid UTF-8, and the 1-based numbers of the lines that are not."""
    texts: list[str] = []
    bad: set[int] = set()
    for number, raw in enumerate(body.split(b"\n"), 1):
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            texts.append(raw.decode("utf-8", errors="replace"))
            bad.add(number)
    return texts, frozenset(bad)


def _field_value(token: str) -> tuple[str, FieldValue]:
    """(kind, value) of an unquoted field value."""
    b = _BOOLS.get(token)
    if b is not None:
        return KIND_BOOL, b
    if not token:
        raise _Reject("missing field value")
    if token[0] not in _NUMBER_START:
        raise _Reject("invalid boolean")
    last = token[-1]
    if last == "i":
        digits = token[:-1]
        if not _INT_RE.fullmatch(digits):
            raise _Reject("invalid number")
        i = int(digits)
        if not -(2**63) <= i < 2**63:
            raise _Reject("integer out of range")
        return KIND_INT, i
    if last == "u":
        digits = token[:-1]
        if not _UINT_RE.fullmatch(digits):
            raise _Reject("invalid number")
        u = int(digits)
        if u >= 2**64:
            raise _Reject("unsigned integer out of range")
        return KIND_UINT, u
    if not _FLOAT_RE.fullmatch(token):
        raise _Reject("invalid number")
    f = float(token)
    if math.isinf(f):  # overflow: Go's ParseFloat fails with ErrRange, so InfluxDB rejects the line
        raise _Reject("invalid number")
    return KIND_FLOAT, f


def _parse_fast(text: str) -> _Parsed | None:
    """The common case: no backslashes, quotes or tabs. None whenever the line needs the full scanner,
    including every bad line, so reasons come from one place (`_parse_slow`)."""
    if "\\" in text or '"' in text or "\t" in text:
        return None
    parts = text.split(" ")
    if "" in parts:
        parts = [p for p in parts if p]
    n = len(parts)
    if n != 2 and n != 3:
        return None
    names = parts[0].split(",")
    measurement = names[0]
    if not measurement:
        return None
    tags: dict[str, str] = {}
    for pair in names[1:]:
        key, _, value = pair.partition("=")
        if not key or not value or "=" in value or key in tags or key in RESERVED_KEYS:
            return None
        tags[key] = value
    fields: dict[str, tuple[str, FieldValue]] = {}
    for pair in parts[1].split(","):
        key, _, value = pair.partition("=")
        if not key or not value or key in RESERVED_KEYS:
            return None
        try:
            fields[key] = _field_value(value)
        except _Reject:
            return None
    ts: int | None = None
    if n == 3:
        if not _TIMESTAMP_RE.fullmatch(parts[2]):
            return None
        ts = int(parts[2])
    return measurement, tags, fields, ts


def _skip_blanks(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    return i


def _unescape_name(token: str) -> str:
    return _NAME_UNESCAPE.sub(r"\1", token) if "\\" in token else token


def _parse_slow(text: str) -> _Parsed:
    """The full scanner, for any line; raises _Reject with the reason of the first problem found."""
    n = len(text)
    m = _MEASUREMENT_TOKEN.match(text)
    assert m is not None  # the pattern matches the empty string
    raw = m.group()
    measurement = _MEASUREMENT_UNESCAPE.sub(r"\1", raw) if "\\" in raw else raw
    if not measurement:
        raise _Reject("missing measurement")
    i = m.end()

    tags: dict[str, str] = {}
    while i < n and text[i] == ",":
        m = _NAME_TOKEN.match(text, i + 1)
        assert m is not None
        raw_key, i = m.group(), m.end()
        if not raw_key:
            raise _Reject("missing tag key")
        if i >= n or text[i] != "=":
            raise _Reject("invalid tag format")
        m = _NAME_TOKEN.match(text, i + 1)
        assert m is not None
        raw_value, i = m.group(), m.end()
        if not raw_value:
            raise _Reject("missing tag value")
        if i < n and text[i] == "=":
            raise _Reject("invalid tag format")
        key = _unescape_name(raw_key)
        if key in tags:
            raise _Reject("duplicate tags")
        if key in RESERVED_KEYS:
            raise _Reject(f'invalid tag key "{key}"')
        tags[key] = _unescape_name(raw_value)

    i = _skip_blanks(text, i)
    if i >= n:
        raise _Reject("missing fields")
    fields: dict[str, tuple[str, FieldValue]] = {}
    while True:
        m = _NAME_TOKEN.match(text, i)
        assert m is not None
        raw_key, i = m.group(), m.end()
        if not raw_key:
            raise _Reject("missing field key")
        if i >= n or text[i] != "=":
            raise _Reject("invalid field format")
        i += 1
        if i >= n or text[i] in ", ":
            raise _Reject("missing field value")
        value: tuple[str, FieldValue]
        if text[i] == '"':
            m = _STRING_TOKEN.match(text, i)
            if m is None:
                raise _Reject("unbalanced quotes")
            s = m.group(1)
            value = KIND_STRING, (_STRING_UNESCAPE.sub(r"\1", s) if "\\" in s else s)
            i = m.end()
            if i < n and text[i] not in ", ":
                raise _Reject("invalid field format")
        else:
            m = _VALUE_TOKEN.match(text, i)
            assert m is not None
            value, i = _field_value(m.group()), m.end()
        key = _unescape_name(raw_key)
        if key in RESERVED_KEYS:
            raise _Reject(f'invalid field key "{key}"')
        fields[key] = value  # a repeated key: the last value wins
        if i < n and text[i] == ",":
            i += 1
            continue
        break

    i = _skip_blanks(text, i)
    ts: int | None = None
    if i < n:
        end = text.find(" ", i)
        if end < 0:
            end = n
        token = text[i:end]
        if not _TIMESTAMP_RE.fullmatch(token) or text[end:].strip(" "):
            raise _Reject("bad timestamp")
        ts = int(token)
    return measurement, tags, fields, ts


def _escape_measurement(name: str) -> str:
    return _MEASUREMENT_ESCAPE.sub(lambda m: "\\" + m.group(), name)


def _escape_name(name: str) -> str:
    return _NAME_ESCAPE.sub(lambda m: "\\" + m.group(), name)


def _check_name(what: str, name: str) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} must be a non-empty string, got {name!r}")
    if "\n" in name:
        raise ValueError(f"{what} {name!r} contains a newline, which line protocol cannot carry")


def _format_value(key: str, kind: str, value: FieldValue) -> str:
    if kind == KIND_FLOAT:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"field {key!r}: float value expected, got {value!r}")
        f = float(value)
        if not math.isfinite(f):
            raise ValueError(f"field {key!r}: {f!r} cannot be written (InfluxDB rejects NaN and infinities)")
        return repr(f)
    if kind == KIND_INT:
        if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
            raise ValueError(f"field {key!r}: int64 value expected, got {value!r}")
        return f"{value}i"
    if kind == KIND_UINT:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
            raise ValueError(f"field {key!r}: uint64 value expected, got {value!r}")
        return f"{value}u"
    if kind == KIND_STRING:
        if not isinstance(value, str) or "\n" in value:
            raise ValueError(f"field {key!r}: string without newlines expected, got {value!r}")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if kind == KIND_BOOL:
        if not isinstance(value, bool):
            raise ValueError(f"field {key!r}: bool value expected, got {value!r}")
        return "true" if value else "false"
    raise ValueError(f"field {key!r}: unknown kind {kind!r}")


def format_line(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, tuple[str, FieldValue]],
    timestamp_ns: int | None = None,
) -> str:
    """One canonical line (no newline) that parse_lines reads back exactly, at precision "ns".

    Tags and fields are sorted by key (InfluxDB's canonical series key and field encoding order);
    floats use repr, so they round-trip bit for bit. Raises ValueError for points line protocol cannot
    carry or InfluxDB would reject: empty names, newlines, reserved keys, no fields, NaN/inf, values
    out of range, a measurement starting with `#` or a tab (a comment, or stripped as indentation), a
    field key starting with a tab (tabs are not escapable, and blanks before the fields are skipped).
    """
    _check_name("measurement", measurement)
    if measurement[0] in "#\t":
        raise ValueError(f"measurement {measurement!r} cannot start with '#' or a tab")
    if not fields:
        raise ValueError("a point needs at least one field")
    parts = [_escape_measurement(measurement)]
    for key in sorted(tags):
        tag_value = tags[key]
        _check_name("tag key", key)
        _check_name(f"tag {key!r} value", tag_value)
        if key in RESERVED_KEYS:
            raise ValueError(f"tag key {key!r} is reserved")
        parts.append(f",{_escape_name(key)}={_escape_name(tag_value)}")
    parts.append(" ")
    for n, key in enumerate(sorted(fields)):
        kind, value = fields[key]
        _check_name("field key", key)
        if key in RESERVED_KEYS:
            raise ValueError(f"field key {key!r} is reserved")
        if key[0] == "\t":  # the first one would be read as part of the blanks before the fields
            raise ValueError(f"field key {key!r} cannot start with a tab")
        parts.append(f"{',' if n else ''}{_escape_name(key)}={_format_value(key, kind, value)}")
    if timestamp_ns is not None:
        if isinstance(timestamp_ns, bool) or not MIN_TIME_NS <= timestamp_ns <= MAX_TIME_NS:
            raise ValueError(f"timestamp {timestamp_ns!r} ns is outside InfluxDB's range")
        parts.append(f" {timestamp_ns}")
    return "".join(parts)
