"""Columnar batches of spans, log records and metric samples: what codecs produce and the store writes.

A batch is a set of parallel Python lists (one per column; metric samples may be numpy columns instead)
that `to_arrow()` turns into an Arrow table whose column names and types match the store's tables, so a
batch can be inserted as is, concatenated with others (group commit) or moved between processes as
Arrow IPC.

Conventions: timestamps are integer nanoseconds since the Unix epoch (metric samples: milliseconds,
the Prometheus unit); ids are lowercase hex strings; attributes are stored as strings in a
`Map(String, String)` as the OpenTelemetry Collector's ClickHouse exporter does, and the original type
of every non-string value is kept in a parallel `...AttributeTypes` map (key -> type tag), so values
read back with the type they were sent with.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

# Type tags of attribute values that are not strings (strings have no entry in the types map).
TYPE_INT = "int"
TYPE_DOUBLE = "double"
TYPE_BOOL = "bool"
TYPE_BYTES = "bytes"
TYPE_ARRAY = "array"
TYPE_KVLIST = "kvlist"
TYPE_EMPTY = "empty"

_TS = pa.timestamp("ns", tz="UTC")
_MAP = pa.map_(pa.string(), pa.string())


class MapColumn:
    """A Map(String, String) column built from flat key and value lists plus row offsets."""

    __slots__ = ("keys", "offsets", "values")

    def __init__(self) -> None:
        self.offsets: list[int] = [0]
        self.keys: list[str] = []
        self.values: list[str] = []

    def end_row(self) -> None:
        self.offsets.append(len(self.keys))

    def add_row(self, items: Mapping[str, str]) -> None:
        self.keys.extend(items.keys())
        self.values.extend(items.values())
        self.offsets.append(len(self.keys))

    def add_pairs(self, keys: list[str], values: list[str]) -> None:
        self.keys.extend(keys)
        self.values.extend(values)
        self.offsets.append(len(self.keys))

    def to_arrow(self) -> pa.MapArray:
        return pa.MapArray.from_arrays(
            pa.array(self.offsets, pa.int32()), pa.array(self.keys, pa.string()), pa.array(self.values, pa.string())
        )


class NestedMapColumn:
    """An Array(Map(String, String)) column: one map per nested element (span event or link)."""

    __slots__ = ("maps", "outer")

    def __init__(self) -> None:
        self.outer: list[int] = [0]
        self.maps = MapColumn()

    def end_row(self) -> None:
        self.outer.append(len(self.maps.offsets) - 1)

    def to_arrow(self) -> pa.ListArray:
        return pa.ListArray.from_arrays(pa.array(self.outer, pa.int32()), self.maps.to_arrow())


def _list_array(outer: list[int], flat: list[Any], typ: pa.DataType) -> pa.ListArray:
    return pa.ListArray.from_arrays(pa.array(outer, pa.int32()), pa.array(flat, typ))


@dataclass
class SpanBatch:
    """Spans in the column layout of `otel_traces`."""

    timestamp: list[int] = field(default_factory=list)
    trace_id: list[str] = field(default_factory=list)
    span_id: list[str] = field(default_factory=list)
    parent_span_id: list[str] = field(default_factory=list)
    trace_state: list[str] = field(default_factory=list)
    span_name: list[str] = field(default_factory=list)
    span_kind: list[str] = field(default_factory=list)
    service_name: list[str] = field(default_factory=list)
    resource_attributes: MapColumn = field(default_factory=MapColumn)
    resource_attribute_types: MapColumn = field(default_factory=MapColumn)
    scope_name: list[str] = field(default_factory=list)
    scope_version: list[str] = field(default_factory=list)
    span_attributes: MapColumn = field(default_factory=MapColumn)
    span_attribute_types: MapColumn = field(default_factory=MapColumn)
    duration: list[int] = field(default_factory=list)
    status_code: list[str] = field(default_factory=list)
    status_message: list[str] = field(default_factory=list)
    # Events and links are Nested columns: per span, a list per field.
    events_outer: list[int] = field(default_factory=lambda: [0])
    events_timestamp: list[int] = field(default_factory=list)
    events_name: list[str] = field(default_factory=list)
    events_attributes: MapColumn = field(default_factory=MapColumn)
    events_attribute_types: MapColumn = field(default_factory=MapColumn)
    links_outer: list[int] = field(default_factory=lambda: [0])
    links_trace_id: list[str] = field(default_factory=list)
    links_span_id: list[str] = field(default_factory=list)
    links_trace_state: list[str] = field(default_factory=list)
    links_attributes: MapColumn = field(default_factory=MapColumn)
    links_attribute_types: MapColumn = field(default_factory=MapColumn)

    def __len__(self) -> int:
        return len(self.span_id)

    def to_arrow(self) -> pa.Table:
        eo, lo = self.events_outer, self.links_outer
        return pa.table(
            {
                "Timestamp": pa.array(self.timestamp, _TS),
                "TraceId": pa.array(self.trace_id, pa.string()),
                "SpanId": pa.array(self.span_id, pa.string()),
                "ParentSpanId": pa.array(self.parent_span_id, pa.string()),
                "TraceState": pa.array(self.trace_state, pa.string()),
                "SpanName": pa.array(self.span_name, pa.string()),
                "SpanKind": pa.array(self.span_kind, pa.string()),
                "ServiceName": pa.array(self.service_name, pa.string()),
                "ResourceAttributes": self.resource_attributes.to_arrow(),
                "ResourceAttributeTypes": self.resource_attribute_types.to_arrow(),
                "ScopeName": pa.array(self.scope_name, pa.string()),
                "ScopeVersion": pa.array(self.scope_version, pa.string()),
                "SpanAttributes": self.span_attributes.to_arrow(),
                "SpanAttributeTypes": self.span_attribute_types.to_arrow(),
                "Duration": pa.array(self.duration, pa.uint64()),
                "StatusCode": pa.array(self.status_code, pa.string()),
                "StatusMessage": pa.array(self.status_message, pa.string()),
                "Events.Timestamp": _list_array(eo, self.events_timestamp, _TS),
                "Events.Name": _list_array(eo, self.events_name, pa.string()),
                "Events.Attributes": pa.ListArray.from_arrays(
                    pa.array(eo, pa.int32()), self.events_attributes.to_arrow()
                ),
                "Events.AttributeTypes": pa.ListArray.from_arrays(
                    pa.array(eo, pa.int32()), self.events_attribute_types.to_arrow()
                ),
                "Links.TraceId": _list_array(lo, self.links_trace_id, pa.string()),
                "Links.SpanId": _list_array(lo, self.links_span_id, pa.string()),
                "Links.TraceState": _list_array(lo, self.links_trace_state, pa.string()),
                "Links.Attributes": pa.ListArray.from_arrays(
                    pa.array(lo, pa.int32()), self.links_attributes.to_arrow()
                ),
                "Links.AttributeTypes": pa.ListArray.from_arrays(
                    pa.array(lo, pa.int32()), self.links_attribute_types.to_arrow()
                ),
            }
        )


@dataclass
class LogBatch:
    """Log records in the column layout of `otel_logs`."""

    timestamp: list[int] = field(default_factory=list)
    observed_timestamp: list[int] = field(default_factory=list)
    trace_id: list[str] = field(default_factory=list)
    span_id: list[str] = field(default_factory=list)
    trace_flags: list[int] = field(default_factory=list)
    severity_text: list[str] = field(default_factory=list)
    severity_number: list[int] = field(default_factory=list)
    service_name: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    body_type: list[str] = field(default_factory=list)
    resource_schema_url: list[str] = field(default_factory=list)
    resource_attributes: MapColumn = field(default_factory=MapColumn)
    resource_attribute_types: MapColumn = field(default_factory=MapColumn)
    scope_schema_url: list[str] = field(default_factory=list)
    scope_name: list[str] = field(default_factory=list)
    scope_version: list[str] = field(default_factory=list)
    scope_attributes: MapColumn = field(default_factory=MapColumn)
    scope_attribute_types: MapColumn = field(default_factory=MapColumn)
    log_attributes: MapColumn = field(default_factory=MapColumn)
    log_attribute_types: MapColumn = field(default_factory=MapColumn)
    event_name: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.timestamp)

    def to_arrow(self) -> pa.Table:
        return pa.table(
            {
                "Timestamp": pa.array(self.timestamp, _TS),
                "ObservedTimestamp": pa.array(self.observed_timestamp, _TS),
                "TraceId": pa.array(self.trace_id, pa.string()),
                "SpanId": pa.array(self.span_id, pa.string()),
                "TraceFlags": pa.array(self.trace_flags, pa.uint8()),
                "SeverityText": pa.array(self.severity_text, pa.string()),
                "SeverityNumber": pa.array(self.severity_number, pa.uint8()),
                "ServiceName": pa.array(self.service_name, pa.string()),
                "Body": pa.array(self.body, pa.string()),
                "BodyType": pa.array(self.body_type, pa.string()),
                "ResourceSchemaUrl": pa.array(self.resource_schema_url, pa.string()),
                "ResourceAttributes": self.resource_attributes.to_arrow(),
                "ResourceAttributeTypes": self.resource_attribute_types.to_arrow(),
                "ScopeSchemaUrl": pa.array(self.scope_schema_url, pa.string()),
                "ScopeName": pa.array(self.scope_name, pa.string()),
                "ScopeVersion": pa.array(self.scope_version, pa.string()),
                "ScopeAttributes": self.scope_attributes.to_arrow(),
                "ScopeAttributeTypes": self.scope_attribute_types.to_arrow(),
                "LogAttributes": self.log_attributes.to_arrow(),
                "LogAttributeTypes": self.log_attribute_types.to_arrow(),
                "EventName": pa.array(self.event_name, pa.string()),
            }
        )


def format_double(value: float) -> str:
    """Shortest text that reads back as the same double; NaN and infinities as Prometheus spells them."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def format_series(labels: Mapping[str, str]) -> str:
    """A series as Prometheus prints it in messages: name{a="1",b="2"} (labels sorted)."""
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{labels.get('__name__', '')}{{{rest}}}"


