"""Kapacitor's flapping detection: percentChange over its ring, and the high/low hysteresis."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerting.flapping import MAX_WEIGHT, OK, WEIGHT_DIFF, FlappingState, percent_change
from alerting.rules import FlappingSpec


class KapacitorRing:
    """Kapacitor's alertState as written in alert.go: a ring, `idx` at the newest entry."""

    def __init__(self, n: int) -> None:
        self.history, self.idx = [OK] * n, 0

    def add(self, level: str) -> None:
        self.idx = (self.idx + 1) % len(self.history)
        self.history[self.idx] = level

    def percent_change(self) -> float:
        n = len(self.history)
        changes, weight = 0.0, MAX_WEIGHT / WEIGHT_DIFF
        step = (MAX_WEIGHT - weight) / (n - 1)
        for i in range(n - 1):
            c = (i + self.idx) % n
            p = c - 1 if c - 1 >= 0 else n - 1
            if self.history[c] != self.history[p]:
                changes += weight
            weight += step
        return changes / (n - 1)


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ([OK, OK, OK], 0.0),
        # n=3: weights 0.8 (newest pair), then 1.0 (oldest against newest, the ring's wrap)
        ([OK, OK, "x"], (0.8 + 1.0) / 2),
        ([OK, "x", "x"], 1.0 / 2),
        (["x", OK, OK], 1.0 / 2),
        (["x", "x", OK], (0.8 + 1.0) / 2),
        (["x", OK, "x"], 0.8 / 2),
    ],
)
def test_percent_change_by_hand(history: list[str], expected: float) -> None:
    assert percent_change(history) == pytest.approx(expected)


@given(st.integers(min_value=2, max_value=30), st.lists(st.sampled_from([OK, "warning", "critical"]), max_size=80))
def test_percent_change_equals_kapacitors_ring(n: int, levels: list[str]) -> None:
    ring = KapacitorRing(n)
    state = FlappingState.new(FlappingSpec(history=n))
    for level in levels:
        ring.add(level)
        state.add(level, FlappingSpec(history=n))
    assert percent_change(state.history) == pytest.approx(ring.percent_change())


def test_hysteresis() -> None:
    spec = FlappingSpec(low=0.2, high=0.5, history=5)
    state = FlappingState.new(spec)
    flags = [state.add(level, spec) for level in ["x", OK, "x", OK, "x", "x", "x", "x", "x", "x"]]
    p = [percent_change(h) for h in (["x", OK, "x", OK, "x"],)]
    assert p[0] > spec.high
    assert flags[:2] == [False, False]
    assert flags[4] is True
    assert flags[-1] is False
    assert not state.settled  # the history still holds non-OK levels
