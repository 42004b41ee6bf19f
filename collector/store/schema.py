"""Versioned schema migrations and retention (TTL), applied at startup before anything is accepted.

Traces and logs use the column layout of the OpenTelemetry Collector's ClickHouse exporter
(`otel_traces`, `otel_traces_trace_id_ts`, `otel_logs`; the lookup table is filled by our writer rather
than the exporter's materialized view, see migration 4), plus a few columns
of ours that such readers ignore: `*AttributeTypes` maps keep the OTLP type of non-string attribute
values, `BodyType` the type of a non-string log body, `ObservedTimestamp` the log's observed time.
Metrics use a Prometheus-style model: series (fingerprint -> labels), samples, exemplars, metadata.

A migration is never edited once released: add a new one. The applied versions are recorded in
`schema_migrations`, so a restart (or a second collector on the same server) applies each once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from collector.config import RetentionSettings
from collector.store.engine import Engine


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


_TRACES = """
CREATE TABLE IF NOT EXISTS {db}.otel_traces (
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ResourceAttributeTypes Map(LowCardinality(String), LowCardinality(String)) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    SpanAttributeTypes Map(LowCardinality(String), LowCardinality(String)) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String),
        AttributeTypes Map(LowCardinality(String), LowCardinality(String))
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String),
        AttributeTypes Map(LowCardinality(String), LowCardinality(String))
    ) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1
) ENGINE = MergeTree
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
"""

_TRACE_ID_TS = """
CREATE TABLE IF NOT EXISTS {db}.otel_traces_trace_id_ts (
    TraceId String CODEC(ZSTD(1)),
    Start DateTime CODEC(Delta, ZSTD(1)),
    End DateTime CODEC(Delta, ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = MergeTree
PARTITION BY toDate(Start)
ORDER BY (TraceId, Start)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
"""

_TRACE_ID_TS_MV = """
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.otel_traces_trace_id_ts_mv
TO {db}.otel_traces_trace_id_ts
AS SELECT TraceId, min(Timestamp) AS Start, max(Timestamp) AS End
FROM {db}.otel_traces
WHERE TraceId != ''
GROUP BY TraceId
"""

_LOGS = """
CREATE TABLE IF NOT EXISTS {db}.otel_logs (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TimestampTime DateTime DEFAULT toDateTime(Timestamp),
    ObservedTimestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    TraceFlags UInt8,
    SeverityText LowCardinality(String) CODEC(ZSTD(1)),
    SeverityNumber UInt8,
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Body String CODEC(ZSTD(1)),
    BodyType LowCardinality(String) CODEC(ZSTD(1)),
    ResourceSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ResourceAttributeTypes Map(LowCardinality(String), LowCardinality(String)) CODEC(ZSTD(1)),
    ScopeSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion LowCardinality(String) CODEC(ZSTD(1)),
    ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeAttributeTypes Map(LowCardinality(String), LowCardinality(String)) CODEC(ZSTD(1)),
    LogAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    LogAttributeTypes Map(LowCardinality(String), LowCardinality(String)) CODEC(ZSTD(1)),
    EventName String CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_log_attr_value mapValues(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_body Body TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8
) ENGINE = MergeTree
PARTITION BY toDate(TimestampTime)
PRIMARY KEY (ServiceName, TimestampTime)
ORDER BY (ServiceName, TimestampTime, Timestamp)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
"""

# Series are written once per fingerprint (and again daily, so TTL keeps the live ones);
# ReplacingMergeTree folds the repeats.
_SERIES = """
CREATE TABLE IF NOT EXISTS {db}.metrics_series (
    MetricName LowCardinality(String),
    Fingerprint UInt64,
    Labels Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Updated DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(Updated)
ORDER BY (MetricName, Fingerprint)
"""

_SAMPLES = """
CREATE TABLE IF NOT EXISTS {db}.metrics_samples (
    MetricName LowCardinality(String),
    Fingerprint UInt64,
    TimestampMs Int64 CODEC(DoubleDelta, ZSTD(1)),
    Value Float64 CODEC(Gorilla, ZSTD(1))
) ENGINE = MergeTree
PARTITION BY toDate(fromUnixTimestamp64Milli(TimestampMs))
ORDER BY (MetricName, Fingerprint, TimestampMs)
SETTINGS ttl_only_drop_parts = 1
"""

_EXEMPLARS = """
CREATE TABLE IF NOT EXISTS {db}.metrics_exemplars (
    MetricName LowCardinality(String),
    Fingerprint UInt64,
    TimestampMs Int64 CODEC(DoubleDelta, ZSTD(1)),
    Value Float64,
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    Labels Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1
) ENGINE = MergeTree
PARTITION BY toDate(fromUnixTimestamp64Milli(TimestampMs))
ORDER BY (MetricName, Fingerprint, TimestampMs)
SETTINGS ttl_only_drop_parts = 1
"""

_METADATA = """
CREATE TABLE IF NOT EXISTS {db}.metrics_metadata (
    MetricName String,
    Type LowCardinality(String),
    Help String,
    Unit LowCardinality(String),
    Updated DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(Updated)
ORDER BY MetricName
"""

# The type of each line protocol field (InfluxDB's names: float, integer, unsigned, boolean, string),
# per write target (`Scope`, canonical `db=d,rp=r` or `bucket=b`; `ScopeLabels` the same as labels,
# which the target's series carry) and metric: what makes a conflicting write refusable after a restart
# and lets readers give values back in their type (pipeline/field_types.py). Written once per type.
_FIELD_TYPES = """
CREATE TABLE IF NOT EXISTS {db}.metrics_field_types (
    MetricName String,
    Scope String,
    ScopeLabels Map(String, String),
    FieldType LowCardinality(String),
    Updated DateTime64(3) DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(Updated)
ORDER BY (MetricName, Scope)
"""

# Line protocol integer and unsigned values that their Float64 sample holds only rounded (beyond 2**53
# in magnitude: counters, byte totals, ids), exactly: Decimal(20, 0) holds every int64 and uint64.
# Rare, so a table apart keeps the samples table and its hot path as they are; written before the
# samples of the same insert, so a sample is never visible without its exact value. The native read
# (`/api/obs/metrics/series`) puts them over the samples with the same series, time and rounded value;
# PromQL reads the doubles, as Prometheus would.
_EXACT_INTEGERS = """
CREATE TABLE IF NOT EXISTS {db}.metrics_exact_integers (
    MetricName LowCardinality(String),
    Fingerprint UInt64,
    TimestampMs Int64 CODEC(DoubleDelta, ZSTD(1)),
    Value Decimal(20, 0),
    FieldType LowCardinality(String)
) ENGINE = MergeTree
PARTITION BY toDate(fromUnixTimestamp64Milli(TimestampMs))
ORDER BY (MetricName, Fingerprint, TimestampMs)
SETTINGS ttl_only_drop_parts = 1
"""

# A second copy of the spans, sorted by trace id, for trace-by-id reads. In the table's own order
# (service, span name, second) one trace's spans sit in 5-10 granules of 8,192 rows, each read whole
# with every wide column; in this copy they are one or two granules of one part. Measured on 10M
# spans (2 cores, chDB 26.9): TraceSearch.trace 56 -> 25 ms median, lookup included. The cost: the
# copy (363 MB beside the table's 365 MB) and its writing (inserting 1M spans in 5,000-span inserts,
# merges included: 12 -> 18 CPU s); bench/otlp_ingest moved within its run-to-run noise (median of
# eight runs 46,100 spans/s with it, 46,300 without; collector CPU +3%), bench/logs_traces' 10M-span
# ingest took 21.7 collector CPU s a million spans against 17.3 in the run before. A projection of
# `_part_offset` only (an index; ClickHouse >= 25.5) left the read at 57 ms: it selects the granules
# the bloom filter already does. The optimizer picks by_trace_id by itself (fewer marks to read);
# the read SQL is unchanged. New parts get it on insert. Parts already stored get it from a mutation
# in the background (22 s for the 10M spans), which the migration does not wait for (chDB's
# mutations_sync defaults to 1); until it reaches a part, that part is read as before. A retention
# change in the same start waits for it: ALTER ... MODIFY TTL queues behind it. Plain projection
# SQL, valid on ClickHouse server too.
_TRACES_BY_TRACE_ID = (
    "ALTER TABLE {db}.otel_traces ADD PROJECTION IF NOT EXISTS by_trace_id (SELECT * ORDER BY TraceId)"
)
_MATERIALIZE_TRACES_BY_TRACE_ID = (
    "ALTER TABLE {db}.otel_traces MATERIALIZE PROJECTION by_trace_id SETTINGS mutations_sync = 0"
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "traces", (_TRACES, _TRACE_ID_TS, _TRACE_ID_TS_MV)),
    Migration(2, "logs", (_LOGS,)),
    Migration(3, "metrics", (_SERIES, _SAMPLES, _EXEMPLARS, _METADATA)),
    # The writer fills otel_traces_trace_id_ts itself (an Arrow group-by per insert): the view's
    # GROUP BY cost a quarter of the insert's CPU. The table and its rows are the same as before.
    Migration(4, "trace id lookup written by the collector", ("DROP VIEW IF EXISTS {db}.otel_traces_trace_id_ts_mv",)),
    Migration(5, "line protocol field types", (_FIELD_TYPES,)),
    Migration(6, "exact integers beyond 2**53", (_EXACT_INTEGERS,)),
    Migration(7, "spans ordered by trace id", (_TRACES_BY_TRACE_ID, _MATERIALIZE_TRACES_BY_TRACE_ID)),
)

# table -> (retention key, TTL column expression)
_TTL_TABLES = {
    "otel_traces": ("traces", "toDateTime(Timestamp)"),
    "otel_traces_trace_id_ts": ("traces", "Start"),
    "otel_logs": ("logs", "TimestampTime"),
    "metrics_samples": ("metrics", "toDateTime(intDiv(TimestampMs, 1000))"),
    "metrics_exemplars": ("metrics", "toDateTime(intDiv(TimestampMs, 1000))"),
    "metrics_exact_integers": ("metrics", "toDateTime(intDiv(TimestampMs, 1000))"),
    "metrics_series": ("metrics", "Updated"),
}


def migrate(engine: Engine, database: str, log: Callable[[str], None] = lambda _msg: None) -> list[int]:
    """Create the database and apply the migrations not yet recorded; returns the versions applied."""
    engine.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    engine.command(
        f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations "
        "(Version UInt32, Name String, AppliedAt DateTime DEFAULT now()) ENGINE = MergeTree ORDER BY Version"
    )
    done = set(engine.query(f"SELECT Version FROM {database}.schema_migrations").column("Version").to_pylist())
    applied = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        for statement in migration.statements:
            engine.command(statement.format(db=database))
        engine.command(
            f"INSERT INTO {database}.schema_migrations (Version, Name) VALUES ({{v:UInt32}}, {{n:String}})",
            {"v": migration.version, "n": migration.name},
        )
        log(f"applied schema migration {migration.version} ({migration.name})")
        applied.append(migration.version)
    return applied


def apply_retention(engine: Engine, database: str, retention: RetentionSettings) -> None:
    """Make each table's TTL match the configured retention (0 removes it). Idempotent and cheap."""
    rows = engine.query(
        "SELECT name, engine_full FROM system.tables WHERE database = {db:String}", {"db": database}
    ).to_pylist()
    current = {row["name"]: row["engine_full"] for row in rows}
    for table, (signal, column) in _TTL_TABLES.items():
        seconds = int(getattr(retention, signal))
        engine_full = current.get(table, "")
        if seconds:
            clause = f"{column} + toIntervalSecond({seconds})"
            if f"toIntervalSecond({seconds})" in engine_full:
                continue
            # Don't rewrite existing parts now: expired parts are dropped whole as merges come by.
            engine.command(
                f"ALTER TABLE {database}.{table} MODIFY TTL {clause}",
            )
        elif "TTL" in engine_full:
            engine.command(f"ALTER TABLE {database}.{table} REMOVE TTL")


# Tables that take a insert per group commit. With ClickHouse's default merge_selector_base (5) many
# small parts get merged again and again: measured here (bench/otlp_ingest load shape, 3,000-span
# inserts) merges took half the collector's CPU, 37 us a span in all; with 50, 18 us a span, and
# still under ten active parts after 600,000 spans.
_MERGE_TUNED_TABLES = ("otel_traces", "otel_traces_trace_id_ts", "otel_logs", "metrics_samples", "metrics_exemplars")
MERGE_SELECTOR_BASE = 50


def tune_merges(engine: Engine, database: str, log: Callable[[str], None] = lambda _msg: None) -> None:
    """Lower merge write amplification; a ClickHouse server too old for the setting keeps its default."""
    for table in _MERGE_TUNED_TABLES:
        try:
            engine.command(f"ALTER TABLE {database}.{table} MODIFY SETTING merge_selector_base = {MERGE_SELECTOR_BASE}")
        except Exception as exc:  # the setting exists from ClickHouse 24.x on
            log(f"{table}: keeping the default merge selector ({exc})")
            return


def wait_ready(engine: Engine, attempts: int = 30, delay: float = 1.0) -> None:
    """Block until the engine answers a trivial query (a ClickHouse server may still be starting)."""
    for attempt in range(attempts):
        try:
            engine.query("SELECT 1")
            return
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(delay)
