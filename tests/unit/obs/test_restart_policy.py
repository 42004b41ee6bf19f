"""The restart policy: exponential backoff capped at backoff_max, giving up past max_restarts in a window."""

from __future__ import annotations

import pytest

from obs.restart_policy import RestartPolicy
from obs.stack_config import RestartConfig


class FakeClock:
    """A settable monotonic clock (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


CONFIG = RestartConfig(backoff_initial=0.5, backoff_factor=2.0, backoff_max=3.0, max_restarts=4, window=60.0)


def test_delays_double_and_are_capped() -> None:
    clock = FakeClock()
    policy = RestartPolicy(CONFIG, clock)
    delays = []
    for _ in range(4):
        decision = policy.record_crash()
        assert not decision.give_up
        delays.append(decision.delay)
        clock.now += 1
    assert delays == [0.5, 1.0, 2.0, 3.0]


def test_gives_up_after_max_restarts_within_the_window() -> None:
    clock = FakeClock()
    policy = RestartPolicy(CONFIG, clock)
    for _ in range(4):
        assert not policy.record_crash().give_up
        clock.now += 5
    decision = policy.record_crash()
    assert decision.give_up
    assert decision.crashes_in_window == 5


def test_crashes_older_than_the_window_are_forgotten() -> None:
    clock = FakeClock()
    policy = RestartPolicy(CONFIG, clock)
    for _ in range(4):
        policy.record_crash()
        clock.now += 1
    clock.now += 60  # every crash so far has left the window
    assert policy.crashes_in_window() == 0
    decision = policy.record_crash()
    assert not decision.give_up
    assert decision.delay == 0.5  # the backoff starts over
    assert decision.crashes_in_window == 1


@pytest.mark.parametrize(
    ("age", "counted"),
    [(59.9, True), (60.0, False)],  # the window is (now - window, now]
)
def test_window_bound(age: float, counted: bool) -> None:
    clock = FakeClock()
    policy = RestartPolicy(CONFIG, clock)
    policy.record_crash()
    clock.now += age
    assert policy.crashes_in_window() == (1 if counted else 0)


def test_max_restarts_zero_never_restarts() -> None:
    policy = RestartPolicy(RestartConfig(max_restarts=0), FakeClock())
    assert policy.record_crash().give_up