def series_fingerprint(labels: Mapping[str, str]) -> int:
    """A stable 64-bit id of a label set (independent of order), the key between series and samples."""
    h = hashlib.blake2b(digest_size=8)
    for name in sorted(labels):
        h.update(name.encode())
        h.update(b"\xff")
        h.update(labels[name].encode())
        h.update(b"\xff")
    return int.from_bytes(h.digest(), "little")


@dataclass(frozen=True)
class MetricMetadata:
    """Per metric family: Prometheus type (counter, gauge, histogram, summary, unknown), help, unit."""

    metric: str
    type: str
    help: str
    unit: str


# Exact integer sample values, as the store keeps them: Decimal(20, 0) holds every int64 and uint64.
EXACT_INTEGER_TYPE = pa.decimal128(20, 0)


@dataclass
class ExactIntegers:
    """Line protocol integer and unsigned values that their float64 sample only holds rounded (beyond
    2**53 in magnitude, more than 53 significant bits), kept beside the samples rather than in them:
    rare, so the common rows pay nothing. `row` (int64, ascending) indexes the sample columns,
    `value` are the values as written, `field_type` "integer" or "unsigned" (InfluxDB's names)."""

    row: np.ndarray
    value: list[int]
    field_type: list[str]

    def take(self, keep: np.ndarray) -> ExactIntegers | None:
        """Those whose rows the boolean mask `keep` (over all sample rows) keeps, numbered as the kept
        rows are; None when it keeps none."""
        kept = keep[self.row]
        if not kept.any():
            return None
        renumbered = np.cumsum(keep, dtype=np.int64) - 1
        flags = kept.tolist()
        return ExactIntegers(
            renumbered[self.row[kept]],
            [v for v, k in zip(self.value, flags, strict=True) if k],
            [t for t, k in zip(self.field_type, flags, strict=True) if k],
        )


