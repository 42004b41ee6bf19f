"""Rules as loaded: Prometheus rule-file groups, with our Kapacitor-like additions merged in.

`alerting.rulefile` builds these from files; the evaluator and the API read them. Durations are seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Level:
    """A graded level: the alert is at `name` while `value <op> threshold` (op is one of > >= < <= == !=)."""

    name: str
    op: str
    threshold: float


@dataclass(frozen=True)
class FlappingSpec:
    """Kapacitor's flapping(low, high) over the last `history` evaluations.

    The flapping fraction is (state changes in the window) / (history - 1), weighted like Kapacitor
    (recent changes count more). Above `high` the alert is flapping and its notifications are held;
    it settles once the fraction falls below `low`.
    """

    low: float = 0.25
    high: float = 0.5
    history: int = 21


@dataclass(frozen=True)
class AlertingRule:
    name: str
    expr: str
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    # Additions (from extension files, never from the Prometheus rule file itself):
    levels: tuple[Level, ...] = ()  # most severe first; the first that holds names the level
    repeat_interval_s: float | None = None  # None: the route's; 0: state changes only, never repeated
    flapping: FlappingSpec | None = None
    source: str = ""  # "file:line" of the rule, for errors and the API


@dataclass(frozen=True)
class RecordingRule:
    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)
    source: str = ""


Rule = AlertingRule | RecordingRule


@dataclass(frozen=True)
class RuleGroup:
    name: str
    file: str  # the path as given in the configuration (Prometheus hashes it into the evaluation offset)
    interval_s: float
    rules: tuple[Rule, ...]
    limit: int = 0  # 0: no limit on alerts/series per rule
    query_offset_s: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Prometheus' group key: file and name joined by ';'."""
        return f"{self.file};{self.name}"
