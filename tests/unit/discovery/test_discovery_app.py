"""The discovery HTTP API served in process over real HTTP: the README contract, ETags, HTTP SD, metrics, logs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from discovery.app import create_app, serve_metrics
from discovery.metrics import RegistryCollector
from discovery.registry import Registry
from fastapi import FastAPI
from loguru import logger
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.discovery.live_server import live_server


class ManualClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _app(registry: Registry, eviction_interval: float = 60.0) -> FastAPI:
    app = create_app(registry, eviction_interval=eviction_interval)
    metrics = CollectorRegistry()
    metrics.register(RegistryCollector(registry))
    serve_metrics(app, metrics)
    return app


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def registry(clock: ManualClock) -> Registry:
    return Registry(clock=clock, initial_version=7)


@contextmanager
def serve(app: FastAPI) -> Iterator[httpx.Client]:
    with live_server(app) as url, httpx.Client(base_url=url, timeout=5) as client:
        yield client


@pytest.fixture
def client(registry: Registry) -> Iterator[httpx.Client]:
    with serve(_app(registry)) as c:
        yield c


def body(service: str = "orders", instance_id: str = "orders-1", **kw: Any) -> dict[str, Any]:
    return {"service": service, "instance_id": instance_id, "host": "127.0.0.1", "port": 8001, **kw}


def test_register_and_reregister(client: httpx.Client, clock: ManualClock) -> None:
    r = client.post("/v1/instances", json=body(metadata={"version": "0.1.0", "metrics_path": "/metrics"}))
    assert r.status_code == 201
    assert r.json() == {
        "service": "orders",
        "instance_id": "orders-1",
        "host": "127.0.0.1",
        "port": 8001,
        "status": "UP",
        "metadata": {"version": "0.1.0", "metrics_path": "/metrics"},
        "lease_seconds": 30,
        "heartbeat_interval": 10.0,
        "registered_at": clock.now,
        "last_renewal": clock.now,
    }
    again = client.post("/v1/instances", json=body(status="DOWN", lease_seconds=9))
    assert again.status_code == 200
    assert again.json()["status"] == "DOWN" and again.json()["lease_seconds"] == 9


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"service": "orders", "instance_id": "o1", "host": "h"}, "body.port"),
        (body(port=0), "body.port"),
        (body(service="a/b"), "body.service"),
        (body(instance_id=""), "body.instance_id"),
        (body(status="SLEEPING"), "body.status"),
        (body(lease_seconds=0), "body.lease_seconds"),
        (body(metadata={"k": 1}), "body.metadata.k"),
    ],
)
def test_invalid_registration_is_400_naming_the_field(
    client: httpx.Client, payload: dict[str, Any], where: str
) -> None:
    r = client.post("/v1/instances", json=payload)
    assert r.status_code == 400
    assert where in r.json()["error"]


def test_heartbeat_status_deregister(client: httpx.Client, clock: ManualClock) -> None:
    assert client.put("/v1/instances/orders/orders-1/heartbeat").status_code == 404
    client.post("/v1/instances", json=body())
    clock.now += 4
    r = client.put("/v1/instances/orders/orders-1/heartbeat")
    assert r.status_code == 200 and r.json()["last_renewal"] == clock.now
    for value in ("OUT_OF_SERVICE", "DOWN", "UP"):
        r = client.put("/v1/instances/orders/orders-1/status", params={"value": value})
        assert r.status_code == 200 and r.json()["status"] == value
    bad = client.put("/v1/instances/orders/orders-1/status", params={"value": "STARTING"})
    assert bad.status_code == 400 and "STARTING" in bad.json()["error"]
    assert client.put("/v1/instances/orders/orders-1/status").status_code == 400
    assert client.put("/v1/instances/orders/nope/status", params={"value": "UP"}).status_code == 404
    assert client.delete("/v1/instances/orders/orders-1").status_code == 204
    assert client.delete("/v1/instances/orders/orders-1").status_code == 404
    assert client.put("/v1/instances/orders/orders-1/heartbeat").status_code == 404


def test_versions_and_etags(client: httpx.Client) -> None:
    first = client.get("/v1/services")
    assert first.status_code == 200 and first.json() == {"version": 7, "services": {}}
    assert first.headers["etag"] == '"7"'
    client.post("/v1/instances", json=body())
    client.post("/v1/instances", json=body("payments", "payments-1", port=8004))
    listing = client.get("/v1/services", headers={"If-None-Match": '"7"'})
    assert listing.status_code == 200 and listing.headers["etag"] == '"9"'
    assert [i["instance_id"] for i in listing.json()["services"]["orders"]] == ["orders-1"]
    assert sorted(listing.json()["services"]) == ["orders", "payments"]
    for match in ('"9"', 'W/"9"', '"3", "9"', "*"):
        r = client.get("/v1/services", headers={"If-None-Match": match})
        assert r.status_code == 304 and r.headers["etag"] == '"9"' and r.content == b""
    # A heartbeat is no change; a status change is.
    client.put("/v1/instances/orders/orders-1/heartbeat")
    assert client.get("/v1/services/orders", headers={"If-None-Match": '"9"'}).status_code == 304
    client.put("/v1/instances/orders/orders-1/status", params={"value": "DOWN"})
    one = client.get("/v1/services/orders", headers={"If-None-Match": '"9"'})
    assert one.status_code == 200 and one.headers["etag"] == '"10"'
    assert one.json()["version"] == 10 and one.json()["service"] == "orders"
    assert [i["status"] for i in one.json()["instances"]] == ["DOWN"], "every status is listed"
    unknown = client.get("/v1/services/nothing")
    assert unknown.status_code == 200 and unknown.json() == {"version": 10, "service": "nothing", "instances": []}


def test_prometheus_http_sd(client: httpx.Client) -> None:
    empty = client.get("/sd/prometheus")
    assert empty.status_code == 200 and empty.json() == []
    assert empty.headers["content-type"].split(";")[0] == "application/json"
    client.post("/v1/instances", json=body(metadata={"version": "0.1.0", "zone": "a-1"}))
    client.post("/v1/instances", json=body("orders", "orders-2", port=8011, metadata={"metrics_path": "/m"}))
    client.post("/v1/instances", json=body("payments", "payments-1", port=8004, status="OUT_OF_SERVICE"))
    groups = client.get("/sd/prometheus").json()
    assert groups == [
        {
            "targets": ["127.0.0.1:8001"],
            "labels": {
                "service": "orders",
                "instance_id": "orders-1",
                "__metrics_path__": "/metrics",
                "version": "0.1.0",
                "__meta_discovery_metadata_version": "0.1.0",
                "__meta_discovery_metadata_zone": "a-1",
            },
        },
        {
            "targets": ["127.0.0.1:8011"],
            "labels": {
                "service": "orders",
                "instance_id": "orders-2",
                "__metrics_path__": "/m",
                "__meta_discovery_metadata_metrics_path": "/m",
            },
        },
    ]


def _samples(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(f"{m.record['message']} {m.record['extra']}"), level="DEBUG")
    try:
        yield lines
    finally:
        logger.remove(sink)


def test_self_preservation_gauge_and_logs(clock: ManualClock, log_lines: list[str]) -> None:
    registry = Registry(clock=clock, renewal_window=60)
    app = _app(registry)
    with serve(app) as client:
        _self_preservation_scenario(app, client, clock, log_lines)


def _self_preservation_scenario(app: FastAPI, client: httpx.Client, clock: ManualClock, log_lines: list[str]) -> None:
    ids = [f"orders-{i}" for i in range(5)]
    for iid in ids:
        assert client.post("/v1/instances", json=body(instance_id=iid, heartbeat_interval=10)).status_code == 201
    evictor = app.state.evictor
    for _ in range(6):
        clock.now += 10
        for iid in ids:
            client.put(f"/v1/instances/orders/{iid}/heartbeat")
        evictor.run_once()
    assert _samples(client)[("discovery_self_preservation_active", ())] == 0
    clock.now += 40  # every instance goes silent past its lease
    report = evictor.run_once()
    assert report.self_preservation and report.evicted == []
    samples = _samples(client)
    assert samples[("discovery_self_preservation_active", ())] == 1
    assert samples[("discovery_instances", (("service", "orders"), ("status", "UP")))] == 5
    assert samples[("discovery_renewals_total", (("service", "orders"),))] == 30
    assert any(line.startswith("self-preservation entered") for line in log_lines), log_lines
    for _ in range(7):
        clock.now += 10
        for iid in ids:
            client.put(f"/v1/instances/orders/{iid}/heartbeat")
        evictor.run_once()
    assert _samples(client)[("discovery_self_preservation_active", ())] == 0
    assert any(line.startswith("self-preservation left") for line in log_lines), log_lines


def test_eviction_loop_runs_in_the_lifespan_and_logs(clock: ManualClock, log_lines: list[str]) -> None:
    registry = Registry(clock=clock, self_preservation_enabled=False)
    with serve(_app(registry, eviction_interval=0.05)) as client:
        client.post("/v1/instances", json=body(lease_seconds=5))
        clock.now += 6
        deadline = time.monotonic() + 5
        while client.get("/v1/services/orders").json()["instances"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/v1/services/orders").json()["instances"] == []
        samples = _samples(client)
        assert samples[("discovery_evictions_total", (("service", "orders"),))] == 1
        assert ("discovery_instances", (("service", "orders"), ("status", "UP"))) not in samples
    evicted = [line for line in log_lines if line.startswith("evicted orders/orders-1")]
    assert evicted and "'instance_service': 'orders'" in evicted[0]


def test_metrics_negotiates_openmetrics_and_gzip(client: httpx.Client) -> None:
    om = client.get("/metrics", headers={"Accept": "application/openmetrics-text;version=1.0.0"})
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.endswith("# EOF\n")
    plain = client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert plain.headers["content-type"].startswith("text/plain") and plain.headers["content-encoding"] == "gzip"
    assert "discovery_self_preservation_active 0.0" in plain.text


def test_healthz(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "version": 7, "self_preservation": False}
