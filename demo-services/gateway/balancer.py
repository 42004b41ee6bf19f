"""Client-side load balancers: round-robin, and least outstanding requests with round-robin among ties."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Outstanding:
    """Requests in flight per instance id, shared by every route so one instance's load is seen once."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def acquire(self, instance_id: str) -> None:
        self._counts[instance_id] = self._counts.get(instance_id, 0) + 1

    def release(self, instance_id: str) -> None:
        left = self._counts.get(instance_id, 0) - 1
        if left > 0:
            self._counts[instance_id] = left
        else:
            self._counts.pop(instance_id, None)

    def get(self, instance_id: str) -> int:
        return self._counts.get(instance_id, 0)


class Balancer(Protocol):
    def choose(self, candidates: Sequence[str]) -> str:
        """One of `candidates` (instance ids, not empty, in a stable order)."""
        ...


class RoundRobin:
    def __init__(self) -> None:
        self._next = 0

    def choose(self, candidates: Sequence[str]) -> str:
        if not candidates:
            raise ValueError("no candidates")
        chosen = candidates[self._next % len(candidates)]
        self._next += 1
        return chosen


class LeastOutstanding:
    """The instance with the fewest requests in flight; ties rotate so equal instances share the load."""

    def __init__(self, outstanding: Outstanding) -> None:
        self._outstanding = outstanding
        self._tie = RoundRobin()

    def choose(self, candidates: Sequence[str]) -> str:
        if not candidates:
            raise ValueError("no candidates")
        least = min(self._outstanding.get(c) for c in candidates)
        return self._tie.choose([c for c in candidates if self._outstanding.get(c) == least])


def make_balancer(kind: str, outstanding: Outstanding) -> Balancer:
    if kind == "least_outstanding":
        return LeastOutstanding(outstanding)
    if kind == "round_robin":
        return RoundRobin()
    raise ValueError(f"unknown balancer {kind!r}")
