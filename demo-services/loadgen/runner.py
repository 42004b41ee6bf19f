"""Open-loop scheduling: request i starts at start + i/rate whatever earlier answers take.

A closed loop (send, wait, send) slows down with the system under test and hides its latency; here
the schedule is fixed. Latency is measured from the scheduled start, so a late start counts against
the system too. When `concurrency` requests are already in flight the slot is counted as
`saturated` rather than queued, which would turn the open loop back into a closed one.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import httpx
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from loadgen.config import LoadConfig
from loadgen.scenarios import Shop
from loadgen.stats import SATURATED, LoadStats, error_kind, progress_line


class LoadRun:
    def __init__(
        self, config: LoadConfig, shop: Shop, tracer: trace.Tracer, out: Callable[[str], None] = print
    ) -> None:
        self.config = config
        self.shop = shop
        self.stats = LoadStats()
        self._tracer = tracer
        self._out = out
        self._rng = random.Random(config.seed)
        self._in_flight: set[asyncio.Task[None]] = set()

    async def run(self) -> float:
        """Runs the schedule to its end and waits for the requests in flight; returns the elapsed seconds."""
        cfg = self.config
        loop = asyncio.get_running_loop()
        start = loop.time()
        progress = asyncio.create_task(self._progress(start))
        names = list(cfg.mix)
        weights = [cfg.mix[n] for n in names]
        i = 0
        try:
            while True:
                due = start + i / cfg.rate
                if cfg.requests is not None and i >= cfg.requests:
                    break
                if cfg.duration_s is not None and due - start >= cfg.duration_s:
                    break
                await asyncio.sleep(max(0.0, due - loop.time()))
                scenario = self._rng.choices(names, weights)[0]
                if len(self._in_flight) >= cfg.concurrency:
                    self.stats.record(scenario, None, SATURATED)
                else:
                    self.stats.sent += 1
                    task = asyncio.create_task(self._one(scenario, due))
                    self._in_flight.add(task)
                    task.add_done_callback(self._in_flight.discard)
                i += 1
            if self._in_flight:
                await asyncio.wait(set(self._in_flight), timeout=cfg.timeout_s + 1)
        finally:
            progress.cancel()
            for task in self._in_flight:
                task.cancel()
        return loop.time() - start

    async def _one(self, scenario: str, due: float) -> None:
        loop = asyncio.get_running_loop()
        with self._tracer.start_as_current_span(f"loadgen {scenario}") as span:
            span.set_attribute("loadgen.scenario", scenario)
            try:
                response = await self.shop.run(scenario)
            except httpx.HTTPError as exc:
                kind = error_kind(None, exc)
                span.set_status(Status(StatusCode.ERROR, f"{kind}: {exc}"))
                self.stats.record(scenario, loop.time() - due, kind)
                return
            kind = error_kind(response.status_code)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR, f"HTTP {response.status_code}"))
            self.stats.record(scenario, loop.time() - due, kind)

    async def _progress(self, start: float) -> None:
        loop = asyncio.get_running_loop()
        last = start
        while True:
            await asyncio.sleep(self.config.progress_s)
            now = loop.time()
            window = self.stats.take_window()
            self._out(progress_line(now - start, window, now - last, self.stats, len(self._in_flight)))
            last = now
