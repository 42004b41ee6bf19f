"""Durations and sizes in the demo services' YAML files: `500ms`, `5s`, `1m30s`; `64KiB`, `1MiB`.

Shared by discovery, the gateway and the business services so that every file reads the same way.
Pure: no I/O, no framework beyond the pydantic validators.
"""

from __future__ import annotations

import contextlib
import re
from typing import Annotated

from pydantic import BeforeValidator

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB)?", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2}


def parse_duration(value: object) -> float:
    """Seconds from a number of seconds (also as text) or a duration such as `1m30s` or `500ms`."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 5s or 500ms, got {value!r}")
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # "30" is seconds, as 30 is
            value = float(value.strip())
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a duration such as 5s or 500ms, got {value!r}")
    text, pos, total = value.strip(), 0, 0.0
    for match in _DURATION_RE.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"invalid duration {value!r}: use seconds or a unit, e.g. 5s, 500ms, 1m")
    return total


def parse_size(value: object) -> int:
    """Bytes from an integer or a size such as `1MiB`."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as 1MiB, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    if isinstance(value, str):
        match = _SIZE_RE.fullmatch(value.strip())
        if match:
            return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])
    raise ValueError(f"invalid size {value!r}: use bytes or a unit, e.g. 64KiB, 1MiB")


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
