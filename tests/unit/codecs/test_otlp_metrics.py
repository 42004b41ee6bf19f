"""OTLP metrics codec: every metric type to Prometheus series, resource mapping, exemplars, refusals."""

from __future__ import annotations

import base64
import json
import math
import pickle
import struct
from pathlib import Path
from typing import Any, cast

import pytest
from google.protobuf.json_format import ParseDict
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    Exemplar,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
    Summary,
    SummaryDataPoint,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource as SdkResource

from collector.codecs.otlp_metrics import (
    STALE_NAN,
    DecodedMetrics,
    decode_metrics,
    exponential_to_classic,
    exponential_upper_bound,
)
from collector.codecs.otlp_values import TimeWindow
from collector.model import DeltaPoint, HistogramValue, MetricBatch, MetricExemplar, MetricMetadata
from collector.pipeline.delta_to_cumulative import DeltaToCumulative

EXAMPLE = Path("/work/shared/otlp-examples/metrics.json")
T0 = 1_700_000_000_000_000_000  # ns
MS = T0 // 1_000_000
SEC = 1_000_000_000
DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
UNSPECIFIED = AggregationTemporality.AGGREGATION_TEMPORALITY_UNSPECIFIED
BASE = {"job": "shop", "instance": "i-1"}
TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN = bytes.fromhex("eee19b7ec3c1b174")
STALE_BITS = 0x7FF0000000000002

Sample = tuple[dict[str, str], int, float]


def kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def attrs(**items: Any) -> list[KeyValue]:
    return [kv(k.replace("__", "."), v) for k, v in items.items()]


SERVICE = [kv("service.name", "shop"), kv("service.instance.id", "i-1")]


def request(*metrics: Metric, resource: list[KeyValue] | None = None) -> ExportMetricsServiceRequest:
    res = Resource(attributes=SERVICE if resource is None else resource)
    scope = ScopeMetrics(metrics=list(metrics))
    return ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(resource=res, scope_metrics=[scope])])


def decode(*metrics: Metric, window: TimeWindow | None = None) -> DecodedMetrics:
    return decode_metrics(request(*metrics), window or TimeWindow())


def samples(batch: MetricBatch) -> list[Sample]:
    return [
        (batch.series[fp], ts, v) for fp, ts, v in zip(batch.fingerprint, batch.timestamp_ms, batch.value, strict=True)
    ]


def exemplars(batch: MetricBatch) -> list[tuple[dict[str, str], int, float, str, str, dict[str, str]]]:
    col = batch.ex_labels
    out = []
    for i, fp in enumerate(batch.ex_fingerprint):
        lo, hi = col.offsets[i], col.offsets[i + 1]
        labels = dict(zip(col.keys[lo:hi], col.values[lo:hi], strict=True))
        out.append(
            (
                batch.series[fp],
                batch.ex_timestamp_ms[i],
                batch.ex_value[i],
                batch.ex_trace_id[i],
                batch.ex_span_id[i],
                labels,
            )
        )
    return out


