"""The log integration: one log line per notification (receiver, group, status, the alerts and their levels)."""

from __future__ import annotations

import logging

from alerting.notify.integration import GroupNotification
from alerting.notify.metrics import NotifyMetrics
from alerting.notify.payload import is_resolved

log = logging.getLogger("alerting.notify.log")


class LogIntegration:
    kind = "log"
    name = "log"
    send_resolved = True

    def __init__(self, metrics: NotifyMetrics) -> None:
        self._metrics = metrics

    def send(self, n: GroupNotification) -> bool:
        labels = {"receiver": n.receiver, "integration": self.kind}
        self._metrics.notifications.labels(**labels).inc()
        self._metrics.requests.labels(**labels).inc()
        parts = [
            f"{a.name}{{{', '.join(f'{k}={v!r}' for k, v in sorted(a.labels.items()) if k != 'alertname')}}}"
            f"={'resolved' if is_resolved(a) else 'firing'}"
            for a in n.alerts
        ]
        status = "firing" if any(not is_resolved(a) for a in n.alerts) else "resolved"
        log.info(
            "alert notification receiver=%s group=%s status=%s alerts=[%s]",
            n.receiver,
            n.group_key,
            status,
            "; ".join(parts),
        )
        return True
