"""Notification over real HTTP: a recording webhook receiver (a threaded http.server on loopback) that can
fail or hang, and a real Alertmanager 0.25 fed through its v2 API that delivers to that receiver."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from alerting.model import Alert, AlertState
from alerting.notify.config import build_notify_config
from alerting.notify.dispatch import Dispatcher
from tests.conftest import free_port
from tests.peers import alertmanager

V4_FIELDS = {
    "version": str,
    "groupKey": str,
    "truncatedAlerts": int,
    "status": str,
    "receiver": str,
    "groupLabels": dict,
    "commonLabels": dict,
    "commonAnnotations": dict,
    "externalURL": str,
    "alerts": list,
}
V4_ALERT_FIELDS = {
    "status": str,
    "labels": dict,
    "annotations": dict,
    "startsAt": str,
    "endsAt": str,
    "generatorURL": str,
    "fingerprint": str,
}
FAST_RETRY = {"initial_backoff": "50ms", "max_backoff": "200ms", "max_attempts": 3, "max_elapsed": "10s"}


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered (0: it never answered)

    def json(self) -> Any:
        return json.loads(self.body)


class RecordingReceiver:
    """A webhook receiver: answers each request with the next of `answers` (an HTTP status, or "hang" to accept
    and never answer), then 200; records every request and what it answered."""

    def __init__(self, answers: list[int | str] | None = None) -> None:
        self.answers = list(answers or [])
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    answer = receiver.answers.pop(0) if receiver.answers else 200
                if answer == "hang":
                    receiver._record(Request(self.path, dict(self.headers), body, 0))
                    receiver._release.wait(30)
                    self.close_connection = True
                    return
                assert isinstance(answer, int)
                receiver._record(Request(self.path, dict(self.headers), body, answer))
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _record(self, r: Request) -> None:
        with self._lock:
            self.requests.append(r)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def delivered(self, path: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300 and (path is None or r.path == path)]

    def wait_for(self, what: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if what():
                return
            time.sleep(0.05)
        raise AssertionError(f"receiver did not get what was expected within {timeout}s: {self.requests}")

    def __enter__(self) -> RecordingReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)


def alert(name: str, at: float, state: AlertState = AlertState.FIRING, **labels: str) -> Alert:
    return Alert(
        labels={"alertname": name, **labels},
        annotations={"summary": f"{name} on {labels.get('service', '?')}"},
        state=state,
        active_at=at,
        value=1.0,
        fired_at=at,
        resolved_at=at + 1 if state is AlertState.INACTIVE else None,
        generator_url=f"http://127.0.0.1:9094/graph?g0.expr={name}",
        rule_group="demo",
    )


@pytest.fixture
def make_dispatcher(tmp_path: Path) -> Iterator[Callable[..., tuple[Dispatcher, CollectorRegistry]]]:
    made: list[Dispatcher] = []

    def make(receiver: dict[str, Any], **extra: Any) -> tuple[Dispatcher, CollectorRegistry]:
        config = build_notify_config(
            {
                "external_url": "http://127.0.0.1:9094",
                "receivers": [{"name": "ops", **receiver}],
                "route": {"receiver": "ops", "group_by": ["alertname"], "group_wait": "0s"},
                "retry": FAST_RETRY,
                **extra,
            }
        )
        registry = CollectorRegistry()
        d = Dispatcher(config, tmp_path / "state", registry)
        made.append(d)
        return d, registry

    yield make
    for d in made:
        d.close()


def send_once(d: Dispatcher, *alerts: Alert) -> None:
    now = time.time()
    d.notify(list(alerts), now)
    d.tick(now)


def test_500_then_200_is_delivered_once(make_dispatcher: Callable[..., tuple[Dispatcher, CollectorRegistry]]) -> None:
    with RecordingReceiver([500, 200]) as rx:
        d, reg = make_dispatcher({"webhook_configs": [{"url": rx.url()}]})
        a = alert("HighErrorRate", time.time(), service="orders")
        send_once(d, a)
        send_once(d, a)  # the next round: nothing new, nothing sent
        assert [r.status for r in rx.requests] == [500, 200]
        assert len(rx.delivered()) == 1
        assert rx.requests[0].body == rx.requests[1].body
        labels = {"receiver": "ops", "integration": "webhook"}
        assert reg.get_sample_value("alerting_notifications_total", labels) == 1
        assert reg.get_sample_value("alerting_notification_requests_total", labels) == 2
        assert reg.get_sample_value("alerting_notification_latency_seconds_count", labels) == 1
        assert reg.get_sample_value("alerting_notifications_failed_total", labels) is None  # never incremented
        assert not (d.dead_letters.path).exists()


@pytest.mark.parametrize("failure", ["hang", "refused", "400"])
def test_failing_receiver_lands_in_the_dead_letter_log(
    failure: str, make_dispatcher: Callable[..., tuple[Dispatcher, CollectorRegistry]]
) -> None:
    by_failure: dict[str, list[int | str]] = {"hang": ["hang", "hang", "hang"], "refused": [], "400": [400]}
    answers = by_failure[failure]
    with RecordingReceiver(answers) as rx:
        url = rx.url() if failure != "refused" else f"http://127.0.0.1:{free_port()}/hook"
        d, reg = make_dispatcher({"webhook_configs": [{"url": url, "timeout": "300ms"}]})
        send_once(d, alert("ServiceDown", time.time(), service="payments"))
        lines = d.dead_letters.path.read_text().splitlines()
        assert len(lines) == 1
        dead = json.loads(lines[0])
        assert set(dead) == {"time", "receiver", "integration", "payload", "attempts", "last_error"}
        assert (dead["receiver"], dead["integration"]) == ("ops", "webhook")
        assert dead["payload"]["alerts"][0]["labels"]["alertname"] == "ServiceDown"
        # Timeouts and refused connections are retried up to max_attempts; a 400 is not retried.
        assert dead["attempts"] == (1 if failure == "400" else 3)
        assert {"hang": "timeout", "refused": "connection error", "400": "HTTP 400"}[failure] in dead["last_error"]
        labels = {"receiver": "ops", "integration": "webhook"}
        assert reg.get_sample_value("alerting_dead_letters_total", labels) == 1
        assert reg.get_sample_value("alerting_notifications_failed_total", labels) == 1
        assert len(rx.requests) == (0 if failure == "refused" else dead["attempts"])


def check_v4(payload: dict[str, Any]) -> None:
    assert set(V4_FIELDS) <= set(payload), f"missing: {set(V4_FIELDS) - set(payload)}"
    for key, kind in V4_FIELDS.items():
        assert isinstance(payload[key], kind), (key, payload[key])
    assert payload["version"] == "4" and payload["alerts"]
    for a in payload["alerts"]:
        assert set(V4_ALERT_FIELDS) <= set(a)
        for key, kind in V4_ALERT_FIELDS.items():
            assert isinstance(a[key], kind), (key, a[key])


def test_v4_payload_has_every_field(make_dispatcher: Callable[..., tuple[Dispatcher, CollectorRegistry]]) -> None:
    with RecordingReceiver() as rx:
        d, _ = make_dispatcher({"webhook_configs": [{"url": rx.url(), "max_alerts": 1}]})
        t = time.time()
        send_once(d, alert("HighLatency", t, service="orders"), alert("HighLatency", t, service="payments"))
        (req,) = rx.delivered()
        assert req.headers["Content-Type"] == "application/json"
        p = req.json()
        check_v4(p)
        assert (p["status"], p["receiver"], p["externalURL"], p["truncatedAlerts"]) == (
            "firing",
            "ops",
            "http://127.0.0.1:9094",
            1,
        )
        assert p["groupKey"] == '{}:{alertname="HighLatency"}' and p["groupLabels"] == {"alertname": "HighLatency"}
        assert p["commonLabels"] == {"alertname": "HighLatency"} and len(p["alerts"]) == 1
        assert p["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
        assert len(p["alerts"][0]["fingerprint"]) == 16


def test_jinja_body_is_delivered_as_rendered(
    make_dispatcher: Callable[..., tuple[Dispatcher, CollectorRegistry]],
) -> None:
    template = (
        '{"text": "[{{ status | upper }}] {{ commonLabels.alertname }}:'
        '{% for a in alerts %} {{ a.labels.service }}={{ a.annotations.summary }}{% endfor %}"}'
    )
    with RecordingReceiver() as rx:
        d, _ = make_dispatcher(
            {"webhook_configs": [{"url": rx.url(), "body_template": template, "headers": {"X-Team": "ops"}}]}
        )
        send_once(d, alert("HighErrorRate", time.time(), service="orders"))
        (req,) = rx.delivered()
        assert req.body == b'{"text": "[FIRING] HighErrorRate: orders=HighErrorRate on orders"}'
        assert req.headers["X-Team"] == "ops"


AM_CONFIG = """
route:
  receiver: team.test
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: team.test
    webhook_configs:
      - url: {url}
