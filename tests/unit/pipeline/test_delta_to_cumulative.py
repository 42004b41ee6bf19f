"""DeltaToCumulative: runs, gaps, out-of-order and overlapping points, histograms, LRU eviction."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality as SdkTemporality
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation
from opentelemetry.sdk.resources import Resource

from collector.codecs.otlp_metrics import decode_metrics
from collector.codecs.otlp_values import TimeWindow
from collector.model import DeltaPoint, HistogramValue, MetricBatch, MetricExemplar
from collector.pipeline.delta_to_cumulative import DeltaToCumulative

SEC = 1_000_000_000
T0 = 1_700_000_000 * SEC
LABELS = {"job": "shop"}


def at(seconds: float) -> int:
    return T0 + int(seconds * SEC)


def sum_point(start: float | None, end: float, value: float, metric: str = "hits_total", **labels: str) -> DeltaPoint:
    return DeltaPoint(metric, {**LABELS, **labels}, 0 if start is None else at(start), at(end), value)


def values(batch: MetricBatch) -> list[tuple[str, int, float]]:
    return [
        (batch.series[fp]["__name__"], ts, v)
        for fp, ts, v in zip(batch.fingerprint, batch.timestamp_ms, batch.value, strict=True)
    ]


def applied(d2c: DeltaToCumulative, batch: MetricBatch, points: list[DeltaPoint]) -> int:
    """Apply and commit, as the ingest path does once the batch is stored; the number of points dropped."""
    dropped, commit = d2c.apply(batch, points)
    commit()
    return dropped


def ms(seconds: float) -> int:
    return at(seconds) // 1_000_000


# Each case: calls of (start s, end s, delta) points -> per call, the cumulative values written and the
# number of points dropped. A start of None is a point whose sender left start_time_unix_nano unset.
RUNS = [
    pytest.param([[(0, 0, 5.0)]], [([5.0], 0)], id="first-point-is-its-own-value"),
    pytest.param(
        [[(0, 10, 1.0)], [(10, 20, 2.0)], [(20, 30, 3.0)]], [([1.0], 0), ([3.0], 0), ([6.0], 0)], id="contiguous-run"
    ),
    pytest.param([[(0, 10, 1.0), (10, 20, 2.0), (20, 30, 3.0)]], [([1.0, 3.0, 6.0], 0)], id="run-in-one-call"),
    pytest.param([[(20, 30, 3.0), (0, 10, 1.0), (10, 20, 2.0)]], [([1.0, 3.0, 6.0], 0)], id="one-call-any-order"),
    pytest.param(
        [[(0, 10, 1.0)], [(15, 20, 2.0)], [(20, 30, 4.0)]], [([1.0], 0), ([2.0], 0), ([6.0], 0)], id="gap-new-run"
    ),
    pytest.param(
        [[(0, 10, 1.0)], [(10, 20, 2.0)], [(10, 20, 2.0)]], [([1.0], 0), ([3.0], 0), ([], 1)], id="duplicate-dropped"
    ),
    pytest.param([[(10, 20, 1.0)], [(0, 10, 2.0)]], [([1.0], 0), ([], 1)], id="earlier-dropped"),
    pytest.param(
        [[(0, 10, 1.0)], [(5, 20, 2.0)], [(10, 30, 4.0)]], [([1.0], 0), ([], 1), ([5.0], 0)], id="overlap-dropped"
    ),
    pytest.param([[(0, 10, 1.0), (0, 10, 1.0), (5, 20, 1.0)]], [([1.0], 2)], id="drops-in-one-call"),
    pytest.param(
        [[(None, 10, 1.0)], [(None, 20, 2.0)], [(None, 20, 9.0)]], [([1.0], 0), ([3.0], 0), ([], 1)], id="unset-start"
    ),
]


@pytest.mark.parametrize(("calls", "expected"), RUNS)
def test_sum_runs(
    calls: list[list[tuple[float | None, float, float]]], expected: list[tuple[list[float], int]]
) -> None:
    d2c = DeltaToCumulative(10)
    batch = MetricBatch()
    got = []
    for call in calls:
        before = len(batch)
        dropped = applied(d2c, batch, [sum_point(*p) for p in call])
        got.append((batch.value[before:], dropped))
    assert got == expected


def test_samples_carry_labels_name_and_time() -> None:
    batch = MetricBatch()
    applied(DeltaToCumulative(10), batch, [sum_point(0, 10, 1.0, route="/a"), sum_point(10, 20, 2.0, route="/a")])
    assert values(batch) == [("hits_total", ms(10), 1.0), ("hits_total", ms(20), 3.0)]
    assert list(batch.series.values()) == [{"job": "shop", "route": "/a", "__name__": "hits_total"}]


def test_series_are_independent() -> None:
    d2c, batch = DeltaToCumulative(10), MetricBatch()
    applied(d2c, batch, [sum_point(0, 10, 1.0, route="/a"), sum_point(0, 10, 5.0, route="/b")])
    applied(d2c, batch, [sum_point(10, 20, 1.0, route="/a"), sum_point(10, 20, 5.0, route="/b")])
    by_route = {(batch.series[fp]["route"], v) for fp, v in zip(batch.fingerprint, batch.value, strict=True)}
    assert by_route == {("/a", 1.0), ("/b", 5.0), ("/a", 2.0), ("/b", 10.0)}
    assert len(d2c) == 2


def test_exemplars_follow_their_sample() -> None:
    batch = MetricBatch()
    exemplar = MetricExemplar(ms(5), 1.0, "ab" * 16, "cd" * 8, {"user": "u"})
    point = DeltaPoint("hits_total", LABELS, at(0), at(10), 3.0, [exemplar])
    applied(DeltaToCumulative(10), batch, [point])
    assert batch.ex_fingerprint == batch.fingerprint
    assert (batch.ex_trace_id, batch.ex_span_id, batch.ex_timestamp_ms) == (["ab" * 16], ["cd" * 8], [ms(5)])


def hist(buckets: dict[str, float], count: float, total: float | None) -> HistogramValue:
    return HistogramValue(buckets, count, total)


def test_histograms_add_up_by_bucket() -> None:
    d2c, batch = DeltaToCumulative(10), MetricBatch()
    first = DeltaPoint("lat", LABELS, at(0), at(10), hist({"1": 1.0, "5": 2.0}, 4.0, 9.0))
    # An exponential histogram's populated buckets change from point to point: buckets add up by `le`.
    second = DeltaPoint("lat", LABELS, at(10), at(20), hist({"5": 1.0, "10": 1.0}, 3.0, 20.0))
    assert applied(d2c, batch, [first, second]) == 0
    got = [
        (labels["__name__"], labels.get("le"), ts, v)
        for labels, ts, v in (
            (batch.series[fp], ts, v)
            for fp, ts, v in zip(batch.fingerprint, batch.timestamp_ms, batch.value, strict=True)
        )
    ]
    assert got == [
        ("lat_bucket", "1", ms(10), 1.0),
        ("lat_bucket", "5", ms(10), 3.0),
        ("lat_bucket", "+Inf", ms(10), 4.0),
        ("lat_sum", None, ms(10), 9.0),
        ("lat_count", None, ms(10), 4.0),
        ("lat_bucket", "1", ms(20), 1.0),
        ("lat_bucket", "5", ms(20), 4.0),
        ("lat_bucket", "10", ms(20), 5.0),
        ("lat_bucket", "+Inf", ms(20), 7.0),
        ("lat_sum", None, ms(20), 29.0),
        ("lat_count", None, ms(20), 7.0),
    ]


def test_histogram_sum_unknown_for_the_rest_of_the_run() -> None:
    d2c, batch = DeltaToCumulative(10), MetricBatch()
    applied(d2c, batch, [DeltaPoint("lat", LABELS, at(0), at(10), hist({}, 1.0, None))])
    applied(d2c, batch, [DeltaPoint("lat", LABELS, at(10), at(20), hist({}, 1.0, 2.0))])
    names = [batch.series[fp]["__name__"] for fp in batch.fingerprint]
    assert "lat_sum" not in names
    assert batch.value[-1] == 2.0  # lat_count


def test_histogram_exemplar_goes_to_its_bucket() -> None:
    batch = MetricBatch()
    exemplar = MetricExemplar(ms(5), 3.0, "", "", {})
    applied(
        DeltaToCumulative(10),
        batch,
        [DeltaPoint("lat", LABELS, at(0), at(10), hist({"1": 1.0, "5": 1.0}, 2.0, 4.0), [exemplar])],
    )
    assert [batch.series[fp].get("le") for fp in batch.ex_fingerprint] == ["5"]


def test_sum_and_histogram_of_one_name_are_separate_streams() -> None:
    d2c, batch = DeltaToCumulative(10), MetricBatch()
    applied(d2c, batch, [sum_point(0, 10, 1.0, metric="x"), DeltaPoint("x", LABELS, at(0), at(10), hist({}, 2.0, 2.0))])
    applied(
        d2c, batch, [sum_point(10, 20, 1.0, metric="x"), DeltaPoint("x", LABELS, at(10), at(20), hist({}, 2.0, 2.0))]
    )
    assert len(d2c) == 2
    assert [v for fp, v in zip(batch.fingerprint, batch.value, strict=True) if batch.series[fp]["__name__"] == "x"] == [
        1.0,
        2.0,
    ]


def test_least_recently_updated_series_is_evicted() -> None:
    d2c, batch = DeltaToCumulative(2), MetricBatch()
    applied(d2c, batch, [sum_point(0, 10, 1.0, route="a"), sum_point(0, 10, 1.0, route="b")])
    applied(d2c, batch, [sum_point(10, 20, 1.0, route="a")])  # a is now more recent than b
    applied(d2c, batch, [sum_point(0, 10, 1.0, route="c")])  # evicts b
    assert (len(d2c), d2c.evicted) == (2, 1)
    applied(d2c, batch, [sum_point(20, 30, 1.0, route="a")])  # a was kept: its run continues
    assert batch.value[-1] == 3.0
    applied(d2c, batch, [sum_point(10, 20, 7.0, route="b")])  # b was forgotten: a new run; evicts c
    assert batch.value[-1] == 7.0
    assert (len(d2c), d2c.evicted) == (2, 2)


def test_max_series_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_series"):
        DeltaToCumulative(0)


def test_sdk_delta_stream_reads_back_cumulative() -> None:
    # The OTel Python SDK with delta temporality and exponential histograms, through the real codec:
    # each collection starts where the previous one ended, so the runs continue.
    reader = InMemoryMetricReader(
        preferred_temporality={Counter: SdkTemporality.DELTA, Histogram: SdkTemporality.DELTA},
        preferred_aggregation={Histogram: ExponentialBucketHistogramAggregation(max_size=20)},
    )
    meter = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": "shop"})).get_meter("t")
    jobs, size = meter.create_counter("jobs"), meter.create_histogram("size", unit="By")
    d2c = DeltaToCumulative(10)
    totals = []
    for count, observations in ((3, [100, 300]), (4, [1000])):
        jobs.add(count)
        for v in observations:
            size.record(v)
        data = reader.get_metrics_data()
        assert data is not None
        out = decode_metrics(encode_metrics(data), TimeWindow())
        assert applied(d2c, out.batch, out.deltas) == 0
        got = {
            out.batch.series[fp]["__name__"]: v for fp, v in zip(out.batch.fingerprint, out.batch.value, strict=True)
        }
        totals.append((got["jobs_total"], got["size_bytes_count"], got["size_bytes_sum"]))
    assert totals == [(3.0, 2.0, 400.0), (7.0, 3.0, 1400.0)]


def test_uncommitted_points_leave_the_runs_unchanged() -> None:
    """A batch whose insert failed is not committed: the sender's retry accumulates once, not 'overlapping'."""
    d2c = DeltaToCumulative(10)
    assert applied(d2c, MetricBatch(), [sum_point(0, 10, 1.0)]) == 0
    failed = MetricBatch()
    dropped, _ = d2c.apply(failed, [sum_point(10, 20, 2.0)])  # stored? no: never committed
    assert (dropped, failed.value) == (0, [3.0])
    retry = MetricBatch()
    assert applied(d2c, retry, [sum_point(10, 20, 2.0)]) == 0
    assert retry.value == [3.0]
    again = MetricBatch()
    assert applied(d2c, again, [sum_point(10, 20, 2.0)]) == 1  # now it is a real duplicate
