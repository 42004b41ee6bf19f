"""The query runner: evaluation off the event loop, the concurrency limit with a bounded wait, timeouts."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from collector.api.prom_queries import QueryLimits, QueryRunner
from collector.api.prom_wire import ApiError
from collector.query.promql.values import QueryResult


class GatedEngine:
    """An engine whose queries run until the test opens the gate; counts what runs at once."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    def instant(self, query: str, time_ms: int, *, lookback_delta_ms: int | None = None) -> QueryResult:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            self.gate.wait(10)
            return QueryResult("scalar", scalar=(time_ms, float(len(query))))
        finally:
            with self._lock:
                self.running -= 1

    def range(
        self, query: str, start_ms: int, end_ms: int, step_ms: int, *, lookback_delta_ms: int | None = None
    ) -> QueryResult:
        raise NotImplementedError


def test_queries_beyond_the_limit_wait_then_run() -> None:
    async def scenario() -> list[QueryResult]:
        engine = GatedEngine()
        runner = QueryRunner(engine, QueryLimits(timeout_s=5, max_concurrency=2))
        tasks = [asyncio.create_task(runner.run(lambda: engine.instant("1+1", 1000))) for _ in range(5)]
        await asyncio.sleep(0.2)
        assert engine.running == 2  # the event loop is free meanwhile: this line runs
        engine.gate.set()
        results = await asyncio.gather(*tasks)
        assert engine.most == 2
        runner.close()
        return results

    results = asyncio.run(scenario())
    assert [r.scalar for r in results] == [(1000, 3.0)] * 5


def test_waiting_too_long_in_line_is_a_timeout() -> None:
    async def scenario() -> None:
        engine = GatedEngine()
        runner = QueryRunner(engine, QueryLimits(timeout_s=5, max_concurrency=1))
        first = asyncio.create_task(runner.run(lambda: engine.instant("a", 0)))
        await asyncio.sleep(0.1)
        with pytest.raises(ApiError) as info:
            await runner.run(lambda: engine.instant("b", 0), timeout_s=0.2)
        assert (info.value.error_type, info.value.message) == ("timeout", "query timed out in query queue")
        engine.gate.set()
        await first
        runner.close()

    asyncio.run(scenario())


def test_slow_evaluation_times_out_and_keeps_its_slot_until_done() -> None:
    async def scenario() -> None:
        engine = GatedEngine()
        runner = QueryRunner(engine, QueryLimits(timeout_s=0.2, max_concurrency=1))
        started = time.monotonic()
        with pytest.raises(ApiError) as info:
            await runner.run(lambda: engine.instant("slow", 0), timeout_s=10)  # the configured 0.2 s wins
        assert time.monotonic() - started < 2
        assert (info.value.error_type, info.value.message) == ("timeout", "query timed out in expression evaluation")
        assert engine.running == 1
        engine.gate.set()
        result = await runner.run(lambda: engine.instant("next", 0), timeout_s=5)
        assert result.scalar == (0, 4.0)
        runner.close()

    asyncio.run(scenario())
