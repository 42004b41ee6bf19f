"""The collector's own metrics, in a registry of its own (nothing registered globally at import)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class SelfMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received = Counter(
            "obs_received_items",
            "Items (spans, log records, data points) received, before validation.",
            ["signal", "protocol"],
            registry=r,
        )
        self.accepted = Counter(
            "obs_accepted_items", "Items written to the store and acknowledged.", ["signal", "protocol"], registry=r
        )
        self.refused = Counter(
            "obs_refused_items",
            "Items refused, by reason (invalid data, overload, ...); a refused request counts 1 item when its "
            "items could not be counted.",
            ["signal", "protocol", "reason"],
            registry=r,
        )
        self.skipped_fields = Counter(
            "obs_skipped_string_fields",
            "Line protocol string fields, which are not samples (they are forwarded to InfluxDB unchanged).",
            ["protocol"],
            registry=r,
        )
        self.requests = Counter(
            "obs_requests",
            "Ingest requests by outcome (HTTP-style status).",
            ["signal", "protocol", "status"],
            registry=r,
        )
        self.request_duration = Histogram(
            "obs_request_duration_seconds",
            "Time from a request's arrival to its answer.",
            ["signal", "protocol"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.insert_duration = Histogram(
            "obs_insert_duration_seconds",
            "Time of one insert into a store table.",
            ["table"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.insert_rows = Counter("obs_inserted_rows", "Rows inserted per store table.", ["table"], registry=r)
        self.inflight_bytes = Gauge(
            "obs_inflight_bytes", "Estimated bytes held by requests being decoded or written.", registry=r
        )
        self.queue_depth = Gauge(
            "obs_write_queue_items", "Items waiting for the next group-commit insert.", ["signal"], registry=r
        )

    def observe_insert(self, table: str, seconds: float, rows: int) -> None:
        self.insert_duration.labels(table).observe(seconds)
        self.insert_rows.labels(table).inc(rows)

    def add_forwarders(self, stats: Callable[[], dict[str, tuple[Any, int, int, int]]]) -> None:
        """Expose the forwarders' counts and queue sizes, read when /metrics is scraped."""
        self.registry.register(_Forwarders(stats))

    def add_store_size(self, sizes: Callable[[], dict[str, tuple[int, int]]]) -> None:
        """Expose the store's size per table, computed when /metrics is scraped."""
        self.registry.register(_StoreSize(sizes))

    def add_head(self, stats: Callable[[], dict[str, int]]) -> None:
        """Expose the in-memory head's size and floor (store/head.py), read when /metrics is scraped."""
        self.registry.register(_Head(stats))


class _Forwarders(Collector):
    def __init__(self, stats: Callable[[], dict[str, tuple[Any, int, int, int]]]) -> None:
        self._stats = stats

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        payloads = CounterMetricFamily(
            "obs_forwarded_payloads", "Payloads sent on, by destination and outcome.", labels=["destination", "outcome"]
        )
        queued = GaugeMetricFamily("obs_forward_queue_payloads", "Payloads waiting.", labels=["destination"])
        queued_bytes = GaugeMetricFamily("obs_forward_queue_bytes", "Bytes waiting on disk.", labels=["destination"])
        for name, (stats, n, nbytes, dropped) in sorted(self._stats().items()):
            payloads.add_metric([name, "sent"], stats.sent)
            payloads.add_metric([name, "failed"], stats.failed)
            payloads.add_metric([name, "retried"], stats.retries)
            payloads.add_metric([name, "dropped"], dropped)
            queued.add_metric([name], n)
            queued_bytes.add_metric([name], nbytes)
        yield payloads
        yield queued
        yield queued_bytes


class _Head(Collector):
    def __init__(self, stats: Callable[[], dict[str, int]]) -> None:
        self._stats = stats

    def describe(self) -> list[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self._stats()
        yield GaugeMetricFamily("obs_head_samples", "Metric samples held in memory by the head.", stats["samples"])
        yield GaugeMetricFamily("obs_head_series", "Series with samples in the head.", stats["series"])
        yield GaugeMetricFamily(
            "obs_head_min_time_seconds",
            "The head holds every stored sample from this time on; older reads go to the store.",
            stats["floor_ms"] / 1000,
        )


class _StoreSize(Collector):
    def __init__(self, sizes: Callable[[], dict[str, tuple[int, int]]]) -> None:
        self._sizes = sizes

    def describe(self) -> list[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        disk = GaugeMetricFamily("obs_store_bytes", "Compressed bytes on disk per store table.", labels=["table"])
        rows = GaugeMetricFamily("obs_store_rows", "Rows per store table.", labels=["table"])
        try:
            sizes = self._sizes()
        except Exception:
            sizes = {}
        for table, (nbytes, nrows) in sorted(sizes.items()):
            disk.add_metric([table], nbytes)
            rows.add_metric([table], nrows)
        yield disk
        yield rows
