"""The alerting service as a process over a real collector: rules fire and notify a real webhook receiver,
state survives kill -9, rules reload on SIGHUP and /-/reload, silences work through `obs silence`, recording
rules are written back, and the collector answers /api/v1/rules and /api/v1/alerts from the service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.alerting_process import make_alerting
from tests.conftest import ROOT, TIMELESS, CollectorProcess, free_port, make_collector
from tests.integration.test_alerting_notify import RecordingReceiver


@pytest.fixture(scope="module")
def alerting_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def collector_with_alerting(tmp_path_factory: pytest.TempPathFactory, alerting_port: int) -> Iterator[CollectorProcess]:
    """A collector whose /api/v1/rules and /api/v1/alerts come from the alerting service on `alerting_port`."""
    c = make_collector(
        tmp_path_factory.mktemp("collector"), OBS_QUERY__ALERTING_URL=f"http://127.0.0.1:{alerting_port}", **TIMELESS
    )
    c.start()
    yield c
    c.stop()


def write(collector: CollectorProcess, run: str, values: dict[str, float]) -> None:
    """One sample now per series: alerttest_value{run, series}."""
    now_ms = int(time.time() * 1000)
    body = "\n".join(f"alerttest,run={run},series={s} value={v} {now_ms}" for s, v in values.items())
    r = httpx.post(f"{collector.url}/write", params={"db": "alerting", "precision": "ms"}, content=body, timeout=10)
    assert r.status_code == 204, r.text


def rule_file(path: Path, run: str, extra: str = "") -> Path:
    path.write_text(
        f"""groups:
  - name: test
    interval: 1s
    rules:
      - alert: Fast
        expr: alerttest_value{{run="{run}", series=~"a|b|d"}} > 0
        labels: {{severity: page}}
        annotations: {{summary: "series {{{{ $labels.series }}}} is at {{{{ $value }}}}"}}
      - alert: Slow
        expr: alerttest_value{{run="{run}", series="c"}} > 0
        for: 1h
      - record: alerttest:value:sum
        expr: sum by (run) (alerttest_value{{run="{run}"}})
{extra}""",
        encoding="utf-8",
    )
    return path


def notify_section(receiver: RecordingReceiver) -> dict[str, Any]:
    return {
        "receivers": [{"name": "hook", "webhook_configs": [{"url": receiver.url()}]}],
        "route": {
            "receiver": "hook",
            "group_by": ["alertname", "series"],  # one group per alert: each notification is about one
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "0s",  # state changes only
        },
        "retry": {"initial_backoff": "50ms", "max_backoff": "200ms", "max_attempts": 3, "max_elapsed": "5s"},
    }


def by_series(alerts: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(a["labels"]["alertname"], a["labels"]["series"]): a for a in alerts}


def sent(receiver: RecordingReceiver) -> list[tuple[str, str, str]]:
    """(status, alertname, series) of every alert in every delivered notification, in order."""
    out = []
    for r in receiver.delivered():
        for a in r.json()["alerts"]:
            out.append((a["status"], a["labels"]["alertname"], a["labels"]["series"]))
    return out


def test_alerts_fire_notify_and_survive_kill_9_without_duplicates(
    tmp_path: Path, collector_with_alerting: CollectorProcess, alerting_port: int
) -> None:
    c, run = collector_with_alerting, uuid.uuid4().hex[:8]
    with RecordingReceiver() as receiver:
        svc = make_alerting(
            tmp_path,
            c.url,
            {"rule_files": [str(rule_file(tmp_path / "rules.yml", run))], "notify": notify_section(receiver)},
            port=alerting_port,
        )
        write(c, run, {"a": 1, "b": 2, "c": 3})
        svc.start()
        try:
            expected = {("Fast", "a", "firing"), ("Fast", "b", "firing"), ("Slow", "c", "pending")}
            before = by_series(
                svc.wait_alerts(
                    lambda al: {(a["labels"]["alertname"], a["labels"]["series"], a["state"]) for a in al} == expected
                )
            )
            receiver.wait_for(lambda: sorted(sent(receiver)) == [("firing", "Fast", "a"), ("firing", "Fast", "b")])
            payload = receiver.delivered()[0].json()
            assert payload["version"] == "4" and payload["status"] == "firing"
            [alert] = payload["alerts"]
            value = {"a": 1, "b": 2}[alert["labels"]["series"]]
            assert alert["annotations"]["summary"] == f"series {alert['labels']['series']} is at {value}"
            assert alert["endsAt"] == "0001-01-01T00:00:00Z"

            # The collector answers Grafana's /api/v1/alerts from the service, unchanged.
            proxied = httpx.get(f"{c.url}/api/v1/alerts", timeout=5).json()
            assert by_series(proxied["data"]["alerts"]).keys() == before.keys()

            svc.kill9()
            write(c, run, {"b": 0})  # b stops matching while the service is down
            time.sleep(1.5)
            svc.start()
            after = by_series(svc.wait_alerts(lambda al: ("Fast", "b") not in by_series(al)))
            # Firing stays firing with its activeAt; pending keeps its timer (activeAt unchanged).
            assert after[("Fast", "a")]["state"] == "firing"
            assert after[("Fast", "a")]["activeAt"] == before[("Fast", "a")]["activeAt"]
            assert after[("Slow", "c")]["state"] == "pending"
            assert after[("Slow", "c")]["activeAt"] == before[("Slow", "c")]["activeAt"]
            # The resolution that happened while it was down is delivered, and nothing is sent twice.
            receiver.wait_for(lambda: ("resolved", "Fast", "b") in sent(receiver))
            time.sleep(2.5)  # a few more evaluation rounds and group intervals: still nothing new
            assert sent(receiver).count(("firing", "Fast", "a")) == 1
            assert sent(receiver).count(("firing", "Fast", "b")) == 1
            assert sent(receiver).count(("resolved", "Fast", "b")) == 1
        finally:
            svc.stop()


def test_reload_keeps_state_and_a_bad_file_keeps_the_old_rules(tmp_path: Path, collector: CollectorProcess) -> None:
    run = uuid.uuid4().hex[:8]
    rules = rule_file(tmp_path / "rules.yml", run)
    with RecordingReceiver() as receiver:
        svc = make_alerting(tmp_path, collector.url, {"rule_files": [str(rules)], "notify": notify_section(receiver)})
        write(collector, run, {"a": 1})
        svc.start()
        try:
            [fired] = svc.wait_alerts(lambda al: any(a["state"] == "firing" for a in al))
            extra = f"""      - alert: Added
        expr: alerttest_value{{run="{run}"}} > 0