def bits(value: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", value))[0])


def point_count(metric: Metric) -> int:
    data = metric.WhichOneof("data")
    return len(getattr(metric, data).data_points) if data else 0


def s(name: str, ts: int, value: float, **labels: str) -> Sample:
    return ({**labels, **BASE, "__name__": name}, ts, value)


def num(value: float | int, t: int = T0, **kw: Any) -> NumberDataPoint:
    if isinstance(value, int):
        return NumberDataPoint(time_unix_nano=t, as_int=value, **kw)
    return NumberDataPoint(time_unix_nano=t, as_double=value, **kw)


# Each metric type, with the series worked out by hand.
CONVERSIONS = [
    pytest.param(
        Metric(
            name="process.memory.utilization",
            unit="1",
            gauge=Gauge(data_points=[num(0.25, attributes=attrs(pool="heap")), num(3, T0 + SEC)]),
        ),
        [
            s("process_memory_utilization_ratio", MS, 0.25, pool="heap"),
            s("process_memory_utilization_ratio", MS + 1000, 3.0),
        ],
        id="gauge",
    ),
    pytest.param(
        Metric(
            name="http.server.requests",
            unit="{request}",
            sum=Sum(
                aggregation_temporality=CUMULATIVE,
                is_monotonic=True,
                data_points=[num(7, start_time_unix_nano=T0 - 60 * SEC, attributes=attrs(http__method="GET"))],
            ),
        ),
        [s("http_server_requests_total", MS, 7.0, http_method="GET")],
        id="cumulative-counter",
    ),
    pytest.param(
        Metric(
            name="db.client.connections.usage",
            unit="{connection}",
            sum=Sum(aggregation_temporality=CUMULATIVE, is_monotonic=False, data_points=[num(-2)]),
        ),
        [s("db_client_connections_usage", MS, -2.0)],
        id="updown-sum-is-gauge",
    ),
    pytest.param(
        Metric(
            name="http.server.duration",
            unit="s",
            histogram=Histogram(
                aggregation_temporality=CUMULATIVE,
                data_points=[
                    HistogramDataPoint(
                        time_unix_nano=T0,
                        count=10,
                        sum=42.5,
                        explicit_bounds=[0.005, 0.1, 1, 2.5],
                        bucket_counts=[1, 2, 0, 3, 4],
                    )
                ],
            ),
        ),
        [
            s("http_server_duration_seconds_bucket", MS, 1.0, le="0.005"),
            s("http_server_duration_seconds_bucket", MS, 3.0, le="0.1"),
            s("http_server_duration_seconds_bucket", MS, 3.0, le="1"),
            s("http_server_duration_seconds_bucket", MS, 6.0, le="2.5"),
            s("http_server_duration_seconds_bucket", MS, 10.0, le="+Inf"),
            s("http_server_duration_seconds_sum", MS, 42.5),
            s("http_server_duration_seconds_count", MS, 10.0),
        ],
        id="histogram",
    ),
    pytest.param(
        Metric(
            name="queue.wait",
            unit="ms",
            histogram=Histogram(
                aggregation_temporality=CUMULATIVE, data_points=[HistogramDataPoint(time_unix_nano=T0, count=4)]
            ),
        ),
        [
            s("queue_wait_milliseconds_bucket", MS, 4.0, le="+Inf"),
            s("queue_wait_milliseconds_count", MS, 4.0),
        ],
        id="histogram-without-buckets-or-sum",
    ),
    pytest.param(
        # scale 1: base sqrt(2). Zero bucket (2) and negatives (4) share le=zero_threshold; positive
        # index 0 is (1, sqrt2], index 2 is (2, 2*sqrt2]; index 1 is empty, so it has no series.
        Metric(
            name="payload.size",
            unit="By",
            exponential_histogram=ExponentialHistogram(
                aggregation_temporality=CUMULATIVE,
                data_points=[
                    ExponentialHistogramDataPoint(
                        time_unix_nano=T0,
                        count=10,
                        sum=1.5,
                        scale=1,
                        zero_count=2,
                        zero_threshold=0.001,
                        positive=ExponentialHistogramDataPoint.Buckets(offset=0, bucket_counts=[3, 0, 1]),
                        negative=ExponentialHistogramDataPoint.Buckets(offset=0, bucket_counts=[4]),
                    )
                ],
            ),
        ),
        [
            s("payload_size_bytes_bucket", MS, 6.0, le="0.001"),
            s("payload_size_bytes_bucket", MS, 9.0, le="1.4142135623730951"),
            s("payload_size_bytes_bucket", MS, 10.0, le="2.8284271247461903"),
            s("payload_size_bytes_bucket", MS, 10.0, le="+Inf"),
            s("payload_size_bytes_sum", MS, 1.5),
            s("payload_size_bytes_count", MS, 10.0),
        ],
        id="exponential-histogram",
    ),
    pytest.param(
        # scale -1: base 4, index 1 is (4, 16]. No zero or negative counts: no lowest bucket.
        Metric(
            name="batch.items",
            exponential_histogram=ExponentialHistogram(
                aggregation_temporality=CUMULATIVE,
                data_points=[
                    ExponentialHistogramDataPoint(
                        time_unix_nano=T0,
                        count=5,
                        scale=-1,
                        positive=ExponentialHistogramDataPoint.Buckets(offset=1, bucket_counts=[5]),
                    )
                ],
            ),
        ),
        [
            s("batch_items_bucket", MS, 5.0, le="16"),
            s("batch_items_bucket", MS, 5.0, le="+Inf"),
            s("batch_items_count", MS, 5.0),
        ],
        id="exponential-negative-scale",
    ),
    pytest.param(
        Metric(
            name="rpc.duration",
            unit="s",
            summary=Summary(
                data_points=[
                    SummaryDataPoint(
                        time_unix_nano=T0,
                        count=40,
                        sum=12.5,
                        quantile_values=[
                            SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=0.1),
                            SummaryDataPoint.ValueAtQuantile(quantile=0.99, value=0.7),
                            SummaryDataPoint.ValueAtQuantile(quantile=1.0, value=2.0),
                        ],
                    )
                ]
            ),
        ),
        [
            s("rpc_duration_seconds", MS, 0.1, quantile="0.5"),
            s("rpc_duration_seconds", MS, 0.7, quantile="0.99"),
            s("rpc_duration_seconds", MS, 2.0, quantile="1"),
            s("rpc_duration_seconds_sum", MS, 12.5),
            s("rpc_duration_seconds_count", MS, 40.0),
        ],
        id="summary",
    ),
]