@dataclass
class SampleColumns:
    """Samples as numpy columns of one length: fingerprint uint64, timestamp_ms int64, value float64;
    `exact`: the integer values among them that a float64 rounds, exactly (None: there are none)."""

    fingerprint: np.ndarray
    timestamp_ms: np.ndarray
    value: np.ndarray
    exact: ExactIntegers | None = None

    def __len__(self) -> int:
        return len(self.fingerprint)

    def take(self, keep: np.ndarray) -> SampleColumns:
        """The rows the boolean mask `keep` selects, their exact integers along."""
        exact = None if self.exact is None else self.exact.take(keep)
        return SampleColumns(self.fingerprint[keep], self.timestamp_ms[keep], self.value[keep], exact)


@dataclass(eq=False)
class MetricBatch:
    """Prometheus-model samples: series (fingerprint -> labels incl. __name__), samples, exemplars.

    Sample timestamps are milliseconds. A stale marker is the NaN with bits 0x7ff0000000000002.

    The samples are held either as Python lists (built with add_sample, or by appending to
    `fingerprint`, `timestamp_ms` and `value`) or as numpy columns (`from_columns`, the columnar
    line protocol path): `sample_columns()` reads either as columns without a per-sample loop, and
    the list attributes turn columns into lists on first use, so list-based code keeps working.
    Exact integers (SampleColumns.exact) exist only in columns: turning them into lists drops them,
    so the line protocol path, which has them, keeps its batches columnar up to the store.
    """

    series: dict[int, dict[str, str]] = field(default_factory=dict)
    ex_fingerprint: list[int] = field(default_factory=list)
    ex_timestamp_ms: list[int] = field(default_factory=list)
    ex_value: list[float] = field(default_factory=list)
    ex_trace_id: list[str] = field(default_factory=list)
    ex_span_id: list[str] = field(default_factory=list)
    ex_labels: MapColumn = field(default_factory=MapColumn)
    metadata: dict[str, MetricMetadata] = field(default_factory=dict)
    _fingerprint: list[int] = field(default_factory=list, repr=False)
    _timestamp_ms: list[int] = field(default_factory=list, repr=False)
    _value: list[float] = field(default_factory=list, repr=False)
    _columns: SampleColumns | None = field(default=None, repr=False)

    @classmethod
    def from_columns(
        cls, series: dict[int, dict[str, str]], columns: SampleColumns, metadata: dict[str, MetricMetadata]
    ) -> MetricBatch:
        """A batch whose samples are `columns`; every fingerprint in them must be a key of `series`."""
        return cls(series=series, metadata=metadata, _columns=columns)

    def _lists(self) -> None:
        if self._columns is not None:
            cols, self._columns = self._columns, None
            self._fingerprint = cols.fingerprint.tolist()
            self._timestamp_ms = cols.timestamp_ms.tolist()
            self._value = cols.value.tolist()

    @property
    def fingerprint(self) -> list[int]:
        self._lists()
        return self._fingerprint

    @property
    def timestamp_ms(self) -> list[int]:
        self._lists()
        return self._timestamp_ms

    @property
    def value(self) -> list[float]:
        self._lists()
        return self._value

    @property
    def columnar(self) -> bool:
        return self._columns is not None

    @property
    def exact_integers(self) -> ExactIntegers | None:
        """The samples' exact integer values, if any (without turning lists into columns)."""
        return self._columns.exact if self._columns is not None else None

    def sample_columns(self) -> SampleColumns:
        """The samples as numpy columns (shared, not copied, when the batch holds columns). Raises
        OverflowError when a list-held timestamp does not fit in int64."""
        if self._columns is not None:
            return self._columns
        return SampleColumns(
            np.array(self._fingerprint, dtype=np.uint64),
            np.array(self._timestamp_ms, dtype=np.int64),
            np.array(self._value, dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self._columns) if self._columns is not None else len(self._fingerprint)

    def add_sample(self, labels: dict[str, str], timestamp_ms: int, value: float) -> int:
        fp = series_fingerprint(labels)
        if fp not in self.series:
            self.series[fp] = labels
        self._lists()
        self._fingerprint.append(fp)
        self._timestamp_ms.append(timestamp_ms)
        self._value.append(value)
        return fp

    def add_exemplar(
        self, fp: int, timestamp_ms: int, value: float, trace_id: str, span_id: str, labels: Mapping[str, str]
    ) -> None:
        self.ex_fingerprint.append(fp)
        self.ex_timestamp_ms.append(timestamp_ms)
        self.ex_value.append(value)
        self.ex_trace_id.append(trace_id)
        self.ex_span_id.append(span_id)
        self.ex_labels.add_row(labels)

    def series_table(self) -> pa.Table:
        fps = list(self.series)
        names = [self.series[fp].get("__name__", "") for fp in fps]
        labels = MapColumn()
        for fp in fps:
            labels.add_row(self.series[fp])
        return pa.table(
            {
                "MetricName": pa.array(names, pa.string()),
                "Fingerprint": pa.array(fps, pa.uint64()),
                "Labels": labels.to_arrow(),
            }
        )

    def exact_integers_table(self) -> pa.Table:
        """Fingerprint, TimestampMs, Value (exact, EXACT_INTEGER_TYPE), FieldType of the exact integers."""
        exact, cols = self.exact_integers, self._columns
        if exact is None or cols is None:
            exact = ExactIntegers(np.zeros(0, np.int64), [], [])
            cols = SampleColumns(np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.float64))
        return pa.table(
            {
                "Fingerprint": pa.array(cols.fingerprint[exact.row], pa.uint64()),
                "TimestampMs": pa.array(cols.timestamp_ms[exact.row], pa.int64()),
                "Value": pa.array(exact.value, EXACT_INTEGER_TYPE),
                "FieldType": pa.array(exact.field_type, pa.string()),
            }
        )

    def samples_table(self) -> pa.Table:
        if self._columns is not None:  # numpy columns become Arrow arrays without a copy
            cols = self._columns
            return pa.table(
                {
                    "Fingerprint": pa.array(cols.fingerprint, pa.uint64()),
                    "TimestampMs": pa.array(cols.timestamp_ms, pa.int64()),
                    "Value": pa.array(cols.value, pa.float64()),
                }
            )
        return pa.table(
            {
                "Fingerprint": pa.array(self._fingerprint, pa.uint64()),
                "TimestampMs": pa.array(self._timestamp_ms, pa.int64()),
                "Value": pa.array(self._value, pa.float64()),
            }
        )

    def exemplars_table(self) -> pa.Table:
        return pa.table(
            {
                "Fingerprint": pa.array(self.ex_fingerprint, pa.uint64()),
                "TimestampMs": pa.array(self.ex_timestamp_ms, pa.int64()),
                "Value": pa.array(self.ex_value, pa.float64()),
                "TraceId": pa.array(self.ex_trace_id, pa.string()),
                "SpanId": pa.array(self.ex_span_id, pa.string()),
                "Labels": self.ex_labels.to_arrow(),
            }
        )

    def metadata_table(self) -> pa.Table:
        meta = list(self.metadata.values())
        return pa.table(
            {
                "MetricName": pa.array([m.metric for m in meta], pa.string()),
                "Type": pa.array([m.type for m in meta], pa.string()),
                "Help": pa.array([m.help for m in meta], pa.string()),
                "Unit": pa.array([m.unit for m in meta], pa.string()),
            }
        )


