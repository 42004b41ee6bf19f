"""The functions an alert template can call: Prometheus' template functions, and the table with Go's builtins.

Each function declares its Go parameter types so that a call with the wrong type fails as it does in Go
(`toUpper $value` is an error: float64 is not a string). Prometheus' functions follow
prometheus/template/template.go of Prometheus 2.42; the builtins follow Go 1.19's text/template.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from alerting.durations import DurationError, parse_duration_ms
from alerting.goformat import go_type, sprint, sprint_value, sprintf, sprintln
from alerting.model import QueryFunc
from alerting.template_builtins import (
    ExecError,
    call,
    eq,
    ge,
    go_truth,
    gt,
    html_escape,
    index,
    js_escape,
    le,
    length,
    lt,
    ne,
    not_,
    slice_,
    urlquery,
)

__all__ = ["FUNCTION_NAMES", "ExecError", "Func", "QuerySample", "function_table", "go_truth"]


class GoHTML(str):
    """html/template.HTML, what safeHtml returns: a string kind, printed as it is."""


@dataclass
class QuerySample:
    """Prometheus' template `sample`: what `query` returns a list of."""

    Labels: dict[str, str]
    Value: float

    def go_string(self) -> str:
        return f"&{{{sprint_value(self.Labels)} {sprint_value(self.Value)}}}"


@dataclass(frozen=True)
class Func:
    impl: Callable[..., Any]
    params: tuple[str, ...]  # "string", "float64", "any", "sample", "samples"; a trailing "..." is variadic
    lazy: bool = False  # and/or: arguments are evaluated one at a time (Go 1.18+)


# --- conversions ----------------------------------------------------------------------------------------


_GO_FLOAT_RE = re.compile(
    r"[+-]?(?:(?:\d(?:_?\d)*)?\.?\d(?:_?\d)*(?:[eE][+-]?\d+)?|\d+\.|inf|infinity|nan|0[xX][0-9a-fA-F_.]+[pP][+-]?\d+)",
    re.IGNORECASE,
)


def go_parse_float(s: str) -> float:
    """strconv.ParseFloat(s, 64): no surrounding spaces (unlike Python's float())."""
    if not _GO_FLOAT_RE.fullmatch(s):
        raise ExecError(f'strconv.ParseFloat: parsing "{s}": invalid syntax')
    try:
        if "x" in s.lower():
            return float.fromhex(s.replace("_", ""))
        return float(s.replace("_", ""))
    except ValueError:
        raise ExecError(f'strconv.ParseFloat: parsing "{s}": invalid syntax') from None


def to_float(v: object) -> float:
    """Prometheus' convertToFloat: float64, string (parsed), int."""
    if isinstance(v, bool) or v is None:
        raise ExecError(f"can't convert {go_type(v) if v is not None else '<nil>'} to float")
    if isinstance(v, float):
        return v
    if isinstance(v, int):
        return float(v)
    if isinstance(v, str):
        return go_parse_float(v)
    raise ExecError(f"can't convert {go_type(v)} to float")


# --- Prometheus' functions ------------------------------------------------------------------------------

_SI_UP = ("k", "M", "G", "T", "P", "E", "Z", "Y")
_SI_DOWN = ("m", "u", "n", "p", "f", "a", "z", "y")


def _g4(v: float) -> str:
    return sprintf("%.4g", [v])


def humanize(i: object) -> str:
    v = to_float(i)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    if abs(v) >= 1:
        for p in _SI_UP:
            if abs(v) < 1000:
                break
            prefix = p
            v /= 1000
        return _g4(v) + prefix
    for p in _SI_DOWN:
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return _g4(v) + prefix


def humanize1024(i: object) -> str:
    v = to_float(i)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix = p
        v /= 1024
    return _g4(v) + prefix