@pytest.mark.parametrize(("metric", "expected"), CONVERSIONS)
def test_each_metric_type(metric: Metric, expected: list[Sample]) -> None:
    out = decode(metric)
    assert samples(out.batch) == expected
    assert out.rejected.count == 0
    assert out.deltas == []
    assert out.points == point_count(metric)


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (
            Metric(name="cpu.usage", unit="1", description="busy share", gauge=Gauge(data_points=[num(0.5)])),
            MetricMetadata("cpu_usage_ratio", "gauge", "busy share", ""),
        ),
        (
            Metric(
                name="sent",
                unit="By",
                description="bytes sent",
                sum=Sum(aggregation_temporality=CUMULATIVE, is_monotonic=True, data_points=[num(1)]),
            ),
            MetricMetadata("sent_bytes", "counter", "bytes sent", "bytes"),
        ),
        (
            Metric(
                name="inflight", unit="{request}", sum=Sum(aggregation_temporality=CUMULATIVE, data_points=[num(1)])
            ),
            MetricMetadata("inflight", "gauge", "", ""),
        ),
        (
            Metric(name="io", unit="By/s", gauge=Gauge(data_points=[num(1)])),
            MetricMetadata("io_bytes_per_second", "gauge", "", "bytes_per_second"),
        ),
        (
            Metric(
                name="latency",
                unit="ms",
                description="d",
                histogram=Histogram(
                    aggregation_temporality=DELTA, data_points=[HistogramDataPoint(time_unix_nano=T0, count=1)]
                ),
            ),
            MetricMetadata("latency_milliseconds", "histogram", "d", "milliseconds"),
        ),
        (
            Metric(name="rpc", unit="s", summary=Summary(data_points=[SummaryDataPoint(time_unix_nano=T0)])),
            MetricMetadata("rpc_seconds", "summary", "", "seconds"),
        ),
    ],
)
def test_metadata_per_family(metric: Metric, expected: MetricMetadata) -> None:
    assert decode(metric).batch.metadata == {expected.metric: expected}


def test_metadata_first_metric_of_a_family_wins() -> None:
    first = Metric(name="x", description="first", gauge=Gauge(data_points=[num(1.0)]))
    second = Metric(name="x", description="second", gauge=Gauge(data_points=[num(2.0)]))
    assert decode(first, second).batch.metadata["x"].help == "first"


def test_resource_gives_job_instance_and_one_target_info_per_timestamp() -> None:
    resource = [
        kv("service.name", "checkout"),
        kv("service.namespace", "shop"),
        kv("service.instance.id", "pod-7"),
        kv("host.name", "node-1"),
        kv("process.pid", 4242),
    ]
    points = [num(1.0, attributes=attrs(job="spoofed")), num(2.0, T0 + SEC), num(3.0, T0 + SEC)]
    metric = Metric(name="up.time", gauge=Gauge(data_points=points))
    out = decode_metrics(request(metric, resource=resource), TimeWindow())
    ident = {"job": "shop/checkout", "instance": "pod-7"}
    info = {**ident, "__name__": "target_info", "host_name": "node-1", "process_pid": "4242"}
    assert samples(out.batch) == [
        ({**ident, "__name__": "up_time"}, MS, 1.0),
        ({**ident, "__name__": "up_time"}, MS + 1000, 2.0),
        ({**ident, "__name__": "up_time"}, MS + 1000, 3.0),
        (info, MS, 1.0),
        (info, MS + 1000, 1.0),
    ]
    assert out.batch.metadata["target_info"] == MetricMetadata("target_info", "gauge", "Target metadata", "")


@pytest.mark.parametrize(
    "resource",
    [
        pytest.param([kv("service.name", "a"), kv("service.instance.id", "b")], id="only-identifying"),
        pytest.param([kv("host.name", "n")], id="no-job-nor-instance"),
        pytest.param([], id="empty"),
    ],
)
def test_no_target_info(resource: list[KeyValue]) -> None:
    out = decode_metrics(
        request(Metric(name="m", gauge=Gauge(data_points=[num(1.0)])), resource=resource), TimeWindow()
    )
    assert [labels["__name__"] for labels, _, _ in samples(out.batch)] == ["m"]
    assert "target_info" not in out.batch.metadata


