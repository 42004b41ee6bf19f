"""Test doubles for notification: a recording integration (an in-memory sink) and alert builders."""

from __future__ import annotations

from dataclasses import dataclass, field

from alerting.model import Alert, AlertState
from alerting.notify.integration import GroupNotification
from alerting.notify.payload import is_resolved


@dataclass
class RecordingIntegration:
    """Records every notification it is given; with `fail` set it refuses them (as a dead receiver would)."""

    name: str = "sink"
    kind: str = "sink"
    send_resolved: bool = True
    fail: bool = False
    sent: list[GroupNotification] = field(default_factory=list)

    def send(self, notification: GroupNotification) -> bool:
        if self.fail:
            return False
        self.sent.append(notification)
        return True

    def summary(self) -> list[list[tuple[str, str, str]]]:
        """Per notification: (alertname, level, firing|resolved) of each alert, sorted."""
        return [
            sorted((a.name, a.level or "", "resolved" if is_resolved(a) else "firing") for a in n.alerts)
            for n in self.sent
        ]


def firing(name: str, at: float, *, flapping: bool = False, repeat: float | None = None, **labels: str) -> Alert:
    return Alert(
        labels={"alertname": name, **labels},
        annotations={"summary": f"{name} fires"},
        state=AlertState.FIRING,
        active_at=at,
        value=1.0,
        fired_at=at,
        flapping=flapping,
        rule_group="g",
        repeat_interval_s=repeat,
        generator_url=f"http://obs.example/graph?alert={name}",
    )


def resolved(name: str, fired: float, at: float, *, flapping: bool = False, **labels: str) -> Alert:
    return Alert(
        labels={"alertname": name, **labels},
        annotations={"summary": f"{name} fires"},
        state=AlertState.INACTIVE,
        active_at=fired,
        value=0.0,
        fired_at=fired,
        resolved_at=at,
        flapping=flapping,
        rule_group="g",
    )