def humanize_duration(i: object) -> str:
    v = to_float(i)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return _g4(v) + "s"
    if abs(v) >= 1:
        sign = ""
        if v < 0:
            sign, v = "-", -v
        duration = int(v)
        seconds = duration % 60
        minutes = (duration // 60) % 60
        hours = (duration // 3600) % 24
        days = duration // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    prefix = ""
    for p in _SI_DOWN:
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return f"{_g4(v)}{prefix}s"


def humanize_percentage(i: object) -> str:
    return _g4(to_float(i) * 100) + "%"


def humanize_timestamp(i: object) -> str:
    """fmt.Sprint of a UTC time.Time at millisecond resolution (model.Time): `2006-01-02 15:04:05.1 +0000 UTC`."""
    v = to_float(i)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    ns = v * 1e9
    if ns > 2**63 - 1 or ns < -(2**63):
        raise ExecError(f"{sprint_value(v)} cannot be represented as a nanoseconds timestamp since it overflows int64")
    n = int(ns)
    ms = n // 1_000_000 if n >= 0 else -(-n // 1_000_000)  # Go's integer division truncates toward zero
    secs, rem_ms = divmod(ms, 1000)
    t = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=secs)
    frac = f".{rem_ms:03d}".rstrip("0").rstrip(".") if rem_ms else ""
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d}:{t.second:02d}{frac} +0000 UTC"


def title(s: str) -> str:
    """strings.Title: upper-case the first letter of each word (words split at separators, as Go does)."""

    def is_separator(c: str) -> bool:
        if ord(c) <= 0x7F:
            return not (c.isalnum() or c == "_")
        if c.isalpha() or c.isdigit():
            return False
        return c.isspace()

    out = []
    prev = " "
    for c in s:
        out.append(_single(c.title(), c) if is_separator(prev) else c)
        prev = c
    return "".join(out)


def _single(mapped: str, c: str) -> str:
    # Go maps rune to rune; Python may expand (ß -> SS): keep the rune then
    return mapped if len(mapped) == 1 else c


def to_upper(s: str) -> str:
    return "".join(_single(c.upper(), c) for c in s)


def to_lower(s: str) -> str:
    return "".join(_single(c.lower(), c) for c in s)


def compile_regexp(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern.replace(r"\z", r"\Z"))
    except re.error as e:
        raise ExecError(f"error parsing regexp: {e}: `{pattern}`") from None