def test_job_without_namespace_and_no_instance() -> None:
    out = decode_metrics(
        request(Metric(name="m", gauge=Gauge(data_points=[num(1.0)])), resource=[kv("service.name", "a")]), TimeWindow()
    )
    assert samples(out.batch) == [({"job": "a", "__name__": "m"}, MS, 1.0)]


@pytest.mark.parametrize(
    ("point_attrs", "expected"),
    [
        pytest.param([kv("http.method", "GET")], {"http_method": "GET"}, id="escaped"),
        pytest.param([kv("a.b", "1"), kv("a_b", "2"), kv("a-b", "3")], {"a_b": "3;1;2"}, id="collision-joins-by-key"),
        pytest.param([kv("2xx", True), kv("ratio", 0.5)], {"key_2xx": "true", "ratio": "0.5"}, id="typed-values"),
        pytest.param([kv("empty", ""), kv("ok", "y")], {"ok": "y"}, id="empty-value-is-no-label"),
        pytest.param([kv("instance", "x"), kv("__name__", "evil")], {}, id="reserved-are-overridden"),
    ],
)
def test_point_attributes_become_labels(point_attrs: list[KeyValue], expected: dict[str, str]) -> None:
    out = decode(Metric(name="m", gauge=Gauge(data_points=[num(1.0, attributes=point_attrs)])))
    assert samples(out.batch) == [({**expected, **BASE, "__name__": "m"}, MS, 1.0)]


def ex(value: float, trace: bytes = TRACE, span: bytes = SPAN, t: int = T0 - 1_000_000, **filtered: Any) -> Exemplar:
    return Exemplar(
        time_unix_nano=t, as_double=value, trace_id=trace, span_id=span, filtered_attributes=attrs(**filtered)
    )


def test_counter_exemplar_goes_on_total_series() -> None:
    point = num(7, exemplars=[ex(1.0, user__id="42")])
    out = decode(
        Metric(name="orders", sum=Sum(aggregation_temporality=CUMULATIVE, is_monotonic=True, data_points=[point]))
    )
    assert exemplars(out.batch) == [
        ({**BASE, "__name__": "orders_total"}, MS - 1, 1.0, TRACE.hex(), SPAN.hex(), {"user_id": "42"})
    ]


def test_histogram_exemplars_go_to_the_bucket_holding_the_value() -> None:
    point = HistogramDataPoint(
        time_unix_nano=T0,
        count=4,
        explicit_bounds=[1, 5],
        bucket_counts=[1, 2, 1],
        exemplars=[ex(0.5), ex(3.0), ex(5.0), ex(7.0)],
    )
    out = decode(Metric(name="h", histogram=Histogram(aggregation_temporality=CUMULATIVE, data_points=[point])))
    assert [(labels["le"], value) for labels, _, value, _, _, _ in exemplars(out.batch)] == [
        ("1", 0.5),
        ("5", 3.0),
        ("5", 5.0),
        ("+Inf", 7.0),
    ]


def test_exponential_histogram_exemplar_bucket() -> None:
    point = ExponentialHistogramDataPoint(
        time_unix_nano=T0,
        count=2,
        scale=0,
        positive=ExponentialHistogramDataPoint.Buckets(offset=1, bucket_counts=[1, 1]),
        exemplars=[ex(3.5), ex(6.0)],
    )
    out = decode(
        Metric(
            name="e",
            exponential_histogram=ExponentialHistogram(aggregation_temporality=CUMULATIVE, data_points=[point]),
        )
    )
    assert [labels["le"] for labels, *_ in exemplars(out.batch)] == ["4", "8"]


@pytest.mark.parametrize(
    "metric",
    [
        pytest.param(Metric(name="g", gauge=Gauge(data_points=[num(1.0, exemplars=[ex(1.0)])])), id="gauge"),
        pytest.param(
            Metric(name="u", sum=Sum(aggregation_temporality=CUMULATIVE, data_points=[num(1.0, exemplars=[ex(1.0)])])),
            id="updown",
        ),
    ],
)
def test_exemplars_dropped_where_spec_says(metric: Metric) -> None:
    out = decode(metric)
    assert len(out.batch) == 1
    assert exemplars(out.batch) == []


@pytest.mark.parametrize(
    ("trace", "span", "expected"),
    [
        (TRACE, SPAN, (TRACE.hex(), SPAN.hex())),
        (b"\x01\x02\x03", SPAN, ("", "")),
        (bytes(16), SPAN, ("", "")),
        (TRACE, bytes(8), (TRACE.hex(), "")),
        (TRACE, b"\x01" * 9, (TRACE.hex(), "")),
        (b"", b"", ("", "")),
    ],
)
def test_invalid_exemplar_ids_are_dropped_not_the_exemplar(
    trace: bytes, span: bytes, expected: tuple[str, str]
) -> None:
    point = num(1, exemplars=[ex(2.0, trace, span)])
    out = decode(Metric(name="c", sum=Sum(aggregation_temporality=CUMULATIVE, is_monotonic=True, data_points=[point])))
    [(_, _, value, trace_id, span_id, _)] = exemplars(out.batch)
    assert (value, trace_id, span_id) == (2.0, *expected)


