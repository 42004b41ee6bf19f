"""The Prometheus HTTP API of a real collector process, on data written by every metrics path.

Remote write (with exemplars and metadata), Influx line protocol and OTLP/HTTP write into one collector
that also scrapes a prometheus_client target; then /api/v1 answers queries, lookups and targets the way
Prometheus does, and Grafana's health check (POST form `1+1`, then buildinfo) succeeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import cramjam
import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Gauge,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from prometheus_client import CollectorRegistry, Counter, start_http_server

from collector.codecs.remote_write import write_request_class
from tests.conftest import CollectorProcess, free_port, make_collector

# Data timestamps: whole minutes a little in the past, inside every acceptance window.
T0 = (int(time.time()) // 60 - 15) * 60 * 1000
STEP = 15_000
POINTS = 41  # 10 minutes at 15 s


def _ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success", body
    return body["data"]


def _wait(check: Callable[[], bool], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.3)
    return False


def _remote_write(url: str) -> None:
    req = write_request_class()()
    for code, per_s in (("200", 10.0), ("500", 0.5)):
        ts = req.timeseries.add()
        for name, value in sorted({"__name__": "rw_requests_total", "job": "api", "code": code}.items()):
            ts.labels.add(name=name, value=value)
        for i in range(POINTS):
            ts.samples.add(value=per_s * STEP / 1000 * i, timestamp=T0 + i * STEP)
        if code == "500":
            ex = ts.exemplars.add(value=1.0, timestamp=T0 + 5 * STEP)
            ex.labels.add(name="trace_id", value="5b8efff798038103d269b633813fc60c")
    req.metadata.add(type=1, metric_family_name="rw_requests_total", help="Requests.", unit="")  # 1: counter
    body = bytes(cramjam.snappy.compress_raw(req.SerializeToString()))
    headers = {"content-type": "application/x-protobuf", "content-encoding": "snappy"}
    r = httpx.post(f"{url}/api/v1/write", content=body, headers=headers, timeout=10)
    assert r.status_code in (200, 204), r.text


def _line_protocol(url: str) -> None:
    lines = [f"room,site=lab temp={20 + i / 10} {T0 + i * STEP}" for i in range(POINTS)]
    r = httpx.post(
        f"{url}/api/v2/write",
        params={"bucket": "b", "org": "o", "precision": "ms"},
        content="\n".join(lines).encode(),
        timeout=10,
    )
    assert r.status_code == 204, r.text


def _otlp(url: str) -> None:
    res = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="shop"))])
    gauge = Metric(
        name="queue.depth",
        unit="",
        description="Items waiting.",
        gauge=Gauge(
            data_points=[
                NumberDataPoint(time_unix_nano=(T0 + i * STEP) * 1_000_000, as_double=float(i)) for i in range(POINTS)
            ]
        ),
    )
    req = ExportMetricsServiceRequest(
        resource_metrics=[ResourceMetrics(resource=res, scope_metrics=[ScopeMetrics(metrics=[gauge])])]
    )
    r = httpx.post(
        f"{url}/v1/metrics",
        content=req.SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
        timeout=10,
    )
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CollectorProcess, str]]:
    tmp = tmp_path_factory.mktemp("prom-api")
    registry = CollectorRegistry()
    Counter("scraped_jobs", "Jobs done.", registry=registry).inc(3)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    config = tmp / "obs.yaml"
    config.write_text(f"""
scrape:
  jobs:
    - job_name: demo
      scrape_interval: 1s
      scrape_timeout: 1s
      static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
    - job_name: dead
      scrape_interval: 1s
      scrape_timeout: 1s
      static_configs: [{{targets: ["127.0.0.1:{free_port()}"]}}]
