"""TraceQL filter -> a SQL condition over `otel_traces` rows that every matching span meets.

The condition is necessary, not sufficient: the store uses it to pick candidate traces, and the
Python evaluation (evaluate.py) decides. So whatever cannot be said exactly in SQL is widened: a
numeric comparison on an attribute becomes "the attribute exists", a regex on an intrinsic or a
trace-level intrinsic (rootServiceName, rootName, traceDuration) becomes true. Values are bound
parameters named p0, p1, ...; they never reach the SQL text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from collector.query.traceql.ast import And, Comparison, Expr, Field, MatchAll

TRUE = "1"
_MAPS = {
    "span": ("SpanAttributes",),
    "resource": ("ResourceAttributes",),
    "any": ("SpanAttributes", "ResourceAttributes"),
}
_COLUMNS = {"name": "SpanName", "status": "StatusCode", "kind": "SpanKind"}
_SQL_OPS = {"=": "=", "!=": "!=", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


@dataclass
class SqlCondition:
    sql: str = TRUE
    params: dict[str, Any] = field(default_factory=dict)


class _Builder:
    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def bind(self, value: Any, type_: str) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"{{{name}:{type_}}}"

    def expr(self, e: Expr) -> str:
        if isinstance(e, MatchAll):
            return TRUE
        if isinstance(e, Comparison):
            return self.comparison(e)
        left, right = self.expr(e.left), self.expr(e.right)
        if isinstance(e, And):
            if left == TRUE:
                return right
            return left if right == TRUE else f"({left} AND {right})"
        return TRUE if TRUE in (left, right) else f"({left} OR {right})"

    def comparison(self, c: Comparison) -> str:
        f = c.field
        if f.scope == "intrinsic":
            return self.intrinsic(c)
        return self.attribute(f, c)

    def intrinsic(self, c: Comparison) -> str:
        name, lit = c.field.name, c.value
        if name == "duration" and lit.type == "duration" and c.op in _SQL_OPS:
            return f"Duration {_SQL_OPS[c.op]} {self.bind(lit.value, 'Int64')}"
        if name in _COLUMNS and c.op in ("=", "!="):
            column = _COLUMNS[name]
            if name == "name" and lit.type == "string":
                return f"{column} {c.op} {self.bind(lit.value, 'String')}"
            if (name, lit.type) in (("status", "status"), ("kind", "kind")):
                return f"{column} {c.op} {self.bind(str(lit.value).capitalize(), 'String')}"
            return "0"  # a type that never fits: the comparison is always false
        return TRUE

    def attribute(self, f: Field, c: Comparison) -> str:
        parts = []
        for column in _MAPS[f.scope]:
            key = self.bind(f.name, "String")
            if c.op == "=" and c.value.type == "string":
                # Strings are stored as sent, so equality is exact text equality.
                parts.append(
                    f"({column}[{key}] = {self.bind(c.value.value, 'String')} AND mapContains({column}, {key}))"
                )
            else:
                parts.append(f"mapContains({column}, {key})")
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def necessary_condition(expr: Expr) -> SqlCondition:
    b = _Builder()
    sql = b.expr(expr)
    # A widened branch drops its placeholders; its values are not sent either.
    return SqlCondition(sql, {k: v for k, v in b.params.items() if f"{{{k}:" in sql})
