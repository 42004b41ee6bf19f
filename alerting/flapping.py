"""Kapacitor's flapping detection: a weighted share of state changes over the last N evaluations, with hysteresis.

Pure functions over a plain history (a list of level names, oldest first), so that the state store can keep
it as JSON. Kapacitor (alert.go: alertState.addEvent, percentChange, updateFlapping) keeps a ring of the
last `history` levels, starting all OK; each change between neighbours counts with a weight rising linearly
from maxWeight/weightDiff to maxWeight; the sum over (history - 1) pairs is the fraction.
An alert starts flapping when the fraction exceeds `high` and stops once it falls below `low`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from alerting.rules import FlappingSpec

OK = "ok"  # the level recorded for an evaluation in which the alert's expression did not hold

# Kapacitor's constants: the newest change weighs weightDiff times the oldest; the newest weighs maxWeight.
WEIGHT_DIFF = 1.5
MAX_WEIGHT = 1.2


def percent_change(history: Sequence[str]) -> float:
    """Kapacitor's percentChange over `history` (oldest first, newest last).

    Kapacitor walks its ring starting at the newest entry and wraps around, so it compares the newest with
    the one before (lowest weight), then the oldest with the newest, then each older pair towards the
    newest; the pair (second newest, third newest) is never compared. This is reproduced literally, with
    the ring index at the newest entry, so that the same history flaps here exactly when it does there.
    """
    n = len(history)
    if n < 2:
        return 0.0
    newest = n - 1
    weight = MAX_WEIGHT / WEIGHT_DIFF
    step = (MAX_WEIGHT - weight) / (n - 1)
    changes = 0.0
    for i in range(n - 1):
        current = (i + newest) % n
        previous = current - 1 if current > 0 else n - 1
        if history[current] != history[previous]:
            changes += weight
        weight += step
    return changes / (n - 1)


@dataclass
class FlappingState:
    """The last `spec.history` levels (oldest first) and whether the alert is flapping now."""

    history: list[str]
    flapping: bool = False

    @classmethod
    def new(cls, spec: FlappingSpec) -> FlappingState:
        return cls([OK] * spec.history)

    def add(self, level: str, spec: FlappingSpec) -> bool:
        """Records this evaluation's level and returns whether the alert is flapping after it."""
        self.history = [*self.history, level][-spec.history :]
        if len(self.history) < spec.history:  # a shorter history restored from an older spec: pad like a new ring
            self.history = [OK] * (spec.history - len(self.history)) + self.history
        p = percent_change(self.history)
        if self.flapping and p < spec.low:
            self.flapping = False
        elif not self.flapping and p > spec.high:
            self.flapping = True
        return self.flapping

    @property
    def settled(self) -> bool:
        """True when the history holds nothing but OK: nothing worth keeping."""
        return not self.flapping and all(level == OK for level in self.history)
