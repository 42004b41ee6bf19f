"""Span metrics: spans recorded by the SDK -> Tempo's series, with the expectations computed here from the span
definitions (labels, counts, cumulative buckets, sums), not from the code under test."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from collector.model import MetricBatch
from collector.pipeline.span_metrics import SpanMetrics
from tests.unit.pipeline.span_tables import SpanDef, span_id, spans, table, trace_id

# Tempo's default latency buckets, written out: 2 ms doubling 14 times.
TEMPO_BUCKETS = [0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384]
NOW = 1_800_000_000_000  # ms

CASES: dict[str, tuple[list[SpanDef], list[str]]] = {
    "kinds and statuses of one service": (
        [
            SpanDef("a", "shop", "GET /cart", "server", 3, status="ok"),
            SpanDef("b", "shop", "GET /cart", "server", 5, status="ok"),
            SpanDef("c", "shop", "POST /pay", "client", 10, parent="b", status="error"),
            SpanDef("d", "shop", "render", "internal", 0.5),
            SpanDef("e", "billing", "charge", "consumer", 40),
            SpanDef("f", "billing", "notify", "producer", 1),
        ],
        [],
    ),
    "bucket bounds are inclusive, beyond the last is +Inf": (
        [
            SpanDef("a", "shop", "op", "server", 2),
            SpanDef("b", "shop", "op", "server", 4),
            SpanDef("c", "shop", "op", "server", 4.5),
            SpanDef("d", "shop", "op", "server", 16384),
            SpanDef("e", "shop", "op", "server", 20000),
            SpanDef("f", "shop", "op", "server", 0),
        ],
        [],
    ),
    "dimensions from the resource first, then the span": (
        [
            SpanDef("a", "shop", "op", "server", 1, attributes={"http.method": "GET"}, resource={"env": "prod"}),
            SpanDef("b", "shop", "op", "server", 1, attributes={"http.method": "POST"}, resource={"env": "prod"}),
            SpanDef("c", "shop", "op", "server", 1, attributes={"env": "span-level"}, resource={"env": "dev"}),
            SpanDef("d", "shop", "op", "server", 1, attributes={"http.status_code": 503}),
            SpanDef("e", "shop", "op", "server", 1),
        ],
        ["http.method", "env", "http.status_code"],
    ),
    "a span without a service": ([SpanDef("a", "", "orphan", "server", 1)], []),
}


def expected_series(defs: list[SpanDef], dimensions: list[str]) -> dict[frozenset[tuple[str, str]], list[SpanDef]]:
    """Tempo's label set of each span -> the spans of that series."""
    out: dict[frozenset[tuple[str, str]], list[SpanDef]] = {}
    for d in defs:
        labels = {
            "service": d.service,
            "span_name": d.name,
            "span_kind": "SPAN_KIND_" + d.kind.upper(),
            "status_code": "STATUS_CODE_" + d.status.upper(),
        }
        for dim in dimensions:
            value = d.resource.get(dim, d.attributes.get(dim))
            if value is not None:
                labels[dim.replace(".", "_")] = str(value)
        key = frozenset((k, v) for k, v in labels.items() if v != "")
        out.setdefault(key, []).append(d)
    return out


