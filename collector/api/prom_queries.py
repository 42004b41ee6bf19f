"""Runs PromQL queries off the event loop, within a concurrency limit and a per-query timeout.

As Prometheus' --query.max-concurrency: a query beyond the limit waits in line, and its timeout counts
from arrival, so one that waits too long fails with "query timed out in query queue" (timeout, 503).
Evaluation is CPU-bound and synchronous, so it runs on a thread pool of its own, one thread per slot;
a query that times out keeps its slot until its thread returns (the engine stops itself at the
configured timeout), so the limit holds for the work actually running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from collector.api.prom_wire import ApiError
from collector.query.promql.values import QueryResult

T = TypeVar("T")


class QueryEngine(Protocol):
    """What the API needs of the PromQL engine. Times are milliseconds; errors raise PromQLError."""

    def instant(self, query: str, time_ms: int, *, lookback_delta_ms: int | None = None) -> QueryResult: ...

    def range(
        self, query: str, start_ms: int, end_ms: int, step_ms: int, *, lookback_delta_ms: int | None = None
    ) -> QueryResult: ...


@dataclass(frozen=True)
class QueryLimits:
    timeout_s: float = 120.0
    max_concurrency: int = 20


class QueryRunner:
    def __init__(self, engine: QueryEngine, limits: QueryLimits) -> None:
        self.engine = engine
        self.limits = limits
        self._slots = asyncio.Semaphore(limits.max_concurrency)
        self._pool = ThreadPoolExecutor(limits.max_concurrency, thread_name_prefix="promql")

    async def run(self, evaluate: Callable[[], T], timeout_s: float | None = None) -> T:
        """Evaluate within min(timeout_s, the configured timeout), queueing included (one slot: a query,
        or a batch of them)."""
        timeout = min(timeout_s, self.limits.timeout_s) if timeout_s and timeout_s > 0 else self.limits.timeout_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout)
        except TimeoutError:
            raise ApiError("timeout", "query timed out in query queue") from None
        try:
            future = loop.run_in_executor(self._pool, evaluate)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(self._finished)
        try:
            return await asyncio.wait_for(asyncio.shield(future), max(0.0, deadline - loop.time()))
        except TimeoutError:
            raise ApiError("timeout", "query timed out in expression evaluation") from None

    def _finished(self, future: asyncio.Future[Any]) -> None:
        self._slots.release()
        if not future.cancelled():
            future.exception()  # retrieved here, so an abandoned (timed-out) query logs nothing

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