"""


def test_alertmanager_receives_our_alerts_and_delivers_v4(
    tmp_path: Path, make_dispatcher: Callable[..., tuple[Dispatcher, CollectorRegistry]]
) -> None:
    with RecordingReceiver() as rx, alertmanager(AM_CONFIG.format(url=rx.url("/am")), tmp_path) as am_url:
        d, reg = make_dispatcher(
            {"webhook_configs": [{"url": rx.url("/ours")}], "alertmanager_configs": [{"url": am_url}]}
        )
        t = time.time()
        a = alert("HighErrorRate", t, service="orders", severity="critical")
        send_once(d, a)
        rx.wait_for(lambda: bool(rx.delivered("/am")))
        from_am = rx.delivered("/am")[0].json()
        check_v4(from_am)
        assert from_am["status"] == "firing" and from_am["receiver"] == "team\\.test"  # regexp.QuoteMeta, as ours
        assert from_am["alerts"][0]["labels"] == dict(a.labels)
        assert from_am["alerts"][0]["annotations"] == dict(a.annotations)
        assert from_am["alerts"][0]["generatorURL"] == a.generator_url
        assert reg.get_sample_value("alerting_notifications_total", {"receiver": "ops", "integration": "alertmanager"})

        # Our own webhook payload for the same alert has the same keys with the same JSON types.
        (ours,) = [r.json() for r in rx.delivered("/ours")]

        def shape(p: dict[str, Any]) -> dict[str, str]:
            return {k: type(v).__name__ for k, v in p.items()}

        assert shape(ours) == shape(from_am)
        assert shape(ours["alerts"][0]) == shape(from_am["alerts"][0])
        assert ours["alerts"][0]["startsAt"] == from_am["alerts"][0]["startsAt"]
        # Both routes are a root grouping by alertname: the group keys are spelled the same way.
        assert ours["groupKey"] == from_am["groupKey"] == '{}:{alertname="HighErrorRate"}'

        # The resolution travels the same way.
        resolved = alert("HighErrorRate", t, AlertState.INACTIVE, service="orders", severity="critical")
        now = time.time()
        d.notify([resolved], now)
        d.tick(now + 300)  # our own group flushes again after group_interval (5m)
        rx.wait_for(lambda: any(r.json()["status"] == "resolved" for r in rx.delivered("/am")))
        done = next(r.json() for r in rx.delivered("/am") if r.json()["status"] == "resolved")
        check_v4(done)
        assert done["alerts"][0]["status"] == "resolved"
        assert (
            done["alerts"][0]["endsAt"]
            == next(r.json() for r in rx.delivered("/ours") if r.json()["status"] == "resolved")["alerts"][0]["endsAt"]
        )
