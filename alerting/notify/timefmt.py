"""RFC 3339 times as Go's encoding/json writes them (RFC3339Nano, UTC, trailing zeros trimmed), and back."""

from __future__ import annotations

from datetime import UTC, datetime

# Go's zero time.Time, which Alertmanager writes as the endsAt of a firing alert.
ZERO_TIME = "0001-01-01T00:00:00Z"


def format_rfc3339(t: float) -> str:
    """Unix seconds -> `2024-05-01T12:00:00.25Z` (microsecond precision, fraction trimmed like Go)."""
    dt = datetime.fromtimestamp(t, UTC)
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{dt.microsecond:06d}".rstrip("0")
    return f"{base}.{frac}Z" if frac else f"{base}Z"


def parse_rfc3339(text: str) -> float:
    """An RFC 3339 time (`Z` or an offset, any fraction digits) -> Unix seconds."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    if "." in s:
        # Python parses at most 6 fraction digits; Go writes up to 9.
        head, _, rest = s.partition(".")
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        tail = rest[len(digits) :]
        s = f"{head}.{(digits + '000000')[:6]}{tail}"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError as e:
        raise ValueError(f"invalid RFC 3339 time {text!r}") from e
    if dt.tzinfo is None:
        raise ValueError(f"RFC 3339 time {text!r} needs a time zone (Z or +hh:mm)")
    return dt.timestamp()
