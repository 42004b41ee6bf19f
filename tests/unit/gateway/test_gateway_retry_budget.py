"""Retry budget: a ratio of recent requests plus a floor per second, over a sliding window of seconds."""

from __future__ import annotations

import pytest
from gateway.config import RetryBudgetSettings
from gateway.retry_budget import RetryBudget


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def withdraw_all(budget: RetryBudget, most: int = 1000) -> int:
    taken = 0
    while taken < most and budget.try_withdraw():
        taken += 1
    return taken


@pytest.mark.parametrize(
    ("ratio", "min_per_second", "window", "requests", "retries"),
    [
        (0.2, 0.0, 10, 100, 20),
        (0.2, 1.0, 10, 100, 30),  # the floor: 1/s over 10 s
        (0.2, 0.0, 10, 4, 0),  # 0.8 of a retry is no retry
        (0.2, 0.0, 10, 5, 1),
        (0.0, 0.5, 4, 1000, 2),
        (1.0, 0.0, 10, 7, 7),
    ],
)
def test_allowed_retries(ratio: float, min_per_second: float, window: int, requests: int, retries: int) -> None:
    budget = RetryBudget(RetryBudgetSettings(ratio=ratio, min_per_second=min_per_second, window=window), Clock())
    for _ in range(requests):
        budget.record_request()
    assert withdraw_all(budget) == retries


def test_window_slides() -> None:
    clock = Clock()
    budget = RetryBudget(RetryBudgetSettings(ratio=0.5, min_per_second=0, window=10), clock)
    for _ in range(10):
        budget.record_request()
    assert withdraw_all(budget) == 5
    clock.now += 5
    for _ in range(10):
        budget.record_request()
    assert withdraw_all(budget) == 5  # 20 requests allow 10; 5 already spent
    clock.now += 5  # the first second's requests and retries leave the window
    assert withdraw_all(budget) == 0  # 10 requests allow 5; the 5 of second 5005 are still counted
    clock.now += 5
    assert budget.allowed() == 0
    for _ in range(4):
        budget.record_request()
    assert withdraw_all(budget) == 2
