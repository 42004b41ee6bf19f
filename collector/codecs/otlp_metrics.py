"""OTLP metrics: ExportMetricsServiceRequest -> Prometheus-model MetricBatch, as Prometheus' receiver maps it.

Names come from `prom_naming`; the rules are the OTel "Prometheus and OpenMetrics Compatibility" spec,
and prometheus/storage/remote/otlptranslator where the spec leaves room:

- Resource: `service.name` (`<service.namespace>/<service.name>` when the namespace is set) is the `job`
  label and `service.instance.id` the `instance` label of every series, winning over point attributes of
  those names. Other resource attributes go on one `target_info` gauge (value 1, plus job and instance)
  per resource and distinct sample timestamp of its points, not on every series; none when the resource
  has only identifying attributes, or neither job nor instance. Scope name and version are not labels.
- Gauge -> gauge; monotonic sum -> counter `<name>_total`; non-monotonic sum -> gauge; summary ->
  `<name>{quantile}`, `_sum`, `_count`; histogram -> cumulative `_bucket{le}` (`+Inf` = count), `_sum`
  when set, `_count`. `le` and `quantile` texts are Go's FormatFloat(v, 'f', -1), as the translator's.
- Exponential histogram -> the same classic layout (Prometheus would make a native histogram, which
  this store does not hold): a `_bucket` per populated positive bucket, le = its upper bound
  base**(index+1), base = 2**(2**-scale). The zero bucket and all negative buckets count in one lowest
  bucket, le = zero_threshold (0 when unset): exact as a cumulative count ("observations <= le"), it only
  gives up resolution among negative values, which latencies and sizes do not have.
- Delta sums and histograms (aggregation_temporality 1, exponential ones too) come back as DeltaPoints
  for the stateful DeltaToCumulative stage, so this stays pure. Non-monotonic delta sums are kept (the
  Collector's deltatocumulative would) where the spec drops them. Unspecified temporality is refused.
- NO_RECORDED_VALUE writes the stale marker on every series the point would write (histograms: explicit
  buckets, `+Inf`, `_sum` even if unset, `_count`), whatever the temporality.
- Exemplars are kept on monotonic sums (`_total`) and histograms (lowest bucket whose `le` holds the
  value), dropped elsewhere as the spec says. Invalid ids are dropped, the exemplar kept (a span id goes
  with an invalid trace id); filtered attributes are dropped if they would take the exemplar past
  OpenMetrics' 128 characters; an exemplar without a time takes its point's.
- Refused, counted per data point with a location such as
  `resource_metrics[0].scope_metrics[1].metrics[2].sum.data_points[3]`: no time, outside the window, no
  value, delta start after time, bucket counts not matching bounds, bad scale or zero threshold; every
  point of a metric without name, data or temporality. Metadata is kept once per family: first wins.
"""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    DataPointFlags,
    Exemplar,
    ExponentialHistogramDataPoint,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    SummaryDataPoint,
)

from collector.codecs.otlp_values import (
    Rejections,
    TimeWindow,
    any_value_text,
    attribute_dict,
    check_span_id,
    check_trace_id,
)
from collector.codecs.prom_naming import (
    MetricKind,
    family_name,
    format_label_float,
    label_name,
    metric_name,
    unit_name,
)
from collector.model import (
    DeltaPoint,
    HistogramValue,
    MetricBatch,
    MetricExemplar,
    MetricMetadata,
    add_histogram_samples,
)

# Prometheus' stale marker: a NaN with this exact bit pattern, not any NaN.
STALE_NAN: float = struct.unpack("<d", (0x7FF0000000000002).to_bytes(8, "little"))[0]

_NO_RECORDED_VALUE = DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
_CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
_IDENTIFYING = frozenset(("service.name", "service.namespace", "service.instance.id"))
# OpenMetrics caps an exemplar's label set at 128 UTF-8 characters (names and values together).
_EXEMPLAR_MAX_CHARS = 128
_KINDS = {"gauge": MetricKind.GAUGE, "sum": MetricKind.COUNTER, "summary": MetricKind.SUMMARY}
# ExponentialHistogramDataPoint.scale range the data model allows.
_MIN_SCALE, _MAX_SCALE = -10, 20


@dataclass
class DecodedMetrics:
    """What one request gives: samples ready to write, refused points, delta points still to accumulate.

    `points` counts the accepted OTLP data points (a histogram point is one), delta points included.
    """

    batch: MetricBatch = field(default_factory=MetricBatch)
    rejected: Rejections = field(default_factory=Rejections)
    deltas: list[DeltaPoint] = field(default_factory=list)
    points: int = 0