@pytest.mark.parametrize(
    ("trace", "span", "kept"),
    [(TRACE, SPAN, False), (b"", b"", True)],  # 8+32 + 7+16 + 1+100 > 128; 1+100 <= 128
)
def test_exemplar_attributes_over_128_characters_are_dropped(trace: bytes, span: bytes, kept: bool) -> None:
    point = num(1, exemplars=[ex(2.0, trace, span, k="x" * 100)])
    out = decode(Metric(name="c", sum=Sum(aggregation_temporality=CUMULATIVE, is_monotonic=True, data_points=[point])))
    assert exemplars(out.batch)[0][5] == ({"k": "x" * 100} if kept else {})


def test_exemplar_without_time_takes_the_points() -> None:
    point = num(1, exemplars=[Exemplar(as_int=3)])
    out = decode(Metric(name="c", sum=Sum(aggregation_temporality=CUMULATIVE, is_monotonic=True, data_points=[point])))
    assert [(ts, value) for _, ts, value, *_ in exemplars(out.batch)] == [(MS, 3.0)]


STALE = 1  # DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK


@pytest.mark.parametrize(
    ("metric", "series"),
    [
        pytest.param(Metric(name="g", gauge=Gauge(data_points=[num(5.0, flags=STALE)])), [("g", None)], id="gauge"),
        pytest.param(
            Metric(
                name="c", sum=Sum(aggregation_temporality=DELTA, is_monotonic=True, data_points=[num(5, flags=STALE)])
            ),
            [("c_total", None)],
            id="delta-sum-goes-stale-directly",
        ),
        pytest.param(
            Metric(
                name="h",
                histogram=Histogram(
                    aggregation_temporality=CUMULATIVE,
                    data_points=[HistogramDataPoint(time_unix_nano=T0, flags=STALE, explicit_bounds=[1, 2])],
                ),
            ),
            [("h_bucket", "1"), ("h_bucket", "2"), ("h_bucket", "+Inf"), ("h_sum", None), ("h_count", None)],
            id="histogram",
        ),
        pytest.param(
            Metric(
                name="e",
                exponential_histogram=ExponentialHistogram(
                    aggregation_temporality=DELTA,
                    data_points=[ExponentialHistogramDataPoint(time_unix_nano=T0, flags=STALE)],
                ),
            ),
            [("e_bucket", "+Inf"), ("e_sum", None), ("e_count", None)],
            id="exponential",
        ),
        pytest.param(
            Metric(
                name="s",
                summary=Summary(
                    data_points=[
                        SummaryDataPoint(
                            time_unix_nano=T0,
                            flags=STALE,
                            quantile_values=[SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=1.0)],
                        )
                    ]
                ),
            ),
            [("s", None), ("s_sum", None), ("s_count", None)],
            id="summary",
        ),
    ],
)
def test_no_recorded_value_writes_stale_markers(metric: Metric, series: list[tuple[str, str | None]]) -> None:
    out = decode(metric)
    got = samples(out.batch)
    assert [(labels["__name__"], labels.get("le")) for labels, _, _ in got] == series
    assert all(bits(value) == STALE_BITS for _, _, value in got)
    assert all(ts == MS for _, ts, _ in got)
    assert out.deltas == []
    assert out.points == 1


def test_stale_nan_has_the_prometheus_bits() -> None:
    assert math.isnan(STALE_NAN)
    assert bits(STALE_NAN) == STALE_BITS


def test_delta_sum_becomes_a_delta_point() -> None:
    point = num(3, start_time_unix_nano=T0 - SEC, attributes=attrs(route="/a"), exemplars=[ex(1.0)])
    out = decode(Metric(name="hits", sum=Sum(aggregation_temporality=DELTA, is_monotonic=True, data_points=[point])))
    labels = {"route": "/a", **BASE}
    exemplar = MetricExemplar(MS - 1, 1.0, TRACE.hex(), SPAN.hex(), {})
    assert out.deltas == [DeltaPoint("hits_total", labels, T0 - SEC, T0, 3.0, [exemplar])]
    assert len(out.batch) == 0
    assert out.points == 1
    assert out.batch.metadata["hits"].type == "counter"


