"""End to end on the demo: payment errors make the shipped HighErrorRate alert fire, at the level its value
calls for, and reach a webhook; clearing the fault resolves it and the resolution arrives.

The demo's own rule files are used, made faster for a test: every group is evaluated each second, `for` is
2 s and the 5-minute rate windows are 15 s (the meaning of each rule is pinned by promtool in
alerting/rules/demo_test.yml; here what is tested is the path from a fault to a notification).
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.alerting_process import AlertingProcess, make_alerting
from tests.conftest import ROOT, TIMELESS, CollectorProcess, free_port, make_collector
from tests.demo_stack import Stack, demo_stack
from tests.integration.test_alerting_notify import RecordingReceiver

RULES = ROOT / "alerting" / "rules"


def fast_rules(tmp: Path) -> tuple[Path, Path]:
    """demo.yml with 1 s groups, 2 s `for` and 15 s windows; demo.obs.yml unchanged beside it."""
    text = (RULES / "demo.yml").read_text(encoding="utf-8")
    text = re.sub(r"\[5m\]", "[15s]", text)
    text = re.sub(r"for: \d+m", "for: 2s", text)
    text = text.replace("  - name: demo-services\n", "  - name: demo-services\n    interval: 1s\n")
    rules = tmp / "demo.yml"
    rules.write_text(text, encoding="utf-8")
    extensions = tmp / "demo.obs.yml"
    extensions.write_text((RULES / "demo.obs.yml").read_text(encoding="utf-8"), encoding="utf-8")
    return rules, extensions


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CollectorProcess, Stack]]:
    tmp = tmp_path_factory.mktemp("demo-alerts")
    discovery_port = free_port()
    config = tmp / "obs.yaml"
    config.write_text(
        f"""
scrape:
  jobs:
    - job_name: demo
      scrape_interval: 1s
      scrape_timeout: 1s
      http_sd_configs: [{{url: 'http://127.0.0.1:{discovery_port}/sd/prometheus', refresh_interval: 1s}}]
"""
    )
    collector = make_collector(tmp, OBS_CONFIG=str(config), **TIMELESS)
    collector.start()
    try:
        with demo_stack(tmp, collector, discovery_port) as stack:
            yield collector, stack
    finally:
        collector.stop()


def high_error_rate(receiver: RecordingReceiver, status: str, service: str) -> list[dict[str, Any]]:
    """The HighErrorRate alerts for `service` with `status` in every notification delivered so far."""
    return [
        a
        for r in receiver.delivered()
        for a in r.json()["alerts"]
        if a["labels"]["alertname"] == "HighErrorRate"
        and a["labels"].get("service") == service
        and a["status"] == status
    ]


def test_payment_errors_fire_high_error_rate_and_clearing_them_resolves_it(
    tmp_path: Path, demo: tuple[CollectorProcess, Stack]
) -> None:
    collector, stack = demo
    rules, extensions = fast_rules(tmp_path)
    with RecordingReceiver() as receiver:
        notify = {
            "receivers": [{"name": "oncall", "webhook_configs": [{"url": receiver.url()}]}],
            "route": {"receiver": "oncall", "group_by": ["alertname", "service"], "group_wait": "0s",
                      "group_interval": "1s"},
        }  # fmt: skip
        svc: AlertingProcess = make_alerting(
            tmp_path,
            collector.url,
            {"rule_files": [str(rules)], "extension_files": [str(extensions)], "notify": notify},
        )
        svc.start()
        try:
            _fault_fires_and_clearing_resolves(collector, stack, svc, receiver)
        finally:
            svc.stop()


def _fault_fires_and_clearing_resolves(
    collector: CollectorProcess, stack: Stack, svc: AlertingProcess, receiver: RecordingReceiver
) -> None:
    stop = threading.Event()

    def orders() -> None:
        while not stop.is_set():
            stack.place("alerts-e2e", [{"sku": "KB-001", "qty": 1}])
            time.sleep(0.1)

    traffic = threading.Thread(target=orders, daemon=True)
    try:
        assert httpx.put(f"{stack.payments.url}/admin/faults", json={"error_rate": 1.0}, timeout=5).is_success
        traffic.start()
        receiver.wait_for(lambda: bool(high_error_rate(receiver, "firing", "payments")), timeout=60)
        [fired, *_] = high_error_rate(receiver, "firing", "payments")
        # The level follows the value (demo.obs.yml: critical above 20%, warning above 5%); the summary
        # carries the value the notification was made with.
        percent = float(re.search(r"payments: ([0-9.]+)% of requests fail", fired["annotations"]["summary"])[1])
        assert fired["labels"]["severity"] == ("critical" if percent > 20 else "warning"), fired
        assert fired["generatorURL"].startswith(svc.url)
        # The collector answers Grafana's /api/v1/alerts and /api/v1/rules from the service only when
        # configured (obs up does it); the service's own API shows the alert firing.
        firing = [a for a in svc.alerts() if a["labels"]["alertname"] == "HighErrorRate" and a["state"] == "firing"]
        assert "payments" in {a["labels"]["service"] for a in firing}
    finally:
        stop.set()
        traffic.join(timeout=10)
        assert httpx.delete(f"{stack.payments.url}/admin/faults", timeout=5).status_code == 204
    receiver.wait_for(lambda: bool(high_error_rate(receiver, "resolved", "payments")), timeout=90)
    [resolved] = high_error_rate(receiver, "resolved", "payments")
    assert resolved["endsAt"] != "0001-01-01T00:00:00Z"
    # State changes only: a firing notification for payments only when its level changed, never the
    # same level twice in a row (demo.obs.yml's repeat_interval is 1 h).
    levels = [a["labels"]["severity"] for a in high_error_rate(receiver, "firing", "payments")]
    assert all(a != b for a, b in itertools.pairwise(levels)), levels
