"""Whether a group's current alerts are worth a notification to one integration, given what it last got.

Alertmanager's DedupStage with our additions: an alert is keyed by identity *and level*, so a level change
is a change; a repeat interval of 0 never repeats (Kapacitor's stateChangesOnly); flapping alerts are
held: they neither cause nor join a notification, and what was last sent about them is carried over, so
that once they settle their state is notified if, and only if, it differs from what the receiver knows.
A resolved alert is newsworthy only if the receiver was told it fired, and it is told once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from alerting.model import Alert
from alerting.notify.history import SentRecord
from alerting.notify.payload import is_resolved


@dataclass(frozen=True)
class Plan:
    """Send `alerts` (may be empty: then only `record` is written, as Alertmanager does) and record `record`."""

    alerts: tuple[Alert, ...]
    record: SentRecord


def level_of(alert: Alert) -> str:
    return alert.level or ""


def plan(
    alerts: Sequence[Alert],
    last: SentRecord | None,
    *,
    send_resolved: bool,
    repeat_interval_s: float,
    now: float,
) -> Plan | None:
    """`alerts` are the group's unmuted alerts (firing or resolved); None means nothing to send."""
    last_firing = dict(last.firing) if last is not None else {}
    held = {a.identity for a in alerts if a.flapping}
    firing = [a for a in alerts if not a.flapping and not is_resolved(a)]
    firing_ids = {a.identity: level_of(a) for a in firing}
    resolved = [
        a
        for a in alerts
        if not a.flapping and is_resolved(a) and a.identity in last_firing and a.identity not in firing_ids
    ]
    carried = {i: lvl for i, lvl in last_firing.items() if i in held}

    if not last_firing:
        needed = bool(firing)
    elif any(last_firing.get(i) != lvl for i, lvl in firing_ids.items()):
        needed = True  # newly firing, or firing at another level
    elif not firing:
        needed = bool(resolved)  # everything the receiver knows as firing has resolved (sent even without
        # send_resolved, with no alerts, so that the log forgets them, as Alertmanager does)
    elif send_resolved and resolved:
        needed = True
    else:
        needed = repeat_interval_s > 0 and last is not None and now - last.sent_at >= repeat_interval_s
    if not needed:
        return None
    to_send = [*firing, *(resolved if send_resolved else [])]
    record = SentRecord(
        firing={**carried, **firing_ids},
        resolved=frozenset(a.identity for a in resolved),
        sent_at=now,
    )
    return Plan(tuple(to_send), record)
