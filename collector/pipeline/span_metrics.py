"""Span metrics: calls and a latency histogram per service, span name, kind and status, named as Tempo's
metrics-generator names them so that standard dashboards (Grafana's service graph view) work.

- `traces_spanmetrics_calls_total` (counter) and `traces_spanmetrics_latency` (histogram in seconds:
  _bucket, _sum, _count) with the labels `service`, `span_name`, `span_kind` (`SPAN_KIND_SERVER`, ...),
  `status_code` (`STATUS_CODE_UNSET|OK|ERROR`), plus one label per configured dimension. A dimension is
  a resource or span attribute (resource first, as Tempo looks it up); its label is the attribute name
  with every character outside [a-zA-Z0-9_] as `_`, prefixed `__` if it would collide with an intrinsic.
- Every span counts once; a span's latency is end - start (Tempo's default buckets: 2 ms doubling
  14 times). Exemplars carry the trace and span id of the latest span in each histogram bucket and
  of each calls series.

Aggregation is columnar: a batch of spans (an otel_traces Arrow table) is grouped by series and bucket
in Arrow, so the Python work per batch grows with its distinct series, not its spans.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collector.model import MetricBatch
from collector.pipeline.derived_series import CounterFamily, HistogramFamily, SpanRef

CALLS = "traces_spanmetrics_calls_total"
LATENCY = "traces_spanmetrics_latency"
# Tempo: prometheus.ExponentialBuckets(0.002, 2, 14), 2 ms to 16.384 s.
DEFAULT_BUCKETS = tuple(0.002 * 2**i for i in range(14))
INTRINSIC_LABELS = ("service", "span_name", "span_kind", "status_code")
# Tempo's reserved names: a dimension label equal to one of these gets a `__` prefix.
RESERVED_LABELS = ("service", "span_name", "span_kind", "status_code", "status_message", "job", "instance")

# Stored spelling (the OpenTelemetry Collector's ClickHouse exporter) -> the protobuf enum name Tempo writes.
SPAN_KIND_LABELS = {
    "Unspecified": "SPAN_KIND_UNSPECIFIED",
    "Internal": "SPAN_KIND_INTERNAL",
    "Server": "SPAN_KIND_SERVER",
    "Client": "SPAN_KIND_CLIENT",
    "Producer": "SPAN_KIND_PRODUCER",
    "Consumer": "SPAN_KIND_CONSUMER",
}
STATUS_CODE_LABELS = {"Unset": "STATUS_CODE_UNSET", "Ok": "STATUS_CODE_OK", "Error": "STATUS_CODE_ERROR"}

_INVALID_LABEL_CHAR = re.compile(r"[^a-zA-Z0-9_]")


def dimension_label(attribute: str, reserved: Sequence[str] = RESERVED_LABELS) -> str:
    """The label name of a dimension attribute, as Tempo sanitizes it (`http.method` -> `http_method`)."""
    label = _INVALID_LABEL_CHAR.sub("_", attribute)
    if label[:1].isdigit():
        label = "_" + label
    return "__" + label if label in reserved else label


def attribute_column(spans: pa.Table, key: str) -> pa.Array:
    """The text of attribute `key` per span: the resource's value, else the span's, else ""."""
    resource = pc.map_lookup(spans.column("ResourceAttributes"), pa.scalar(key), "first")
    span = pc.map_lookup(spans.column("SpanAttributes"), pa.scalar(key), "first")
    return pc.fill_null(pc.coalesce(resource, span), "")


def end_times_ms(spans: pa.Table) -> np.ndarray:
    """End time of each span in ms: start (Timestamp, ns) + Duration (ns)."""
    start = spans.column("Timestamp").cast(pa.int64()).to_numpy()
    return (start + spans.column("Duration").to_numpy().astype(np.int64)) // 1_000_000


class SpanMetrics:
    def __init__(self, buckets: Sequence[float] = DEFAULT_BUCKETS, dimensions: Sequence[str] = ()) -> None:
        self.dimensions = tuple(dimensions)
        labels = (*INTRINSIC_LABELS, *(dimension_label(d) for d in self.dimensions))
        self.calls = CounterFamily(CALLS, "Spans received, by service, span name, kind and status", labels)
        self.latency = HistogramFamily(
            LATENCY, "Span duration (end - start) in seconds, by service, span name, kind and status", labels, buckets
        )

    def observe(self, spans: pa.Table, now_ms: int) -> None:
        """Count every span of an otel_traces table."""
        n = spans.num_rows
        if n == 0:
            return
        seconds = spans.column("Duration").to_numpy().astype(np.float64) / 1e9
        bucket = np.searchsorted(np.asarray(self.latency.bounds), seconds, side="left")
        keys = {
            "k0": spans.column("ServiceName"),
            "k1": spans.column("SpanName"),
            "k2": spans.column("SpanKind"),
            "k3": spans.column("StatusCode"),
        }
        for i, d in enumerate(self.dimensions):
            keys[f"d{i}"] = attribute_column(spans, d)
        grouped = (
            pa.table({**keys, "b": pa.array(bucket, pa.int64()), "s": seconds, "i": np.arange(n)})
            .group_by([*keys, "b"], use_threads=False)
            .aggregate([("s", "sum"), ("s", "count"), ("i", "max")])
        )
        ends = end_times_ms(spans)
        trace_ids = spans.column("TraceId")
        span_ids = spans.column("SpanId")
        names = list(keys)
        for row in grouped.to_pylist():
            kind, status = row["k2"], row["k3"]
            values = (
                row["k0"],
                row["k1"],
                SPAN_KIND_LABELS.get(kind, kind),
                STATUS_CODE_LABELS.get(status, status),
                *(row[name] for name in names[4:]),
            )
            last = row["i_max"]
            ref = SpanRef(trace_ids[last].as_py(), span_ids[last].as_py(), int(ends[last]), float(seconds[last]))
            count = float(row["s_count"])
            self.calls.add(values, count, now_ms, ref)
            self.latency.add(values, row["b"], count, row["s_sum"], now_ms, ref)

    def collect(self, batch: MetricBatch, now_ms: int, stale_before_ms: int) -> None:
        self.calls.collect(batch, now_ms, stale_before_ms)
        self.latency.collect(batch, now_ms, stale_before_ms)
