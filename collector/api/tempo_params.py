"""Tempo search parameters: the logfmt `tags` of the pre-TraceQL search, as a TraceQL filter, and times."""

from __future__ import annotations

import re

from collector.errors import PermanentError
from collector.query.traceql.ast import And, Comparison, Expr, Field, Literal, MatchAll, Or

_PAIR = re.compile(r'\s*([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_logfmt(text: str) -> list[tuple[str, str]]:
    """`a=b c="d e"` -> [("a", "b"), ("c", "d e")]."""
    pairs = []
    pos = 0
    while text[pos:].strip():
        m = _PAIR.match(text, pos)
        if m is None:
            raise PermanentError(f"tags: cannot read logfmt at offset {pos}: {text[pos : pos + 20]!r}", field="tags")
        key, value = m.group(1), m.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        pairs.append((key, value))
        pos = m.end()
    return pairs


def _tag_condition(key: str, value: str) -> Expr:
    # Tempo's tag search names these intrinsics this way; anything else is a span or resource attribute.
    if key == "name":
        return Comparison(Field("intrinsic", "name"), "=", Literal("string", value))
    if key in ("status.code", "status") and value.lower() in ("error", "ok", "unset"):
        return Comparison(Field("intrinsic", "status"), "=", Literal("status", value.lower()))
    if key == "error" and value == "true":
        return Comparison(Field("intrinsic", "status"), "=", Literal("status", "error"))
    as_text: Expr = Comparison(Field("any", key), "=", Literal("string", value))
    # The value's type is unknown from logfmt: match the attribute whether it was sent as text or number.
    if re.fullmatch(r"-?\d+", value):
        return Or(as_text, Comparison(Field("any", key), "=", Literal("int", int(value))))
    if re.fullmatch(r"-?\d+\.\d*", value):
        return Or(as_text, Comparison(Field("any", key), "=", Literal("float", float(value))))
    if value in ("true", "false"):
        return Or(as_text, Comparison(Field("any", key), "=", Literal("bool", value == "true")))
    return as_text


def tags_filter(text: str) -> Expr:
    expr: Expr = MatchAll()
    for key, value in parse_logfmt(text):
        cond = _tag_condition(key, value)
        expr = cond if isinstance(expr, MatchAll) else And(expr, cond)
    return expr


def seconds_ns(text: str, name: str) -> int:
    """Unix seconds (as Tempo's start and end are) to nanoseconds; empty means unbounded (0)."""
    if not text:
        return 0
    try:
        return int(float(text) * 10**9) if "." in text else int(text) * 10**9
    except ValueError:
        raise PermanentError(f"{name}: {text!r} is not Unix seconds", field=name) from None
