"""Go duration strings ("1.2s", "100ms", "1h30m"), as TraceQL literals and Jaeger/Tempo parameters spell them."""

from __future__ import annotations

import re

from collector.errors import PermanentError

# Go's time.ParseDuration units, in nanoseconds. "µ" is U+00B5 (micro sign), "μ" U+03BC (Greek mu).
_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str, name: str = "duration") -> int:
    """Nanoseconds of a Go duration string ("1.2s", "100ms", "1h30m", "0"), as time.ParseDuration reads it."""
    s = text.strip()
    sign = 1
    if s[:1] in ("+", "-"):
        sign, s = (-1 if s[0] == "-" else 1), s[1:]
    if s == "0":
        return 0
    if not s:
        raise PermanentError(f"{name}: {text!r} is not a duration (like 100ms, 1.5s, 1h30m)", field=name)
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None:
            raise PermanentError(f"{name}: {text!r} is not a duration (like 100ms, 1.5s, 1h30m)", field=name)
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * round(total)
