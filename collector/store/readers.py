"""Reads traces, logs and metric series back from the store, as plain typed Python values.

Every value from a caller reaches SQL as a bound parameter, never as SQL text. Timestamps come back as
integer nanoseconds (metric samples: milliseconds); attribute values get back the OTLP type they were
sent with (see model.py for the ...AttributeTypes maps); line protocol samples the field type they
were written with (metrics_field_types: integers as ints, booleans as bools), integers beyond 2**53
exactly as written (metrics_exact_integers).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from collector.model import (
    TYPE_ARRAY,
    TYPE_BOOL,
    TYPE_DOUBLE,
    TYPE_EMPTY,
    TYPE_INT,
    TYPE_KVLIST,
    format_double,
)
from collector.store.engine import Engine
from collector.store.log_search import like_escape

# Severity ranges of the OpenTelemetry log data model (SeverityNumber), by level name.
SEVERITY_MIN = {"trace": 1, "debug": 5, "info": 9, "warn": 13, "warning": 13, "error": 17, "fatal": 21}


def typed_value(text: str, tag: str | None) -> Any:
    """A stored attribute value back in its original type."""
    if tag is None or tag == "":
        return text
    if tag == TYPE_INT:
        return int(text)
    if tag == TYPE_DOUBLE:
        return float(text) if text not in ("NaN", "+Inf", "-Inf") else text
    if tag == TYPE_BOOL:
        return text == "true"
    if tag in (TYPE_ARRAY, TYPE_KVLIST):
        return json.loads(text)
    if tag == TYPE_EMPTY:
        return None
    return text  # bytes stay base64 text


def typed_attributes(values: Sequence[tuple[str, str]], types: Sequence[tuple[str, str]]) -> dict[str, Any]:
    tags = dict(types)
    return {key: typed_value(text, tags.get(key)) for key, text in values}


@dataclass
class TraceQuery:
    service: str = ""
    operation: str = ""
    min_duration_ns: int = 0
    max_duration_ns: int = 0
    status: str = ""  # "", "ok", "error", "unset"
    attributes: list[tuple[str, str]] = field(default_factory=list)
    start_ns: int = 0
    end_ns: int = 0
    limit: int = 20


@dataclass
class LogQuery:
    service: str = ""
    severity: str = ""  # a level name (that level and above) or a SeverityNumber minimum
    trace_id: str = ""
    contains: str = ""
    regex: str = ""
    attributes: list[tuple[str, str]] = field(default_factory=list)
    start_ns: int = 0
    end_ns: int = 0
    limit: int = 100
    backward: bool = True
    without_trace_id: bool = False  # only records that carry no trace id


_SPAN_COLUMNS = """
    TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName,
    toUnixTimestamp64Nano(Timestamp) AS StartNs, Duration,
    ResourceAttributes, ResourceAttributeTypes, ScopeName, ScopeVersion,
    SpanAttributes, SpanAttributeTypes, StatusCode, StatusMessage,
    arrayMap(t -> toUnixTimestamp64Nano(t), `Events.Timestamp`) AS EventTimes, `Events.Name` AS EventNames,
    `Events.Attributes` AS EventAttrs, `Events.AttributeTypes` AS EventTypes,
    `Links.TraceId` AS LinkTraceIds, `Links.SpanId` AS LinkSpanIds, `Links.TraceState` AS LinkStates,
    `Links.Attributes` AS LinkAttrs, `Links.AttributeTypes` AS LinkTypes
