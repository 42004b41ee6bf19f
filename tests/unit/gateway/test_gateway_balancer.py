"""Load balancers: round-robin order, least outstanding with ties rotated."""

from __future__ import annotations

import pytest
from gateway.balancer import LeastOutstanding, Outstanding, RoundRobin, make_balancer


def test_round_robin_cycles_through_candidates() -> None:
    rr = RoundRobin()
    assert [rr.choose(["a", "b", "c"]) for _ in range(7)] == ["a", "b", "c", "a", "b", "c", "a"]


def test_round_robin_follows_a_changing_list() -> None:
    rr = RoundRobin()
    picks = [rr.choose(["a", "b"]), rr.choose(["a", "b", "c"]), rr.choose(["a", "b", "c"]), rr.choose(["b"])]
    assert picks == ["a", "b", "c", "b"]


@pytest.mark.parametrize(
    ("in_flight", "candidates", "expected"),
    [
        ({"a": 3, "b": 1, "c": 2}, ["a", "b", "c"], ["b", "b", "b"]),
        ({"a": 1, "b": 1, "c": 5}, ["a", "b", "c"], ["a", "b", "a"]),
        ({}, ["a", "b"], ["a", "b", "a"]),
        ({"a": 0, "b": 2}, ["b"], ["b", "b", "b"]),
    ],
)
def test_least_outstanding(in_flight: dict[str, int], candidates: list[str], expected: list[str]) -> None:
    outstanding = Outstanding()
    for instance, count in in_flight.items():
        for _ in range(count):
            outstanding.acquire(instance)
    lo = LeastOutstanding(outstanding)
    assert [lo.choose(candidates) for _ in expected] == expected


def test_least_outstanding_follows_acquire_and_release() -> None:
    outstanding = Outstanding()
    lo = LeastOutstanding(outstanding)
    first = lo.choose(["a", "b"])
    outstanding.acquire(first)
    second = lo.choose(["a", "b"])
    assert second != first
    outstanding.acquire(second)
    outstanding.acquire(second)
    assert lo.choose(["a", "b"]) == first
    outstanding.release(second)
    outstanding.release(second)
    outstanding.release(first)
    assert outstanding.get(first) == outstanding.get(second) == 0


def test_release_never_goes_negative() -> None:
    outstanding = Outstanding()
    outstanding.release("a")
    assert outstanding.get("a") == 0


@pytest.mark.parametrize("kind", ["round_robin", "least_outstanding"])
def test_no_candidates_is_an_error(kind: str) -> None:
    with pytest.raises(ValueError):
        make_balancer(kind, Outstanding()).choose([])