def test_delta_histograms_become_delta_points() -> None:
    explicit = HistogramDataPoint(
        start_time_unix_nano=T0 - SEC,
        time_unix_nano=T0,
        count=4,
        sum=9.0,
        explicit_bounds=[1, 5],
        bucket_counts=[1, 2, 1],
    )
    expo = ExponentialHistogramDataPoint(
        start_time_unix_nano=T0 - SEC,
        time_unix_nano=T0,
        count=3,
        zero_count=1,
        positive=ExponentialHistogramDataPoint.Buckets(offset=0, bucket_counts=[2]),
    )
    out = decode(
        Metric(name="h", histogram=Histogram(aggregation_temporality=DELTA, data_points=[explicit])),
        Metric(name="e", exponential_histogram=ExponentialHistogram(aggregation_temporality=DELTA, data_points=[expo])),
    )
    assert out.deltas == [
        DeltaPoint("h", BASE, T0 - SEC, T0, HistogramValue({"1": 1.0, "5": 2.0}, 4.0, 9.0)),
        DeltaPoint("e", BASE, T0 - SEC, T0, HistogramValue({"0": 1.0, "2": 2.0}, 3.0, None)),
    ]
    assert len(out.batch) == 0


def test_delta_updown_sum_is_accumulated_as_gauge() -> None:
    out = decode(Metric(name="q", sum=Sum(aggregation_temporality=DELTA, is_monotonic=False, data_points=[num(-1)])))
    assert [(d.metric, d.value) for d in out.deltas] == [("q", -1.0)]
    assert out.batch.metadata["q"].type == "gauge"


def at_position(metric: Metric) -> ExportMetricsServiceRequest:
    """The metric under test at resource_metrics[0].scope_metrics[1].metrics[2], after valid ones."""

    def ok() -> Metric:
        return Metric(name="ok", gauge=Gauge(data_points=[num(1.0)]))

    scopes = [ScopeMetrics(metrics=[ok()]), ScopeMetrics(metrics=[ok(), ok(), metric])]
    return ExportMetricsServiceRequest(
        resource_metrics=[ResourceMetrics(resource=Resource(attributes=SERVICE), scope_metrics=scopes)]
    )


WHERE = "resource_metrics[0].scope_metrics[1].metrics[2]"
WINDOW = TimeWindow(min_ns=T0 - 3600 * SEC, max_ns=T0 + 600 * SEC)


def _sum(*points: NumberDataPoint, temporality: AggregationTemporality.ValueType = CUMULATIVE) -> Metric:
    return Metric(name="s", sum=Sum(aggregation_temporality=temporality, is_monotonic=True, data_points=list(points)))


def _hist(**kw: Any) -> Metric:
    point = HistogramDataPoint(**{"time_unix_nano": T0, **kw})
    return Metric(name="h", histogram=Histogram(aggregation_temporality=CUMULATIVE, data_points=[point]))


def _expo(**kw: Any) -> Metric:
    return Metric(
        name="e",
        exponential_histogram=ExponentialHistogram(
            aggregation_temporality=CUMULATIVE, data_points=[ExponentialHistogramDataPoint(time_unix_nano=T0, **kw)]
        ),
    )


@pytest.mark.parametrize(
    ("metric", "message", "count"),
    [
        (
            Metric(name="g", gauge=Gauge(data_points=[num(1.0), num(2.0, 0)])),
            f"{WHERE}.gauge.data_points[1]: time_unix_nano is missing",
            1,
        ),
        (_sum(num(1, T0 - 7200 * SEC)), f"{WHERE}.sum.data_points[0]: timestamp {T0 - 7200 * SEC} ns is older", 1),
        (_hist(count=1, time_unix_nano=T0 + 3600 * SEC), f"{WHERE}.histogram.data_points[0]: timestamp", 1),
        (
            Metric(name="g", gauge=Gauge(data_points=[NumberDataPoint(time_unix_nano=T0)])),
            f"{WHERE}.gauge.data_points[0]: data point has neither as_double nor as_int",
            1,
        ),
        (Metric(gauge=Gauge(data_points=[num(1.0), num(2.0), num(3.0)])), f"{WHERE}: metric name is empty", 3),
        (Metric(name="...", gauge=Gauge(data_points=[num(1.0)])), f"{WHERE}: metric name '...' has no character", 1),
        (Metric(name="nothing"), f"{WHERE}: metric has no gauge, sum", 1),
        (_sum(num(1), num(2), temporality=UNSPECIFIED), f"{WHERE}: aggregation_temporality 0 is neither", 2),
        (
            _hist(count=3, explicit_bounds=[1, 2], bucket_counts=[1, 2]),
            f"{WHERE}.histogram.data_points[0]: bucket_counts has 2 entries for 2 explicit_bounds",
            1,
        ),
        (
            _hist(count=3, explicit_bounds=[2, 1], bucket_counts=[1, 1, 1]),
            f"{WHERE}.histogram.data_points[0]: explicit_bounds must be finite and strictly increasing",
            1,
        ),
        (
            _hist(count=3, explicit_bounds=[1, math.inf], bucket_counts=[1, 1, 1]),
            f"{WHERE}.histogram.data_points[0]: explicit_bounds must be finite",
            1,
        ),
        (
            _sum(num(1, start_time_unix_nano=T0 + 1), temporality=DELTA),
            f"{WHERE}.sum.data_points[0]: start_time_unix_nano {T0 + 1} is after time_unix_nano {T0}",
            1,
        ),
        (_expo(count=1, scale=21), f"{WHERE}.exponential_histogram.data_points[0]: scale 21 is outside [-10, 20]", 1),
        (_expo(count=1, zero_threshold=-1.0), f"{WHERE}.exponential_histogram.data_points[0]: zero_threshold -1.0", 1),
    ],
)
def test_rejections_say_where_and_what(metric: Metric, message: str, count: int) -> None:
    out = decode_metrics(at_position(metric), WINDOW)
    assert out.rejected.count == count
    assert out.rejected.messages[0].startswith(message)
    # Every point is accepted or refused: the three valid "ok" metrics plus what is left of this one.
    assert out.points == 3 + max(point_count(metric) - count, 0)
    assert [labels["__name__"] for labels, _, _ in samples(out.batch)].count("ok") == 3


