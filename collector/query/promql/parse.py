"""Adapter over promql-parser: parse errors as Prometheus' bad_data, and helpers to read its AST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import promql_parser as pp

from collector.query.promql.duration_exprs import fold_duration_expressions
from collector.query.promql.errors import bad_data
from collector.query.promql.extended_selectors import MODE_LABEL, PAD_LABEL, mark_extended_selectors, pad_info_selectors
from collector.query.promql.storage import Matcher, MatchOp

Expr = Any  # promql_parser's node classes carry no type stubs

# Pseudo labels the query rewrites add for syntax promql-parser lacks; never sent to the store.
_PSEUDO = (MODE_LABEL, PAD_LABEL)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_OPS: dict[str, MatchOp] = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}


def parse_expr(query: str, *, step_ms: int = 0, range_ms: int = 0) -> Expr:
    """Parse a PromQL expression; syntax and type errors become `bad_data` as Prometheus reports them.

    What promql-parser rejects is tried again with duration expressions folded (they need the query's
    step and range: 0 for instant queries).
    """
    try:
        return pp.parse(query)
    except (ValueError, TypeError) as exc:
        first = exc
    folded = pad_info_selectors(mark_extended_selectors(fold_duration_expressions(query, step_ms, range_ms)))
    if folded != query:
        try:
            return pp.parse(folded)
        except (ValueError, TypeError) as exc:
            raise bad_data(f"parse error: {exc}") from exc
    raise bad_data(f"parse error: {first}") from first


def duration_ms(td: timedelta | None) -> int:
    return 0 if td is None else round(td / _MS)


def time_ms(dt: datetime) -> int:
    return round((dt - _EPOCH) / _MS)


def unwrap_parens(node: Expr) -> Expr:
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    return node


def op_name(op: Any) -> str:
    """A TokenType (operator or aggregation) as its lower-case PromQL spelling."""
    return str(op).lower()


def selector_matchers(node: Expr) -> list[list[Matcher]]:
    """A vector selector's matchers as alternatives (more than one only with `or` inside braces)."""
    base: list[Matcher] = []
    if node.name:
        base.append(Matcher("__name__", "=", node.name))
    groups = [list(node.matchers.matchers)] if node.matchers.matchers or not node.matchers.or_matchers else []
    groups += [list(g) for g in node.matchers.or_matchers]
    out: list[list[Matcher]] = []
    for g in groups:
        out.append(base + [Matcher(m.name, _OPS[str(m.op)], m.value) for m in g if m.name not in _PSEUDO])
    return out


def selector_mode(node: Expr) -> str | None:
    """`anchored` or `smoothed` for an extended selector (see extended_selectors), else None."""
    for m in node.matchers.matchers:
        if m.name == MODE_LABEL:
            return str(m.value)
    return None


def equality_labels(node: Expr) -> dict[str, str]:
    """Labels `absent()` gives its output: the selector's equality matchers, except names given twice."""
    seen: dict[str, int] = {}
    labels: dict[str, str] = {}
    for group in selector_matchers(node)[:1]:
        for m in group:
            seen[m.name] = seen.get(m.name, 0) + 1
            if m.op == "=" and m.name != "__name__":
                labels[m.name] = m.value
    return {k: v for k, v in labels.items() if seen[k] == 1}
