"""What a grouped notification is, and the small seam every grouped integration (webhook, log) implements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from alerting.model import Alert


@dataclass(frozen=True)
class GroupNotification:
    receiver: str
    group_key: str  # Alertmanager's: route key ':' group labels
    group_labels: Mapping[str, str]
    alerts: Sequence[Alert]
    now: float


class Integration(Protocol):
    """One way a receiver is notified. `name` is unique within the receiver (`webhook/0`, `log`)."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def send_resolved(self) -> bool: ...

    def send(self, notification: GroupNotification) -> bool:
        """Deliver (with retries); True when delivered, False when it failed (and was dead-lettered)."""
        ...
