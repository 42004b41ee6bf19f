"""Parser for Prometheus' promqltest files (`*.test`): load/clear/eval commands and their expectations."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from collector.query.promql.values import Labels, stale_nan

_DURATION_RE = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_UNIT_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1)


class TestFileError(ValueError):
    """A malformed test file; the message carries the line number."""


def parse_duration(text: str) -> int:
    """A Prometheus duration string (`1h30m`, `0`, `-1m` with a sign) to milliseconds."""
    sign = 1
    if text[:1] in "+-":
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if text == "0":
        return 0
    m = _DURATION_RE.match(text)
    if not text or m is None:
        raise ValueError(f"not a duration: {text!r}")
    return sign * sum(int(g) * u for g, u in zip(m.groups(), _UNIT_MS, strict=True) if g)


# A value position: a float, None for "no sample" (`_`), or HISTOGRAM for a native-histogram sample.
class _Histogram:
    def __repr__(self) -> str:
        return "HISTOGRAM"


HISTOGRAM = _Histogram()
Position = float | None | _Histogram


@dataclass
class SeriesLine:
    labels: Labels
    values: list[Position]
    line: int


@dataclass
class Load:
    interval_ms: int
    series: list[SeriesLine]
    with_nhcb: bool
    line: int


@dataclass
class Clear:
    line: int


@dataclass
class Eval:
    """One eval statement; `at_ms` for instant queries, `start/end/step` for range queries."""

    line: int
    expr: str
    instant: bool
    at_ms: int = 0
    start_ms: int = 0
    end_ms: int = 0
    step_ms: int = 0
    expect_fail: bool = False
    fail_msg: str | None = None
    fail_regex: str | None = None
    warn: list[tuple[str, str]] = field(default_factory=list)  # (kind: any|msg|regex, text)
    info: list[tuple[str, str]] = field(default_factory=list)
    no_warn: bool = False
    no_info: bool = False
    ordered: bool = False
    range_vector: tuple[int, int, int] | None = None
    expect_string: str | None = None
    expect_scalar: float | None = None
    series: list[SeriesLine] = field(default_factory=list)

    @property
    def checks_text(self) -> bool:
        """True when the statement checks Prometheus' exact warning, info or error wording."""
        return (
            self.fail_msg is not None
            or self.fail_regex is not None
            or any(kind != "any" for kind, _ in self.warn + self.info)
        )

    @property
    def expects_histograms(self) -> bool:
        return any(any(v is HISTOGRAM for v in s.values) for s in self.series)


Command = Load | Clear | Eval


# --- series notation ---------------------------------------------------------------------------------

_IDENT_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:.]*")
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"', "'": "'"}


def _read_string(text: str, i: int) -> tuple[str, int]:
    """A PromQL string literal starting at text[i] (a quote); returns (value, index after it)."""
    quote = text[i]
    i += 1
    out: list[str] = []
    if quote == "`":
        j = text.index("`", i)
        return text[i:j], j + 1
    while i < len(text):
        c = text[i]
        if c == quote:
            return "".join(out), i + 1
        if c == "\\" and i + 1 < len(text):
            n = text[i + 1]
            if n in _ESCAPES:
                out.append(_ESCAPES[n])
                i += 2
                continue
            if n == "x":
                out.append(chr(int(text[i + 2 : i + 4], 16)))
                i += 4
                continue
            if n == "u":
                out.append(chr(int(text[i + 2 : i + 6], 16)))
                i += 6
                continue
            if n == "U":
                out.append(chr(int(text[i + 2 : i + 10], 16)))
                i += 10
                continue
            if n in "01234567":
                out.append(chr(int(text[i + 1 : i + 4], 8)))
                i += 4
                continue
            out.append(n)
            i += 2
            continue
        out.append(c)
        i += 1
    raise ValueError("unterminated string")


