"""Pipeline stages one at a time, then the engine over an in-memory LogSource (a real, small test double)."""

from __future__ import annotations

import pytest

from collector.query.logql.ast import LogQuery, MetricExpr, ParseError
from collector.query.logql.engine import LogQLEngine, QueryError
from collector.query.logql.parser import parse
from collector.query.logql.stages import Pipeline, parse_logfmt
from collector.query.logql.storage import Entry
from tests.unit.query.logql_source import MemorySource

S = 1_000_000_000


def run(stages: str, line: str, labels: dict[str, str] | None = None) -> tuple[str, dict[str, str]] | None:
    query = parse('{app="x"}' + stages)
    assert isinstance(query, LogQuery)
    return Pipeline(query.stages).run(line, labels or {"app": "x"}, 7 * S)


STAGES = [
    (' |= "err"', "an error", ("an error", {"app": "x"})),
    (' |= "err"', "fine", None),
    (' != "err"', "an error", None),
    (' |~ "e[rR]+"', "an eRRor", ("an eRRor", {"app": "x"})),
    (' !~ "^a"', "abc", None),
    (
        " | json",
        '{"msg": "hi", "status": 500, "ok": true, "nested": {"k": "v"}, "list": [1], "app": "y"}',
        (
            '{"msg": "hi", "status": 500, "ok": true, "nested": {"k": "v"}, "list": [1], "app": "y"}',
            {"app": "x", "msg": "hi", "status": "500", "ok": "true", "nested_k": "v", "app_extracted": "y"},
        ),
    ),
    (" | json", "not json", ("not json", {"app": "x", "__error__": "JSONParserErr"})),
    (
        " | logfmt",
        'level=info msg="hello world" dur=1.5s flag',
        (
            'level=info msg="hello world" dur=1.5s flag',
            {"app": "x", "level": "info", "msg": "hello world", "dur": "1.5s", "flag": ""},
        ),
    ),
    (' | logfmt | dur > 1s and level="info"', "level=info dur=1500ms", ("level=info dur=1500ms", None)),
    (' | logfmt | dur > 2s or level="warn"', "level=info dur=1500ms", None),
    (" | logfmt | status >= 500", "status=503", ("status=503", None)),
    (" | logfmt | status >= 500", "status=404", None),
    (
        " | logfmt | status >= 500",
        "status=abc",
        ("status=abc", {"app": "x", "status": "abc", "__error__": "LabelFilterErr"}),
    ),
    (' | logfmt | line_format "{{.level}}: {{ .msg }}{{.missing}}"', "level=warn msg=x", ("warn: x", None)),
    (' | line_format "{{__line__}}!"', "abc", ("abc!", {"app": "x"})),
    (
        ' | logfmt | label_format sev=level, both="{{.level}}-{{.app}}"',
        "level=warn",
        ("level=warn", {"app": "x", "sev": "warn", "both": "warn-x"}),
    ),
    (" | logfmt | drop level, msg", "level=warn msg=m k=v", ("level=warn msg=m k=v", {"app": "x", "k": "v"})),
    (' | logfmt | drop k="other"', "k=v", ("k=v", {"app": "x", "k": "v"})),
    (" | logfmt | keep k", "level=warn k=v", ("level=warn k=v", {"k": "v"})),
    (' | line_format "{{.app}}" |= "x"', "zzz", ("x", {"app": "x"})),
]


@pytest.mark.parametrize(("stages", "line", "expected"), STAGES, ids=[f"{s[0]} <- {s[1]}" for s in STAGES])
def test_stage(stages: str, line: str, expected: tuple[str, dict[str, str] | None] | None) -> None:
    got = run(stages, line)
    if expected is None:
        assert got is None
        return
    assert got is not None
    assert got[0] == expected[0]
    if expected[1] is not None:
        assert got[1] == expected[1]


def test_logfmt_refuses_broken_quotes() -> None:
    assert parse_logfmt('a="unterminated') is None


def _entries() -> list[Entry]:
    out = []
    for i in range(60):
        level = ("info", "warn", "error")[i % 3]
        svc = ("api", "db")[i % 2]
        out.append(Entry(i * S, f"level={level} n={i} status={200 + i}", {"service_name": svc, "level": level}))
    return out


@pytest.fixture
def engine() -> tuple[LogQLEngine, MemorySource]:
    source = MemorySource(_entries(), indexed=("service_name", "level"))
    return LogQLEngine(source, max_entries=1000), source


def metric(text: str) -> MetricExpr:
    expr = parse(text)
    assert not isinstance(expr, LogQuery)
    return expr


def test_logs_backward_limit_and_pushdown(engine: tuple[LogQLEngine, MemorySource]) -> None:
    eng, source = engine
    q = parse('{service_name="api"} |= "level=error" | logfmt | n > 10')
    assert isinstance(q, LogQuery)
    result = eng.logs(q, 0, 60 * S, 3, backward=True)
    lines = [line for _labels, values in result.streams for _ts, line in values]
    expected = [
        e.line
        for e in reversed(_entries())
        if e.stream["service_name"] == "api" and "level=error" in e.line and int(e.line.split("n=")[1].split()[0]) > 10
    ][:3]
    assert lines == expected
    # the literal filter went to the source; the label filter did not
    assert [f.value for f in source.selections[-1].line_filters] == ["level=error"]