# Delta-temporality OTLP points: the codec stays pure and leaves them to a stateful pipeline stage, so the
# types they travel in (and the histogram layout both write) live here, where codecs and pipeline meet.


@dataclass(frozen=True)
class MetricExemplar:
    """An exemplar not yet attached to a series. Ids are lowercase hex, "" when absent or invalid."""

    timestamp_ms: int
    value: float
    trace_id: str
    span_id: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class HistogramValue:
    """A classic histogram at one instant.

    `buckets` maps each finite upper bound, as its `le` label text, to the count of observations in
    that bucket alone (not cumulative); `count` is the total, the +Inf bucket; `sum` is None if unknown.
    """

    buckets: Mapping[str, float]
    count: float
    sum: float | None

    def merged(self, later: HistogramValue) -> HistogramValue:
        """Both histograms' observations together. Buckets with the same `le` add up; others are kept."""
        buckets = dict(self.buckets)
        for le, n in later.buckets.items():
            buckets[le] = buckets.get(le, 0.0) + n
        total = None if self.sum is None or later.sum is None else self.sum + later.sum
        return HistogramValue(buckets, self.count + later.count, total)


@dataclass
class DeltaPoint:
    """One delta-temporality OTLP sum or histogram point, to be made cumulative by a stateful stage.

    `metric` is the sample name for a sum (`foo_total`) and the family name for a histogram (`foo`,
    whose samples are foo_bucket, foo_sum and foo_count); `labels` exclude `__name__`. Times are ns
    since the epoch: the value covers (start_ns, time_ns]; start_ns is 0 when the sender left it unset.
    """

    metric: str
    labels: dict[str, str]
    start_ns: int
    time_ns: int
    value: float | HistogramValue
    exemplars: list[MetricExemplar] = field(default_factory=list)


