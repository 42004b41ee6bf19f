"""The agent's own counters (exported, dropped by reason, queued) for `agent.stats()` and `/metrics`.

One `AgentStats` per agent holds thread-safe tallies; it is also a prometheus-client collector, so
registering it in the agent's registry exposes `agent_dropped_total{signal,reason}`,
`agent_exported_total{signal}` and `agent_queue_size{signal}` from the same numbers `stats()` reports.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

SIGNALS = ("spans", "logs", "points")

# Why something was dropped: the queue was full when it was offered, or its batch failed to export
# after the exporter's retries (collector down, refused, timed out), or the agent was shut down with
# it still queued and the bounded flush did not reach it.
QUEUE_FULL = "queue_full"
EXPORT_FAILED = "export_failed"
SHUTDOWN = "shutdown"


class AgentStats(Collector):
    """Counts per signal; safe to call from any thread (export workers, callbacks, request handlers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dropped: dict[tuple[str, str], int] = {}
        self._exported: dict[str, int] = dict.fromkeys(SIGNALS, 0)
        self._queue_size: dict[str, Callable[[], int]] = {}

    def dropped(self, signal: str, reason: str, n: int = 1) -> None:
        if n > 0:
            with self._lock:
                self._dropped[signal, reason] = self._dropped.get((signal, reason), 0) + n

    def exported(self, signal: str, n: int) -> None:
        with self._lock:
            self._exported[signal] = self._exported.get(signal, 0) + n

    def watch_queue(self, signal: str, size: Callable[[], int]) -> None:
        """Report `size()` as the signal's queue length (read at collection time)."""
        self._queue_size[signal] = size

    def snapshot(self) -> dict[str, int]:
        """`{"spans_dropped": n, "spans_dropped_queue_full": n, "spans_exported": n, "spans_queued": n, ...}`."""
        with self._lock:
            dropped = dict(self._dropped)
            exported = dict(self._exported)
        out: dict[str, int] = {}
        for signal in SIGNALS:
            out[f"{signal}_dropped"] = sum(n for (s, _), n in dropped.items() if s == signal)
            for reason in (QUEUE_FULL, EXPORT_FAILED, SHUTDOWN):
                out[f"{signal}_dropped_{reason}"] = dropped.get((signal, reason), 0)
            out[f"{signal}_exported"] = exported.get(signal, 0)
            size = self._queue_size.get(signal)
            out[f"{signal}_queued"] = size() if size else 0
        return out

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            dropped = dict(self._dropped)
            exported = dict(self._exported)
        drops = CounterMetricFamily(
            "agent_dropped", "Telemetry the agent dropped, by signal and reason", labels=["signal", "reason"]
        )
        for signal in SIGNALS:
            for reason in (QUEUE_FULL, EXPORT_FAILED, SHUTDOWN):
                drops.add_metric([signal, reason], dropped.get((signal, reason), 0))
        yield drops
        sent = CounterMetricFamily("agent_exported", "Telemetry the agent delivered, by signal", labels=["signal"])
        for signal in SIGNALS:
            sent.add_metric([signal], exported.get(signal, 0))
        yield sent
        queued = GaugeMetricFamily("agent_queue_size", "Items waiting in the agent's export queues", labels=["signal"])
        for signal, size in self._queue_size.items():
            queued.add_metric([signal], size())
        yield queued
