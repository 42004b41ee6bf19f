"""Per-instance circuit breakers: closed -> open on failures, open for a cool-down, half-open probes, closed.

Closed: every request passes; the breaker opens after `consecutive_failures` failures in a row, or when
at least `min_requests` outcomes in the last `window` seconds failed at `failure_ratio` or more.
Open: nothing passes for `open_for` seconds. Half-open: up to `half_open_probes` requests at once pass
as probes; that many successes close the breaker, one failure opens it again for another `open_for`.
The clock is injected (seconds, monotonic) so tests drive time; nothing here does I/O.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from gateway.config import BreakerSettings

Clock = Callable[[], float]


class State(enum.IntEnum):
    # The values are what `gateway_circuit_state` exports.
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


Listener = Callable[[str, str, State, State], None]  # service, instance_id, old, new


class CircuitBreaker:
    def __init__(
        self,
        settings: BreakerSettings,
        clock: Clock = time.monotonic,
        on_change: Callable[[State, State], None] | None = None,
    ) -> None:
        self._s = settings
        self._clock = clock
        self._on_change = on_change
        self._state = State.CLOSED
        self._consecutive = 0
        self._outcomes: deque[tuple[float, bool]] = deque()  # (time, failed), newest last, within window
        self._failures_in_window = 0
        self._opened_at = 0.0
        self._probes_in_flight = 0
        self._probe_successes = 0

    @property
    def state(self) -> State:
        self._advance()
        return self._state

    def available(self) -> bool:
        """Whether a request may be sent now (without reserving a probe slot)."""
        state = self.state
        return state is State.CLOSED or (state is State.HALF_OPEN and self._probes_in_flight < self._s.half_open_probes)

    def acquire(self) -> bool | None:
        """Admit one request: None when refused, else whether it is a half-open probe (pass it to `record`)."""
        if not self.available():
            return None
        if self._state is State.HALF_OPEN:
            self._probes_in_flight += 1
            return True
        return False

    def release(self, probe: bool) -> None:
        """The admitted request ended without an outcome (cancelled): give its probe slot back."""
        if probe and self._state is State.HALF_OPEN:
            self._probes_in_flight = max(0, self._probes_in_flight - 1)

    def record(self, success: bool, probe: bool) -> None:
        """The outcome of a request admitted by `acquire`."""
        self._advance()
        if probe:
            if self._state is not State.HALF_OPEN:
                return  # another probe already decided
            self._probes_in_flight = max(0, self._probes_in_flight - 1)
            if not success:
                self._open()
                return
            self._probe_successes += 1
            if self._probe_successes >= self._s.half_open_probes:
                self._set(State.CLOSED)
            return
        if self._state is not State.CLOSED:
            return  # a request admitted before the breaker opened: its outcome is old news
        now = self._clock()
        self._outcomes.append((now, not success))
        self._failures_in_window += 0 if success else 1
        self._prune(now)
        self._consecutive = 0 if success else self._consecutive + 1
        total = len(self._outcomes)
        if self._consecutive >= self._s.consecutive_failures or (
            total >= self._s.min_requests and self._failures_in_window / total >= self._s.failure_ratio
        ):
            self._open()

    def retry_after(self) -> float:
        """Seconds until an open breaker lets probes through (0 when it is not open)."""
        if self.state is not State.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self._s.open_for - self._clock())

    def _advance(self) -> None:
        if self._state is State.OPEN and self._clock() >= self._opened_at + self._s.open_for:
            self._set(State.HALF_OPEN)

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._set(State.OPEN)

    def _set(self, new: State) -> None:
        old = self._state
        self._state = new
        # Every transition starts its state afresh: no stale window or probe counts carry over.
        self._consecutive = 0
        self._outcomes.clear()
        self._failures_in_window = 0
        self._probes_in_flight = 0
        self._probe_successes = 0
        if self._on_change is not None and old is not new:
            self._on_change(old, new)

    def _prune(self, now: float) -> None:
        while self._outcomes and self._outcomes[0][0] <= now - self._s.window:
            _, failed = self._outcomes.popleft()
            self._failures_in_window -= 1 if failed else 0


class BreakerBoard:
    """The breakers of every (service, instance) seen; instances that leave discovery are forgotten."""

    def __init__(
        self, settings: BreakerSettings, clock: Clock = time.monotonic, listener: Listener | None = None
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._listener = listener
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}

    def get(self, service: str, instance_id: str) -> CircuitBreaker:
        key = (service, instance_id)
        breaker = self._breakers.get(key)
        if breaker is None:
            listener = self._listener

            def changed(old: State, new: State) -> None:
                if listener is not None:
                    listener(service, instance_id, old, new)

            breaker = self._breakers[key] = CircuitBreaker(self._settings, self._clock, changed)
        return breaker

    def retain(self, service: str, instance_ids: Iterable[str]) -> None:
        """Forget the breakers of `service` instances not in `instance_ids` (they left the registry)."""
        keep = set(instance_ids)
        for key in [k for k in self._breakers if k[0] == service and k[1] not in keep]:
            del self._breakers[key]

    def states(self) -> Iterator[tuple[str, str, State]]:
        for (service, instance_id), breaker in list(self._breakers.items()):
            yield service, instance_id, breaker.state
