"""The send loop the forwarders share: deliver the queue's oldest payload, retry with backoff, drop the hopeless.

The forwarder owns the wire: its `send` function classifies every outcome into a SendResult (it maps
429/503 with Retry-After to a retryable result and a 400 to a permanent one). This module does no
logging; the caller counts what it needs through `on_result`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from collector.exporters.queue import DiskQueue


@dataclass(frozen=True)
class SendResult:
    """What one delivery attempt came to.

    ok: the peer accepted the payload. retry: it may succeed later (the peer is down or overloaded);
    otherwise a failure is permanent and the payload is dropped. retry_after: the peer's Retry-After
    in seconds, when it gave one.
    """

    ok: bool
    retry: bool = False
    retry_after: float | None = None
    error: str = ""

    @classmethod
    def delivered(cls) -> SendResult:
        return cls(ok=True)

    @classmethod
    def retryable(cls, error: str, retry_after: float | None = None) -> SendResult:
        return cls(ok=False, retry=True, retry_after=retry_after, error=error)

    @classmethod
    def permanent(cls, error: str) -> SendResult:
        return cls(ok=False, retry=False, error=error)


class Backoff:
    """Delays between retries, in seconds: exponential with jitter, capped at `maximum`.

    The n-th consecutive delay (from 0) is min(maximum, initial * multiplier**n), scaled by a random
    factor in [1 - jitter, 1 + jitter] and capped at `maximum` again. A peer's Retry-After wins when
    given: it is returned as is (negative values as 0), without jitter or cap, and still counts as an
    attempt.
    """

    def __init__(
        self,
        initial: float = 0.5,
        maximum: float = 30.0,
        multiplier: float = 2.0,
        jitter: float = 0.2,
        *,
        rng: random.Random | None = None,
    ) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError(f"need 0 < initial <= maximum, got initial={initial} maximum={maximum}")
        if multiplier < 1:
            raise ValueError(f"multiplier must be at least 1, got {multiplier}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {jitter}")
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._base = initial

    def next(self, retry_after: float | None = None) -> float:
        base = self._base
        # Stop growing at the cap, so the base never overflows however long the peer stays down.
        self._base = min(self.maximum, base * self.multiplier)
        if retry_after is not None:
            return max(0.0, retry_after)
        return min(self.maximum, base * self._rng.uniform(1 - self.jitter, 1 + self.jitter))

    def reset(self) -> None:
        self._base = self.initial


def _ignore(result: SendResult) -> None:
    pass


async def _wait(timeout: float, *events: asyncio.Event) -> None:
    """Sleep up to `timeout` seconds, returning early once any of `events` is set."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


async def drain(
    queue: DiskQueue,
    send: Callable[[bytes], Awaitable[SendResult]],
    backoff: Backoff,
    stop: asyncio.Event,
    on_result: Callable[[SendResult], None] = _ignore,
    *,
    idle_wait: float = 0.2,
    wakeup: asyncio.Event | None = None,
) -> None:
    """Deliver the queue's payloads in order until `stop` is set.

    Each payload is acked once `send` reports it delivered or permanently refused; a retryable
    failure sends the same payload again after `backoff.next(retry_after)` seconds. `on_result`
    sees every result. When the queue is empty, waits up to `idle_wait` seconds, or less when
    `wakeup` (set by the producer after a put) fires. Setting `stop` interrupts any wait; a send in
    progress completes first. `send` must classify its own failures: an exception it raises ends
    the loop and propagates.
    """
    while not stop.is_set():
        if wakeup is not None:
            # Cleared before the peek, so a put after the peek sets it again and is not missed.
            wakeup.clear()
        payload = queue.peek()
        if payload is None:
            await _wait(idle_wait, stop, *([wakeup] if wakeup is not None else []))
            continue
        result = await send(payload)
        on_result(result)
        if result.ok or not result.retry:
            queue.ack()
            backoff.reset()
        else:
            await _wait(backoff.next(result.retry_after), stop)