"""
            rule_file(rules, run, extra)
            svc.signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and len(svc.rules()[0]["rules"]) != 4:
                time.sleep(0.1)
            assert [r["name"] for r in svc.rules()[0]["rules"]] == ["Fast", "Slow", "alerttest:value:sum", "Added"]
            alerts = svc.wait_alerts(lambda al: any(a["labels"]["alertname"] == "Added" for a in al))
            [kept] = [a for a in alerts if a["labels"]["alertname"] == "Fast"]
            assert kept["activeAt"] == fired["activeAt"]

            rules.write_text("groups: [{name: broken, rules: [{alert: X}]}]\n")
            r = httpx.post(f"{svc.url}/-/reload", timeout=10)
            assert r.status_code == 500
            assert str(rules) in r.text
            assert len(svc.rules()[0]["rules"]) == 4  # the running rules stay
            metrics = httpx.get(f"{svc.url}/metrics", timeout=5).text
            assert "prometheus_config_last_reload_successful 0.0" in metrics
        finally:
            svc.stop()


def test_recording_rules_are_written_back_to_the_collector(tmp_path: Path, collector: CollectorProcess) -> None:
    run = uuid.uuid4().hex[:8]
    svc = make_alerting(tmp_path, collector.url, {"rule_files": [str(rule_file(tmp_path / "rules.yml", run))]})
    write(collector, run, {"a": 1, "b": 2, "c": 4})
    svc.start()
    try:
        deadline, result = time.monotonic() + 20, []
        while time.monotonic() < deadline and not result:
            body = httpx.get(f"{collector.url}/api/v1/query", params={"query": f'alerttest:value:sum{{run="{run}"}}'})
            result = body.json()["data"]["result"]
            time.sleep(0.2)
        assert [float(r["value"][1]) for r in result] == [7.0]
        # Prometheus writes ALERTS for every pending and firing alert; so do we.
        body = httpx.get(f"{collector.url}/api/v1/query", params={"query": 'ALERTS{alertname="Slow"}'}).json()
        assert any(r["metric"].get("alertstate") == "pending" for r in body["data"]["result"])
    finally:
        svc.stop()


def obs_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBS_")}  # no stray settings of this shell
    return subprocess.run(
        [sys.executable, "-m", "obs", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_a_silence_from_obs_silence_mutes_and_its_expiry_unmutes(tmp_path: Path, collector: CollectorProcess) -> None:
    run = uuid.uuid4().hex[:8]
    with RecordingReceiver() as receiver:
        svc = make_alerting(
            tmp_path,
            collector.url,
            {"rule_files": [str(rule_file(tmp_path / "rules.yml", run))], "notify": notify_section(receiver)},
        )
        svc.start()
        try:
            added = obs_cli("silence", "--url", svc.url, "add", 'series="d"', f'run="{run}"', "-d", "1h", "-m", "test")
            assert added.returncode == 0, added.stderr
            silence_id = added.stdout.strip()
            listed = obs_cli("silence", "--url", svc.url, "list")
            assert silence_id in listed.stdout and "active" in listed.stdout

            write(collector, run, {"a": 1, "d": 1})
            receiver.wait_for(lambda: ("firing", "Fast", "a") in sent(receiver))
            time.sleep(2.0)  # rounds in which d fires but is muted
            assert ("firing", "Fast", "d") not in sent(receiver)

            expired = obs_cli("silence", "--url", svc.url, "expire", silence_id)
            assert expired.returncode == 0, expired.stderr
            receiver.wait_for(lambda: ("firing", "Fast", "d") in sent(receiver))
            bad = obs_cli("silence", "--url", svc.url, "add", "series=~(", "-m", "x")
            assert bad.returncode == 1 and "series" in bad.stderr
        finally:
            svc.stop()