""")
    c = make_collector(tmp, OBS_CONFIG=str(config))
    c.start()
    try:
        _remote_write(c.url)
        _line_protocol(c.url)
        _otlp(c.url)
        yield c, f"127.0.0.1:{port}"
    finally:
        c.stop()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_grafana_health_check(stack: tuple[CollectorProcess, str]) -> None:
    c, _ = stack
    r = httpx.post(
        f"{c.url}/api/v1/query",
        data={"query": "1+1", "time": str(time.time())},
        timeout=10,
    )
    data = _ok(r)
    assert data["resultType"] == "scalar" and data["result"][1] == "2"
    info = _ok(httpx.get(f"{c.url}/api/v1/status/buildinfo", timeout=10))
    assert "features" not in info and info["version"]


def test_queries_over_every_write_path(stack: tuple[CollectorProcess, str]) -> None:
    c, _ = stack
    end = (T0 + (POINTS - 1) * STEP) / 1000
    data = _ok(
        httpx.post(
            f"{c.url}/api/v1/query",
            data={"query": "sum by (code) (rate(rw_requests_total[5m]))", "time": str(end)},
            timeout=10,
        )
    )
    rates = sorted((s["metric"]["code"], s["value"][0], float(s["value"][1])) for s in data["result"])
    assert rates == [("200", end, pytest.approx(10.0)), ("500", end, pytest.approx(0.5))]
    data = _ok(httpx.get(f"{c.url}/api/v1/query", params={"query": "room_temp", "time": end}, timeout=10))
    [room] = data["result"]
    assert room["metric"] == {"__name__": "room_temp", "site": "lab", "bucket": "b"}
    assert room["value"] == [end, "24"]
    data = _ok(
        httpx.get(
            f"{c.url}/api/v1/query_range",
            params={"query": "queue_depth", "start": T0 / 1000, "end": end, "step": "150s"},
            timeout=10,
        )
    )
    [queue] = data["result"]
    assert queue["metric"]["job"] == "shop"
    assert queue["values"] == [[T0 // 1000 + k * 150, str(k * 10)] for k in range(5)]


def test_lookups(stack: tuple[CollectorProcess, str]) -> None:
    c, _ = stack
    rng = {"start": str(T0 / 1000), "end": str(time.time())}
    names = _ok(httpx.get(f"{c.url}/api/v1/label/__name__/values", params=rng, timeout=10))
    assert {"rw_requests_total", "room_temp", "queue_depth"} <= set(names)
    labels = _ok(httpx.post(f"{c.url}/api/v1/labels", data={**rng, "match[]": "rw_requests_total"}, timeout=10))
    assert labels == ["__name__", "code", "job"]
    values = _ok(
        httpx.get(f"{c.url}/api/v1/label/code/values", params={**rng, "match[]": "rw_requests_total"}, timeout=10)
    )
    assert values == ["200", "500"]
    series = _ok(httpx.post(f"{c.url}/api/v1/series", data={"match[]": ['rw_requests_total{code="500"}']}, timeout=10))
    assert series == [{"__name__": "rw_requests_total", "code": "500", "job": "api"}]
    meta = _ok(httpx.get(f"{c.url}/api/v1/metadata", timeout=10))
    assert meta["rw_requests_total"] == [{"type": "counter", "help": "Requests.", "unit": ""}]
    assert meta["queue_depth"][0]["type"] == "gauge"
    exemplars = _ok(
        httpx.get(
            f"{c.url}/api/v1/query_exemplars",
            params={"query": "rate(rw_requests_total[5m])", "start": T0 / 1000, "end": time.time()},
            timeout=10,
        )
    )
    assert exemplars == [
        {
            "seriesLabels": {"__name__": "rw_requests_total", "code": "500", "job": "api"},
            "exemplars": [
                {
                    "labels": {"trace_id": "5b8efff798038103d269b633813fc60c"},
                    "value": "1",
                    "timestamp": (T0 + 5 * STEP) // 1000,
                }
            ],
        }
    ]


def test_targets(stack: tuple[CollectorProcess, str]) -> None:
    c, target = stack

    def health() -> dict[str, str]:
        data = _ok(httpx.get(f"{c.url}/api/v1/targets", timeout=10))
        return {t["scrapePool"]: t["health"] for t in data["activeTargets"]}

    assert _wait(lambda: health() == {"demo": "up", "dead": "down"})
    data = _ok(httpx.get(f"{c.url}/api/v1/targets", timeout=10))
    demo = next(t for t in data["activeTargets"] if t["scrapePool"] == "demo")
    dead = next(t for t in data["activeTargets"] if t["scrapePool"] == "dead")
    assert demo["labels"] == {"job": "demo", "instance": target}
    assert demo["scrapeUrl"] == f"http://{target}/metrics" and demo["lastError"] == ""
    assert demo["discoveredLabels"]["__address__"] == target
    assert dead["lastError"] and dead["lastScrape"] != "0001-01-01T00:00:00Z"
    assert data["droppedTargets"] == []
    # The scraped series answer PromQL too.
    data = _ok(httpx.get(f"{c.url}/api/v1/query", params={"query": 'scraped_jobs_total{job="demo"}'}, timeout=10))
    assert [s["value"][1] for s in data["result"]] == ["3"]
    data = _ok(httpx.get(f"{c.url}/api/v1/query", params={"query": "up"}, timeout=10))
    assert sorted((s["metric"]["job"], s["value"][1]) for s in data["result"]) == [("dead", "0"), ("demo", "1")]


def test_rules_alerts_and_errors(stack: tuple[CollectorProcess, str]) -> None:
    c, _ = stack
    assert _ok(httpx.get(f"{c.url}/api/v1/rules", timeout=10)) == {"groups": []}
    assert _ok(httpx.get(f"{c.url}/api/v1/alerts", timeout=10)) == {"alerts": []}
    r = httpx.get(f"{c.url}/api/v1/query", params={"query": "sum("}, timeout=10)
    assert r.status_code == 400 and r.json()["errorType"] == "bad_data"
    r = httpx.get(
        f"{c.url}/api/v1/query_range", params={"query": "up", "start": "0", "end": "100000", "step": "1"}, timeout=10
    )
    assert r.status_code == 400 and "11,000 points" in r.json()["error"]
