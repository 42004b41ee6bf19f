"""Discovery as a real process: contract over HTTP, eviction and self-preservation in real time, the client
re-registering across a registry restart, and a real Prometheus discovering and scraping through /sd/prometheus."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agents.discovery import DiscoveryClient
from tests.conftest import ROOT, free_port
from tests.peers import prometheus


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBS_", "OTEL_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "demo-services")])
    env["OTEL_SDK_DISABLED"] = "true"  # no collector in these tests: keep the agent from exporting
    return env


class DiscoveryProcess:
    """`python -m discovery` on a fixed port; can be killed and started again on the same port."""

    def __init__(self, tmp_path: Path, *flags: str) -> None:
        self.port = free_port()
        self.argv = [sys.executable, "-m", "discovery", "--port", str(self.port), *flags]
        self.log_path = tmp_path / f"discovery-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.argv, env=_env(), cwd=ROOT, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"discovery exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"discovery not ready after {timeout}s:\n{self.log()}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


@contextmanager
def _discovery(tmp_path: Path, *flags: str) -> Iterator[DiscoveryProcess]:
    d = DiscoveryProcess(tmp_path, *flags)
    d.start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture
def discovery(tmp_path: Path) -> Iterator[DiscoveryProcess]:
    with _discovery(tmp_path, "--eviction-interval", "200ms") as d:
        yield d


def wait_for(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def ids(url: str, service: str) -> list[str]:
    return [i["instance_id"] for i in httpx.get(f"{url}/v1/services/{service}", timeout=5).json()["instances"]]


def gauge(url: str, name: str) -> float:
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=5).text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError(f"{name} not in /metrics")


def register(url: str, service: str, instance_id: str, port: int, **kw: Any) -> httpx.Response:
    body = {"service": service, "instance_id": instance_id, "host": "127.0.0.1", "port": port, **kw}
    return httpx.post(f"{url}/v1/instances", json=body, timeout=5)


def test_contract_over_http(discovery: DiscoveryProcess) -> None:
    url = discovery.url
    assert httpx.get(f"{url}/sd/prometheus").json() == []
    metadata = {"version": "0.1.0", "metrics_path": "/metrics"}
    r = register(url, "orders", "orders-1", 8001, metadata=metadata)
    assert r.status_code == 201 and r.json()["status"] == "UP"
    assert register(url, "orders", "orders-1", 8001, metadata=metadata).status_code == 200
    assert httpx.put(f"{url}/v1/instances/orders/orders-1/heartbeat").status_code == 200
    assert httpx.put(f"{url}/v1/instances/orders/ghost/heartbeat").status_code == 404
    listing = httpx.get(f"{url}/v1/services")
    etag = listing.headers["etag"]
    assert etag == f'"{listing.json()["version"]}"'
    assert httpx.get(f"{url}/v1/services", headers={"If-None-Match": etag}).status_code == 304
    assert httpx.put(f"{url}/v1/instances/orders/orders-1/status", params={"value": "BROKEN"}).status_code == 400
    assert httpx.put(f"{url}/v1/instances/orders/orders-1/status", params={"value": "DOWN"}).status_code == 200
    assert httpx.get(f"{url}/v1/services", headers={"If-None-Match": etag}).status_code == 200
    assert httpx.get(f"{url}/sd/prometheus").json() == [], "only UP instances are scrape targets"
    httpx.put(f"{url}/v1/instances/orders/orders-1/status", params={"value": "UP"})
    sd = httpx.get(f"{url}/sd/prometheus")
    assert sd.headers["content-type"].split(";")[0] == "application/json"
    [group] = sd.json()
    assert group["targets"] == ["127.0.0.1:8001"]
    assert {k: group["labels"][k] for k in ("service", "instance_id", "version", "__metrics_path__")} == {
        "service": "orders",
        "instance_id": "orders-1",
        "version": "0.1.0",
        "__metrics_path__": "/metrics",
    }
    assert httpx.delete(f"{url}/v1/instances/orders/orders-1").status_code == 204
    assert httpx.delete(f"{url}/v1/instances/orders/orders-1").status_code == 404
    assert gauge(url, "discovery_registrations_total") == 2
    assert gauge(url, "discovery_self_preservation_active") == 0


def test_eviction_after_missed_heartbeats(discovery: DiscoveryProcess) -> None:
    url = discovery.url
    # The silent one promised a heartbeat every 10 s, so within these seconds it owes no renewal and
    # self-preservation (tested below) does not come into play.
    register(url, "orders", "silent", 8001, lease_seconds=1, heartbeat_interval=10)
    alive = DiscoveryClient(url, "orders", "alive", "127.0.0.1", 8002, {}, heartbeat_interval=0.3, lease_seconds=2)
    alive.start()
    try:
        assert wait_for(lambda: ids(url, "orders") == ["alive", "silent"])
        assert wait_for(lambda: ids(url, "orders") == ["alive"], 5)
        time.sleep(2.5)  # longer than alive's lease: its heartbeats keep it
        assert ids(url, "orders") == ["alive"]
    finally:
        alive.stop()
    assert gauge(url, "discovery_evictions_total") == 1
    assert "evicted orders/silent" in discovery.log()


def test_self_preservation_in_real_time(tmp_path: Path) -> None:
    with _discovery(tmp_path, "--eviction-interval", "200ms", "--renewal-window", "2s") as d:
        url = d.url
        names = [f"orders-{i}" for i in range(5)]
        for name in names:
            assert register(url, "orders", name, 8001, lease_seconds=2, heartbeat_interval=1).status_code == 201

        def beat(seconds: float) -> None:
            # Several times the promised rate (1/s): well above the expected renewals even on a busy machine.
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                for name in names:
                    assert httpx.put(f"{url}/v1/instances/orders/{name}/heartbeat", timeout=5).status_code == 200
                time.sleep(0.1)

        beat(2.5)
        assert gauge(url, "discovery_self_preservation_active") == 0
        # Every instance goes silent past its lease: a partition, not five crashes.
        assert wait_for(lambda: gauge(url, "discovery_self_preservation_active") == 1, 5)
        time.sleep(2.5)  # now every lease has expired
        assert ids(url, "orders") == names, "self-preservation keeps expired instances"
        assert "self-preservation entered" in d.log()
        beat(2.5)
        assert wait_for(lambda: gauge(url, "discovery_self_preservation_active") == 0, 5)
        assert "self-preservation left" in d.log()
        assert ids(url, "orders") == names


def test_client_registers_again_after_registry_restart(discovery: DiscoveryProcess) -> None:
    url = discovery.url
    c = DiscoveryClient(url, "orders", "orders-1", "127.0.0.1", 8001, {"version": "1"}, heartbeat_interval=0.2)
    lookups = DiscoveryClient(url, "gateway", "gateway-1", "127.0.0.1", 0, {}, refresh_interval=0.2)
    c.start()
    lookups.start()
    try:
        assert wait_for(lambda: ids(url, "orders") == ["orders-1"])
        assert wait_for(lambda: [i.instance_id for i in lookups.instances("orders")] == ["orders-1"])
        version_before = httpx.get(f"{url}/v1/services").json()["version"]
        discovery.kill9()
        time.sleep(0.5)  # heartbeats fail meanwhile; the lookup cache keeps the last list
        assert [i.instance_id for i in lookups.instances("orders")] == ["orders-1"]
        discovery.start()
        assert wait_for(lambda: ids(url, "orders") == ["orders-1"])
        assert httpx.get(f"{url}/v1/services").json()["version"] > version_before, "no ETag is reused"
        assert wait_for(lambda: [i.instance_id for i in lookups.instances("orders")] == ["orders-1"])
        assert "registered orders/orders-1" in discovery.log()
    finally:
        c.stop()
        lookups.stop()
    assert ids(url, "orders") == []


_TARGET = textwrap.dedent(
    """
    import signal, sys, threading
    from prometheus_client import CollectorRegistry, Counter, start_http_server
    from agents.discovery import DiscoveryClient

    port, registry_url = int(sys.argv[1]), sys.argv[2]
    metrics = CollectorRegistry()
    Counter("tiny_requests", "Requests.", registry=metrics).inc(3)
    server, thread = start_http_server(port, addr="127.0.0.1", registry=metrics)
    client = DiscoveryClient(registry_url, "tiny", f"tiny-{port}", "127.0.0.1", port,
                             {"version": "9.9.9", "metrics_path": "/metrics"}, heartbeat_interval=0.5)
    client.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    client.stop()
    server.shutdown()
    """
)


def test_prometheus_discovers_and_scrapes_registered_targets(discovery: DiscoveryProcess, tmp_path: Path) -> None:
    url = discovery.url
    register(url, "discovery", "discovery-1", discovery.port, metadata={"version": "0.1.0", "metrics_path": "/metrics"})
    script = tmp_path / "tiny_target.py"
    script.write_text(_TARGET)
    target_port = free_port()
    with (tmp_path / "tiny.log").open("wb") as log:
        tiny = subprocess.Popen(
            [sys.executable, str(script), str(target_port), url], env=_env(), cwd=ROOT, stdout=log, stderr=log
        )
    config = textwrap.dedent(
        f"""
        global: {{scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}}
        scrape_configs:
          - job_name: demo
            http_sd_configs: [{{url: "{url}/sd/prometheus", refresh_interval: 1s}}]
        """
    )
    try:
        assert wait_for(lambda: ids(url, "tiny") == [f"tiny-{target_port}"]), (tmp_path / "tiny.log").read_text()
        with prometheus(config, tmp_path) as prom:

            def up() -> dict[str, dict[str, Any]]:
                r = httpx.get(f"{prom}/api/v1/query", params={"query": "up"}, timeout=5).json()
                return {s["metric"]["instance_id"]: s for s in r["data"]["result"]}

            assert wait_for(lambda: set(up()) == {"discovery-1", f"tiny-{target_port}"}, 20), up()
            assert wait_for(lambda: all(s["value"][1] == "1" for s in up().values()), 10), up()
            series = up()
            tiny_up = series[f"tiny-{target_port}"]["metric"]
            assert tiny_up == {
                "__name__": "up",
                "job": "demo",
                "instance": f"127.0.0.1:{target_port}",
                "service": "tiny",
                "instance_id": f"tiny-{target_port}",
                "version": "9.9.9",
            }
            assert series["discovery-1"]["metric"]["instance"] == f"127.0.0.1:{discovery.port}"
            scraped = httpx.get(f"{prom}/api/v1/query", params={"query": "tiny_requests_total"}, timeout=5).json()
            assert [s["value"][1] for s in scraped["data"]["result"]] == ["3"]
            # The target leaves (deregisters on SIGTERM): Prometheus drops it on the next SD refresh.
            tiny.terminate()
            tiny.wait(timeout=15)
            assert ids(url, "tiny") == []

            def active_targets() -> list[str]:
                r = httpx.get(f"{prom}/api/v1/targets", params={"state": "active"}, timeout=5).json()
                return [t["labels"]["instance_id"] for t in r["data"]["activeTargets"]]

            assert wait_for(lambda: active_targets() == ["discovery-1"], 15), active_targets()
    finally:
        if tiny.poll() is None:
            tiny.kill()
        tiny.wait(timeout=10)
