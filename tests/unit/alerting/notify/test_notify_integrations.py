"""The webhook body (default JSON or Jinja2) and the log integration's line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from alerting.notify.config import RetryConfig, WebhookConfig
from alerting.notify.delivery import DeadLetters, Delivery
from alerting.notify.integration import GroupNotification
from alerting.notify.log import LogIntegration
from alerting.notify.metrics import NotifyMetrics
from alerting.notify.webhook import WebhookIntegration
from tests.unit.alerting.notify.sink import firing, resolved

T0 = 1_700_000_000.0
NOTE = GroupNotification(
    receiver="ops",
    group_key='{}:{service="orders"}',
    group_labels={"service": "orders"},
    alerts=[firing("HighErrors", T0, service="orders"), resolved("Latency", T0, T0 + 5, service="orders")],
    now=T0 + 10,
)


@pytest.fixture
def delivery(tmp_path: Path) -> Iterator[Delivery]:
    metrics = NotifyMetrics(CollectorRegistry())
    with httpx.Client() as client:
        yield Delivery(RetryConfig(), DeadLetters(tmp_path / "dl.jsonl", metrics), metrics, client)


def test_default_body_is_the_v4_json(delivery: Delivery) -> None:
    body, payload = WebhookIntegration(WebhookConfig(url="http://x/"), 0, "http://obs", delivery).render(NOTE)
    assert json.loads(body) == payload
    assert (payload["version"], payload["status"], payload["groupKey"]) == ("4", "firing", '{}:{service="orders"}')
    assert [a["status"] for a in payload["alerts"]] == ["firing", "resolved"]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ status }} {{ alerts | length }}", "firing 2"),
        (
            "{% for a in alerts %}{{ a.labels.alertname }}:{{ a.status }};{% endfor %}",
            "HighErrors:firing;Latency:resolved;",
        ),
        ("{{ commonLabels | tojson }}", '{"service": "orders"}'),
        ("{{ groupLabels.service }} {{ externalURL }} {{ truncatedAlerts }}", "orders http://obs 0"),
    ],
)
def test_jinja_body(delivery: Delivery, template: str, expected: str) -> None:
    hook = WebhookIntegration(WebhookConfig(url="http://x/", body_template=template), 0, "http://obs", delivery)
    assert hook.render(NOTE) == (expected.encode(), expected)


def test_template_failing_at_render_time_is_dead_lettered(delivery: Delivery) -> None:
    hook = WebhookIntegration(
        WebhookConfig(url="http://x/", body_template="{{ alerts[0].labels.team }}"), 0, "", delivery
    )
    assert hook.send(NOTE) is False
    (line,) = delivery.dead_letters.path.read_text().splitlines()
    dead = json.loads(line)
    assert dead["attempts"] == 0 and "UndefinedError" in dead["last_error"] and dead["payload"]["version"] == "4"


def test_log_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="alerting.notify.log"):
        assert LogIntegration(NotifyMetrics(CollectorRegistry())).send(NOTE)
    (record,) = caplog.records
    assert record.getMessage() == (
        'alert notification receiver=ops group={}:{service="orders"} status=firing '
        "alerts=[HighErrors{service='orders'}=firing; Latency{service='orders'}=resolved]"
    )
