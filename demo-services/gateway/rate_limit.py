"""Token buckets per API key: `rate` tokens a second up to `burst`; one request takes one token."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int  # the bucket's capacity (burst)
    remaining: int  # whole tokens left after this request
    retry_after: float  # seconds until one token is available (0 when allowed)
    reset: float  # seconds until the bucket is full again

    def headers(self) -> dict[str, str]:
        """`X-RateLimit-*` headers, plus `Retry-After` in whole seconds rounded up when refused."""
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset)),
        }
        if not self.allowed:
            out["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return out


class TokenBucket:
    def __init__(self, rate: float, burst: int, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._last = now

    def take(self, now: float) -> Decision:
        # A clock that steps back must not mint tokens.
        self._tokens = min(self.burst, self._tokens + max(0.0, now - self._last) * self.rate)
        self._last = max(self._last, now)
        allowed = self._tokens >= 1.0
        if allowed:
            self._tokens -= 1.0
        retry_after = 0.0 if allowed else (1.0 - self._tokens) / self.rate
        return Decision(
            allowed=allowed,
            limit=self.burst,
            remaining=math.floor(self._tokens),
            retry_after=retry_after,
            reset=(self.burst - self._tokens) / self.rate,
        )


class RateLimiter:
    """One bucket per key name, created on first use."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key_name: str, rate: float, burst: int) -> Decision:
        bucket = self._buckets.get(key_name)
        now = self._clock()
        if bucket is None:
            bucket = self._buckets[key_name] = TokenBucket(rate, burst, now)
        return bucket.take(now)
