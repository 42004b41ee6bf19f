"""Metrics derived from stored spans (span metrics, service graph), collected on an interval like Tempo's.

The ingest path hands every batch of spans to `observe` once the spans are in the store (a refused
insert, which the client retries, is not counted twice). Every `collection_interval` the cumulative
values of all live series are written as samples with the collection time, as Tempo's metrics-generator
registry collects them: the write rate is bounded by series x interval whatever the span rate, samples
of a series stay in order (the series limits refuse out-of-order samples, which span end times from
several exporters would be), and a series that gets no spans keeps a regular, flat line for rate().
Pending service-graph halves are settled every `expire_interval` (2 s in Tempo, shorter here when
the wait is shorter).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable

import pyarrow as pa

from collector.config import MetricsGeneratorSettings
from collector.model import MetricBatch
from collector.pipeline.service_graph import ServiceGraph
from collector.pipeline.span_metrics import SpanMetrics

log = logging.getLogger("observatory.collector.metrics_generator")

# Spans submitted and not yet counted, at most; past it submitters wait. About 2 s of the ingest rate.
MAX_BACKLOG_SPANS = 200_000


def _concat(tables: list[pa.Table]) -> pa.Table:
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # columns of different layouts: count them one by one
        return pa.concat_tables([t.select(tables[0].column_names).cast(tables[0].schema) for t in tables])


class MetricsGenerator:
    def __init__(
        self,
        span_metrics: SpanMetrics | None,
        service_graph: ServiceGraph | None,
        collection_interval: float = 15.0,
        stale_duration: float = 900.0,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Intervals in seconds; a series not updated for `stale_duration` is no longer written."""
        self.span_metrics = span_metrics
        self.service_graph = service_graph
        self.collection_interval = collection_interval
        self.stale_duration = stale_duration
        wait = service_graph.wait_s if service_graph is not None else 2.0
        self.expire_interval = max(0.05, min(2.0, wait / 2))
        self._wall_ms = wall_ms
        self._monotonic = monotonic
        # observe() runs on the worker thread (or a caller's), collect() on an executor thread: one lock.
        self._lock = threading.Lock()
        # Stored spans waiting for the worker: requests are answered without waiting for the counting,
        # and the worker counts what piled up meanwhile in one call (Arrow's per-call cost paid once).
        self._backlog: list[pa.Table] = []
        self._backlog_rows = 0
        self._busy = False
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        self._stopping = False

    @classmethod
    def from_settings(cls, s: MetricsGeneratorSettings) -> MetricsGenerator | None:
        """None when both processors are switched off."""
        sm, sg = s.span_metrics, s.service_graphs
        span_metrics = SpanMetrics(sm.histogram_buckets, sm.dimensions) if sm.enabled else None
        service_graph = (
            ServiceGraph(sg.histogram_buckets, sg.dimensions, sg.wait, sg.max_items, sg.peer_attributes)
            if sg.enabled
            else None
        )
        if span_metrics is None and service_graph is None:
            return None
        return cls(span_metrics, service_graph, s.collection_interval, s.stale_duration)

    def observe(self, spans: pa.Table) -> None:
        """Count a batch of stored spans (an otel_traces table). Thread-safe."""
        now_ms = self._wall_ms()
        with self._lock:
            if self.span_metrics is not None:
                self.span_metrics.observe(spans, now_ms)
            if self.service_graph is not None:
                self.service_graph.observe(spans, self._monotonic(), now_ms)

    # -- the worker: counts stored spans off the request path --------------------------------------

    def start(self) -> None:
        if self._worker is None:
            self._stopping = False
            self._worker = threading.Thread(target=self._work, name="metrics-generator", daemon=True)
            self._worker.start()

    def submit(self, spans: pa.Table, wait: bool = False) -> bool:
        """Queue stored spans for counting. With a full backlog: False, or with `wait`, block until there
        is room (the request waits: backpressure, never a dropped span)."""
        with self._cond:
            while self._backlog_rows >= MAX_BACKLOG_SPANS and not self._stopping:
                if not wait:
                    return False
                self._cond.wait()
            self._backlog.append(spans)
            self._backlog_rows += spans.num_rows
            self._cond.notify_all()
        return True

    def flush(self) -> None:
        """Block until every submitted span is counted."""
        with self._cond:
            while (self._backlog or self._busy) and self._worker is not None and self._worker.is_alive():
                self._cond.wait(0.1)

    def close(self) -> None:
        """Count what is queued, then stop the worker."""
        self.flush()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=10)
            self._worker = None

    def _work(self) -> None:
        next_expiry = self._monotonic() + self.expire_interval
        while True:
            with self._cond:
                while not self._backlog and not self._stopping:
                    left = next_expiry - self._monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                if self._stopping and not self._backlog:
                    return
                tables, self._backlog, self._backlog_rows = self._backlog, [], 0
                self._busy = bool(tables)
                self._cond.notify_all()  # room in the backlog again
            try:
                if tables:
                    self.observe(_concat(tables))
                if self._monotonic() >= next_expiry:
                    self.expire()
                    next_expiry = self._monotonic() + self.expire_interval
            except Exception:  # a bad batch must not stop the counting of the next ones
                log.exception("counting spans for the metrics generator failed")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def expire(self) -> None:
        if self.service_graph is not None:
            with self._lock:
                self.service_graph.expire(self._monotonic(), self._wall_ms())

    def collect(self) -> MetricBatch:
        """Every live series' value now, as one batch (with exemplars and metadata)."""
        batch = MetricBatch()
        now_ms = self._wall_ms()
        stale_before = now_ms - int(self.stale_duration * 1000)
        with self._lock:
            if self.service_graph is not None:
                self.service_graph.expire(self._monotonic(), now_ms)
                self.service_graph.collect(batch, now_ms, stale_before)
            if self.span_metrics is not None:
                self.span_metrics.collect(batch, now_ms, stale_before)
        return batch

    async def run(self, write: Callable[[MetricBatch], Awaitable[None]]) -> None:
        """Collect and `write` every collection_interval until cancelled; without the worker thread, also
        settle edges in between. Collected on an executor thread: the lock may be held by a count."""
        next_collection = self._monotonic() + self.collection_interval
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(0.0, min(self.expire_interval, next_collection - self._monotonic())))
            if self._monotonic() < next_collection:
                if self._worker is None:
                    await loop.run_in_executor(None, self.expire)
                continue
            next_collection += self.collection_interval
            if next_collection < self._monotonic():  # a slow write: skip the collections it overran
                next_collection = self._monotonic() + self.collection_interval
            batch = await loop.run_in_executor(None, self.collect)
            if len(batch):
                try:
                    await write(batch)
                except Exception as exc:  # the store may be down: the next collection writes the totals again
                    log.warning("writing derived metrics failed: %s", exc)
