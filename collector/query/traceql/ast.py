"""TraceQL syntax tree: fields, typed literals, comparisons and the boolean combinations of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal as Lit

# The intrinsics of the subset, by their TraceQL names.
INTRINSICS = ("name", "status", "kind", "duration", "rootServiceName", "rootName", "traceDuration")
# Newer TraceQL spells intrinsics with a scope; each means the same as the older name.
SCOPED_INTRINSICS = {
    "span:name": "name",
    "span:status": "status",
    "span:kind": "kind",
    "span:duration": "duration",
    "trace:rootService": "rootServiceName",
    "trace:rootName": "rootName",
    "trace:duration": "traceDuration",
}
STATUSES = ("error", "ok", "unset")
KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "=~", "!~")

Scope = Lit["span", "resource", "any", "intrinsic"]
LiteralType = Lit["string", "int", "float", "duration", "bool", "status", "kind"]


@dataclass(frozen=True)
class Field:
    """An attribute (scope span, resource, or any for the unscoped `.x`) or an intrinsic."""

    scope: Scope
    name: str

    def __str__(self) -> str:
        if self.scope == "intrinsic":
            return self.name
        return ("" if self.scope == "any" else self.scope) + "." + self.name


@dataclass(frozen=True)
class Literal:
    """A typed value; durations are integer nanoseconds, status and kind their lowercase keyword."""

    type: LiteralType
    value: str | int | float | bool


@dataclass(frozen=True)
class Comparison:
    field: Field
    op: str
    value: Literal


@dataclass(frozen=True)
class And:
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Or:
    left: Expr
    right: Expr


@dataclass(frozen=True)
class MatchAll:
    """The empty spanset filter `{}`: every span."""


Expr = Comparison | And | Or | MatchAll


def fields_of(expr: Expr) -> list[Field]:
    """The fields a filter refers to, in order of appearance (each once)."""
    if isinstance(expr, Comparison):
        return [expr.field]
    if isinstance(expr, And | Or):
        out = fields_of(expr.left)
        return out + [f for f in fields_of(expr.right) if f not in out]
    return []
