"""Trace ids as the Jaeger and Tempo APIs accept them in a path or parameter.

Bad input raises PermanentError naming the parameter, which each API maps to its own error shape.
"""

from __future__ import annotations

import re

from collector.errors import PermanentError

_HEX = re.compile(r"[0-9a-fA-F]{1,32}")


def normalize_trace_id(text: str, name: str = "traceID") -> str:
    """32 lowercase hex digits; shorter ids are left-padded with zeros, as Jaeger does for 64-bit ids."""
    if not _HEX.fullmatch(text):
        raise PermanentError(f"{name}: {text!r} must be 1 to 32 hex digits", field=name)
    return text.lower().rjust(32, "0")