def add_histogram_samples(
    batch: MetricBatch,
    metric: str,
    labels: Mapping[str, str],
    timestamp_ms: int,
    hist: HistogramValue,
    exemplars: Iterable[MetricExemplar] = (),
) -> None:
    """Append a classic histogram: `_bucket` samples (cumulative, ascending `le`, then `+Inf` = count),
    `_sum` (when known) and `_count`. Each exemplar goes to the lowest bucket whose bound holds its value."""
    bounds = sorted((float(le), le) for le in hist.buckets)
    bucket = metric + "_bucket"
    fps: list[int] = []
    running = 0.0
    for _, le in bounds:
        running += hist.buckets[le]
        fps.append(batch.add_sample({**labels, "__name__": bucket, "le": le}, timestamp_ms, running))
    fps.append(batch.add_sample({**labels, "__name__": bucket, "le": "+Inf"}, timestamp_ms, hist.count))
    if hist.sum is not None:
        batch.add_sample({**labels, "__name__": metric + "_sum"}, timestamp_ms, hist.sum)
    batch.add_sample({**labels, "__name__": metric + "_count"}, timestamp_ms, hist.count)
    uppers = [upper for upper, _ in bounds]
    for ex in exemplars:
        fp = fps[bisect.bisect_left(uppers, ex.value)]
        batch.add_exemplar(fp, ex.timestamp_ms, ex.value, ex.trace_id, ex.span_id, ex.labels)
