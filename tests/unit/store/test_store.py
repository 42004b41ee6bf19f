"""One store suite for both engine adapters: chDB always, a ClickHouse server when one is given.

chDB allows one data path per process, so every chDB test shares the session's path and isolates
itself with a database of its own.
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from collector.codecs.influx_metrics import columns_to_samples
from collector.codecs.line_protocol_columns import LineScanner
from collector.codecs.otlp_logs import decode_logs
from collector.codecs.otlp_traces import decode_traces
from collector.codecs.otlp_values import TimeWindow
from collector.config import RetentionSettings
from collector.model import MetricBatch, MetricMetadata
from collector.pipeline.field_types import FieldTypes, write_scope
from collector.pipeline.series_limits import SeriesLimits
from collector.store import schema
from collector.store.engine import Engine
from collector.store.readers import LogQuery, StoreReader, TraceQuery
from collector.store.schema import MIGRATIONS, apply_retention, migrate
from collector.store.trace_search import TraceSearch
from collector.store.writer import StoreWriter

CLICKHOUSE_URL = os.environ.get("OBS_TEST_CLICKHOUSE_URL", "")
_CHDB_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / f"obs-store-tests-{os.getpid()}"


@pytest.fixture(
    params=[
        "chdb",
        pytest.param(
            "clickhouse",
            marks=pytest.mark.skipif(
                not CLICKHOUSE_URL,
                reason="no ClickHouse server: set OBS_TEST_CLICKHOUSE_URL=http://user:pass@host:8123/ to run "
                "this suite against one",
            ),
        ),
    ]
)
def engine(request: pytest.FixtureRequest) -> Engine:
    if request.param == "chdb":
        from collector.store.chdb_engine import ChdbEngine

        return ChdbEngine.shared(_CHDB_DIR)
    from collector.store.clickhouse_engine import ClickHouseEngine

    return ClickHouseEngine(CLICKHOUSE_URL)


@pytest.fixture
def db(engine: Engine) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    migrate(engine, name)
    yield name
    engine.command(f"DROP DATABASE IF EXISTS {name}")


def _kv(key: str, **value: object) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))  # type: ignore[arg-type]


def _trace_request(trace_id: bytes, service: str, n: int, base_ns: int) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(_kv("service.name", string_value=service))
    ss = rs.scope_spans.add()
    for i in range(n):
        span = ss.spans.add()
        span.trace_id = trace_id
        span.span_id = (i + 1).to_bytes(8, "big")
        if i:
            span.parent_span_id = (1).to_bytes(8, "big")
        span.name = "root" if i == 0 else f"child-{i}"
        span.kind = 2 if i == 0 else 3
        span.start_time_unix_nano = base_ns + i * 1000
        span.end_time_unix_nano = base_ns + i * 1000 + (i + 1) * 1_000_000
        span.attributes.append(_kv("n", int_value=i))
        span.attributes.append(_kv("ratio", double_value=i / 4))
        span.attributes.append(_kv("http.route", string_value=f"/r/{i}"))
        if i == 2:
            span.status.code = 2
            span.status.message = "boom"
    return req


def test_migrations_are_recorded_once(engine: Engine, db: str) -> None:
    assert migrate(engine, db) == []
    versions = engine.query(f"SELECT Version FROM {db}.schema_migrations ORDER BY Version").column(0).to_pylist()
    assert versions == [m.version for m in MIGRATIONS]


def test_retention_sets_and_removes_ttl(engine: Engine, db: str) -> None:
    apply_retention(engine, db, RetentionSettings(traces=3600, logs=0, metrics=86400))
    tables = {
        r["name"]: r["engine_full"]
        for r in engine.query(
            "SELECT name, engine_full FROM system.tables WHERE database = {d:String}", {"d": db}
        ).to_pylist()
    }
    assert "toIntervalSecond(3600)" in tables["otel_traces"]
    assert "TTL" not in tables["otel_logs"]
    assert "toIntervalSecond(86400)" in tables["metrics_samples"]
    apply_retention(engine, db, RetentionSettings(traces=0, logs=0, metrics=0))
    engine_full = (
        engine.query(
            "SELECT engine_full FROM system.tables WHERE database = {d:String} AND name = 'otel_traces'", {"d": db}
        )
        .column(0)[0]
        .as_py()
    )
    assert "TTL" not in engine_full


def test_spans_round_trip_and_search(engine: Engine, db: str) -> None:
    writer, reader = StoreWriter(engine, db), StoreReader(engine, db)
    base = 1_700_000_000_000_000_000
    tid = uuid.uuid4().bytes
    batch, rejected = decode_traces(_trace_request(tid, "orders", 4, base), TimeWindow())
    assert rejected.count == 0
    writer.write_spans([batch.to_arrow()])
    spans = reader.trace(tid.hex())
    assert [s["name"] for s in spans] == ["root", "child-1", "child-2", "child-3"]
    assert spans[1]["attributes"] == {"n": 1, "ratio": 0.25, "http.route": "/r/1"}
    assert spans[1]["parent_span_id"] == (1).to_bytes(8, "big").hex()
    assert spans[2]["status"] == {"code": "Error", "message": "boom"}
    assert int(spans[3]["start_time_unix_nano"]) == base + 3000
    assert reader.trace(uuid.uuid4().hex) == []

    other = uuid.uuid4().bytes
    batch2, _ = decode_traces(_trace_request(other, "payments", 2, base + 10**9), TimeWindow())
    writer.write_spans([batch2.to_arrow()])
    found = reader.search_traces(TraceQuery(limit=10))
    assert [t["trace_id"] for t in found] == [other.hex(), tid.hex()]  # newest first
    assert found[1]["root_service"] == "orders" and found[1]["span_count"] == 4 and found[1]["error_count"] == 1
    assert [t["trace_id"] for t in reader.search_traces(TraceQuery(service="orders"))] == [tid.hex()]
    assert [t["trace_id"] for t in reader.search_traces(TraceQuery(status="error"))] == [tid.hex()]
    by_duration = reader.search_traces(TraceQuery(min_duration_ns=3_500_000))
    assert [t["trace_id"] for t in by_duration] == [tid.hex()]
    assert (
        reader.search_traces(TraceQuery(attributes=[("http.route", "/r/1")], service="payments"))[0]["trace_id"]
        == other.hex()
    )
    hostile = "x' OR 1=1 --\\"
    assert reader.search_traces(TraceQuery(service=hostile, attributes=[(hostile, hostile)])) == []
    services = {s["name"]: s["operations"] for s in reader.services()}
    assert services == {"orders": ["child-1", "child-2", "child-3", "root"], "payments": ["child-1", "root"]}


class RecordingEngine:
    """The real engine, keeping every query it is sent, so a test can EXPLAIN the SQL a reader ran."""

    def __init__(self, engine: Engine) -> None:
        self.name = engine.name
        self._engine = engine
        self.queries: list[tuple[str, dict[str, Any]]] = []

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._engine.command(sql, params)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        self.queries.append((sql, dict(params or {})))
        return self._engine.query(sql, params)

    def query_columns(self, sql: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self._engine.query_columns(sql, params)

    def insert(self, table: str, data: pa.Table) -> None:
        self._engine.insert(table, data)

    def close(self) -> None:
        self._engine.close()


# Trace-by-id readers: (engine, database, trace id) -> [(span id, start ns)] in the order read.
TRACE_READERS: dict[str, Callable[[Engine, str, str], list[tuple[str, int]]]] = {
    "trace_search": lambda e, db, tid: [(s.span_id, s.start_ns) for s in TraceSearch(e, db).trace(tid)],
    "store_reader": lambda e, db, tid: [
        (s["span_id"], int(s["start_time_unix_nano"])) for s in StoreReader(e, db).trace(tid)
    ],
}


@functools.cache
def _other_orders_spans(base_ns: int) -> pa.Table:
    """10,000 spans: 1,000 traces of 10 spans of the service "orders", over four seconds from base_ns."""
    others = ExportTraceServiceRequest()
    for i in range(1000):
        others.resource_spans.extend(
            _trace_request(uuid.uuid4().bytes, "orders", 10, base_ns + (i % 4) * 10**9).resource_spans
        )
    return decode_traces(others, TimeWindow())[0].to_arrow()


def _write_traces(engine: Engine, db: str) -> dict[str, list[tuple[str, int]]]:
    """Four traces of the service "orders" in five inserts (one trace's spans arrive in two), each insert
    with 10,000 spans of 1,000 other traces of that service, so that in each part the table's order
    (service, span name, second) puts a trace's child spans in its first granule of 8,192 rows and its
    root span in the second, while the projection's order keeps the trace in one granule (the four ids
    sort before any other). Parts are Wide, as in a store of any size (a small Compact part is one
    granule). Returns each trace's (span id, start ns) in start order."""
    engine.command(f"ALTER TABLE {db}.otel_traces MODIFY SETTING min_bytes_for_wide_part = 0")
    writer = StoreWriter(engine, db)
    base = 1_700_000_000_000_000_000
    filler = _other_orders_spans(base)
    ids = [bytes(15) + bytes([i + 1]) for i in range(4)]
    requests = [
        _trace_request(tid, "orders", n, base + i * 10**9)
        for i, (tid, n) in enumerate(zip(ids, [5, 3, 7, 2], strict=True))
    ]
    late = _trace_request(ids[0], "orders", 3, base + 2 * 10**9 + 500)  # the same trace, later
    for k, span in enumerate(late.resource_spans[0].scope_spans[0].spans):
        span.span_id = (100 + k).to_bytes(8, "big")
    spans: dict[str, list[tuple[str, int]]] = {}
    for req in [*requests, late]:
        table = decode_traces(req, TimeWindow())[0].to_arrow()
        writer.write_spans([filler, table])
        for row in table.select(["TraceId", "SpanId", "Timestamp"]).to_pylist():
            spans.setdefault(row["TraceId"], []).append((row["SpanId"], row["Timestamp"].value))
    return {tid: sorted(rows, key=lambda r: (r[1], r[0])) for tid, rows in spans.items()}


