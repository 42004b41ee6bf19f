"""Prometheus durations (`1h30m`, `5m`, `0s`): parse and format exactly as Prometheus' model.Duration.

Values are seconds as floats with millisecond resolution (Prometheus keeps milliseconds). Components are
integers, largest unit first, each unit at most once: y (365d), w, d, h, m, s, ms. "0" alone is allowed.
"""

from __future__ import annotations

import re

_UNITS_MS: tuple[tuple[str, int], ...] = (
    ("y", 1000 * 60 * 60 * 24 * 365),
    ("w", 1000 * 60 * 60 * 24 * 7),
    ("d", 1000 * 60 * 60 * 24),
    ("h", 1000 * 60 * 60),
    ("m", 1000 * 60),
    ("s", 1000),
    ("ms", 1),
)
_DURATION_RE = re.compile("^" + "".join(rf"(?:([0-9]+){unit})?" for unit, _ in _UNITS_MS) + "$")
_MAX_NS = (1 << 63) - 1  # Prometheus holds a duration in a Go time.Duration (int64 nanoseconds)


class DurationError(ValueError):
    """Not a Prometheus duration; the message quotes the text as Prometheus does."""


def parse_duration_ms(text: str) -> int:
    """A Prometheus duration string as integer milliseconds."""
    if text == "0":
        return 0
    if text == "":
        raise DurationError("empty duration string")
    match = _DURATION_RE.match(text)
    if match is None:
        raise DurationError(f"not a valid duration string: {_go_quote(text)}")
    total_ms = 0
    for (_, mult), digits in zip(_UNITS_MS, match.groups(), strict=True):
        if digits is None:
            continue
        total_ms += int(digits) * mult
        if total_ms * 1_000_000 > _MAX_NS:
            raise DurationError("duration out of range")
    return total_ms


def parse_duration(text: str) -> float:
    """A Prometheus duration string as seconds."""
    return parse_duration_ms(text) / 1000


def format_duration_ms(ms: int) -> str:
    """Prometheus' Duration.String(): 90_000 -> "1m30s", 0 -> "0s"; y and w only when they divide exactly."""
    if ms < 0:
        raise DurationError("a Prometheus duration cannot be negative")
    if ms == 0:
        return "0s"
    out = []
    for unit, mult in _UNITS_MS:
        # Years and weeks only when nothing is left over: 90d reads better than 12w6d.
        if unit in ("y", "w") and ms % mult != 0:
            continue
        count, ms = divmod(ms, mult)
        if count > 0:
            out.append(f"{count}{unit}")
    return "".join(out)


def format_duration(seconds: float) -> str:
    """Seconds (rounded to the millisecond) as a Prometheus duration string."""
    return format_duration_ms(round(seconds * 1000))


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
