"""Forwarding to an Alertmanager through `POST /api/v2/alerts`, as Prometheus' notifier does.

This path bypasses our grouping (Alertmanager groups, silences and inhibits by itself): every active or
recently resolved alert routed to the receiver is sent when Prometheus would send it, i.e. when it is new,
has resolved since it was last sent, or `resend_delay` has passed since. A firing alert's endsAt is
now + 4 x resend_delay. When an alert changes level its labels change, which to Alertmanager is another
alert, so the old label set is sent once more as resolved (endsAt now) instead of waiting for it to expire.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from alerting.model import Alert
from alerting.notify.config import AlertmanagerConfig
from alerting.notify.delivery import Delivery, HttpNotification
from alerting.notify.payload import is_resolved, postable_alert, starts_at
from alerting.notify.timefmt import format_rfc3339


@dataclass
class _Sent:
    labels: Mapping[str, str]
    sent_at: float


class AlertmanagerForwarder:
    kind = "alertmanager"

    def __init__(self, receiver: str, config: AlertmanagerConfig, delivery: Delivery) -> None:
        self.receiver, self.config, self._delivery = receiver, config, delivery
        self.url = config.url.rstrip("/") + "/api/v2/alerts"
        self._sent: dict[str, _Sent] = {}

    def batch(self, alerts: Sequence[Alert], now: float) -> list[dict[str, object]]:
        """The postable alerts due at `now` (marks them sent); forgets alerts no longer passed."""
        out: list[dict[str, object]] = []
        present = set()
        for a in alerts:
            present.add(a.identity)
            prev = self._sent.get(a.identity)
            if prev is not None and dict(prev.labels) != dict(a.labels):
                out.append(
                    {
                        "labels": dict(prev.labels),
                        "annotations": dict(a.annotations),
                        "startsAt": format_rfc3339(starts_at(a)),
                        "endsAt": format_rfc3339(now),
                    }
                )
                prev = None
            due = (
                prev is None
                or (is_resolved(a) and a.resolved_at is not None and a.resolved_at > prev.sent_at)
                or prev.sent_at + self.config.resend_delay < now
            )
            if due:
                out.append(postable_alert(a, now, self.config.resend_delay))
                self._sent[a.identity] = _Sent(dict(a.labels), now)
        for gone in set(self._sent) - present:
            del self._sent[gone]
        return out

    def forward(self, alerts: Sequence[Alert], now: float) -> bool | None:
        """Send what is due; None when nothing was, else whether Alertmanager took it."""
        batch = self.batch(alerts, now)
        if not batch:
            return None
        return self._delivery.post(
            HttpNotification(
                receiver=self.receiver,
                integration=self.kind,
                url=self.url,
                body=json.dumps(batch).encode(),
                payload=batch,
                timeout_s=self.config.timeout,
            )
        )