@pytest.mark.parametrize(
    ("stages", "pushed"), [("", True), (' |= "level"', True), (" | logfmt | drop n, status, level_extracted", False)]
)
def test_count_over_time_grid(engine: tuple[LogQLEngine, MemorySource], stages: str, pushed: bool) -> None:
    eng, source = engine
    result = eng.range(
        metric(f'sum by (level) (count_over_time({{service_name=~"api|db"}}{stages}[10s]))'), 10 * S, 50 * S, 10 * S
    )
    assert source.pushed_sums == (1 if pushed else 0)
    assert source.byte_reads == ([False] if pushed else [])  # counting never asks the store for line bytes
    got = {
        s.labels["level"]: dict(zip(s.timestamps.tolist(), s.values.tolist(), strict=True))
        for s in result.result.matrix
    }
    for level in ("info", "warn", "error"):
        want = {}
        for t in range(10, 51, 10):
            n = sum(1 for e in _entries() if e.stream["level"] == level and t * S - 10 * S < e.ts_ns <= t * S)
            if n:
                want[t * 1000] = float(n)
        assert got[level] == want


@pytest.mark.parametrize(
    ("text", "fn", "line_bytes"),
    [
        ('count_over_time({service_name="api"}[20s])', lambda n, b: n, False),
        ('rate({service_name="api"}[20s])', lambda n, b: n / 20, False),
        ('bytes_over_time({service_name="api"}[20s])', lambda n, b: b, True),
        ('bytes_rate({service_name="api"}[20s])', lambda n, b: b / 20, True),
    ],
)
def test_range_functions(engine: tuple[LogQLEngine, MemorySource], text: str, fn: object, line_bytes: bool) -> None:
    eng, source = engine
    result = eng.instant(metric(f"sum({text})"), 40 * S)
    assert source.byte_reads == [line_bytes]
    window = [e for e in _entries() if e.stream["service_name"] == "api" and 20 * S < e.ts_ns <= 40 * S]
    assert callable(fn)
    assert [s.value for s in result.result.vector] == pytest.approx([fn(len(window), sum(len(e.line) for e in window))])


def test_aggregations(engine: tuple[LogQLEngine, MemorySource]) -> None:
    eng, _ = engine
    at = 59 * S
    base = 'count_over_time({service_name=~".+"}[30s])'
    counts: dict[tuple[str, str], int] = {}
    for e in _entries():
        if at - 30 * S < e.ts_ns <= at:
            key = (e.stream["service_name"], e.stream["level"])
            counts[key] = counts.get(key, 0) + 1

    def vec(text: str) -> dict[tuple[tuple[str, str], ...], float]:
        return {tuple(sorted(s.labels.items())): s.value for s in eng.instant(metric(text), at).result.vector}

    assert vec(f"sum({base})") == {(): float(sum(counts.values()))}
    assert vec(f"count({base})") == {(): float(len(counts))}
    assert vec(f"max by (service_name) ({base})") == {
        (("service_name", s),): float(max(v for (svc, _l), v in counts.items() if svc == s)) for s in ("api", "db")
    }
    assert vec(f"min without (level) ({base})") == {
        (("service_name", s),): float(min(v for (svc, _l), v in counts.items() if svc == s)) for s in ("api", "db")
    }
    assert vec(f"avg({base})") == {(): sum(counts.values()) / len(counts)}
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:2]
    got = vec(f"topk(2, {base})")
    assert sorted(got.values(), reverse=True) == [float(v) for _k, v in top]


def test_health_check_vector_plus_vector(engine: tuple[LogQLEngine, MemorySource]) -> None:
    eng, _ = engine
    result = eng.instant(metric("vector(1)+vector(1)"), 5 * S)
    assert result.result.result_type == "vector"
    assert [(s.labels, s.timestamp_ms, s.value) for s in result.result.vector] == [({}, 5000, 2.0)]


@pytest.mark.parametrize(
    ("template", "message"),
    [("{{ range . }}x{{ end }}", "not supported"), ("{{ nosuch .x }}", 'function "nosuch" not defined')],
)
def test_unsupported_template_is_a_parse_error(template: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse('{service_name="api"} | line_format "' + template + '"')


def test_python_path_refuses_beyond_its_entry_cap() -> None:
    eng = LogQLEngine(MemorySource(_entries()), max_entries=10)
    with pytest.raises(QueryError, match="more than 10 log entries"):
        eng.instant(metric('count_over_time({service_name="api"} | logfmt [1m])'), 59 * S)
    # the same count pushed down to the store needs no entries here
    result = eng.instant(metric('sum(count_over_time({service_name="api"}[1m]))'), 59 * S)
    assert [s.value for s in result.result.vector] == [30.0]


@pytest.mark.parametrize("backward", [True, False])
def test_logs_read_in_pages(backward: bool) -> None:
    # 60 entries, pages of 15, two entries per nanosecond at the page edges too: all found, none twice.
    entries = [Entry((i // 2) * S, f"n={i} level={'error' if i % 4 == 0 else 'info'}", {"app": "x"}) for i in range(60)]
    source = MemorySource(entries)
    eng = LogQLEngine(source, max_entries=7)
    q = parse('{app="x"} | logfmt | level="error"')
    assert isinstance(q, LogQuery)
    result = eng.logs(q, 0, 60 * S, 15, backward)  # pages of max(limit, max_entries) = 15 entries
    got = sorted(line for _labels, values in result.streams for _ts, line in values)
    assert got == sorted(e.line for e in entries if "error" in e.line)
    assert not result.warnings
    assert len(source.selections) > 1
    nothing = parse('{app="x"} | logfmt | level="none"')
    assert isinstance(nothing, LogQuery)
    few = LogQLEngine(MemorySource(entries), max_entries=2).logs(nothing, 0, 60 * S, 3, backward)
    assert few.warnings
    assert few.entries_scanned <= 30
