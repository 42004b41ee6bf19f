"""Evaluate a TraceQL filter against one span, described by the SpanFacts this engine needs.

Semantics of the subset: a missing attribute, or a value whose type does not fit the literal, makes a
comparison false (for `!=` too), as in Tempo. Strings compare with strings, numbers (int and float)
with numbers, durations with durations, booleans with `=`/`!=`. Regular expressions must match the
whole value (Tempo anchors them). The unscoped `.x` takes the span attribute, else the resource one.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from collector.errors import PermanentError
from collector.query.traceql.ast import And, Comparison, Expr, Field, Literal, MatchAll, Or


@dataclass(frozen=True)
class SpanFacts:
    """What a filter can see of a span. Attribute values are typed (str, int, float, bool, ...);
    status and kind are lowercase TraceQL keywords; durations are nanoseconds."""

    name: str
    status: str
    kind: str
    duration_ns: int
    root_service: str
    root_name: str
    trace_duration_ns: int
    span_attributes: dict[str, Any] = field(default_factory=dict)
    resource_attributes: dict[str, Any] = field(default_factory=dict)


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_MISSING = object()


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise PermanentError(f"q: {pattern!r} is not a valid regular expression: {exc}", field="q") from None


def check(expr: Expr) -> None:
    """Reject what can never evaluate (bad regexes, ordering on status or kind), before any span is read."""
    if isinstance(expr, Comparison):
        if expr.op in ("=~", "!~"):
            if expr.value.type != "string":
                raise PermanentError(f"q: {expr.field} {expr.op} needs a string pattern", field="q")
            _regex(str(expr.value.value))
        elif expr.value.type in ("status", "kind", "bool") and expr.op not in ("=", "!="):
            raise PermanentError(f"q: {expr.field} {expr.op} {expr.value.value}: only = and != apply", field="q")
    elif isinstance(expr, And | Or):
        check(expr.left)
        check(expr.right)


def value_of(f: Field, span: SpanFacts) -> tuple[str, Any]:
    """(type, value) of a field on a span; type "" with _MISSING when the span has no such attribute."""
    if f.scope == "intrinsic":
        return {
            "name": ("string", span.name),
            "status": ("status", span.status),
            "kind": ("kind", span.kind),
            "duration": ("duration", span.duration_ns),
            "rootServiceName": ("string", span.root_service),
            "rootName": ("string", span.root_name),
            "traceDuration": ("duration", span.trace_duration_ns),
        }[f.name]
    value: Any = _MISSING
    if f.scope in ("span", "any"):
        value = span.span_attributes.get(f.name, _MISSING)
    if value is _MISSING and f.scope in ("resource", "any"):
        value = span.resource_attributes.get(f.name, _MISSING)
    if value is _MISSING:
        return "", _MISSING
    if isinstance(value, bool):
        return "bool", value
    if isinstance(value, int | float):
        return "number", value
    if isinstance(value, str):
        return "string", value
    return "other", value


def _compatible(value_type: str, literal: Literal) -> bool:
    if literal.type in ("int", "float"):
        return value_type == "number"
    return value_type == literal.type


def compare(c: Comparison, span: SpanFacts) -> bool:
    value_type, value = value_of(c.field, span)
    if value is _MISSING or not _compatible(value_type, c.value):
        return False
    if c.op == "=~":
        return _regex(str(c.value.value)).fullmatch(value) is not None
    if c.op == "!~":
        return _regex(str(c.value.value)).fullmatch(value) is None
    if value_type in ("status", "kind", "bool") and c.op not in ("=", "!="):
        return False
    return _ORDER[c.op](value, c.value.value)


def matches(expr: Expr, span: SpanFacts) -> bool:
    if isinstance(expr, MatchAll):
        return True
    if isinstance(expr, Comparison):
        return compare(expr, span)
    if isinstance(expr, And):
        return matches(expr.left, span) and matches(expr.right, span)
    return matches(expr.left, span) or matches(expr.right, span)
