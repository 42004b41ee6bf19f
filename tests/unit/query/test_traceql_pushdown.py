"""TraceQL -> the necessary SQL condition: a table of filters, their SQL text and bound parameters."""

from __future__ import annotations

from typing import Any

import pytest

from collector.query.traceql.parser import parse
from collector.query.traceql.pushdown import necessary_condition

CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("{}", "1", {}),
    ('{ name = "GET /" }', "SpanName = {p0:String}", {"p0": "GET /"}),
    ('{ name != "x" }', "SpanName != {p0:String}", {"p0": "x"}),
    ('{ name =~ "G.*" }', "1", {}),
    ("{ status = error }", "StatusCode = {p0:String}", {"p0": "Error"}),
    ("{ kind != server }", "SpanKind != {p0:String}", {"p0": "Server"}),
    ("{ name = 3 }", "0", {}),
    ("{ duration >= 100ms }", "Duration >= {p0:Int64}", {"p0": 100_000_000}),
    ('{ rootServiceName = "gw" && traceDuration > 1s }', "1", {}),
    (
        '{ resource.service.name = "api" }',
        "(ResourceAttributes[{p0:String}] = {p1:String} AND mapContains(ResourceAttributes, {p0:String}))",
        {"p0": "service.name", "p1": "api"},
    ),
    ("{ span.http.status_code >= 500 }", "mapContains(SpanAttributes, {p0:String})", {"p0": "http.status_code"}),
    (
        "{ .x != 1 }",
        "(mapContains(SpanAttributes, {p0:String}) OR mapContains(ResourceAttributes, {p1:String}))",
        {"p0": "x", "p1": "x"},
    ),
    (
        '{ status = error && (name = "a" || rootName = "b") }',
        "StatusCode = {p0:String}",
        {"p0": "Error"},
    ),
    (
        '{ status = error && (name = "a" || kind = client) }',
        "(StatusCode = {p0:String} AND (SpanName = {p1:String} OR SpanKind = {p2:String}))",
        {"p0": "Error", "p1": "a", "p2": "Client"},
    ),
]


@pytest.mark.parametrize(("query", "sql", "params"), CASES, ids=[c[0] for c in CASES])
def test_condition(query: str, sql: str, params: dict[str, Any]) -> None:
    cond = necessary_condition(parse(query))
    assert (cond.sql, cond.params) == (sql, params)


def test_values_never_reach_the_sql_text() -> None:
    cond = necessary_condition(parse('{ resource."a\'b" = "x\' OR 1=1 --" && name = "\'; DROP" }'))
    assert "'" not in cond.sql and "DROP" not in cond.sql
    assert "x' OR 1=1 --" in cond.params.values()