def _expand(template: str, m: re.Match[str]) -> str:
    """Go's Regexp.Expand: $1, ${1}, $name, ${name}; $$ is a $; unknown names are empty."""
    out = []
    i = 0
    while i < len(template):
        c = template[i]
        if c != "$" or i + 1 >= len(template):
            out.append(c)
            i += 1
            continue
        if template[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        if template[i + 1] == "{":
            end = template.find("}", i + 2)
            name = template[i + 2 : end] if end > 0 else ""
            if end < 0 or not name or not re.fullmatch(r"\w+", name, re.ASCII):
                out.append("$")
                i += 1
                continue
            i = end + 1
        else:
            k = i + 1
            while k < len(template) and (template[k].isascii() and (template[k].isalnum() or template[k] == "_")):
                k += 1
            name = template[i + 1 : k]
            if not name:
                out.append("$")
                i += 1
                continue
            i = k
        try:
            group = m.group(int(name)) if name.isdigit() else m.group(name)
        except IndexError:  # no such group: empty, as in Go
            group = None
        out.append(group or "")
    return "".join(out)


def re_replace_all(pattern: str, repl: str, text: str) -> str:
    rx = compile_regexp(pattern)
    return rx.sub(lambda m: _expand(repl, m), text)


def match(pattern: str, s: str) -> bool:
    return compile_regexp(pattern).search(s) is not None


def strip_port(host_port: str) -> str:
    """net.SplitHostPort's host, or the input when it is not host:port."""
    if host_port.startswith("["):
        end = host_port.find("]")
        if end < 0 or not host_port.startswith(":", end + 1) or ":" in host_port[end + 2 :]:
            return host_port
        return host_port[1:end]
    if host_port.count(":") != 1:
        return host_port
    return host_port.split(":", 1)[0]


def graph_link(expr: str, tab: int = 0) -> str:
    return f"/graph?g0.expr={urllib.parse.quote_plus(expr, safe='')}&g0.tab={tab}"


def parse_duration_s(d: str) -> float:
    try:
        return parse_duration_ms(d) / 1000
    except DurationError as e:
        raise ExecError(str(e)) from None


def sort_by_label(label: str, v: list[QuerySample]) -> list[QuerySample]:
    v.sort(key=lambda s: s.Labels.get(label, ""))
    return v


def first(v: list[QuerySample]) -> QuerySample:
    if not v:
        raise ExecError("first() called on vector with no elements")
    return v[0]


def args(*a: object) -> dict[str, object]:
    return {f"arg{i}": x for i, x in enumerate(a)}


def function_table(query: QueryFunc | None, at: float, external_url: str) -> Mapping[str, Func]:
    """Every function name a template may use; `query` runs against `query` at `at` (Unix seconds)."""

    def run_query(q: str) -> list[QuerySample]:
        if query is None:
            raise ExecError("query is not available here (no query function was given to the template)")
        return [QuerySample(dict(s.labels), s.value) for s in query(q, at)]

    path = urllib.parse.urlsplit(external_url).path
    return {
        **_STATIC_FUNCTIONS,
        "query": Func(run_query, ("string",)),
        "pathPrefix": Func(lambda: path, ()),
        "externalURL": Func(lambda: external_url, ()),
    }


# The functions that depend on nothing but their arguments, built once.
_STATIC_FUNCTIONS: Mapping[str, Func] = {
    # Go builtins
    "and": Func(lambda *a: a[-1], ("any", "any..."), lazy=True),
    "or": Func(lambda *a: a[-1], ("any", "any..."), lazy=True),
    "not": Func(not_, ("any",)),
    "len": Func(length, ("any",)),
    "index": Func(index, ("any", "any...")),
    "slice": Func(slice_, ("any", "any...")),
    "print": Func(lambda *a: sprint(list(a)), ("any...",)),
    "println": Func(lambda *a: sprintln(list(a)), ("any...",)),
    "printf": Func(lambda f, *a: sprintf(f, list(a)), ("string", "any...")),
    "html": Func(html_escape, ("any...",)),
    "js": Func(js_escape, ("any...",)),
    "urlquery": Func(urlquery, ("any...",)),
    "call": Func(call, ("any", "any...")),
    "eq": Func(eq, ("any", "any...")),
    "ne": Func(ne, ("any", "any")),
    "lt": Func(lt, ("any", "any")),
    "le": Func(le, ("any", "any")),
    "gt": Func(gt, ("any", "any")),
    "ge": Func(ge, ("any", "any")),
    # Prometheus
    "first": Func(first, ("samples",)),
    "label": Func(lambda name, s: s.Labels.get(name, ""), ("string", "sample")),
    "value": Func(lambda s: s.Value, ("sample",)),
    "strvalue": Func(lambda s: s.Labels.get("__value__", ""), ("sample",)),
    "args": Func(args, ("any...",)),
    "reReplaceAll": Func(re_replace_all, ("string", "string", "string")),
    "safeHtml": Func(GoHTML, ("string",)),
    "match": Func(match, ("string", "string")),
    "title": Func(title, ("string",)),
    "toUpper": Func(to_upper, ("string",)),
    "toLower": Func(to_lower, ("string",)),
    "graphLink": Func(graph_link, ("string",)),
    "tableLink": Func(lambda e: graph_link(e, 1), ("string",)),
    "sortByLabel": Func(sort_by_label, ("string", "samples")),
    "stripPort": Func(strip_port, ("string",)),
    "humanize": Func(humanize, ("any",)),
    "humanize1024": Func(humanize1024, ("any",)),
    "humanizeDuration": Func(humanize_duration, ("any",)),
    "humanizePercentage": Func(humanize_percentage, ("any",)),
    "humanizeTimestamp": Func(humanize_timestamp, ("any",)),
    "parseDuration": Func(parse_duration_s, ("string",)),
}

FUNCTION_NAMES = frozenset(function_table(None, 0.0, ""))