def attribute_labels(attrs: Iterable[KeyValue]) -> dict[str, str]:
    """Attributes as Prometheus labels: escaped names, values as text.

    Keys that escape to the same name join their values with ";" in the order of the original keys, as
    the spec says. Empty values are left out: in Prometheus an empty label is no label.
    """
    labels: dict[str, str] = {}
    for key, value in sorted((kv.key, any_value_text(kv.value)[0]) for kv in attrs):
        name = label_name(key)
        if not name or not value:
            continue
        labels[name] = f"{labels[name]};{value}" if name in labels else value
    return labels


def resource_labels(attrs: Iterable[KeyValue]) -> tuple[dict[str, str], dict[str, str] | None]:
    """(job and instance labels for every series of a resource, its target_info labels or None)."""
    attrs = list(attrs)
    values = attribute_dict(attrs)
    ident: dict[str, str] = {}
    service = values.get("service.name", "")
    if service:
        namespace = values.get("service.namespace", "")
        ident["job"] = f"{namespace}/{service}" if namespace else service
    if values.get("service.instance.id"):
        ident["instance"] = values["service.instance.id"]
    others = [kv for kv in attrs if kv.key not in _IDENTIFYING]
    if not others or not ident:
        return ident, None
    return ident, {**attribute_labels(others), **ident, "__name__": "target_info"}


def exemplars_of(exemplars: Iterable[Exemplar], default_ms: int) -> list[MetricExemplar]:
    """OTLP exemplars with a value, as MetricExemplars (see the module docstring for the rules)."""
    out: list[MetricExemplar] = []
    for ex in exemplars:
        which = ex.WhichOneof("value")
        if which is None:
            continue
        value = ex.as_double if which == "as_double" else float(ex.as_int)
        trace_id = ex.trace_id.hex() if ex.trace_id and check_trace_id(ex.trace_id) is None else ""
        span_id = ex.span_id.hex() if trace_id and ex.span_id and check_span_id(ex.span_id) is None else ""
        labels = attribute_labels(ex.filtered_attributes)
        # The ids are written as trace_id and span_id labels by OpenMetrics exposition: they count too.
        size = (8 + len(trace_id) if trace_id else 0) + (7 + len(span_id) if span_id else 0)
        if size + sum(len(k) + len(v) for k, v in labels.items()) > _EXEMPLAR_MAX_CHARS:
            labels = {}
        ts_ms = ex.time_unix_nano // 1_000_000 if ex.time_unix_nano else default_ms
        out.append(MetricExemplar(ts_ms, value, trace_id, span_id, labels))
    return out


def explicit_to_classic(pt: HistogramDataPoint) -> HistogramValue:
    """An explicit-bounds histogram point as a HistogramValue (no bucket_counts: only +Inf, the count)."""
    # The last bucket count is the +Inf bucket, which is the count: zip stops before it.
    counts = zip(pt.explicit_bounds, pt.bucket_counts, strict=False)
    buckets = {format_label_float(b): float(n) for b, n in counts} if pt.bucket_counts else {}
    return HistogramValue(buckets, float(pt.count), pt.sum if pt.HasField("sum") else None)


def exponential_upper_bound(scale: int, index: int) -> float:
    """Upper bound of exponential bucket `index`: base**(index+1), base = 2**(2**-scale).

    Exact for powers of two (so `le` texts are stable); +Inf past the double range.
    """
    i = index + 1
    try:
        if scale <= 0:
            return math.ldexp(1.0, i << -scale)
        whole, frac = divmod(i, 1 << scale)
        return math.ldexp(2.0 ** (frac / (1 << scale)), whole)
    except OverflowError:
        return math.inf


def exponential_to_classic(pt: ExponentialHistogramDataPoint) -> HistogramValue:
    """An exponential histogram point as classic buckets (see the module docstring for the layout)."""
    buckets: dict[str, float] = {}
    lowest = pt.zero_count + sum(pt.negative.bucket_counts)
    if lowest:
        buckets[format_label_float(abs(pt.zero_threshold))] = float(lowest)  # abs: -0.0 reads "-0"
    for k, n in enumerate(pt.positive.bucket_counts):
        if not n:
            continue
        upper = exponential_upper_bound(pt.scale, pt.positive.offset + k)
        if math.isinf(upper):
            continue  # the +Inf bucket is the count, which holds these already
        le = format_label_float(upper)
        buckets[le] = buckets.get(le, 0.0) + n
    return HistogramValue(buckets, float(pt.count), pt.sum if pt.HasField("sum") else None)


def _number(pt: NumberDataPoint) -> float | None:
    which = pt.WhichOneof("value")
    if which == "as_double":
        return pt.as_double
    if which == "as_int":
        return float(pt.as_int)
    return None


