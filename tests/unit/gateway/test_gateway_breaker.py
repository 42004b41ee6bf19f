"""Circuit breaker transitions driven by a test clock: consecutive failures, failure ratio, cool-down, probes."""

from __future__ import annotations

import pytest
from gateway.breaker import BreakerBoard, CircuitBreaker, State
from gateway.config import BreakerSettings


class Clock:
    """Time that moves only when the test says so (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(breaker: CircuitBreaker, outcomes: str) -> None:
    """Send one request per character: `s` succeeds, `f` fails."""
    for outcome in outcomes:
        probe = breaker.acquire()
        assert probe is not None, f"refused while {breaker.state.name}"
        breaker.record(outcome == "s", probe)


@pytest.mark.parametrize(
    ("outcomes", "state"),
    [
        ("ffff", State.CLOSED),
        ("fffff", State.OPEN),
        ("ffffsffff", State.CLOSED),  # a success resets the consecutive count
        ("fsfsfsfsfs", State.OPEN),  # 10 outcomes (min_requests), half of them failed
        ("fsfsfsfss", State.CLOSED),  # 9 outcomes: below min_requests
        ("ssssssffff", State.CLOSED),  # 4 of 10 failed: under the ratio
    ],
)
def test_opening(outcomes: str, state: State) -> None:
    settings = BreakerSettings(consecutive_failures=5, failure_ratio=0.5, min_requests=10, window=60)
    breaker = CircuitBreaker(settings, Clock())
    run(breaker, outcomes)
    assert breaker.state is state


def test_ratio_window_forgets_old_outcomes() -> None:
    clock = Clock()
    breaker = CircuitBreaker(BreakerSettings(consecutive_failures=100, min_requests=4, window=10), clock)
    run(breaker, "ff")
    clock.now += 11
    run(breaker, "ssf")  # the old failures left the window: 1 of 3
    assert breaker.state is State.CLOSED
    run(breaker, "f")  # 2 of 4
    assert breaker.state is State.OPEN


def test_open_half_open_closed() -> None:
    clock = Clock()
    changes: list[tuple[State, State]] = []
    settings = BreakerSettings(consecutive_failures=2, open_for=5, half_open_probes=2)
    breaker = CircuitBreaker(settings, clock, on_change=lambda old, new: changes.append((old, new)))
    run(breaker, "ff")
    assert breaker.state is State.OPEN
    assert breaker.acquire() is None
    assert breaker.retry_after() == pytest.approx(5)
    clock.now += 4.9
    assert breaker.state is State.OPEN
    assert breaker.retry_after() == pytest.approx(0.1)
    clock.now += 0.1
    assert breaker.state is State.HALF_OPEN
    # Two probes may be in flight at once, not a third.
    first, second = breaker.acquire(), breaker.acquire()
    assert (first, second) == (True, True)
    assert breaker.acquire() is None
    assert not breaker.available()
    breaker.record(True, first)
    assert breaker.state is State.HALF_OPEN
    breaker.record(True, second)
    assert breaker.state is State.CLOSED
    assert breaker.acquire() is False
    assert changes == [
        (State.CLOSED, State.OPEN),
        (State.OPEN, State.HALF_OPEN),
        (State.HALF_OPEN, State.CLOSED),
    ]


def test_failed_probe_opens_again_for_a_full_cool_down() -> None:
    clock = Clock()
    breaker = CircuitBreaker(BreakerSettings(consecutive_failures=1, open_for=3), clock)
    run(breaker, "f")
    clock.now += 3
    probe = breaker.acquire()
    assert probe is True
    clock.now += 1
    breaker.record(False, probe)
    assert breaker.state is State.OPEN
    assert breaker.retry_after() == pytest.approx(3)


def test_cancelled_probe_gives_its_slot_back() -> None:
    clock = Clock()
    breaker = CircuitBreaker(BreakerSettings(consecutive_failures=1, open_for=1), clock)
    run(breaker, "f")
    clock.now += 1
    probe = breaker.acquire()
    assert probe is True and breaker.acquire() is None
    breaker.release(probe)
    assert breaker.acquire() is True


def test_late_outcomes_of_requests_admitted_while_closed_are_ignored() -> None:
    clock = Clock()
    breaker = CircuitBreaker(BreakerSettings(consecutive_failures=1, open_for=1), clock)
    slow = breaker.acquire()
    assert slow is False
    run(breaker, "f")
    clock.now += 1
    assert breaker.state is State.HALF_OPEN
    breaker.record(True, slow)  # admitted before the breaker opened: not a probe's verdict
    assert breaker.state is State.HALF_OPEN


def test_board_keeps_one_breaker_per_instance_and_forgets_departed_ones() -> None:
    clock = Clock()
    seen: list[tuple[str, str, State]] = []
    board = BreakerBoard(
        BreakerSettings(consecutive_failures=1), clock, listener=lambda s, i, old, new: seen.append((s, i, new))
    )
    assert board.get("orders", "o-1") is board.get("orders", "o-1")
    run(board.get("orders", "o-2"), "f")
    board.get("payments", "p-1")
    assert sorted(board.states()) == [
        ("orders", "o-1", State.CLOSED),
        ("orders", "o-2", State.OPEN),
        ("payments", "p-1", State.CLOSED),
    ]
    assert seen == [("orders", "o-2", State.OPEN)]
    board.retain("orders", ["o-1"])
    assert sorted(board.states()) == [("orders", "o-1", State.CLOSED), ("payments", "p-1", State.CLOSED)]