"""


def _span(row: dict[str, Any]) -> dict[str, Any]:
    start = row["StartNs"]
    return {
        "trace_id": row["TraceId"],
        "span_id": row["SpanId"],
        "parent_span_id": row["ParentSpanId"],
        "trace_state": row["TraceState"],
        "name": row["SpanName"],
        "kind": row["SpanKind"],
        "service": row["ServiceName"],
        "start_time_unix_nano": str(start),
        "end_time_unix_nano": str(start + row["Duration"]),
        "duration_ms": row["Duration"] / 1e6,
        "resource": typed_attributes(row["ResourceAttributes"], row["ResourceAttributeTypes"]),
        "scope": {"name": row["ScopeName"], "version": row["ScopeVersion"]},
        "attributes": typed_attributes(row["SpanAttributes"], row["SpanAttributeTypes"]),
        "status": {"code": row["StatusCode"], "message": row["StatusMessage"]},
        "events": [
            {"time_unix_nano": str(t), "name": n, "attributes": typed_attributes(a, ty)}
            for t, n, a, ty in zip(
                row["EventTimes"], row["EventNames"], row["EventAttrs"], row["EventTypes"], strict=True
            )
        ],
        "links": [
            {"trace_id": t, "span_id": s, "trace_state": st, "attributes": typed_attributes(a, ty)}
            for t, s, st, a, ty in zip(
                row["LinkTraceIds"],
                row["LinkSpanIds"],
                row["LinkStates"],
                row["LinkAttrs"],
                row["LinkTypes"],
                strict=True,
            )
        ],
    }


# Integers up to this magnitude are exactly their double; beyond it, a sample may have an exact value.
_DOUBLE_EXACT_LIMIT = float(2**53)
_INTEGER_TYPES = ("integer", "unsigned")


def typed_sample(value: float, field_type: str, exact: int | None = None) -> Any:
    """A stored sample value in its line protocol field type: integer and unsigned as int (`exact`,
    when the double rounds the integer written: that integer), boolean as bool, float as
    format_double text."""
    if field_type in _INTEGER_TYPES and math.isfinite(value):
        return int(value) if exact is None else exact
    if field_type == "boolean":
        return value != 0.0
    return format_double(value)


def _field_type(labels: dict[str, str], types: list[dict[str, Any]]) -> str:
    """The field type of a series: that of the most specific write target its labels match ("float",
    the Prometheus sample type, when none does: scraped, remote-written and OTLP series)."""
    best, size = "float", -1
    for t in types:
        scope = dict(t["ScopeLabels"])
        if len(scope) > size and all(labels.get(k) == v for k, v in scope.items()):
            best, size = t["FieldType"], len(scope)
    return best


class StoreReader:
    def __init__(self, engine: Engine, database: str) -> None:
        self._engine = engine
        self._db = database

    def _rows(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self._engine.query(sql.replace("{db}.", f"{self._db}."), params).to_pylist()

    # -- traces -----------------------------------------------------------------------------------

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        """All spans of a trace, ordered by start time; empty when the trace is unknown."""
        bounds = self._rows(
            "SELECT min(Start) AS s, max(End) AS e, count() AS n FROM {db}.otel_traces_trace_id_ts "
            "WHERE TraceId = {id:String}",
            {"id": trace_id},
        )
        if not bounds or not bounds[0]["n"]:
            return []
        rows = self._rows(
            f"SELECT {_SPAN_COLUMNS} FROM {{db}}.otel_traces WHERE TraceId = {{id:String}} "
            "AND Timestamp >= toDateTime64({s:DateTime}, 9) AND Timestamp < toDateTime64({e:DateTime}, 9) + 1 "
            "ORDER BY Timestamp, SpanId",
            {"id": trace_id, "s": bounds[0]["s"], "e": bounds[0]["e"]},
        )
        return [_span(r) for r in rows]

    def search_traces(self, q: TraceQuery) -> list[dict[str, Any]]:
        """Traces with at least one span matching every condition, newest first, as summaries."""
        where: list[str] = ["1"]
        params: dict[str, Any] = {}
        if q.service:
            where.append("ServiceName = {service:String}")
            params["service"] = q.service
        if q.operation:
            where.append("SpanName = {operation:String}")
            params["operation"] = q.operation
        if q.min_duration_ns:
            where.append("Duration >= {mind:UInt64}")
            params["mind"] = q.min_duration_ns
        if q.max_duration_ns:
            where.append("Duration <= {maxd:UInt64}")
            params["maxd"] = q.max_duration_ns
        if q.status:
            where.append("StatusCode = {status:String}")
            params["status"] = q.status.capitalize()
        for i, (key, value) in enumerate(q.attributes):
            where.append(
                f"(SpanAttributes[{{ak{i}:String}}] = {{av{i}:String}} "
                f"OR ResourceAttributes[{{ak{i}:String}}] = {{av{i}:String}})"
            )
            params[f"ak{i}"], params[f"av{i}"] = key, value
        if q.start_ns:
            where.append("Timestamp >= fromUnixTimestamp64Nano({start:Int64})")
            params["start"] = q.start_ns
        if q.end_ns:
            where.append("Timestamp <= fromUnixTimestamp64Nano({end:Int64})")
            params["end"] = q.end_ns
        params["limit"] = q.limit
        ids = self._rows(
            "SELECT TraceId, max(Timestamp) AS t FROM {db}.otel_traces WHERE "
            + " AND ".join(where)
            + " GROUP BY TraceId ORDER BY t DESC LIMIT {limit:UInt32}",
            params,
        )
        if not ids:
            return []
        order = [r["TraceId"] for r in ids]
        summaries = self._rows(
            """SELECT TraceId,
                toUnixTimestamp64Nano(min(Timestamp)) AS StartNs,
                max(toUnixTimestamp64Nano(Timestamp) + Duration) AS EndNs,
                count() AS Spans, countIf(StatusCode = 'Error') AS Errors,
                arraySort(groupUniqArray(ServiceName)) AS Services,
                argMinIf(ServiceName, Timestamp, ParentSpanId = '') AS RootService,
                argMinIf(SpanName, Timestamp, ParentSpanId = '') AS RootName,
                countIf(ParentSpanId = '') AS Roots
            FROM {db}.otel_traces WHERE TraceId IN {ids:Array(String)} GROUP BY TraceId""",
            {"ids": order},
        )
        by_id = {s["TraceId"]: s for s in summaries}
        out = []
        for tid in order:
            s = by_id.get(tid)
            if s is None:
                continue
            out.append(
                {
                    "trace_id": tid,
                    "root_service": s["RootService"] if s["Roots"] else "",
                    "root_name": s["RootName"] if s["Roots"] else "",
                    "start_time_unix_nano": str(s["StartNs"]),
                    "duration_ms": (s["EndNs"] - s["StartNs"]) / 1e6,
                    "span_count": s["Spans"],
                    "error_count": s["Errors"],
                    "services": s["Services"],
                }
            )
        return out

    def services(self, start_ns: int = 0, end_ns: int = 0) -> list[dict[str, Any]]:
        where: list[str] = ["1"]
        params: dict[str, Any] = {}
        if start_ns:
            where.append("Timestamp >= fromUnixTimestamp64Nano({start:Int64})")
            params["start"] = start_ns
        if end_ns:
            where.append("Timestamp <= fromUnixTimestamp64Nano({end:Int64})")
            params["end"] = end_ns
        rows = self._rows(
            "SELECT ServiceName, arraySort(groupUniqArray(SpanName)) AS Ops, count() AS Spans "
            "FROM {db}.otel_traces WHERE " + " AND ".join(where) + " GROUP BY ServiceName ORDER BY ServiceName",
            params,
        )
        return [{"name": r["ServiceName"], "operations": r["Ops"], "span_count": r["Spans"]} for r in rows]

    # -- logs -------------------------------------------------------------------------------------

    def search_logs(self, q: LogQuery) -> list[dict[str, Any]]:
        where: list[str] = ["1"]
        params: dict[str, Any] = {}
        if q.service:
            where.append("ServiceName = {service:String}")
            params["service"] = q.service
        if q.severity:
            level = q.severity.lower()
            minimum = int(level) if level.isdigit() else SEVERITY_MIN[level]
            names = [name for name, low in SEVERITY_MIN.items() if low >= minimum]
            where.append(
                "(SeverityNumber >= {sev:UInt8} "
                "OR (SeverityNumber = 0 AND lower(SeverityText) IN {sevnames:Array(String)}))"
            )
            params["sev"], params["sevnames"] = minimum, names
        if q.trace_id:
            where.append("TraceId = {trace_id:String}")
            params["trace_id"] = q.trace_id
        if q.without_trace_id:
            where.append("TraceId = ''")
        if q.contains:
            where.append("Body LIKE {contains:String}")  # LIKE: the body's token index can skip (log_search)
            params["contains"] = f"%{like_escape(q.contains)}%"
        if q.regex:
            where.append("match(Body, {regex:String})")
            params["regex"] = q.regex
        for i, (key, value) in enumerate(q.attributes):
            where.append(
                f"(LogAttributes[{{ak{i}:String}}] = {{av{i}:String}} "
                f"OR ResourceAttributes[{{ak{i}:String}}] = {{av{i}:String}})"
            )
            params[f"ak{i}"], params[f"av{i}"] = key, value
        if q.start_ns:
            where.append("Timestamp >= fromUnixTimestamp64Nano({start:Int64})")
            params["start"] = q.start_ns
        if q.end_ns:
            where.append("Timestamp <= fromUnixTimestamp64Nano({end:Int64})")
            params["end"] = q.end_ns
        params["limit"] = q.limit
        direction = "DESC" if q.backward else "ASC"
        rows = self._rows(
            """SELECT toUnixTimestamp64Nano(Timestamp) AS Ns, toUnixTimestamp64Nano(ObservedTimestamp) AS ObsNs,
                TraceId, SpanId, TraceFlags, SeverityText, SeverityNumber, ServiceName, Body, BodyType,
                ResourceAttributes, ResourceAttributeTypes, ScopeName, ScopeVersion, ScopeAttributes,
                ScopeAttributeTypes, LogAttributes, LogAttributeTypes, EventName
            FROM {db}.otel_logs WHERE """
            + " AND ".join(where)
            + f" ORDER BY Timestamp {direction} LIMIT {{limit:UInt32}}",
            params,
        )
        return [
            {
                "time_unix_nano": str(r["Ns"]),
                "observed_time_unix_nano": str(r["ObsNs"]),
                "trace_id": r["TraceId"],
                "span_id": r["SpanId"],
                "flags": r["TraceFlags"],
                "severity_text": r["SeverityText"],
                "severity_number": r["SeverityNumber"],
                "service": r["ServiceName"],
                "body": typed_value(r["Body"], r["BodyType"]),
                "event_name": r["EventName"],
                "resource": typed_attributes(r["ResourceAttributes"], r["ResourceAttributeTypes"]),
                "scope": {
                    "name": r["ScopeName"],
                    "version": r["ScopeVersion"],
                    "attributes": typed_attributes(r["ScopeAttributes"], r["ScopeAttributeTypes"]),
                },
                "attributes": typed_attributes(r["LogAttributes"], r["LogAttributeTypes"]),
            }
            for r in rows
        ]

    # -- metrics ----------------------------------------------------------------------------------

    def series(
        self, metric: str, labels: list[tuple[str, str]], start_ms: int, end_ms: int, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Series of one metric whose labels include every given pair, with samples and exemplars."""
        where = ["MetricName = {metric:String}"]
        params: dict[str, Any] = {"metric": metric}
        for i, (key, value) in enumerate(labels):
            where.append(f"Labels[{{lk{i}:String}}] = {{lv{i}:String}}")
            params[f"lk{i}"], params[f"lv{i}"] = key, value
        params["limit"] = limit
        series = self._rows(
            "SELECT Fingerprint, any(Labels) AS SeriesLabels FROM {db}.metrics_series WHERE "
            + " AND ".join(where)
            + " GROUP BY Fingerprint ORDER BY Fingerprint LIMIT {limit:UInt32}",
            params,
        )
        if not series:
            return []
        fps = [s["Fingerprint"] for s in series]
        span = {"metric": metric, "fps": fps, "start": start_ms, "end": end_ms}
        samples = self._rows(
            "SELECT Fingerprint, TimestampMs, Value FROM {db}.metrics_samples WHERE MetricName = {metric:String} "
            "AND Fingerprint IN {fps:Array(UInt64)} AND TimestampMs BETWEEN {start:Int64} AND {end:Int64} "
            "ORDER BY Fingerprint, TimestampMs",
            span,
        )
        exemplars = self._rows(
            "SELECT Fingerprint, TimestampMs, Value, TraceId, SpanId, Labels FROM {db}.metrics_exemplars "
            "WHERE MetricName = {metric:String} AND Fingerprint IN {fps:Array(UInt64)} "
            "AND TimestampMs BETWEEN {start:Int64} AND {end:Int64} ORDER BY Fingerprint, TimestampMs",
            span,
        )
        types = self._rows(
            "SELECT any(ScopeLabels) AS ScopeLabels, argMin(FieldType, Updated) AS FieldType "
            "FROM {db}.metrics_field_types WHERE MetricName = {metric:String} GROUP BY Scope",
            {"metric": metric},
        )
        out: dict[int, dict[str, Any]] = {}
        for s in series:
            series_labels: dict[str, str] = dict(s["SeriesLabels"])
            out[s["Fingerprint"]] = {
                "labels": series_labels,
                "type": _field_type(series_labels, types),
                "samples": [],
                "exemplars": [],
            }
        wide = {
            r["Fingerprint"]
            for r in samples
            if abs(r["Value"]) >= _DOUBLE_EXACT_LIMIT and out[r["Fingerprint"]]["type"] in _INTEGER_TYPES
        }
        exact = self._exact_integers(metric, sorted(wide), start_ms, end_ms) if wide else {}
        for r in samples:
            fp, ts = r["Fingerprint"], r["TimestampMs"]
            found = out[fp]
            value = r["Value"]
            written = exact.get((fp, ts, value)) if exact else None
            found["samples"].append([ts, typed_sample(value, found["type"], written)])
        for r in exemplars:
            out[r["Fingerprint"]]["exemplars"].append(
                {
                    "timestamp_ms": r["TimestampMs"],
                    "value": format_double(r["Value"]),
                    "trace_id": r["TraceId"],
                    "span_id": r["SpanId"],
                    "labels": dict(r["Labels"]),
                }
            )
        return list(out.values())

    def _exact_integers(
        self, metric: str, fps: list[int], start_ms: int, end_ms: int
    ) -> dict[tuple[int, int, float], int]:
        """(fingerprint, time ms, the double the sample holds) -> the integer as written, for the
        integers beyond 2**53 that the samples of `fps` hold rounded. Two different integers written
        at one time that round alike cannot both be samples (the series limits drop the second as a
        repeat), so the key names one value."""
        rows = self._rows(
            "SELECT Fingerprint, TimestampMs, toString(Value) AS Exact FROM {db}.metrics_exact_integers "
            "WHERE MetricName = {metric:String} AND Fingerprint IN {fps:Array(UInt64)} "
            "AND TimestampMs BETWEEN {start:Int64} AND {end:Int64}",
            {"metric": metric, "fps": fps, "start": start_ms, "end": end_ms},
        )
        out = {}
        for r in rows:
            value = int(r["Exact"])  # as text: exact whichever engine reads the Decimal
            out[(r["Fingerprint"], r["TimestampMs"], float(value))] = value
        return out

    def field_types(self) -> list[tuple[str, str, str]]:
        """(write scope, metric name, field type) of every recorded line protocol field, the first type
        recorded winning, to seed the field type rule at startup."""
        rows = self._rows(
            "SELECT Scope, MetricName, argMin(FieldType, Updated) AS FieldType FROM {db}.metrics_field_types "
            "GROUP BY Scope, MetricName",
            {},
        )
        return [(r["Scope"], r["MetricName"], r["FieldType"]) for r in rows]

    def known_series(self) -> list[tuple[int, str]]:
        """(fingerprint, metric name) of every stored series, to seed the series limits at startup."""
        table = self._engine.query(
            f"SELECT Fingerprint, any(MetricName) AS Name FROM {self._db}.metrics_series GROUP BY Fingerprint"
        )
        return list(zip(table.column("Fingerprint").to_pylist(), table.column("Name").to_pylist(), strict=True))

    def store_sizes(self) -> dict[str, tuple[int, int]]:
        rows = self._rows(
            "SELECT table, sum(bytes_on_disk) AS b, sum(rows) AS r FROM system.parts "
            "WHERE database = {db:String} AND active GROUP BY table",
            {"db": self._db},
        )
        return {r["table"]: (int(r["b"]), int(r["r"])) for r in rows}
