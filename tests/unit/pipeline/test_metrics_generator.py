"""MetricsGenerator: both processors behind one lock, settled and collected on its clocks, written by its loop."""

from __future__ import annotations

import asyncio
from typing import Any

from collector.config import MetricsGeneratorSettings
from collector.model import MetricBatch
from collector.pipeline.metrics_generator import MetricsGenerator
from collector.pipeline.service_graph import ServiceGraph
from collector.pipeline.span_metrics import SpanMetrics
from tests.unit.pipeline.span_tables import SpanDef, spans, table

NOW_MS = 1_800_000_000_000


class Clock:
    """Wall time (ms) and monotonic time (s) that move only when told to."""

    def __init__(self) -> None:
        self.ms = NOW_MS
        self.s = 100.0

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)
        self.s += seconds


def names_at(batch: MetricBatch, ts: int) -> dict[str, float]:
    return {
        batch.series[fp]["__name__"]: v
        for fp, t, v in zip(batch.fingerprint, batch.timestamp_ms, batch.value, strict=True)
        if t == ts and "le" not in batch.series[fp]
    }


def test_collect_settles_expired_halves_then_writes_both_processors() -> None:
    clock = Clock()
    gen = MetricsGenerator(
        SpanMetrics(), ServiceGraph(wait_s=5.0), 15.0, 900.0, wall_ms=lambda: clock.ms, monotonic=lambda: clock.s
    )
    recorded = spans([SpanDef("root", "shop", "GET /", "server", 20)])
    gen.observe(table(list(recorded.values())))
    first = gen.collect()
    assert "traces_service_graph_request_total" not in names_at(first, clock.ms)  # the root still waits
    assert names_at(first, clock.ms)["traces_spanmetrics_calls_total"] == 1.0
    clock.advance(6.0)
    second = names_at(gen.collect(), clock.ms)
    assert second["traces_service_graph_request_total"] == 1.0  # user -> shop, once the wait is over
    assert second["traces_spanmetrics_calls_total"] == 1.0


def test_from_settings_builds_only_what_is_enabled() -> None:
    on = MetricsGenerator.from_settings(MetricsGeneratorSettings())
    assert on is not None and on.span_metrics is not None and on.service_graph is not None
    assert on.service_graph.wait_s == 10.0 and on.collection_interval == 15.0
    off = MetricsGeneratorSettings.model_validate(
        {"span_metrics": {"enabled": False}, "service_graphs": {"enabled": False}}
    )
    assert MetricsGenerator.from_settings(off) is None


def test_the_loop_writes_every_interval_until_cancelled() -> None:
    gen = MetricsGenerator(SpanMetrics(), None, collection_interval=0.01)
    gen.observe(table(list(spans([SpanDef("a", "shop", "op", "server", 1)]).values())))
    written: list[MetricBatch] = []

    async def main() -> None:
        async def write(batch: MetricBatch) -> None:
            written.append(batch)

        task = asyncio.create_task(gen.run(write))
        for _ in range(500):  # bounded: gives up after about 5 s
            if len(written) >= 2:
                break
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(main())
    assert len(written) >= 2
    calls = [names_at(b, max(b.timestamp_ms))["traces_spanmetrics_calls_total"] for b in written]
    assert calls[:2] == [1.0, 1.0]  # cumulative: the same total again, not a delta


def test_the_worker_counts_submitted_spans_as_observe_does() -> None:
    clock = Clock()
    defs = [SpanDef("a", "shop", "op", "server", 1), SpanDef("b", "shop", "op2", "server", 2)]
    direct = MetricsGenerator(SpanMetrics(), ServiceGraph(), wall_ms=lambda: clock.ms, monotonic=lambda: clock.s)
    queued = MetricsGenerator(SpanMetrics(), ServiceGraph(), wall_ms=lambda: clock.ms, monotonic=lambda: clock.s)
    queued.start()
    try:
        for _ in range(5):
            t = table(list(spans(defs).values()))
            direct.observe(t)
            assert queued.submit(t)
        queued.flush()
        assert names_at(queued.collect(), clock.ms) == names_at(direct.collect(), clock.ms)
        assert names_at(queued.collect(), clock.ms)["traces_spanmetrics_calls_total"] == 5.0
    finally:
        queued.close()


def test_a_full_backlog_makes_submitters_wait_and_close_counts_what_is_queued(monkeypatch: Any) -> None:
    import threading

    from collector.pipeline import metrics_generator

    monkeypatch.setattr(metrics_generator, "MAX_BACKLOG_SPANS", 1)
    gen = MetricsGenerator(SpanMetrics(), None)
    t = table(list(spans([SpanDef("a", "shop", "op", "server", 1)]).values()))
    assert gen.submit(t)  # no worker yet: the backlog fills
    assert not gen.submit(t)  # full: the caller is told to wait
    waited = threading.Thread(target=gen.submit, args=(t, True))
    waited.start()
    waited.join(0.2)
    assert waited.is_alive()  # blocked while nothing drains the backlog
    gen.start()
    waited.join(5)
    assert not waited.is_alive()
    gen.close()  # counts what the waiting submitter added
    batch = gen.collect()
    assert names_at(batch, max(batch.timestamp_ms))["traces_spanmetrics_calls_total"] == 2.0
