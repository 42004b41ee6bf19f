"""The demo MSA as real processes for tests: discovery, inventory x2, payments, orders and the gateway.

`demo_stack()` starts each on a free loopback port with one temporary data directory and stops all of
them on the way out, even when a test fails. Given a collector, every service sends it traces, logs
and pushed metrics (the environment `obs up` gives them); without one, telemetry export is off.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ROOT, CollectorProcess, free_port

API_KEY = {"X-API-Key": "demo-key"}
STARTUP_S = 60.0


@dataclass
class Service:
    """One service process (`python -m <name> --port N ...`); `url` is its base URL."""

    name: str
    port: int
    args: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Service:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.name, "--port", str(self.port), *self.args],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )
        return self

    def wait_ready(self, path: str = "/healthz", headers: dict[str, str] | None = None) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + path, headers=headers, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready at {path} after {STARTUP_S}s:\n{self.log()}")

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def wait_stopped(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@dataclass
class Stack:
    tmp: Path
    env: dict[str, str]
    discovery: Service
    gateway: Service
    orders: Service
    payments: Service
    inventory: list[Service]
    extra: list[Service] = field(default_factory=list)

    def service(self, name: str, *args: str) -> Service:
        """A process of this stack (not started); stopped with the stack."""
        port = free_port()
        svc = Service(name, port, list(args), self.env, self.tmp / f"{name}-{port}.log")
        self.extra.append(svc)
        return svc

    def stock(self, sku: str, instance: int = 0) -> int:
        response = httpx.get(f"{self.inventory[instance].url}/products/{sku}", timeout=5)
        assert response.status_code == 200, response.text
        return int(response.json()["stock"])

    def place(self, customer: str, items: list[dict[str, Any]], **headers: str) -> httpx.Response:
        return httpx.post(
            f"{self.gateway.url}/api/orders",
            json={"customer": customer, "items": items},
            headers={**API_KEY, **headers},
            timeout=30,
        )

    def charges(self, order_id: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.payments.url}/charges", params={"order_id": order_id}, timeout=5)
        assert response.status_code == 200, response.text
        charges: list[dict[str, Any]] = response.json()["charges"]
        return charges


def stack_env(registry_url: str, collector: CollectorProcess | None = None) -> dict[str, str]:
    """The environment of every demo process, as `obs up` sets it (demo-services/README.md)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBS_", "OTEL_"))}
    env.update(
        {
            "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'demo-services'}",
            "OBS_REGISTRY_URL": registry_url,
            "OBS_LOG_LEVEL": "INFO",
        }
    )
    if collector is None:
        env.update({"OTEL_SDK_DISABLED": "true", "OBS_METRICS_PUSH_URL": ""})
    else:
        env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": collector.otlp_url, "OBS_METRICS_PUSH_URL": collector.url})
    return env


@contextmanager
def demo_stack(
    tmp: Path, collector: CollectorProcess | None = None, discovery_port: int | None = None
) -> Iterator[Stack]:
    """Discovery, inventory x2, payments, orders and the gateway, each ready (and found by the others)."""
    discovery_port = discovery_port or free_port()
    env = stack_env(f"http://127.0.0.1:{discovery_port}", collector)
    data = ["--data-dir", str(tmp / "data")]
    orders_config = tmp / "orders.yaml"
    orders_config.write_text("connect_timeout_s: 1\nrequest_timeout_s: 1.5\n")

    def svc(name: str, *args: str, port: int | None = None) -> Service:
        port = port or free_port()
        return Service(name, port, list(args), env, tmp / f"{name}-{port}.log")

    s = Stack(
        tmp=tmp,
        env=env,
        discovery=svc("discovery", port=discovery_port),
        gateway=svc("gateway"),
        orders=svc("orders", *data, "--config", str(orders_config)),
        payments=svc("payments", *data),
        inventory=[svc("inventory", *data), svc("inventory", *data)],
    )
    everything = [s.discovery, s.inventory[0], s.inventory[1], s.payments, s.orders, s.gateway]
    try:
        s.discovery.start().wait_ready()
        for service in everything[1:]:
            service.start()
        for service in everything[1:]:
            service.wait_ready()
        s.orders.wait_ready("/readyz")  # both dependencies found through discovery
        s.gateway.wait_ready("/api/products", headers=API_KEY)  # the gateway found each service too
        s.gateway.wait_ready("/api/orders?limit=1", headers=API_KEY)
        yield s
    finally:
        # Discovery last, so the others can deregister on their way out.
        for group in ([*s.extra, *everything[1:]], [s.discovery]):
            for service in group:
                service.terminate()
            for service in group:
                service.wait_stopped()
