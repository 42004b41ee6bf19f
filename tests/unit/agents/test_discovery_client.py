"""DiscoveryClient against a real discovery app served over loopback HTTP in this process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from discovery.config import load_settings
from discovery.server import build_app

from agents.discovery import DiscoveryClient, Instance
from tests.conftest import free_port
from tests.unit.discovery.live_server import live_server


class RequestLog:
    """ASGI middleware recording (method, path, If-None-Match, status) of every request: a real recorder."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.entries: list[tuple[str, str, str | None, int]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        inm = headers.get(b"if-none-match")

        async def recording_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                entry = (scope["method"], scope["path"], inm.decode() if inm else None, message["status"])
                self.entries.append(entry)
            await send(message)

        await self.app(scope, receive, recording_send)


def _registry_app() -> RequestLog:
    return RequestLog(build_app(load_settings(overrides={"eviction_interval": 0.2}), instrument=False))


@pytest.fixture
def registry() -> Iterator[tuple[str, RequestLog]]:
    app = _registry_app()
    with live_server(app) as url:
        yield url, app


def wait_for(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def listed(url: str, service: str) -> list[dict[str, Any]]:
    instances: list[dict[str, Any]] = httpx.get(f"{url}/v1/services/{service}", timeout=5).json()["instances"]
    return instances


def client(
    url: str, service: str = "orders", instance_id: str = "orders-1", port: int = 8001, **kw: Any
) -> DiscoveryClient:
    kw.setdefault("heartbeat_interval", 0.1)
    kw.setdefault("refresh_interval", 0.1)
    return DiscoveryClient(url, service, instance_id, "127.0.0.1", port, {"version": "0.1.0"}, **kw)


def test_registers_heartbeats_and_deregisters(registry: tuple[str, RequestLog]) -> None:
    url, log = registry
    c = client(url, lease_seconds=5)
    c.start()
    try:
        assert wait_for(lambda: len(listed(url, "orders")) == 1)
        [inst] = listed(url, "orders")
        assert inst["metadata"] == {"version": "0.1.0"} and inst["lease_seconds"] == 5
        assert inst["heartbeat_interval"] == 0.1 and inst["status"] == "UP" and inst["port"] == 8001
        first = inst["last_renewal"]
        assert wait_for(lambda: listed(url, "orders")[0]["last_renewal"] > first)
        assert c.registered
    finally:
        started = time.monotonic()
        c.stop()
    assert time.monotonic() - started < 3
    assert listed(url, "orders") == []
    assert not c.registered
    beats = [e for e in log.entries if e[1] == "/v1/instances/orders/orders-1/heartbeat"]
    assert beats and all(e[3] == 200 for e in beats)
    assert ("DELETE", "/v1/instances/orders/orders-1", None, 204) in log.entries
    c.stop()  # twice is fine


def test_registers_again_when_the_registry_forgets_it(registry: tuple[str, RequestLog]) -> None:
    url, log = registry
    c = client(url)
    c.start()
    try:
        assert wait_for(lambda: len(listed(url, "orders")) == 1)
        assert httpx.delete(f"{url}/v1/instances/orders/orders-1").status_code == 204
        assert wait_for(lambda: len(listed(url, "orders")) == 1)
        assert ("PUT", "/v1/instances/orders/orders-1/heartbeat", None, 404) in log.entries
        assert [e[3] for e in log.entries if e[:2] == ("POST", "/v1/instances")] == [201, 201]
    finally:
        c.stop()


def test_lookup_cache_follows_joins_status_and_leaves(registry: tuple[str, RequestLog]) -> None:
    url, log = registry
    lookups = DiscoveryClient(url, "gateway", "gateway-1", "127.0.0.1", 0, {}, refresh_interval=0.1)
    assert not lookups.register_enabled
    lookups.start()
    payments = [client(url, "payments", f"payments-{i}", 8004 + i) for i in range(2)]
    try:
        assert lookups.instances("payments") == []
        payments[0].start()
        assert wait_for(lambda: [i.instance_id for i in lookups.instances("payments")] == ["payments-0"])
        payments[1].start()
        assert wait_for(lambda: len(lookups.instances("payments")) == 2)
        [p0, p1] = lookups.instances("payments")
        assert p1 == Instance("payments-1", "payments", "127.0.0.1", 8005, "UP", {"version": "0.1.0"})
        assert p0.base_url == "http://127.0.0.1:8004"
        assert payments[0].set_status("OUT_OF_SERVICE")
        assert wait_for(lambda: [i.instance_id for i in lookups.instances("payments")] == ["payments-1"])
        payments[1].stop()
        assert wait_for(lambda: lookups.instances("payments") == [])
        assert payments[0].set_status("UP")
        assert wait_for(lambda: [i.instance_id for i in lookups.instances("payments")] == ["payments-0"])
        # Nothing changes now (heartbeats are no change): the next polls are answered 304.
        assert wait_for(lambda: any(e[1] == "/v1/services/payments" and e[3] == 304 for e in log.entries))
    finally:
        for p in payments:
            p.stop()
        lookups.stop()
    refreshes = [e for e in log.entries if e[1] == "/v1/services/payments"]
    assert refreshes[0][2] is None and refreshes[0][3] == 200, "the first lookup fetches"
    not_modified = [e for e in refreshes if e[3] == 304]
    assert not_modified and all(e[2] for e in not_modified), "unchanged polls are answered 304 to If-None-Match"
    assert not any(e[0] == "POST" and "gateway" in str(e) for e in log.entries), "a lookup-only client never registers"


def test_watch_calls_back_on_changes(registry: tuple[str, RequestLog]) -> None:
    url, _ = registry
    lookups = client(url, "gateway", "gateway-1", 0)
    seen: list[list[str]] = []
    changed = threading.Event()

    def on_change(instances: list[Instance]) -> None:
        seen.append([i.instance_id for i in instances])
        changed.set()

    assert lookups.watch("inventory", on_change) == []
    inventory = client(url, "inventory", "inventory-1", 8002)
    inventory.start()
    try:
        assert changed.wait(5)
        assert seen[0] == ["inventory-1"]
    finally:
        inventory.stop()
        lookups.stop()


def test_registry_down_never_blocks_and_recovers() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    c = client(url, heartbeat_interval=0.2)
    lookups = client(url, "gateway", "gateway-1", 0, lookup_timeout=0.5)
    started = time.monotonic()
    c.start()
    lookups.start()
    assert lookups.instances("orders") == []
    assert time.monotonic() - started < 1.5
    assert not c.registered
    try:
        with live_server(_registry_app(), port=port):
            # Registration retries in the background; the empty cached lookup fills in on refresh.
            assert wait_for(lambda: c.registered and len(listed(url, "orders")) == 1, 10)
            assert wait_for(lambda: [i.instance_id for i in lookups.instances("orders")] == ["orders-1"])
    finally:
        started = time.monotonic()
        c.stop()
        lookups.stop()
        assert time.monotonic() - started < 5


def test_construction_checks() -> None:
    with pytest.raises(ValueError, match="port"):
        DiscoveryClient("http://127.0.0.1:1", "orders", "orders-1", "127.0.0.1", 0, {}, register=True)
    with pytest.raises(ValueError, match="heartbeat_interval"):
        DiscoveryClient("http://127.0.0.1:1", "orders", "orders-1", "127.0.0.1", 8001, {}, heartbeat_interval=0)
    c = DiscoveryClient("http://127.0.0.1:1/", "orders", "orders-1", "127.0.0.1", 8001, {})
    assert c.registry_url == "http://127.0.0.1:1" and c.register_enabled
    with pytest.raises(ValueError, match="STARTING"):
        c.set_status("STARTING")


def test_instance_from_json() -> None:
    inst = Instance.from_json(
        {"service": "s", "instance_id": "s-1", "host": "::1", "port": 9, "status": "DOWN", "metadata": {"a": "b"}}
    )
    assert inst == Instance("s-1", "s", "::1", 9, "DOWN", {"a": "b"})
    assert inst.base_url == "http://[::1]:9"
