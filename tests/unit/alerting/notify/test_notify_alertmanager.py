"""Forwarding to Alertmanager on Prometheus' schedule: new, resolved since last sent, or resend delay passed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from alerting.notify.alertmanager import AlertmanagerForwarder
from alerting.notify.config import AlertmanagerConfig, RetryConfig
from alerting.notify.delivery import DeadLetters, Delivery
from alerting.notify.metrics import NotifyMetrics
from alerting.notify.timefmt import format_rfc3339
from tests.unit.alerting.notify.sink import firing, resolved

T0 = 1_700_000_000.0


@pytest.fixture
def forwarder(tmp_path: Any) -> Any:
    metrics = NotifyMetrics(CollectorRegistry())
    with httpx.Client() as client:
        delivery = Delivery(RetryConfig(), DeadLetters(tmp_path / "dl.jsonl", metrics), metrics, client)
        yield AlertmanagerForwarder("ops", AlertmanagerConfig(url="http://127.0.0.1:9/", resend_delay=60), delivery)


def ends(batch: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(str(b["labels"].get("severity", "")), str(b["endsAt"])) for b in batch]


def test_schedule(forwarder: AlertmanagerForwarder) -> None:
    assert forwarder.url == "http://127.0.0.1:9/api/v2/alerts"
    a = firing("A", T0, severity="warning")
    assert ends(forwarder.batch([a], T0)) == [("warning", format_rfc3339(T0 + 240))]  # new: now + 4 x resend delay
    assert forwarder.batch([a], T0 + 30) == []  # within the resend delay
    assert ends(forwarder.batch([a], T0 + 61)) == [("warning", format_rfc3339(T0 + 61 + 240))]
    # A level change: the old label set is ended now, the new one sent.
    b = firing("A", T0, severity="critical")
    assert ends(forwarder.batch([b], T0 + 70)) == [
        ("warning", format_rfc3339(T0 + 70)),
        ("critical", format_rfc3339(T0 + 70 + 240)),
    ]
    r = resolved("A", T0, T0 + 80, severity="critical")
    assert ends(forwarder.batch([r], T0 + 80)) == [("critical", format_rfc3339(T0 + 80))]  # resolved since sent
    assert forwarder.batch([r], T0 + 100) == []
    assert ends(forwarder.batch([r], T0 + 141)) == [("critical", format_rfc3339(T0 + 80))]  # resent like Prometheus
    assert forwarder.batch([], T0 + 200) == []
    assert len(forwarder.batch([a], T0 + 201)) == 1  # forgotten once no longer passed: new again