def test_decoded_result_survives_pickling() -> None:
    # Decoding runs in worker processes: the result crosses a process boundary.
    out = decode(*[cast(Metric, param.values[0]) for param in CONVERSIONS])
    back = pickle.loads(pickle.dumps(out))
    assert samples(back.batch) == samples(out.batch)
    assert back.batch.metadata == out.batch.metadata


def otlp_json(path: Path) -> ExportMetricsServiceRequest:
    """An OTLP/JSON body as a request: ids in OTLP/JSON are hex, protobuf's JSON mapping wants base64."""

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: base64.b64encode(bytes.fromhex(v)).decode() if k in ("traceId", "spanId") else fix(v)
                for k, v in node.items()
            }
        return [fix(v) for v in node] if isinstance(node, list) else node

    return ParseDict(fix(json.loads(path.read_text())), ExportMetricsServiceRequest())


def test_shared_example_reads_back() -> None:
    out = decode_metrics(otlp_json(EXAMPLE), TimeWindow())
    assert out.rejected.count == 0
    assert out.points == 4
    # Counter, histogram and exponential histogram are delta: a first point's running total is itself.
    dropped, _ = DeltaToCumulative(100).apply(out.batch, out.deltas)
    assert dropped == 0
    ts = 1544712660300
    job = {"job": "my.service"}
    assert sorted(samples(out.batch), key=repr) == sorted(
        [
            ({**job, "__name__": "my_counter_total", "my_counter_attr": "some value"}, ts, 5.0),
            ({**job, "__name__": "my_gauge_ratio", "my_gauge_attr": "some value"}, ts, 10.0),
            ({**job, "__name__": "my_histogram_bucket", "le": "1", "my_histogram_attr": "some value"}, ts, 1.0),
            ({**job, "__name__": "my_histogram_bucket", "le": "+Inf", "my_histogram_attr": "some value"}, ts, 2.0),
            ({**job, "__name__": "my_histogram_sum", "my_histogram_attr": "some value"}, ts, 2.0),
            ({**job, "__name__": "my_histogram_count", "my_histogram_attr": "some value"}, ts, 2.0),
            # scale 0, zero bucket 1 (le 0), positive index 2 = (4, 8] holds 2; index 1 is empty
            (
                {
                    **job,
                    "__name__": "my_exponential_histogram_bucket",
                    "le": "0",
                    "my_exponential_histogram_attr": "some value",
                },
                ts,
                1.0,
            ),
            (
                {
                    **job,
                    "__name__": "my_exponential_histogram_bucket",
                    "le": "8",
                    "my_exponential_histogram_attr": "some value",
                },
                ts,
                3.0,
            ),
            (
                {
                    **job,
                    "__name__": "my_exponential_histogram_bucket",
                    "le": "+Inf",
                    "my_exponential_histogram_attr": "some value",
                },
                ts,
                3.0,
            ),
            (
                {**job, "__name__": "my_exponential_histogram_sum", "my_exponential_histogram_attr": "some value"},
                ts,
                10.0,
            ),
            (
                {**job, "__name__": "my_exponential_histogram_count", "my_exponential_histogram_attr": "some value"},
                ts,
                3.0,
            ),
        ],
        key=repr,
    )
    assert out.batch.metadata == {
        "my_counter": MetricMetadata("my_counter", "counter", "I am a Counter", ""),
        "my_gauge_ratio": MetricMetadata("my_gauge_ratio", "gauge", "I am a Gauge", ""),
        "my_histogram": MetricMetadata("my_histogram", "histogram", "I am a Histogram", ""),
        "my_exponential_histogram": MetricMetadata(
            "my_exponential_histogram", "histogram", "I am an Exponential Histogram", ""
        ),
    }


