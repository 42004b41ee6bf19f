"""A bounded queue drained in batches by one background thread: what keeps export off the request path.

`offer()` never blocks: when the queue is full the item is dropped and counted (`queue_full`). The
worker exports a batch when `max_export_batch_size` items are waiting or `schedule_delay_s` has
passed; a batch the exporter could not deliver (after its own retries, bounded by its timeout) is
counted as `export_failed`. `shutdown(timeout)` drains what it can within the timeout and counts the
rest as `shutdown`; it returns within about that time even if an export hangs (the worker is a daemon
thread, and `interrupt` is called to cut short exporter retries).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from agents.config import QueueConfig
from agents.stats import EXPORT_FAILED, QUEUE_FULL, SHUTDOWN, AgentStats

T = TypeVar("T")

ExportFn = Callable[[Sequence[T]], bool]  # True when the batch was delivered


def once(fn: Callable[[], None]) -> Callable[[], None]:
    """`fn` made idempotent: exporters log a warning when shut down twice (interrupt, then shutdown)."""
    lock = threading.Lock()
    done = False

    def call() -> None:
        nonlocal done
        with lock:
            if done:
                return
            done = True
        fn()

    return call


class ExportQueue(Generic[T]):
    """Bounded FIFO of telemetry items for one signal, exported in batches by a daemon thread."""

    def __init__(
        self,
        signal: str,
        export: ExportFn[T],
        stats: AgentStats,
        config: QueueConfig,
        interrupt: Callable[[], None] | None = None,
    ) -> None:
        self.signal = signal
        self._export = export
        self._stats = stats
        self._config = config
        self._interrupt = interrupt
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._in_flight = 0  # items handed to the exporter and not yet accounted for
        self._flush_requested = False
        self._closing = False
        self._deadline = 0.0  # monotonic; set by shutdown
        self._thread = threading.Thread(target=self._run, name=f"agent-export-{signal}", daemon=True)
        stats.watch_queue(signal, self.__len__)
        self._thread.start()

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, item: T) -> bool:
        """Queue one item without blocking; False (and counted) when the queue is full or closed."""
        with self._cond:
            if self._closing or len(self._items) >= self._config.max_queue_size:
                self._stats.dropped(self.signal, QUEUE_FULL if not self._closing else SHUTDOWN)
                return False
            self._items.append(item)
            if len(self._items) >= self._config.max_export_batch_size:
                self._cond.notify()
        return True

    def force_flush(self, timeout: float) -> bool:
        """Export everything queued now; True when the queue emptied within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flush_requested = True
            self._cond.notify()
            while self._items or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def shutdown(self, timeout: float) -> None:
        """Drain within `timeout` seconds, then drop (and count) whatever is left. Idempotent."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._deadline = time.monotonic() + timeout
            self._cond.notify()
        self._thread.join(timeout)
        if self._thread.is_alive() and self._interrupt is not None:
            self._interrupt()  # cut short the retries of a hung export
            self._thread.join(0.5)
        with self._cond:
            left = len(self._items)
            self._items.clear()
        self._stats.dropped(self.signal, SHUTDOWN, left)

    def _next_batch(self) -> list[T] | None:
        """Wait for a batch to be due; None when the worker should stop."""
        with self._cond:
            if (
                not self._closing
                and not self._flush_requested
                and len(self._items) < self._config.max_export_batch_size
            ):
                self._cond.wait(self._config.schedule_delay_s)
            if self._closing and (not self._items or time.monotonic() >= self._deadline):
                return None
            if not self._items:
                self._flush_requested = False
                self._cond.notify_all()
                return []
            n = min(len(self._items), self._config.max_export_batch_size)
            batch = [self._items.popleft() for _ in range(n)]
            self._in_flight = n
            return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            if not batch:
                continue
            try:
                ok = self._export(batch)
            except Exception:  # an exporter bug must not kill the worker; the batch is lost and counted
                ok = False
            if ok:
                self._stats.exported(self.signal, len(batch))
            else:
                self._stats.dropped(self.signal, EXPORT_FAILED, len(batch))
            with self._cond:
                self._in_flight = 0
                self._cond.notify_all()
