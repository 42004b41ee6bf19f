"""Correlation across signals: from a trace to its logs, RED series and exemplars; from a log record to its
trace; from a metric series at a time to the traces its exemplars point at.

Answers of `/api/obs/correlate` (api/correlate.py). Times are nanoseconds as strings where they are
span or log times (as the rest of /api/obs), milliseconds as integers for metric samples and exemplars
(as the metrics store keeps them); `window` widens a time range on both sides.

From a trace (`?trace_id=<32 hex>&window=5m`):

    {"trace": {"trace_id", "start_time_unix_nano", "end_time_unix_nano", "duration_ms", "span_count",
               "error_count", "services": [..], "root": {"service", "name"} | null,
               "spans": [{"span_id", "parent_span_id", "service", "name", "kind",
                          "start_time_unix_nano", "duration_ms", "status"}]},
     "logs": {"by_trace_id": [record, ..],            # records that carry the trace id
              "by_service_and_time": [record, ..]},   # records of its services without any trace id,
                                                      # inside the trace's [start, end]
     "metrics": {"start_ms", "end_ms",                # the trace's time +- window
                 "series": [{"labels": {..}, "samples": [[ms, "value"], ..]}]},
     "exemplars": [exemplar, ..]}                     # exemplars naming the trace, in start/end +- window

A record is a log record as /api/obs/logs returns it, plus `"log": "<service>:<time_unix_nano>"`, its
identity for `?log=`. The RED series are those of the trace's services (label `service`): the agents'
`http_server_requests_total`, `http_server_request_duration_seconds_sum|_count` (scraped, labelled
by discovery) and the span metrics `traces_spanmetrics_calls_total`, `traces_spanmetrics_latency_sum|
_count`. An exemplar is {"series_labels", "timestamp_ms", "value", "trace_id", "span_id", "labels"}.

From a log record (`?log=<service>:<time_unix_nano>`): {"logs": [record, ..], "traces": [trace, ..]},
the records at that identity (several may share a nanosecond) and the trace (as above, without logs,
metrics and exemplars) of each that names one.

From a series (`?series=<PromQL selector>&time=<t>&window=5m&limit=20`): {"time_ms", "exemplars":
[exemplar + "distance_ms", ..], "trace_ids": [..]}, the exemplars of the matching series within the
window, nearest to `time` first, and their distinct trace ids in that order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from collector.model import format_double
from collector.query.promql.storage import Matcher, SeriesData
from collector.store.correlation_reads import TraceExemplar
from collector.store.promql_reads import SeriesExemplars
from collector.store.readers import LogQuery

RED_METRICS = (
    "http_server_requests_total",
    "http_server_request_duration_seconds_sum",
    "http_server_request_duration_seconds_count",
    "traces_spanmetrics_calls_total",
    "traces_spanmetrics_latency_sum",
    "traces_spanmetrics_latency_count",
)
MS = 1_000_000  # ns per ms


class TraceLogReads(Protocol):
    def trace(self, trace_id: str) -> list[dict[str, Any]]: ...

    def search_logs(self, q: LogQuery) -> list[dict[str, Any]]: ...


class SeriesReads(Protocol):
    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesData]: ...

    def exemplars(
        self, selectors: Sequence[Sequence[Matcher]], start_ms: int, end_ms: int, limit: int = 0
    ) -> list[SeriesExemplars]: ...


class TraceExemplarReads(Protocol):
    def exemplars_of_trace(
        self, trace_id: str, start_ms: int, end_ms: int, limit: int = 1000
    ) -> list[TraceExemplar]: ...


def log_identity(record: dict[str, Any]) -> str:
    return f"{record['service']}:{record['time_unix_nano']}"


def parse_log_identity(text: str) -> tuple[str, int]:
    """(service, time in ns) from `<service>:<time_unix_nano>`; raises ValueError."""
    service, sep, ns = text.rpartition(":")
    if not sep or not ns.isdigit():
        raise ValueError(f"log: {text!r} must be <service>:<time_unix_nano>, as /api/obs/logs gives them")
    return service, int(ns)


def trace_summary(trace_id: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    starts = [int(s["start_time_unix_nano"]) for s in spans]
    ends = [int(s["end_time_unix_nano"]) for s in spans]
    ids = {s["span_id"] for s in spans}
    roots = [s for s in spans if s["parent_span_id"] not in ids]
    root = min(roots, key=lambda s: int(s["start_time_unix_nano"])) if roots else None
    return {
        "trace_id": trace_id,
        "start_time_unix_nano": str(min(starts)),
        "end_time_unix_nano": str(max(ends)),
        "duration_ms": (max(ends) - min(starts)) / 1e6,
        "span_count": len(spans),
        "error_count": sum(1 for s in spans if s["status"]["code"] == "Error"),
        "services": sorted({s["service"] for s in spans}),
        "root": {"service": root["service"], "name": root["name"]} if root else None,
        "spans": [
            {
                "span_id": s["span_id"],
                "parent_span_id": s["parent_span_id"],
                "service": s["service"],
                "name": s["name"],
                "kind": s["kind"],
                "start_time_unix_nano": s["start_time_unix_nano"],
                "duration_ms": s["duration_ms"],
                "status": s["status"],
            }
            for s in spans
        ],
    }


def _exemplar(e: TraceExemplar) -> dict[str, Any]:
    return {
        "series_labels": e.series_labels,
        "timestamp_ms": e.timestamp_ms,
        "value": format_double(e.value),
        "trace_id": e.trace_id,
        "span_id": e.span_id,
        "labels": e.labels,
    }


class Correlator:
    def __init__(
        self, traces: TraceLogReads, metrics: SeriesReads, exemplars: TraceExemplarReads, log_limit: int = 1000
    ) -> None:
        self._traces = traces
        self._metrics = metrics
        self._exemplars = exemplars
        self._log_limit = log_limit

    def _logs(self, q: LogQuery) -> list[dict[str, Any]]:
        return [{**r, "log": log_identity(r)} for r in self._traces.search_logs(q)]

    def from_trace(self, trace_id: str, window_ms: int) -> dict[str, Any] | None:
        """Everything about one trace (see the module docstring), or None when it is unknown."""
        spans = self._traces.trace(trace_id)
        if not spans:
            return None
        trace = trace_summary(trace_id, spans)
        start_ns, end_ns = int(trace["start_time_unix_nano"]), int(trace["end_time_unix_nano"])
        limit = self._log_limit
        by_id = self._logs(LogQuery(trace_id=trace_id, limit=limit, backward=False))
        untraced: list[dict[str, Any]] = []
        for service in trace["services"]:
            q = LogQuery(service=service, start_ns=start_ns, end_ns=end_ns, limit=limit, without_trace_id=True)
            untraced.extend(self._logs(q))
        untraced.sort(key=lambda r: int(r["time_unix_nano"]))
        start_ms, end_ms = start_ns // MS - window_ms, end_ns // MS + window_ms
        metric_names = Matcher("__name__", "=~", "|".join(RED_METRICS))
        series: list[dict[str, Any]] = []
        for service in trace["services"]:
            for s in self._metrics.select([metric_names, Matcher("service", "=", service)], start_ms, end_ms):
                samples = [[int(t), format_double(float(v))] for t, v in zip(s.timestamps, s.values, strict=True)]
                series.append({"labels": s.labels, "samples": samples})
        found = self._exemplars.exemplars_of_trace(trace_id, start_ms, end_ms)
        return {
            "trace": trace,
            "logs": {"by_trace_id": by_id, "by_service_and_time": untraced},
            "metrics": {"start_ms": start_ms, "end_ms": end_ms, "series": series},
            "exemplars": [_exemplar(e) for e in found],
        }

    def from_log(self, service: str, time_ns: int) -> dict[str, Any] | None:
        """The records at a log identity and the traces they name, or None when there is no such record."""
        records = self._logs(LogQuery(service=service, start_ns=time_ns, end_ns=time_ns, limit=100))
        records = [r for r in records if int(r["time_unix_nano"]) == time_ns]
        if not records:
            return None
        traces = []
        for trace_id in dict.fromkeys(r["trace_id"] for r in records if r["trace_id"]):
            spans = self._traces.trace(trace_id)
            if spans:
                traces.append(trace_summary(trace_id, spans))
        return {"logs": records, "traces": traces}

    def from_series(
        self, selectors: Sequence[Sequence[Matcher]], time_ms: int, window_ms: int, limit: int
    ) -> dict[str, Any]:
        """Exemplars of the selected series within time +- window, nearest first (see the module docstring)."""
        groups = self._metrics.exemplars(selectors, time_ms - window_ms, time_ms + window_ms)
        found = [
            {
                "series_labels": g.series_labels,
                "timestamp_ms": e.timestamp_ms,
                "value": format_double(e.value),
                "trace_id": e.labels.get("trace_id", ""),
                "span_id": e.labels.get("span_id", ""),
                "labels": {k: v for k, v in e.labels.items() if k not in ("trace_id", "span_id")},
                "distance_ms": abs(e.timestamp_ms - time_ms),
            }
            for g in groups
            for e in g.exemplars
        ]
        found = [f for f in found if f["trace_id"]]
        found.sort(key=lambda f: (f["distance_ms"], f["timestamp_ms"], f["trace_id"]))
        found = found[:limit]
        return {"time_ms": time_ms, "exemplars": found, "trace_ids": list(dict.fromkeys(f["trace_id"] for f in found))}