def _read_with_projection(
    engine: Engine, db: str, read: Callable[[Engine, str, str], list[tuple[str, int]]], tid: str
) -> list[tuple[str, int]]:
    """Read one trace, check that its span read uses the by_trace_id projection (EXPLAIN) and gives the
    same rows as the table itself; returns the spans read."""
    recording = RecordingEngine(engine)
    spans = read(recording, db, tid)
    [(sql, params)] = [(q, p) for q, p in recording.queries if f"FROM {db}.otel_traces WHERE" in q]
    plan = "\n".join(engine.query("EXPLAIN indexes = 1 " + sql, params).column(0).to_pylist())
    assert "by_trace_id" in plan, plan
    assert (
        engine.query(sql, params).to_pylist()
        == engine.query(sql + " SETTINGS optimize_use_projections = 0", params).to_pylist()
    )
    return spans


def _wait_for_mutations(engine: Engine, db: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    sql = "SELECT count() FROM system.mutations WHERE database = {d:String} AND NOT is_done"
    while engine.query(sql, {"d": db}).column(0)[0].as_py():
        assert time.monotonic() < deadline, f"mutations of {db} still running after {timeout} s"
        time.sleep(0.05)


def _parts_without_projection(engine: Engine, db: str) -> int:
    sql = (
        "SELECT countIf(NOT has(projections, 'by_trace_id')) FROM system.parts "
        "WHERE active AND database = {d:String} AND table = 'otel_traces'"
    )
    return int(engine.query(sql, {"d": db}).column(0)[0].as_py())


@pytest.mark.parametrize("read", TRACE_READERS.values(), ids=TRACE_READERS.keys())
def test_trace_by_id_reads_spans_ordered_by_trace_id(
    engine: Engine, db: str, read: Callable[[Engine, str, str], list[tuple[str, int]]]
) -> None:
    expected = _write_traces(engine, db)
    assert _parts_without_projection(engine, db) == 0
    for tid, spans in expected.items():
        assert _read_with_projection(engine, db, read, tid) == spans
    assert read(engine, db, uuid.uuid4().hex) == []


@pytest.mark.parametrize("read", TRACE_READERS.values(), ids=TRACE_READERS.keys())
def test_migration_7_gives_spans_already_stored_the_projection(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, read: Callable[[Engine, str, str], list[tuple[str, int]]]
) -> None:
    db = f"t_{uuid.uuid4().hex[:12]}"
    monkeypatch.setattr(schema, "MIGRATIONS", tuple(m for m in MIGRATIONS if m.version < 7))
    migrate(engine, db)
    try:
        expected = _write_traces(engine, db)
        assert _parts_without_projection(engine, db) > 0
        monkeypatch.undo()
        assert migrate(engine, db) == [7]
        # Whatever part the background mutation has reached, reads give the same spans.
        assert {tid: read(engine, db, tid) for tid in expected} == expected
        _wait_for_mutations(engine, db)
        assert _parts_without_projection(engine, db) == 0
        for tid, spans in expected.items():
            assert _read_with_projection(engine, db, read, tid) == spans
    finally:
        engine.command(f"DROP DATABASE IF EXISTS {db}")


def test_logs_round_trip_and_filters(engine: Engine, db: str) -> None:
    writer, reader = StoreWriter(engine, db), StoreReader(engine, db)
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.append(_kv("service.name", string_value="gateway"))
    sl = rl.scope_logs.add()
    tid = uuid.uuid4().bytes
    for i, (sev, text) in enumerate([(9, "INFO"), (13, "WARN"), (17, "ERROR")]):
        rec = sl.log_records.add()
        rec.time_unix_nano = 1_700_000_000_000_000_000 + i
        rec.severity_number = sev  # type: ignore[assignment]
        rec.severity_text = text
        rec.body.string_value = f"request {i} took {i * 10}ms"
        if i == 2:
            rec.trace_id = tid
            rec.span_id = b"\x01" * 8
        rec.attributes.append(_kv("i", int_value=i))
    batch, _ = decode_logs(req, TimeWindow())
    writer.write_logs([batch.to_arrow()])
    assert [r["body"] for r in reader.search_logs(LogQuery(backward=False))] == [
        "request 0 took 0ms",
        "request 1 took 10ms",
        "request 2 took 20ms",
    ]
    assert [r["severity_text"] for r in reader.search_logs(LogQuery(severity="warn"))] == ["ERROR", "WARN"]
    assert [r["attributes"]["i"] for r in reader.search_logs(LogQuery(trace_id=tid.hex()))] == [2]
    assert len(reader.search_logs(LogQuery(contains="took 10"))) == 1
    assert len(reader.search_logs(LogQuery(regex=r"took [12]0ms"))) == 2
    assert len(reader.search_logs(LogQuery(attributes=[("i", "1")]))) == 1
    assert reader.search_logs(LogQuery(contains="'; DROP TABLE x; --")) == []


def test_metric_series_samples_and_exemplars(engine: Engine, db: str) -> None:
    writer, reader = StoreWriter(engine, db), StoreReader(engine, db)
    batch = MetricBatch()
    fp = batch.add_sample({"__name__": "http_requests_total", "job": "api", "code": "200"}, 1000, 1.0)
    batch.add_sample({"__name__": "http_requests_total", "job": "api", "code": "200"}, 2000, 3.0)
    batch.add_sample({"__name__": "http_requests_total", "job": "api", "code": "500"}, 2000, 1.0)
    batch.add_exemplar(fp, 2000, 1.0, "ab" * 16, "cd" * 8, {"user": "u1"})
    batch.metadata["http_requests"] = MetricMetadata("http_requests", "counter", "Requests.", "")
    writer.write_metrics([batch])
    writer.write_metrics([batch])  # series and metadata written once, samples twice
    got = reader.series("http_requests_total", [("code", "200")], 0, 10_000)
    assert len(got) == 1
    assert got[0]["labels"] == {"__name__": "http_requests_total", "job": "api", "code": "200"}
    assert got[0]["samples"] == [[1000, "1.0"], [1000, "1.0"], [2000, "3.0"], [2000, "3.0"]]
    assert got[0]["exemplars"][0]["trace_id"] == "ab" * 16
    assert got[0]["exemplars"][0]["labels"] == {"user": "u1"}
    assert len(reader.series("http_requests_total", [], 0, 10_000)) == 2
    rows = engine.query(f"SELECT count() FROM {db}.metrics_series").column(0)[0].as_py()
    assert rows == 2


def test_line_protocol_samples_read_back_in_their_field_type(engine: Engine, db: str) -> None:
    """Field types recorded per write target come back on the series that target wrote, and seed the rule."""
    writer, reader = StoreWriter(engine, db), StoreReader(engine, db)
    body = (
        b"m,h=a i=-9007199254740993i,u=18446744073709551615u,b=true,f=1.5 1000000\n"
        b"m,h=a i=42i,u=0u,b=false,f=-0.0 2000000\n"
    )
    columns, _ = LineScanner().parse(body, "ns", 0)
    types = FieldTypes()
    for labels in ({"db": "d"}, {"bucket": "b"}):
        samples = columns_to_samples(columns, labels)
        scope = write_scope(labels)
        writer.write_field_types(scope, labels, types.check(samples, scope).new_types)
        writer.write_metrics([samples.batch])
    batch = MetricBatch()  # a scraped series of the same name, no write target: floats
    batch.add_sample({"__name__": "m_i", "job": "scrape"}, 1, 7.0)
    writer.write_metrics([batch])

    def read(metric: str, label: tuple[str, str]) -> tuple[str, list[list[object]]]:
        [found] = reader.series(metric, [label], 0, 10_000)
        return found["type"], found["samples"]

    for label in (("db", "d"), ("bucket", "b")):
        # integers beyond 2**53 come back exactly (metrics_exact_integers), not as the nearest double
        assert read("m_i", label) == ("integer", [[1, -9007199254740993], [2, 42]])
        assert read("m_u", label) == ("unsigned", [[1, 18446744073709551615], [2, 0]])
        assert read("m_b", label) == ("boolean", [[1, True], [2, False]])
        assert read("m_f", label) == ("float", [[1, "1.5"], [2, "-0.0"]])
    assert read("m_i", ("job", "scrape")) == ("float", [[1, "7.0"]])
    assert all(type(v) is int for _, v in reader.series("m_i", [("db", "d")], 0, 10_000)[0]["samples"])
    assert sorted(reader.field_types()) == sorted(
        (scope, metric, kind)
        for scope in ("bucket=b", "db=d")
        for metric, kind in (("m_i", "integer"), ("m_u", "unsigned"), ("m_b", "boolean"), ("m_f", "float"))
    )
    seeded = FieldTypes(reader.field_types())
    again, _ = LineScanner().parse(b"m,h=z i=1.5 3000000", "ns", 0)
    assert seeded.check(columns_to_samples(again, {"db": "d"}), "db=d").dropped_lines == [1]


# (field, value as written): the edges of int64 and uint64 and around 2**53, exact or not as a double
EXACT_CASES = [
    ("i", 2**63 - 1),
    ("i", -(2**63)),
    ("i", -(2**63) + 1),
    ("i", 2**53 + 1),
    ("i", -(2**53) - 1),
    ("i", 2**53 - 1),
    ("i", 2**53),
    ("u", 2**64 - 1),
    ("u", 2**63 + 1),
    ("u", 2**53 + 1),
    ("u", 2**53 + 2),
]


@pytest.mark.parametrize("use_c", [True, False], ids=["c", "python"])
def test_integers_beyond_2_53_round_trip_exactly(engine: Engine, db: str, use_c: bool) -> None:
    """Exact values survive the writer, the series limits and field type rule dropping rows around
    them, and duplicate samples; only the samples a double rounds get a row of their own; PromQL's read
    of the samples keeps the doubles."""
    writer, reader = StoreWriter(engine, db), StoreReader(engine, db)
    labels = {"db": "d"}
    lines = [f"m,h=a {fld}={value}{fld} {t + 1}000000" for t, (fld, value) in enumerate(EXACT_CASES)]
    lines.insert(3, f"m,h=a i=1.5 {len(EXACT_CASES) + 1}000000")  # a field type conflict: its line is dropped
    body = "\n".join(lines).encode()
    columns, errors = LineScanner(use_c=use_c).parse(body, "ns", 0)
    assert errors == []
    samples = columns_to_samples(columns, labels)
    types = FieldTypes()
    typed = types.check(samples, write_scope(labels))
    assert len(typed.dropped_lines) == 1
    writer.write_field_types(write_scope(labels), labels, typed.new_types)
    limits = SeriesLimits(100, 0)
    first = limits.apply(typed.samples.batch)
    writer.write_metrics([first.batch])
    first.commit()
    # The same body again: every sample is a repeat of the newest, dropped by the limits; the batch a
    # retry would write after a restart (no limits state) is stored twice and still reads back once each.
    assert len(limits.apply(typed.samples.batch).batch) == 0
    writer.write_metrics([typed.samples.batch])

    expected: dict[str, list[list[int]]] = {fld: [] for fld in ("i", "u")}
    for t, (fld, value) in enumerate(EXACT_CASES):
        expected[fld] += [[t + 1, value], [t + 1, value]]
    for fld in ("i", "u"):
        [found] = reader.series(f"m_{fld}", [("h", "a")], 0, 100)
        assert found["type"] == {"i": "integer", "u": "unsigned"}[fld]
        assert found["samples"] == expected[fld]
        assert all(type(v) is int for _, v in found["samples"])
    stored = engine.query(
        f"SELECT MetricName, TimestampMs, toString(Value) AS V, FieldType FROM {db}.metrics_exact_integers "
        "ORDER BY TimestampMs"
    ).to_pylist()
    rounded = [(t + 1, fld, value) for t, (fld, value) in enumerate(EXACT_CASES) if float(value) != value]
    assert [(r["TimestampMs"], r["MetricName"], int(r["V"])) for r in stored] == [
        (t, f"m_{fld}", value) for t, fld, value in rounded for _ in range(2)
    ]
    assert {r["FieldType"] for r in stored} == {"integer", "unsigned"}
    doubles = engine.query(f"SELECT Value FROM {db}.metrics_samples WHERE MetricName = 'm_u' ORDER BY TimestampMs")
    assert sorted(set(doubles.column("Value").to_pylist())) == sorted({float(v) for f, v in EXACT_CASES if f == "u"})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(), items=st.lists(st.text(), max_size=4))
def test_hostile_strings_reach_sql_only_as_values(engine: Engine, text: str, items: list[str]) -> None:
    """Every string a query takes from a user comes back unchanged: it never became SQL text."""
    row = engine.query(
        "SELECT {v:String} AS v, {a:Array(String)} AS a, {v:String} = 'x' OR 1 = 1 AS c",
        {"v": text, "a": items},
    ).to_pylist()[0]
    assert row["v"] == text
    assert row["a"] == items
