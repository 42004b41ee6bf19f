"""TraceQL subset parsing: a table of queries and their syntax trees, and of queries that must fail."""

from __future__ import annotations

import pytest

from collector.errors import PermanentError
from collector.query.traceql.ast import And, Comparison, Expr, Field, Literal, MatchAll, Or, fields_of
from collector.query.traceql.durations import parse_go_duration
from collector.query.traceql.parser import parse


def cmp(scope: str, name: str, op: str, type_: str, value: object) -> Comparison:
    return Comparison(Field(scope, name), op, Literal(type_, value))  # type: ignore[arg-type]


PARSES: list[tuple[str, Expr]] = [
    ("{}", MatchAll()),
    ("{ }", MatchAll()),
    ("", MatchAll()),
    ('{ resource.service.name = "api" }', cmp("resource", "service.name", "=", "string", "api")),
    ("{ span.http.status_code >= 500 }", cmp("span", "http.status_code", ">=", "int", 500)),
    ('{ .foo = "x" }', cmp("any", "foo", "=", "string", "x")),
    ('{ .foo != "x" }', cmp("any", "foo", "!=", "string", "x")),
    ("{ .ratio < 0.5 }", cmp("any", "ratio", "<", "float", 0.5)),
    ("{ .delta > -3 }", cmp("any", "delta", ">", "int", -3)),
    ("{ .ok <= 1e3 }", cmp("any", "ok", "<=", "float", 1000.0)),
    ("{ .cached = true }", cmp("any", "cached", "=", "bool", True)),
    ("{ .cached = false }", cmp("any", "cached", "=", "bool", False)),
    ('{ name =~ "GET .*" }', cmp("intrinsic", "name", "=~", "string", "GET .*")),
    ('{ name !~ "GET .*" }', cmp("intrinsic", "name", "!~", "string", "GET .*")),
    ("{ status = error }", cmp("intrinsic", "status", "=", "status", "error")),
    ("{ status != ok }", cmp("intrinsic", "status", "!=", "status", "ok")),
    ("{ status = unset }", cmp("intrinsic", "status", "=", "status", "unset")),
    ("{ kind = server }", cmp("intrinsic", "kind", "=", "kind", "server")),
    ("{ kind = consumer }", cmp("intrinsic", "kind", "=", "kind", "consumer")),
    ("{ duration > 100ms }", cmp("intrinsic", "duration", ">", "duration", 100_000_000)),
    ("{ duration < 1.5s }", cmp("intrinsic", "duration", "<", "duration", 1_500_000_000)),
    ("{ traceDuration >= 1m30s }", cmp("intrinsic", "traceDuration", ">=", "duration", 90_000_000_000)),
    ("{ duration > 250us }", cmp("intrinsic", "duration", ">", "duration", 250_000)),
    ("{ span:duration > 1s }", cmp("intrinsic", "duration", ">", "duration", 1_000_000_000)),
    ('{ trace:rootService = "gw" }', cmp("intrinsic", "rootServiceName", "=", "string", "gw")),
    ("{ span:status = error }", cmp("intrinsic", "status", "=", "status", "error")),
    ("{ trace:duration < 2s }", cmp("intrinsic", "traceDuration", "<", "duration", 2_000_000_000)),
    ('{ rootServiceName = "gw" }', cmp("intrinsic", "rootServiceName", "=", "string", "gw")),
    ('{ rootName = "GET /" }', cmp("intrinsic", "rootName", "=", "string", "GET /")),
    ('{ .msg = "say \\"hi\\"\\n" }', cmp("any", "msg", "=", "string", 'say "hi"\n')),
    ('{ span."with space" = "v" }', cmp("span", "with space", "=", "string", "v")),
    ('{ .k8s.pod-name = "p" }', cmp("any", "k8s.pod-name", "=", "string", "p")),
    (
        '{ .a = 1 && .b = 2 || .c = "x" }',
        Or(And(cmp("any", "a", "=", "int", 1), cmp("any", "b", "=", "int", 2)), cmp("any", "c", "=", "string", "x")),
    ),
    (
        '{ .a = 1 && (.b = 2 || .c = "x") }',
        And(cmp("any", "a", "=", "int", 1), Or(cmp("any", "b", "=", "int", 2), cmp("any", "c", "=", "string", "x"))),
    ),
    (
        "{ kind = server || kind = client || kind = consumer }",
        Or(
            Or(cmp("intrinsic", "kind", "=", "kind", "server"), cmp("intrinsic", "kind", "=", "kind", "client")),
            cmp("intrinsic", "kind", "=", "kind", "consumer"),
        ),
    ),
    (
        '{resource.service.name="api"&&status=error}',
        And(cmp("resource", "service.name", "=", "string", "api"), cmp("intrinsic", "status", "=", "status", "error")),
    ),
]


@pytest.mark.parametrize(("query", "tree"), PARSES, ids=[q or "<empty>" for q, _ in PARSES])
def test_parses(query: str, tree: Expr) -> None:
    assert parse(query) == tree


FAILS = [
    "{ .a = }",
    '{ name = "x"',
    '{ name = "x" } { .b = 1 }',
    "{ foo = 1 }",
    "{ span:nope = 1 }",
    "{ .a == 1 }",
    "{ .a = nonsense }",
    "{ && .a = 1 }",
    "{ (.a = 1 }",
    ".a = 1",
    '{ .a = "unterminated }',
    "{ .a = 1 } junk",
]


@pytest.mark.parametrize("query", FAILS)
def test_rejects_with_offset(query: str) -> None:
    with pytest.raises(PermanentError) as err:
        parse(query)
    assert "offset" in err.value.message and err.value.field == "q"


def test_fields_of_lists_each_field_once() -> None:
    tree = parse('{ .a = 1 && (span.b = 2 || .a = 3) && name = "x" }')
    assert fields_of(tree) == [Field("any", "a"), Field("span", "b"), Field("intrinsic", "name")]


DURATIONS = [
    ("0", 0),
    ("1ns", 1),
    ("250us", 250_000),
    ("250µs", 250_000),
    ("250μs", 250_000),
    ("100ms", 100_000_000),
    ("1.2s", 1_200_000_000),
    (".5s", 500_000_000),
    ("1m", 60_000_000_000),
    ("1h30m", 5_400_000_000_000),
    ("2h45m30.5s", 9_930_500_000_000),
    ("-1.5h", -5_400_000_000_000),
    ("+3ms", 3_000_000),
]


@pytest.mark.parametrize(("text", "ns"), DURATIONS)
def test_go_durations(text: str, ns: int) -> None:
    assert parse_go_duration(text) == ns


@pytest.mark.parametrize("text", ["", "1", "1d", "ms", "1.2.3s", "1s2", "abc", "- 1s"])
def test_go_duration_rejects(text: str) -> None:
    with pytest.raises(PermanentError):
        parse_go_duration(text, "minDuration")
