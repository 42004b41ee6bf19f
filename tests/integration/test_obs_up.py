"""`obs up` as a real process tree: health-ordered start, status, restart after SIGKILL, faults, `obs down`.

The stack runs on free ports with a temporary data dir, with every demo service that exists in
demo-services/ (a package without __main__.py is disabled in the config, so the test runs with what is built).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml

from tests.conftest import ROOT, free_port

SERVICES = {"orders": 1, "inventory": 2, "payments": 2}


def _built(module: str) -> bool:
    return (ROOT / "demo-services" / module / "__main__.py").exists()


def _wait(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


@dataclass
class Stack:
    """A running `obs up` and how to talk to it."""

    tmp: Path
    config: Path
    env: dict[str, str]
    proc: subprocess.Popen[str]
    out_path: Path
    ports: dict[str, int]
    seen: dict[int, float] = field(default_factory=dict)  # pid -> create time, of every process of the tree

    def obs(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "obs", "--config", str(self.config), *args],
            env=self.env,
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def status(self) -> dict[str, Any]:
        result = self.obs("status", "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        data: dict[str, Any] = json.loads(result.stdout)
        self.remember()
        return data

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def remember(self) -> None:
        """Note every process of the tree now, so the end can check that none survives."""
        with contextlib.suppress(psutil.NoSuchProcess):
            for p in psutil.Process(self.proc.pid).children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    self.seen[p.pid] = p.create_time()

    def survivors(self) -> list[psutil.Process]:
        alive = []
        for pid, created in self.seen.items():
            with contextlib.suppress(psutil.NoSuchProcess):
                p = psutil.Process(pid)
                if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
        return alive

    def wait_up(self) -> float:
        """Seconds until `obs up` said the stack is up (fails with its output otherwise)."""
        started = time.monotonic()
        assert _wait(lambda: "the stack is up" in self.output() or self.proc.poll() is not None, 120), self.output()
        assert self.proc.poll() is None, self.output()
        self.remember()
        return time.monotonic() - started


StartStack = Callable[[bool], Stack]


@pytest.fixture
def start_stack(tmp_path: Path) -> Iterator[StartStack]:
    """Starts `obs up` on free ports: every built demo service (full) or the collector and discovery only."""
    stacks: list[Stack] = []

    def start(full: bool) -> Stack:
        names = ("http", "otlp_http", "otlp_grpc", "discovery", "gateway", "alerting")
        ports = {name: free_port() for name in names}
        services: dict[str, Any] = {}
        for name, count in SERVICES.items():
            base = free_port()
            while any(_busy(base + i) for i in range(count)):  # consecutive ports for the instances
                base = free_port()
            services[name] = {"enabled": full and _built(name), "instances": count, "base_port": base}
        config = {
            "server": {
                "http_port": ports["http"],
                "otlp_http_port": ports["otlp_http"],
                "otlp_grpc_port": ports["otlp_grpc"],
            },
            "storage": {"data_dir": str(tmp_path / "data")},
            "alerting": {"port": ports["alerting"], "evaluation_interval": "1s"},
            "stack": {
                "discovery": {"enabled": _built("discovery"), "port": ports["discovery"]},
                "gateway": {"enabled": full and _built("gateway"), "port": ports["gateway"]},
                "services": services,
                "scrape_interval": "1s",
                "health_timeout": "60s",
                "stop_grace": "5s",
                "restart": {"backoff_initial": "0.2s", "max_restarts": 3, "window": "60s"},
            },
        }
        path = tmp_path / "obs.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OBS_", "OTEL_"))}
        env["PYTHONPATH"] = str(ROOT)
        out_path = tmp_path / "obs-up.out"
        with out_path.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "obs", "--config", str(path), "up"],
                env=env,
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        stacks.append(Stack(tmp_path, path, env, proc, out_path, ports))
        return stacks[-1]

    try:
        yield start
    finally:
        # Whatever happened: stop the supervisor, then kill what is left of the tree (by process group).
        for s in stacks:
            s.remember()
            if s.proc.poll() is None:
                s.proc.send_signal(signal.SIGTERM)
                try:
                    s.proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    s.proc.kill()
                    s.proc.wait(timeout=10)
            for p in s.survivors():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGKILL)


def _busy(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _series(stack: Stack, metric: str, **labels: str) -> list[dict[str, Any]]:
    params: list[tuple[str, str | int | float | bool | None]] = [("metric", metric)]
    params += [("label", f"{k}:{v}") for k, v in labels.items()]
    url = f"http://127.0.0.1:{stack.ports['http']}/api/obs/metrics/series"
    series: list[dict[str, Any]] = httpx.get(url, params=params, timeout=10).json()["series"]
    return series


def _healthy_at(out: str, name: str) -> int:
    match = re.search(rf"^  {re.escape(name)} +healthy in", out, re.MULTILINE)
    assert match, out
    return match.start()


def test_up_status_restart_fault_down(start_stack: StartStack) -> None:
    began = time.monotonic()
    stack = start_stack(True)
    up_seconds = stack.wait_up()
    out = stack.output()
    status = stack.status()
    assert status["supervisor_alive"] and status["phase"] == "running"
    procs = {p["name"]: p for p in status["processes"]}
    assert all(p["health"] == "ok" and p["state"] == "healthy" for p in procs.values()), procs
    assert procs["collector"]["port"] == stack.ports["http"]
    businesses = [p for p in procs.values() if p["service"] in SERVICES]

    # Health-ordered start: each stage starts once the one before is healthy.
    order = [_healthy_at(out, "collector"), out.index("starting alerting"), _healthy_at(out, "alerting")]
    order += [out.index("starting discovery"), _healthy_at(out, "discovery")]
    if businesses:
        order.append(out.index("starting services"))
        order.append(max(_healthy_at(out, p["name"]) for p in businesses))
    if "gateway" in procs:
        order += [out.index("starting gateway"), _healthy_at(out, "gateway")]
    assert order == sorted(order), out
    assert f"http://127.0.0.1:{stack.ports['http']}/api/v1/" in out
    text = stack.obs("status")
    assert text.returncode == 0, text.stdout + text.stderr
    assert re.search(
        rf"^collector +{procs['collector']['pid']} +{stack.ports['http']} +ok +healthy +0 ", text.stdout, re.M
    )

    # The collector scrapes what discovery knows, through the generated http_sd job.
    if businesses:
        first = businesses[0]["instance_id"]
        assert _wait(lambda: bool(_series(stack, "up", job="demo", instance_id=first)), 30), stack.output()

    # Alerting evaluates the demo rules through this collector, and the collector answers Grafana's
    # /api/v1/rules from it; `obs silence` reaches it without being told where it is.
    collector_api = f"http://127.0.0.1:{stack.ports['http']}/api/v1"

    def rules_evaluated() -> bool:
        groups = httpx.get(f"{collector_api}/rules", timeout=5).json()["data"]["groups"]
        names = {g["name"]: g for g in groups}
        return {"demo-services", "demo-platform"} <= names.keys() and all(
            r["health"] == "ok" for g in groups for r in g["rules"]
        )

    assert _wait(rules_evaluated, 30), httpx.get(f"{collector_api}/rules", timeout=5).text
    added = stack.obs("silence", "add", 'alertname="ServiceDown"', "-d", "10m", "-m", "obs up test")
    assert added.returncode == 0, added.stdout + added.stderr
    assert added.stdout.strip() in stack.obs("silence", "list").stdout

    # Traffic flows: orders through the gateway; round-robin spreads each saga's steps over both
    # inventory instances, which must share one database.
    if "gateway" in procs and businesses:
        gateway = f"http://127.0.0.1:{procs['gateway']['port']}"
        for i in range(4):
            order = {"customer": f"smoke-{i}", "items": [{"sku": "KB-001", "qty": 1}]}
            r = httpx.post(f"{gateway}/api/orders", json=order, headers={"X-API-Key": "demo-key"}, timeout=30)
            assert r.status_code == 201, r.text

    # A crash: SIGKILL one child; the supervisor logs it with the signal and restarts it (restarts=1).
    victim = businesses[0] if businesses else procs["discovery"]
    os.kill(victim["pid"], signal.SIGKILL)

    def restarted() -> bool:
        p = next(p for p in stack.status()["processes"] if p["name"] == victim["name"])
        return p["restarts"] == 1 and p["health"] == "ok" and p["pid"] not in (None, victim["pid"])

    assert _wait(restarted, 60), stack.output()
    assert f"{victim['name']} killed by SIGKILL; restarting in 0.2s (crash 1 in 60s)" in stack.output()

    if businesses:
        # obs fault reaches one instance (and only it), then --clear resets it.
        target = businesses[-1]
        one = ("--instance", target["instance_id"])
        result = stack.obs("fault", target["service"], *one, "latency=200", "error_rate=0.5")
        assert result.returncode == 0, result.stdout + result.stderr
        faults = httpx.get(f"http://127.0.0.1:{target['port']}/admin/faults", timeout=5).json()
        assert faults["latency_ms"] == 200 and faults["error_rate"] == 0.5
        for other in businesses[:-1]:
            assert httpx.get(f"http://127.0.0.1:{other['port']}/admin/faults", timeout=5).json()["latency_ms"] == 0
        result = stack.obs("fault", target["service"], "--clear")
        assert result.returncode == 0, result.stdout + result.stderr
        assert httpx.get(f"http://127.0.0.1:{target['port']}/admin/faults", timeout=5).json()["latency_ms"] == 0
        bad = stack.obs("fault", "nosuch", "latency=1")
        assert bad.returncode == 2 and "no service 'nosuch'" in bad.stderr

    # obs down: the supervisor stops everything and exits; no process of the tree survives.
    stack.remember()
    result = stack.obs("down", timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    assert stack.proc.wait(timeout=30) == 0, stack.output()
    assert stack.survivors() == []
    assert not (stack.tmp / "data" / "run" / "stack.json").exists()
    assert stack.obs("status").returncode == 3
    print(f"\nobs up: healthy after {up_seconds:.1f}s; this test took {time.monotonic() - began:.1f}s")


def test_down_cleans_up_after_a_killed_supervisor(start_stack: StartStack) -> None:
    stack = start_stack(False)
    stack.wait_up()
    status = stack.status()
    assert [p["name"] for p in status["processes"]] == ["collector", "alerting", "discovery"]
    stack.proc.send_signal(signal.SIGKILL)  # the supervisor dies without stopping its children
    stack.proc.wait(timeout=10)
    assert len(stack.survivors()) == 3
    assert stack.obs("status").returncode == 1  # a stale state file: said so, with the orphans listed
    up_again = stack.obs("up")
    assert up_again.returncode == 1 and "died and left processes" in up_again.stderr
    result = stack.obs("down", timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is gone; stopping what it left" in result.stdout
    assert _wait(lambda: stack.survivors() == [], 10)


def test_up_refuses_a_service_that_is_not_there(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    path = tmp_path / "obs.yaml"
    path.write_text(f"storage: {{data_dir: {tmp_path / 'data'}}}\nstack: {{services_dir: {tmp_path / 'svc'}}}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBS_", "OTEL_"))}
    result = subprocess.run(
        [sys.executable, "-m", "obs", "--config", str(path), "up"],
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "disable with stack.services.orders.enabled: false" in result.stderr
    assert not (tmp_path / "data" / "logs").exists()  # nothing was started