@pytest.mark.parametrize(
    ("scale", "index", "expected"),
    [
        (0, -1, 1.0),
        (0, 0, 2.0),
        (0, 2, 8.0),
        (1, 0, 2**0.5),
        (1, 1, 2.0),
        (1, -3, 2**-1),
        (3, 7, 2.0),
        (-1, 0, 4.0),
        (-1, 1, 16.0),
        (-9, 0, 2.0**512),
        (-10, 0, math.inf),
        (-10, -1, 1.0),
        (0, 5000, math.inf),
    ],
)
def test_exponential_upper_bound(scale: int, index: int, expected: float) -> None:
    assert exponential_upper_bound(scale, index) == expected


@given(
    scale=st.integers(-4, 6),
    offset=st.integers(-40, 40),
    counts=st.lists(st.integers(0, 5), max_size=12),
    zero=st.integers(0, 3),
    negative=st.lists(st.integers(0, 3), max_size=3),
)
def test_exponential_conversion_keeps_every_observation(
    scale: int, offset: int, counts: list[int], zero: int, negative: list[int]
) -> None:
    total = zero + sum(negative) + sum(counts)
    pt = ExponentialHistogramDataPoint(
        time_unix_nano=T0,
        count=total,
        scale=scale,
        zero_count=zero,
        positive=ExponentialHistogramDataPoint.Buckets(offset=offset, bucket_counts=counts),
        negative=ExponentialHistogramDataPoint.Buckets(offset=0, bucket_counts=negative),
    )
    hist = exponential_to_classic(pt)
    assert hist.count == total
    assert sum(hist.buckets.values()) == total
    assert all(n > 0 for n in hist.buckets.values())
    # The cumulative count at each populated bucket's bound is everything up to that bucket.
    running = zero + sum(negative)
    for k, n in enumerate(counts):
        running += n
        if n:
            le = exponential_upper_bound(scale, offset + k)
            assert sum(c for b, c in hist.buckets.items() if float(b) <= le) == running


def test_opentelemetry_sdk_export_decodes_to_prometheus_names() -> None:
    # The real client: the OTel Python SDK's metrics, encoded by its OTLP exporter's encoder.
    reader = InMemoryMetricReader()
    resource = SdkResource.create({"service.name": "shop", "service.instance.id": "i-1", "host.name": "n1"})
    meter = MeterProvider(metric_readers=[reader], resource=resource).get_meter("test")
    meter.create_counter("http.requests", unit="{request}").add(3, {"http.route": "/a"})
    meter.create_histogram("http.duration", unit="ms").record(7, {"http.route": "/a"})
    meter.create_up_down_counter("queue.size").add(-2)
    meter.create_gauge("cpu.utilization", unit="1").set(0.5)
    data = reader.get_metrics_data()
    assert data is not None
    out = decode_metrics(encode_metrics(data), TimeWindow())
    assert (out.points, out.rejected.count, out.deltas) == (4, 0, [])
    route = {"http_route": "/a", **BASE}
    got = {(tuple(sorted(labels.items())), value) for labels, _, value in samples(out.batch)}
    assert (tuple(sorted({**route, "__name__": "http_requests_total"}.items())), 3.0) in got
    assert (tuple(sorted({**route, "__name__": "http_duration_milliseconds_bucket", "le": "5"}.items())), 0.0) in got
    assert (tuple(sorted({**route, "__name__": "http_duration_milliseconds_bucket", "le": "10"}.items())), 1.0) in got
    assert (tuple(sorted({**route, "__name__": "http_duration_milliseconds_sum"}.items())), 7.0) in got
    assert (tuple(sorted({**BASE, "__name__": "queue_size"}.items())), -2.0) in got
    assert (tuple(sorted({**BASE, "__name__": "cpu_utilization_ratio"}.items())), 0.5) in got
    [info] = [labels for labels, _, _ in samples(out.batch) if labels["__name__"] == "target_info"]
    assert info["host_name"] == "n1" and info["telemetry_sdk_language"] == "python"
    assert "host_name" not in {k for labels, _, _ in samples(out.batch) if labels is not info for k in labels}