def _explicit_problem(pt: HistogramDataPoint) -> str | None:
    bounds, counts = pt.explicit_bounds, len(pt.bucket_counts)
    if counts and counts != len(bounds) + 1:
        return f"bucket_counts has {counts} entries for {len(bounds)} explicit_bounds, must be one more"
    if not all(math.isfinite(b) for b in bounds) or any(a >= b for a, b in itertools.pairwise(bounds)):
        return "explicit_bounds must be finite and strictly increasing"
    return None


def _exponential_problem(pt: ExponentialHistogramDataPoint) -> str | None:
    if not _MIN_SCALE <= pt.scale <= _MAX_SCALE:
        return f"scale {pt.scale} is outside [{_MIN_SCALE}, {_MAX_SCALE}]"
    if not (math.isfinite(pt.zero_threshold) and pt.zero_threshold >= 0):
        return f"zero_threshold {pt.zero_threshold} must be a finite number >= 0"
    return None


def _classic(pt: HistogramDataPoint | ExponentialHistogramDataPoint) -> HistogramValue | str:
    """The point as a classic histogram, or why it cannot be one."""
    if isinstance(pt, HistogramDataPoint):
        return _explicit_problem(pt) or explicit_to_classic(pt)
    return _exponential_problem(pt) or exponential_to_classic(pt)


def _start_problem(start_ns: int, time_ns: int) -> str | None:
    if start_ns > time_ns:
        return f"start_time_unix_nano {start_ns} is after time_unix_nano {time_ns}"
    return None