def parse_metric(text: str) -> tuple[Labels, int]:
    """`name{a="b"}`, `name` or `{...}` at the start of `text`; returns (labels, index after it)."""
    labels: Labels = {}
    i = 0
    m = _IDENT_RE.match(text)
    if m:
        labels["__name__"] = m.group(0)
        i = m.end()
    if i < len(text) and text[i] == "{":
        i += 1
        while True:
            while i < len(text) and text[i] in " \t,":
                i += 1
            if i >= len(text):
                raise ValueError("unterminated label set")
            if text[i] == "}":
                i += 1
                break
            if text[i] in "\"'`":
                name, i = _read_string(text, i)
            else:
                lm = _LABEL_NAME_RE.match(text, i)
                if lm is None:
                    raise ValueError(f"bad label name at {text[i:]!r}")
                name, i = lm.group(0), lm.end()
            while i < len(text) and text[i] in " \t":
                i += 1
            if text[i] in ",}":
                labels["__name__"] = name  # a lone quoted string is the metric name
                continue
            if text[i] != "=":
                raise ValueError(f"expected '=' at {text[i:]!r}")
            i += 1
            while i < len(text) and text[i] in " \t":
                i += 1
            value, i = _read_string(text, i)
            labels[name] = value
    elif not m:
        raise ValueError(f"bad metric: {text!r}")
    return labels, i


_NUM = r"[-+]?(?:(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)|[0-9]+\.|(?i:inf|nan))"
_SEQ_RE = re.compile(rf"^({_NUM})(?:([-+])({_NUM}))?x([0-9]+)$")
_HIST_SEQ_RE = re.compile(r"^\{\{.*?\}\}(?:[-+]\{\{.*?\}\})?(?:x([0-9]+))?$")


def _number(text: str) -> float:
    return float(text)


def expand_values(text: str) -> list[Position]:
    """The expanding notation: `1 2 _ stale 1+2x3 _x4 {{...}}` to one entry per time position."""
    out: list[Position] = []
    items = _split_items(text)
    for item in items:
        if item == "_":
            out.append(None)
        elif item.startswith("_x"):
            out.extend([None] * int(item[2:]))
        elif item == "stale":
            out.append(stale_nan())
        elif item.startswith("{{"):
            hm = _HIST_SEQ_RE.match(item)
            n = int(hm.group(1)) + 1 if hm and hm.group(1) else 1
            out.extend([HISTOGRAM] * n)
        else:
            sm = _SEQ_RE.match(item)
            if sm:
                v = _number(sm.group(1))
                d = _number(sm.group(3)) if sm.group(3) else 0.0
                if sm.group(2) == "-":
                    d = -d
                for k in range(int(sm.group(4)) + 1):
                    if k:
                        v += d
                    out.append(v)
            else:
                out.append(_number(item))
    return out


def _split_items(text: str) -> list[str]:
    """Split on white space, keeping `{{ ... }}` (which contains spaces) in one item."""
    items: list[str] = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        j = i
        while j < len(text) and not text[j].isspace():
            if text.startswith("{{", j):
                end = text.index("}}", j)
                j = end + 2
                continue
            j += 1
        items.append(text[i:j])
        i = j
    return items


def _is_start_timestamp_line(text: str) -> bool:
    _, i = parse_metric(text)
    return text.startswith("@st", i)


def parse_series_line(text: str, line: int) -> SeriesLine:
    labels, i = parse_metric(text)
    return SeriesLine(labels, expand_values(text[i:]), line)


# --- commands --------------------------------------------------------------------------------------

_EVAL_INSTANT_RE = re.compile(r"^(eval(?:_fail|_warn|_info|_ordered)?)\s+instant\s+at\s+(\S+)\s+(.+)$")
_EVAL_RANGE_RE = re.compile(
    r"^(eval(?:_fail|_warn|_info|_ordered)?)\s+range\s+from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)\s+(.+)$"
)
_EXPECT_RE = re.compile(r"^expect\s+(\S+)(?:\s+(msg|regex):(.*))?$")
_RANGE_VECTOR_RE = re.compile(r"^expect\s+range\s+vector\s+from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)$")
_STRING_RE = re.compile(r"^expect\s+string\s+(.+)$")


def _scalar_line(text: str) -> float | None:
    """The value of a scalar result line (Go's ParseInt with base prefixes, or ParseFloat), else None."""
    try:
        return float(int(text, 0))
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


