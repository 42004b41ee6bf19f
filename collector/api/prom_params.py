"""Parses the Prometheus HTTP API's parameters: times, durations, steps, series selectors, limits.

Follows Prometheus' web/api/v1 parsing and its messages: a time is Unix seconds (float, rounded to the
millisecond) or RFC 3339; a duration is float seconds or a Prometheus duration (`1h30m`, `5m`, `250ms`);
selectors are PromQL series selectors. Everything comes out in integer milliseconds. Bad input raises
ApiError("bad_data", ...) naming the parameter.
"""

from __future__ import annotations

import calendar
import math
import re

import promql_parser

from collector.api.prom_wire import ApiError
from collector.query.promql.storage import Matcher, MatchOp
from collector.store.promql_reads import MAX_MS, MIN_MS

# Go's strconv.ParseFloat text (decimal and exponent forms, inf and nan), without Python's extras
# (surrounding blanks, underscores between digits).
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)", re.IGNORECASE)
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
_DURATION = re.compile(r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?")
_DURATION_UNITS_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1)
# What Go prints for Prometheus' MinTime and MaxTime (clients send them back as "no bound").
_MIN_TIME_TEXT = "-292273086-05-16T16:47:06Z"
_MAX_TIME_TEXT = "292277025-08-18T07:12:54.999999999Z"
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_MATCH_OPS: dict[str, MatchOp] = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}
_MAX_INT64_NS = 2**63 - 1


def invalid(parameter: str, reason: str) -> ApiError:
    return ApiError("bad_data", f'invalid parameter "{parameter}": {reason}')


def time_ms(text: str) -> int | None:
    """Milliseconds of a Prometheus API time, or None when it is neither Unix seconds nor RFC 3339."""
    if _FLOAT.fullmatch(text):
        seconds = float(text)
        if not math.isfinite(seconds) or abs(seconds) > 9.2e15:
            return None
        whole = math.trunc(seconds)
        return whole * 1000 + round((seconds - whole) * 1000)
    m = _RFC3339.fullmatch(text)
    if m:
        year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
        if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 60):
            return None
        offset = 0
        if m.group(9):
            offset = (int(m.group(10)) * 60 + int(m.group(11))) * 60 * (1 if m.group(9) == "+" else -1)
        try:
            epoch = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
        except (ValueError, OverflowError):
            return None
        fraction_ms = int((m.group(7) or "0").ljust(9, "0")[:3])  # Go truncates to the millisecond
        return (epoch - offset) * 1000 + fraction_ms
    if text == _MIN_TIME_TEXT:
        return MIN_MS
    if text == _MAX_TIME_TEXT:
        return MAX_MS
    return None


def parse_time(text: str, parameter: str) -> int:
    ms = time_ms(text)
    if ms is None:
        raise invalid(parameter, f'cannot parse "{text}" to a valid timestamp')
    return ms


def optional_time(text: str | None, parameter: str, default: int) -> int:
    return default if text is None or text == "" else parse_time(text, parameter)


def duration_ms(text: str) -> int | None:
    """Milliseconds of float seconds or a Prometheus duration; None when it is neither."""
    if _FLOAT.fullmatch(text):
        seconds = float(text)
        if math.isnan(seconds) or abs(seconds * 1e9) > _MAX_INT64_NS:
            return None
        return round(seconds * 1000)
    if text == "0":
        return 0
    m = _DURATION.fullmatch(text)
    if m is None or not any(m.groups()):
        return None
    return sum(int(g) * unit for g, unit in zip(m.groups(), _DURATION_UNITS_MS, strict=True) if g)


def parse_duration(text: str, parameter: str) -> int:
    ms = duration_ms(text)
    if ms is None:
        raise invalid(parameter, f'cannot parse "{text}" to a valid duration')
    return ms


def parse_limit(text: str | None, parameter: str = "limit") -> int:
    """A result limit: 0 (or absent) means none, as in Prometheus."""
    if text is None or text == "":
        return 0
    try:
        limit = int(text)
    except ValueError:
        raise invalid(parameter, f'cannot parse "{text}" to a valid integer') from None
    if limit < 0:
        raise invalid(parameter, "limit must be non-negative")
    return limit


def selector_matchers(text: str) -> list[Matcher]:
    """The matchers of one series selector (`up{job="x"}`, `{__name__=~"a.*"}`); raises bad_data."""
    try:
        expr = promql_parser.parse(text)
    except ValueError as exc:
        raise ApiError("bad_data", f'invalid parameter "match[]": 1:1: parse error: {exc}') from None
    if not isinstance(expr, promql_parser.VectorSelector) or expr.offset is not None or expr.at is not None:
        raise ApiError("bad_data", f'invalid parameter "match[]": {text!r} is not a series selector')
    return vector_selector_matchers(expr)


def vector_selector_matchers(expr: promql_parser.VectorSelector) -> list[Matcher]:
    matchers = [Matcher("__name__", "=", expr.name)] if expr.name else []
    for m in expr.matchers.matchers:
        matchers.append(Matcher(m.name, _MATCH_OPS[str(m.op).rsplit(".", 1)[-1]], m.value))
    return matchers


def expression_selectors(query: str) -> list[list[Matcher]]:
    """Every series selector in a PromQL expression (for query_exemplars); raises bad_data."""
    try:
        expr = promql_parser.parse(query)
    except ValueError as exc:
        raise ApiError("bad_data", f'invalid parameter "query": 1:1: parse error: {exc}') from None
    found: list[list[Matcher]] = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(vector_selector_matchers(node))

    promql_parser.walk(expr, visit)
    return found


def label_name(text: str) -> str:
    if not _LABEL_NAME.fullmatch(text):
        raise ApiError("bad_data", f'invalid label name: "{text}"')
    return text