class _Decoder:
    """One request's walk: the result plus the state of the resource being read."""

    def __init__(self, window: TimeWindow) -> None:
        self.window = window
        self.out = DecodedMetrics()
        self.resource: dict[str, str] = {}
        self.times: set[int] = set()  # sample timestamps (ms) of the current resource, for target_info

    def request(self, request: ExportMetricsServiceRequest) -> DecodedMetrics:
        batch = self.out.batch
        for ri, rm in enumerate(request.resource_metrics):
            self.resource, target_info = resource_labels(rm.resource.attributes)
            self.times = set()
            for si, sm in enumerate(rm.scope_metrics):
                for mi, metric in enumerate(sm.metrics):
                    self.metric(metric, f"resource_metrics[{ri}].scope_metrics[{si}].metrics[{mi}]")
            if target_info is not None and self.times:
                for ts in sorted(self.times):
                    batch.add_sample(dict(target_info), ts, 1.0)
                batch.metadata.setdefault("target_info", MetricMetadata("target_info", "gauge", "Target metadata", ""))
        return self.out

    def reject_all(self, where: str, what: str, points: int) -> None:
        """Refuse a whole metric: one message, every data point counted (at least one)."""
        self.out.rejected.add(where, what)
        self.out.rejected.count += max(points, 1) - 1

    def metric(self, m: Metric, where: str) -> None:
        data_field = m.WhichOneof("data")
        if data_field is None:
            self.reject_all(where, "metric has no gauge, sum, histogram, exponential_histogram or summary", 1)
            return
        data = getattr(m, data_field)
        npoints = len(data.data_points)
        if not m.name:
            self.reject_all(where, "metric name is empty", npoints)
            return
        kind = _KINDS.get(data_field, MetricKind.HISTOGRAM)
        if data_field == "sum" and not m.sum.is_monotonic:
            kind = MetricKind.UPDOWN_COUNTER
        name = metric_name(m.name, m.unit, kind)
        if not name:
            self.reject_all(where, f"metric name {m.name!r} has no character valid in a Prometheus name", npoints)
            return
        delta = False
        if data_field in ("sum", "histogram", "exponential_histogram"):
            temporality = data.aggregation_temporality
            if temporality not in (_DELTA, _CUMULATIVE):
                self.reject_all(
                    where, f"aggregation_temporality {temporality} is neither delta nor cumulative", npoints
                )
                return
            delta = temporality == _DELTA
        before = self.out.points
        at = f"{where}.{data_field}.data_points"
        if data_field == "gauge":
            self.numbers(m.gauge.data_points, name, at, exemplars=False, delta=False)
        elif data_field == "sum":
            self.numbers(m.sum.data_points, name, at, exemplars=kind is MetricKind.COUNTER, delta=delta)
        elif data_field in ("histogram", "exponential_histogram"):
            self.histograms(data.data_points, name, at, delta)
        else:
            self.summaries(m.summary.data_points, name, at)
        if self.out.points > before:
            family = family_name(m.name, m.unit, kind)
            meta = MetricMetadata(family, kind.prometheus_type, m.description, unit_name(m.unit))
            self.out.batch.metadata.setdefault(family, meta)

    def timestamp(self, time_ns: int, where: str) -> int | None:
        """The sample time in ms, or None after refusing the point."""
        problem = "time_unix_nano is missing" if time_ns == 0 else self.window.check(time_ns)
        if problem:
            self.out.rejected.add(where, problem)
            return None
        return time_ns // 1_000_000

    def accepted(self, ts_ms: int) -> None:
        self.out.points += 1
        self.times.add(ts_ms)

    def labels(self, attrs: Iterable[KeyValue]) -> dict[str, str]:
        return {**attribute_labels(attrs), **self.resource}

    def numbers(self, points: Iterable[NumberDataPoint], name: str, at: str, exemplars: bool, delta: bool) -> None:
        batch = self.out.batch
        for pi, pt in enumerate(points):
            where = f"{at}[{pi}]"
            ts = self.timestamp(pt.time_unix_nano, where)
            if ts is None:
                continue
            stale = bool(pt.flags & _NO_RECORDED_VALUE)
            value = STALE_NAN if stale else _number(pt)
            if value is None:
                self.out.rejected.add(where, "data point has neither as_double nor as_int")
                continue
            labels = self.labels(pt.attributes)
            kept = exemplars_of(pt.exemplars, ts) if exemplars and not stale else []
            if delta and not stale:
                if problem := _start_problem(pt.start_time_unix_nano, pt.time_unix_nano):
                    self.out.rejected.add(where, problem)
                    continue
                self.out.deltas.append(
                    DeltaPoint(name, labels, pt.start_time_unix_nano, pt.time_unix_nano, value, kept)
                )
            else:
                fp = batch.add_sample({**labels, "__name__": name}, ts, value)
                for ex in kept:
                    batch.add_exemplar(fp, ex.timestamp_ms, ex.value, ex.trace_id, ex.span_id, ex.labels)
            self.accepted(ts)

    def histograms(
        self,
        points: Iterable[HistogramDataPoint | ExponentialHistogramDataPoint],
        name: str,
        at: str,
        delta: bool,
    ) -> None:
        for pi, pt in enumerate(points):
            where = f"{at}[{pi}]"
            ts = self.timestamp(pt.time_unix_nano, where)
            if ts is None:
                continue
            labels = self.labels(pt.attributes)
            if pt.flags & _NO_RECORDED_VALUE:
                bounds = pt.explicit_bounds if isinstance(pt, HistogramDataPoint) else []
                self.stale_histogram(name, labels, ts, [format_label_float(b) for b in bounds if math.isfinite(b)])
                continue
            hist = _classic(pt)
            if isinstance(hist, str):
                self.out.rejected.add(where, hist)
                continue
            if delta and (problem := _start_problem(pt.start_time_unix_nano, pt.time_unix_nano)):
                self.out.rejected.add(where, problem)
                continue
            exemplars = exemplars_of(pt.exemplars, ts)
            if delta:
                self.out.deltas.append(
                    DeltaPoint(name, labels, pt.start_time_unix_nano, pt.time_unix_nano, hist, exemplars)
                )
            else:
                add_histogram_samples(self.out.batch, name, labels, ts, hist, exemplars)
            self.accepted(ts)

    def stale_histogram(self, name: str, labels: dict[str, str], ts: int, les: list[str]) -> None:
        batch = self.out.batch
        for le in [*les, "+Inf"]:
            batch.add_sample({**labels, "__name__": name + "_bucket", "le": le}, ts, STALE_NAN)
        batch.add_sample({**labels, "__name__": name + "_sum"}, ts, STALE_NAN)
        batch.add_sample({**labels, "__name__": name + "_count"}, ts, STALE_NAN)
        self.accepted(ts)

    def summaries(self, points: Iterable[SummaryDataPoint], name: str, at: str) -> None:
        batch = self.out.batch
        for pi, pt in enumerate(points):
            ts = self.timestamp(pt.time_unix_nano, f"{at}[{pi}]")
            if ts is None:
                continue
            labels = self.labels(pt.attributes)
            stale = bool(pt.flags & _NO_RECORDED_VALUE)
            for q in pt.quantile_values:
                series = {**labels, "__name__": name, "quantile": format_label_float(q.quantile)}
                batch.add_sample(series, ts, STALE_NAN if stale else q.value)
            batch.add_sample({**labels, "__name__": name + "_sum"}, ts, STALE_NAN if stale else pt.sum)
            batch.add_sample({**labels, "__name__": name + "_count"}, ts, STALE_NAN if stale else float(pt.count))
            self.accepted(ts)


def decode_metrics(request: ExportMetricsServiceRequest, window: TimeWindow) -> DecodedMetrics:
    """Map a request to Prometheus-model samples. Invalid points are left out and counted with their
    location; delta points come back in `deltas` for DeltaToCumulative to turn into samples."""
    return _Decoder(window).request(request)
