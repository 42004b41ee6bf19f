"""TraceQL evaluation over one span: a table of filters and whether they match a fixed span."""

from __future__ import annotations

import pytest

from collector.errors import PermanentError
from collector.query.traceql.evaluate import SpanFacts, check, matches
from collector.query.traceql.parser import parse

SPAN = SpanFacts(
    name="GET /orders",
    status="error",
    kind="server",
    duration_ns=150_000_000,
    root_service="gateway",
    root_name="GET /",
    trace_duration_ns=2_000_000_000,
    span_attributes={"http.status_code": 503, "ratio": 0.25, "cached": False, "route": "/orders", "env": "span-env"},
    resource_attributes={"service.name": "orders", "env": "res-env", "cpus": 4, "tags": ["a", "b"]},
)

CASES = [
    ("{}", True),
    ('{ resource.service.name = "orders" }', True),
    ('{ resource.service.name != "orders" }', False),
    ('{ span.service.name = "orders" }', False),  # resource attribute, not a span one
    ('{ .service.name = "orders" }', True),  # unscoped falls back to the resource
    ('{ .env = "span-env" }', True),  # unscoped prefers the span attribute
    ('{ .env = "res-env" }', False),
    ('{ resource.env = "res-env" }', True),
    ("{ span.http.status_code >= 500 }", True),
    ("{ span.http.status_code < 500 }", False),
    ("{ span.http.status_code = 503.0 }", True),  # ints and floats compare as numbers
    ('{ span.http.status_code = "503" }', False),  # a string never equals a number
    ("{ .ratio > 0.2 && .ratio <= 0.25 }", True),
    ("{ .cached = false }", True),
    ("{ .cached != false }", False),
    ("{ .missing = 1 }", False),
    ("{ .missing != 1 }", False),  # a missing attribute fails every comparison
    ('{ .route =~ "/ord.*" }', True),
    ('{ .route =~ "ord" }', False),  # regexes are anchored
    ('{ .route !~ "/x.*" }', True),
    ('{ .route > "/a" }', True),  # strings order lexically
    ("{ resource.cpus >= 4 }", True),
    ('{ resource.tags = "a" }', False),  # arrays compare with nothing
    ('{ name = "GET /orders" }', True),
    ('{ name =~ "GET .*" && status = error }', True),
    ("{ status = ok || status = unset }", False),
    ("{ status != ok }", True),
    ("{ kind = server }", True),
    ("{ kind = client || kind = consumer }", False),
    ("{ duration > 100ms }", True),
    ("{ duration >= 150ms && duration <= 150ms }", True),
    ("{ duration < 100ms }", False),
    ("{ duration > 100 }", False),  # a duration compares with durations only
    ('{ rootServiceName = "gateway" }', True),
    ('{ rootName = "GET /" }', True),
    ("{ traceDuration > 1s }", True),
    ("{ traceDuration > 2s }", False),
    ('{ (.route = "/x" || kind = server) && duration > 1ms }', True),
    ('{ .route = "/x" || (kind = server && duration > 1s) }', False),
]


@pytest.mark.parametrize(("query", "expected"), CASES, ids=[q for q, _ in CASES])
def test_matches(query: str, expected: bool) -> None:
    expr = parse(query)
    check(expr)
    assert matches(expr, SPAN) is expected


@pytest.mark.parametrize("query", ['{ .a =~ "(" }', "{ .a =~ 1 }", "{ status > error }", "{ kind <= server }"])
def test_check_rejects_before_reading(query: str) -> None:
    with pytest.raises(PermanentError):
        check(parse(query))
