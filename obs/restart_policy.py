"""When to restart a crashed process: exponential backoff, and giving up after too many crashes in a window.

Pure: time comes from an injected clock (seconds, monotonic), so the policy is tested without sleeping.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from obs.stack_config import RestartConfig


@dataclass(frozen=True)
class RestartDecision:
    """What to do after a crash: restart after `delay` seconds, or give up."""

    give_up: bool
    delay: float
    crashes_in_window: int


class RestartPolicy:
    """One process' crash history. `record_crash` is called once per crash, in time order."""

    def __init__(self, config: RestartConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._crashes: deque[float] = deque()

    def record_crash(self) -> RestartDecision:
        """Count a crash now; the delay doubles (by backoff_factor) with each crash still inside the window."""
        now = self._clock()
        self._crashes.append(now)
        self._forget_before(now - self._config.window)
        count = len(self._crashes)
        if count > self._config.max_restarts:
            return RestartDecision(give_up=True, delay=0.0, crashes_in_window=count)
        delay = self._config.backoff_initial * self._config.backoff_factor ** (count - 1)
        return RestartDecision(give_up=False, delay=min(delay, self._config.backoff_max), crashes_in_window=count)

    @property
    def window(self) -> float:
        """Seconds a crash counts against max_restarts."""
        return self._config.window

    def crashes_in_window(self) -> int:
        self._forget_before(self._clock() - self._config.window)
        return len(self._crashes)

    def _forget_before(self, cutoff: float) -> None:
        # A crash exactly `window` seconds ago has left the window (the window is (now - window, now]).
        while self._crashes and self._crashes[0] <= cutoff:
            self._crashes.popleft()
