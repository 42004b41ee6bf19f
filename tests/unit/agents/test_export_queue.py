"""The bounded export queue: drops counted when full, failed batches counted, bounded shutdown."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from agents.config import QueueConfig
from agents.export_queue import ExportQueue
from agents.stats import AgentStats


class GatedExporter:
    """A real exporter double: records batches, blocks until `gate` opens, answers `result`."""

    def __init__(self, result: bool = True) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batches: list[list[int]] = []
        self.result = result

    def __call__(self, batch: Sequence[int]) -> bool:
        self.entered.set()
        self.gate.wait(10)
        self.batches.append(list(batch))
        return self.result


def _config(**kw: float) -> QueueConfig:
    values = {"max_queue_size": 4, "max_export_batch_size": 2, "schedule_delay_s": 0.05, "export_timeout_s": 1.0}
    values.update(kw)
    return QueueConfig.model_validate(values)


def test_full_queue_drops_and_counts_without_blocking() -> None:
    stats = AgentStats()
    exporter = GatedExporter()
    q: ExportQueue[int] = ExportQueue("spans", exporter, stats, _config())
    q.offer(0)
    q.offer(1)
    assert exporter.entered.wait(5)  # the worker holds batch [0, 1] inside the blocked exporter
    started = time.monotonic()
    accepted = [q.offer(i) for i in range(2, 12)]
    assert time.monotonic() - started < 0.5  # offering never waits for the exporter
    assert accepted == [True] * 4 + [False] * 6
    snap = stats.snapshot()
    assert snap["spans_dropped_queue_full"] == 6 and snap["spans_dropped"] == 6
    assert snap["spans_queued"] == 4
    exporter.gate.set()
    assert q.force_flush(5)
    assert sorted(i for b in exporter.batches for i in b) == [0, 1, 2, 3, 4, 5]
    assert stats.snapshot()["spans_exported"] == 6
    q.shutdown(1)


def test_failed_batches_are_counted_as_dropped() -> None:
    stats = AgentStats()
    exporter = GatedExporter(result=False)
    exporter.gate.set()
    q: ExportQueue[int] = ExportQueue("logs", exporter, stats, _config(max_queue_size=10))
    for i in range(5):
        q.offer(i)
    assert q.force_flush(5)
    snap = stats.snapshot()
    assert snap["logs_dropped_export_failed"] == 5 and snap["logs_exported"] == 0
    q.shutdown(1)


def test_exporter_exception_is_a_failed_batch() -> None:
    stats = AgentStats()

    def broken(batch: Sequence[int]) -> bool:
        raise RuntimeError("exporter bug")

    q: ExportQueue[int] = ExportQueue("spans", broken, stats, _config())
    q.offer(1)
    assert q.force_flush(5)
    assert stats.snapshot()["spans_dropped_export_failed"] == 1
    q.offer(2)  # the worker survived
    assert q.force_flush(5)
    assert stats.snapshot()["spans_dropped_export_failed"] == 2
    q.shutdown(1)


def test_shutdown_is_bounded_when_the_exporter_hangs() -> None:
    stats = AgentStats()
    exporter = GatedExporter()
    interrupted = threading.Event()
    q: ExportQueue[int] = ExportQueue("points", exporter, stats, _config(), interrupt=interrupted.set)
    for i in range(4):
        q.offer(i)
    assert exporter.entered.wait(5)
    started = time.monotonic()
    q.shutdown(0.3)
    assert time.monotonic() - started < 2
    assert interrupted.is_set()
    assert stats.snapshot()["points_dropped_shutdown"] == 2  # batch [2, 3] never reached the exporter
    assert q.offer(9) is False
    exporter.gate.set()


def test_shutdown_drains_what_is_queued() -> None:
    stats = AgentStats()
    exporter = GatedExporter()
    exporter.gate.set()
    q: ExportQueue[int] = ExportQueue("spans", exporter, stats, _config(max_queue_size=100, schedule_delay_s=60))
    for i in range(7):
        q.offer(i)
    q.shutdown(5)
    assert sorted(i for b in exporter.batches for i in b) == list(range(7))
    assert stats.snapshot()["spans_dropped"] == 0
