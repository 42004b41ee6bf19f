"""Backoff delays and the drain loop, against a small scripted peer that is a real async function."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from collector.exporters.queue import DiskQueue
from collector.exporters.retry import Backoff, SendResult, drain


def test_backoff_grows_to_the_cap_without_jitter() -> None:
    backoff = Backoff(initial=0.5, maximum=5.0, multiplier=2.0, jitter=0.0)
    assert [backoff.next() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_backoff_jitter_stays_in_bounds_and_under_the_cap() -> None:
    backoff = Backoff(initial=1.0, maximum=8.0, multiplier=2.0, jitter=0.2, rng=random.Random(7))
    for _ in range(200):
        backoff.reset()
        for base in (1.0, 2.0, 4.0, 8.0, 8.0):
            delay = backoff.next()
            assert base * 0.8 <= delay <= min(8.0, base * 1.2)
    delays = {Backoff(jitter=0.2, rng=random.Random(seed)).next() for seed in range(20)}
    assert len(delays) > 1


@pytest.mark.parametrize(("retry_after", "expected"), [(3.0, 3.0), (120.0, 120.0), (0.0, 0.0), (-1.0, 0.0)])
def test_backoff_honours_retry_after(retry_after: float, expected: float) -> None:
    backoff = Backoff(initial=0.5, maximum=30.0, jitter=0.0)
    assert backoff.next(retry_after) == expected
    # It still counts as an attempt: the next computed delay has grown.
    assert backoff.next() == 1.0


@pytest.mark.parametrize(
    ("initial", "maximum", "multiplier", "jitter"),
    [(0.0, 30.0, 2.0, 0.2), (2.0, 1.0, 2.0, 0.2), (0.5, 30.0, 0.5, 0.2), (0.5, 30.0, 2.0, 1.0), (0.5, 30.0, 2.0, -0.1)],
)
def test_backoff_rejects_bad_settings(initial: float, maximum: float, multiplier: float, jitter: float) -> None:
    with pytest.raises(ValueError):
        Backoff(initial, maximum, multiplier, jitter)


class ScriptedPeer:
    """A peer answering each send with the next scripted result (then ok), recording what it accepted."""

    def __init__(self, script: list[SendResult], stop: asyncio.Event, expect: int) -> None:
        self.script = list(script)
        self.stop = stop
        self.expect = expect
        self.attempts: list[bytes] = []
        self.accepted: list[bytes] = []

    async def send(self, payload: bytes) -> SendResult:
        await asyncio.sleep(0)
        self.attempts.append(payload)
        result = self.script.pop(0) if self.script else SendResult.delivered()
        if result.ok:
            self.accepted.append(payload)
        if len(self.attempts) == self.expect:
            self.stop.set()
        return result


def _run_drain(
    queue: DiskQueue, script: list[SendResult], expect: int
) -> tuple[ScriptedPeer, list[SendResult], Backoff]:
    results: list[SendResult] = []
    backoff = Backoff(initial=0.001, maximum=0.01, jitter=0.0)

    async def main() -> ScriptedPeer:
        stop = asyncio.Event()
        peer = ScriptedPeer(script, stop, expect)
        await asyncio.wait_for(drain(queue, peer.send, backoff, stop, results.append, idle_wait=0.01), timeout=10)
        return peer

    return asyncio.run(main()), results, backoff


def test_drain_retries_then_delivers_once_in_order(tmp_path: Path) -> None:
    with DiskQueue(tmp_path, max_bytes=10_000) as queue:
        for p in (b"a", b"b", b"c"):
            queue.put(p)
        script = [SendResult.retryable("503"), SendResult.retryable("429", retry_after=0.001)]
        peer, results, backoff = _run_drain(queue, script, expect=5)
        assert peer.attempts == [b"a", b"a", b"a", b"b", b"c"]
        assert peer.accepted == [b"a", b"b", b"c"]
        assert [r.ok for r in results] == [False, False, True, True, True]
        assert len(queue) == 0
        assert backoff.next() == 0.001  # reset by the delivery


def test_drain_drops_a_permanent_failure_and_reports_it(tmp_path: Path) -> None:
    with DiskQueue(tmp_path, max_bytes=10_000) as queue:
        for p in (b"bad", b"good"):
            queue.put(p)
        peer, results, _ = _run_drain(queue, [SendResult.permanent("400: unparsable line 1")], expect=2)
        assert peer.attempts == [b"bad", b"good"]
        assert peer.accepted == [b"good"]
        assert results == [SendResult.permanent("400: unparsable line 1"), SendResult.delivered()]
        assert len(queue) == 0
    with DiskQueue(tmp_path, max_bytes=10_000) as queue:
        assert queue.peek() is None


def test_drain_waits_on_an_empty_queue_and_wakes_up_on_put(tmp_path: Path) -> None:
    async def main(queue: DiskQueue) -> list[bytes]:
        stop, wakeup = asyncio.Event(), asyncio.Event()
        peer = ScriptedPeer([], stop, expect=1)
        # idle_wait is long: only the wakeup can get the payload delivered before the timeout.
        task = asyncio.create_task(drain(queue, peer.send, Backoff(), stop, idle_wait=60, wakeup=wakeup))
        await asyncio.sleep(0.01)
        assert peer.attempts == []
        queue.put(b"late")
        wakeup.set()
        await asyncio.wait_for(task, timeout=10)
        return peer.accepted

    with DiskQueue(tmp_path, max_bytes=10_000) as queue:
        assert asyncio.run(main(queue)) == [b"late"]


def test_stop_interrupts_a_long_retry_wait_and_keeps_the_payload(tmp_path: Path) -> None:
    async def main(queue: DiskQueue) -> None:
        stop = asyncio.Event()

        async def send(payload: bytes) -> SendResult:
            stop.set()
            return SendResult.retryable("503", retry_after=3600)

        await asyncio.wait_for(drain(queue, send, Backoff(), stop), timeout=10)

    with DiskQueue(tmp_path, max_bytes=10_000) as queue:
        queue.put(b"kept")
        asyncio.run(main(queue))
        assert queue.peek() == b"kept"
