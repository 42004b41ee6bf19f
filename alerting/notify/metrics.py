"""The notification metrics, registered in a registry the caller owns (Alertmanager-style names)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_BY_INTEGRATION = ("receiver", "integration")


class NotifyMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.notifications = Counter(
            "alerting_notifications",
            "Notifications attempted (once per notification, whatever its retries).",
            _BY_INTEGRATION,
            registry=registry,
        )
        self.notifications_failed = Counter(
            "alerting_notifications_failed",
            "Notifications that failed after all their attempts (and went to the dead-letter log).",
            _BY_INTEGRATION,
            registry=registry,
        )
        self.requests = Counter(
            "alerting_notification_requests",
            "Delivery attempts (HTTP requests or log lines), retries included.",
            _BY_INTEGRATION,
            registry=registry,
        )
        self.requests_failed = Counter(
            "alerting_notification_requests_failed",
            "Delivery attempts that failed, by whether the failure was retryable.",
            (*_BY_INTEGRATION, "retryable"),
            registry=registry,
        )
        self.latency = Histogram(
            "alerting_notification_latency_seconds",
            "Time to deliver a notification, retries and backoff included (seconds).",
            _BY_INTEGRATION,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=registry,
        )
        self.dead_letters = Counter(
            "alerting_dead_letters",
            "Notifications appended to the dead-letter log.",
            _BY_INTEGRATION,
            registry=registry,
        )
        self.muted = Gauge(
            "alerting_alerts_muted",
            "Alerts currently muted, by reason (silenced or inhibited).",
            ("reason",),
            registry=registry,
        )
        for reason in ("silenced", "inhibited"):
            self.muted.labels(reason=reason).set(0)
        self.flapping = Gauge(
            "alerting_flapping_alerts",
            "Alerts whose notifications are held because they are flapping (1 per held alert).",
            ("alertname", "fingerprint"),
            registry=registry,
        )
        self.groups = Gauge("alerting_aggregation_groups", "Aggregation groups with alerts.", registry=registry)