def at(batch: MetricBatch, ts: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """(metric name, labels without __name__) -> value, of the samples at `ts`."""
    out = {}
    for fp, t, v in zip(batch.fingerprint, batch.timestamp_ms, batch.value, strict=True):
        if t == ts:
            labels = dict(batch.series[fp])
            name = labels.pop("__name__")
            out[(name, frozenset(labels.items()))] = v
    return out


@pytest.mark.parametrize("defs, dimensions", list(CASES.values()), ids=list(CASES))
def test_calls_and_latency_per_series(defs: list[SpanDef], dimensions: list[str]) -> None:
    recorded = spans(defs)
    metrics = SpanMetrics(TEMPO_BUCKETS, dimensions)
    ordered = [recorded[d.key] for d in defs]
    half = len(ordered) // 2
    for part in (ordered[:half], ordered[half:]):  # two batches add up
        if part:
            metrics.observe(table(part), NOW - 1000)
    batch = MetricBatch()
    metrics.collect(batch, NOW, 0)
    got, zeros = at(batch, NOW), at(batch, NOW - 1)

    want: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for labels, members in expected_series(defs, dimensions).items():
        seconds = [d.duration_ms / 1000 for d in members]
        want[("traces_spanmetrics_calls_total", labels)] = len(members)
        want[("traces_spanmetrics_latency_count", labels)] = len(members)
        want[("traces_spanmetrics_latency_sum", labels)] = sum(seconds)
        for bound in TEMPO_BUCKETS:
            bucket_labels = labels | {("le", repr(bound))}
            want[("traces_spanmetrics_latency_bucket", bucket_labels)] = sum(1 for s in seconds if s <= bound)
        want[("traces_spanmetrics_latency_bucket", labels | {("le", "+Inf")})] = len(members)
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
    # Every series starts from an explicit 0 one millisecond before its first value (Tempo does the same).
    assert set(zeros) == set(want) and set(zeros.values()) == {0.0}

    # Exemplars point at a span of their series, in the bucket that holds the span's latency.
    ids_of = {
        series: {(trace_id(recorded[d.key]), span_id(recorded[d.key])) for d in of_series}
        for series, of_series in expected_series(defs, dimensions).items()
    }
    assert batch.ex_fingerprint
    for fp, tid, sid, value in zip(
        batch.ex_fingerprint, batch.ex_trace_id, batch.ex_span_id, batch.ex_value, strict=True
    ):
        ex_labels = dict(batch.series[fp])
        name, le = ex_labels.pop("__name__"), ex_labels.pop("le", None)
        assert (tid, sid) in ids_of[frozenset(ex_labels.items())]
        if name == "traces_spanmetrics_latency_bucket":
            assert le is not None and value <= float(le)


def test_label_names_are_tempos() -> None:
    metrics = SpanMetrics(TEMPO_BUCKETS, ["http.method", "service", "9lives"])
    recorded = spans([SpanDef("a", "shop", "op", "server", 1, attributes={"http.method": "GET", "service": "x"})])
    metrics.observe(table(list(recorded.values())), NOW)
    batch = MetricBatch()
    metrics.collect(batch, NOW, 0)
    names = Counter(labels["__name__"] for labels in batch.series.values())
    assert names == {"traces_spanmetrics_calls_total": 1, "traces_spanmetrics_latency_count": 1,
                     "traces_spanmetrics_latency_sum": 1, "traces_spanmetrics_latency_bucket": 15}  # fmt: skip
    [calls] = [labels for labels in batch.series.values() if labels["__name__"] == "traces_spanmetrics_calls_total"]
    # A dimension named like an intrinsic label gets Tempo's `__` prefix; a leading digit an `_`.
    assert calls == {
        "__name__": "traces_spanmetrics_calls_total",
        "service": "shop",
        "span_name": "op",
        "span_kind": "SPAN_KIND_SERVER",
        "status_code": "STATUS_CODE_UNSET",
        "http_method": "GET",
        "__service": "x",
    }


def test_later_collections_repeat_the_totals_and_stale_series_go() -> None:
    metrics = SpanMetrics(TEMPO_BUCKETS)
    recorded = spans([SpanDef("a", "shop", "op", "server", 1), SpanDef("b", "shop", "other", "server", 1)])
    metrics.observe(table([recorded["a"]]), NOW)
    first = MetricBatch()
    metrics.collect(first, NOW, 0)
    metrics.observe(table([recorded["b"]]), NOW + 10_000)
    second = MetricBatch()
    metrics.collect(second, NOW + 15_000, NOW)  # nothing is stale yet
    calls: dict[Any, float] = {
        dict(k[1])["span_name"]: v for k, v in at(second, NOW + 15_000).items() if k[0].endswith("calls_total")
    }
    assert calls == {"op": 1.0, "other": 1.0}
    # No second 0 for the series written before; one for the new series; exemplars only once.
    zeros = {dict(k[1])["span_name"] for k in at(second, NOW + 14_999) if k[0].endswith("calls_total")}
    assert zeros == {"other"}
    assert {second.series[fp]["span_name"] for fp in second.ex_fingerprint} == {"other"}
    third = MetricBatch()
    metrics.collect(third, NOW + 30_000, NOW + 5_000)  # "op" was last updated at NOW: stale
    assert {labels["span_name"] for labels in third.series.values()} == {"other"}
    assert not third.ex_fingerprint
