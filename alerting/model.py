"""The values every part of alerting shares: labels, an alert's state, and the two seams (query, notify).

Times are Unix seconds as floats everywhere in `alerting`; only the wire formats (RFC 3339, milliseconds)
convert at their edges.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

# The label that carries an alert's graded level (Kapacitor's info/warning/critical). It is part of the
# labels sent to receivers but not of the alert's identity: an alert that moves from warning to critical
# is the same alert, not a resolved one and a new one (see `identity`).
LEVEL_LABEL = "severity"
LEVELS = ("info", "warning", "critical")


def sorted_labels(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable 16-hex-digit id for a label set (order-free); used in payloads and as a storage key."""
    h = hashlib.sha256()
    for name, value in sorted(labels.items()):
        h.update(name.encode())
        h.update(b"\xff")
        h.update(value.encode())
        h.update(b"\xff")
    return h.hexdigest()[:16]


def identity(labels: Mapping[str, str]) -> str:
    """The fingerprint of an alert's labels without its level: what stays the same across level changes."""
    return fingerprint({k: v for k, v in labels.items() if k != LEVEL_LABEL})


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector (or a scalar, with empty labels) returned by a query."""

    labels: Mapping[str, str]
    value: float


class QueryError(Exception):
    """A query failed. `retryable` is True for overload or a dependency down (try again next round)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class QueryFunc(Protocol):
    """Evaluate a PromQL expression at `at` (Unix seconds). Raises QueryError."""

    def __call__(self, expr: str, at: float) -> Sequence[Sample]: ...


class QueryManyFunc(Protocol):
    """Evaluate several expressions at one `at` in one go: a result or a QueryError for each, in order.

    The same answers as calling a QueryFunc once per expression, in fewer round trips (the collector's
    /api/obs/query_batch reads the data once for all of them). Raises QueryError when none could be run.
    """

    def __call__(self, exprs: Sequence[str], at: float) -> list[Sequence[Sample] | QueryError]: ...


class AlertState(StrEnum):
    INACTIVE = "inactive"  # resolved: kept for a while so that its resolution is delivered
    PENDING = "pending"
    FIRING = "firing"


@dataclass(frozen=True)
class Alert:
    """One alert instance as the evaluator hands it to notification, after an evaluation.

    `labels` are final (rule labels, group labels, alertname and the level label); `identity` excludes the
    level. `fired_at` is when it started firing (Alertmanager's startsAt); `resolved_at` is set once it has
    resolved. `flapping` is True while the flapping detector holds its notifications.
    """

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    state: AlertState
    active_at: float
    value: float
    fired_at: float | None = None
    resolved_at: float | None = None
    last_eval: float = 0.0
    keep_firing_since: float | None = None
    flapping: bool = False
    generator_url: str = ""
    rule_group: str = ""
    repeat_interval_s: float | None = None  # the rule's override of the route's repeat interval
    identity: str = field(default="")

    def __post_init__(self) -> None:
        if not self.identity:
            object.__setattr__(self, "identity", identity(self.labels))

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def level(self) -> str | None:
        return self.labels.get(LEVEL_LABEL)


class Notifier(Protocol):
    """Receives, after each group evaluation, every alert of that group that is firing or newly resolved.

    Like Prometheus' NotifyFunc, it is called with the current state each round; deciding what is a state
    change worth a notification (dedup, repeat interval, grouping, silences, inhibition) is the receiver's
    job, so that the evaluator stays a pure state machine.
    """

    def notify(self, alerts: Sequence[Alert], now: float) -> None: ...
