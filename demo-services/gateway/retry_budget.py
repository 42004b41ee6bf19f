"""Retry budget (as Finagle's): retries may add at most `ratio` of the recent requests plus a floor.

Over the last `window` seconds, retries are allowed while
`retries + 1 <= min_per_second * window + ratio * requests`, so a failing upstream sees at most about
(1 + ratio) times its normal load instead of (1 + retries) times. Counts are kept in one-second
buckets; the clock is injected (seconds, monotonic).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from gateway.config import RetryBudgetSettings


class RetryBudget:
    def __init__(self, settings: RetryBudgetSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self._s = settings
        self._clock = clock
        self._window = max(1, math.ceil(settings.window))
        self._buckets: deque[list[int]] = deque()  # [second, requests, retries], oldest first
        self._requests = 0
        self._retries = 0

    def record_request(self) -> None:
        """Count one original request (not a retry)."""
        self._bucket()[1] += 1
        self._requests += 1

    def try_withdraw(self) -> bool:
        """Take one retry from the budget; False when the budget is spent (do not retry)."""
        bucket = self._bucket()
        # A whole retry must fit (0.8 of one is none); the epsilon absorbs float error in ratio * requests.
        if self._retries + 1 > self.allowed() + 1e-9:
            return False
        bucket[2] += 1
        self._retries += 1
        return True

    def allowed(self) -> float:
        """Retries allowed in the current window, those already made included."""
        self._bucket()
        return self._s.min_per_second * self._window + self._s.ratio * self._requests

    def _bucket(self) -> list[int]:
        second = math.floor(self._clock())
        while self._buckets and self._buckets[0][0] <= second - self._window:
            _, requests, retries = self._buckets.popleft()
            self._requests -= requests
            self._retries -= retries
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append([second, 0, 0])
        return self._buckets[-1]