def parse_test_file(text: str) -> list[Command]:
    """All commands of one file, in order."""
    lines = text.splitlines()
    commands: list[Command] = []
    i = 0
    while i < len(lines):
        raw = lines[i].strip()
        lineno = i + 1
        i += 1
        if not raw or raw.startswith("#"):
            continue
        body: list[tuple[int, str]] = []
        # `clear` has no body: the next line is a command of its own.
        while i < len(lines) and raw.split()[0].lower() != "clear":
            b = lines[i].strip()
            if not b or b.startswith("#"):
                break
            body.append((i + 1, b))
            i += 1
        word = raw.split()[0].lower()
        try:
            if word == "clear":
                commands.append(Clear(lineno))
            elif word.startswith("load"):
                interval = parse_duration(raw.split()[1])
                # `@st` lines give start timestamps of the next line's samples: parsed away, not used.
                series = [parse_series_line(b, n) for n, b in body if not _is_start_timestamp_line(b)]
                commands.append(Load(interval, series, word == "load_with_nhcb", lineno))
            elif word.startswith("eval"):
                ev, rest = _parse_eval(raw, body, lineno)
                commands.append(ev)
                # A scalar line ends the block: later lines are commands of their own.
                if rest:
                    i -= rest
            else:
                raise ValueError(f"invalid command {word!r}")
        except (ValueError, IndexError) as exc:
            raise TestFileError(f"line {lineno}: {exc}") from exc
    return commands


def _parse_eval(header: str, body: list[tuple[int, str]], lineno: int) -> tuple[Eval, int]:
    m = _EVAL_INSTANT_RE.match(header)
    if m:
        kind = m.group(1)
        ev = Eval(lineno, m.group(3).strip(), True, at_ms=parse_duration(m.group(2)))
    else:
        m = _EVAL_RANGE_RE.match(header)
        if m is None:
            raise ValueError(f"bad eval header {header!r}")
        kind = m.group(1)
        ev = Eval(
            lineno,
            m.group(5).strip(),
            False,
            start_ms=parse_duration(m.group(2)),
            end_ms=parse_duration(m.group(3)),
            step_ms=parse_duration(m.group(4)),
        )
    if kind == "eval_fail":
        ev.expect_fail = True
    elif kind == "eval_warn":
        ev.warn.append(("any", ""))
    elif kind == "eval_info":
        ev.info.append(("any", ""))
    elif kind == "eval_ordered":
        ev.ordered = True
    for pos, (n, text) in enumerate(body):
        if text.split()[0] == "expect":
            _parse_expect(ev, text)
            continue
        if kind == "eval_fail" and text.startswith(("expected_fail_message", "expected_fail_regexp")):
            word, _, rest = text.partition(" ")
            if word == "expected_fail_message":
                ev.fail_msg = rest.strip()
            else:
                ev.fail_regex = rest.strip()
            return ev, len(body) - pos - 1
        scalar = _scalar_line(text)
        if scalar is not None:
            ev.expect_scalar = scalar
            return ev, len(body) - pos - 1
        ev.series.append(parse_series_line(text, n))
    return ev, 0


def _parse_expect(ev: Eval, text: str) -> None:
    rv = _RANGE_VECTOR_RE.match(text)
    if rv:
        ev.range_vector = (parse_duration(rv.group(1)), parse_duration(rv.group(2)), parse_duration(rv.group(3)))
        ev.at_ms = ev.range_vector[1]
        return
    sm = _STRING_RE.match(text)
    if sm:
        lit = sm.group(1).strip()
        ev.expect_string = _read_string(lit, 0)[0]
        return
    m = _EXPECT_RE.match(text)
    if m is None:
        raise ValueError(f"bad expect line {text!r}")
    what, mode, body = m.group(1), m.group(2), (m.group(3) or "").strip()
    if what == "fail":
        ev.expect_fail = True
        if mode == "msg" and ev.fail_msg is None and ev.fail_regex is None:
            ev.fail_msg = body
        elif mode == "regex" and ev.fail_msg is None and ev.fail_regex is None:
            ev.fail_regex = body
    elif what in ("warn", "info"):
        (ev.warn if what == "warn" else ev.info).append((mode or "any", body))
    elif what == "no_warn":
        ev.no_warn = True
    elif what == "no_info":
        ev.no_info = True
    elif what == "ordered":
        ev.ordered = True
    else:
        raise ValueError(f"unknown expectation {what!r}")
