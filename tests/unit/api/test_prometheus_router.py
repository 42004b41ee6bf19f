"""The /api/v1 router over a real store and the real PromQL engine, called through httpx's ASGI transport.

chDB allows one data path per process: this suite opens the same path as the store tests (per pid)
and isolates itself with a database of its own.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from collector.api.prom_queries import QueryLimits, QueryRunner
from collector.api.prometheus import PrometheusAPI, prometheus_router
from collector.config import ScrapeJob
from collector.model import MetricBatch, MetricMetadata
from collector.query.promql.engine import Engine as PromQLEngine
from collector.receivers.scraper import Target, TargetStatus
from collector.store.chdb_engine import ChdbEngine
from collector.store.promql_reads import MetricReads
from collector.store.schema import migrate
from collector.store.writer import StoreWriter

_CHDB_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / f"obs-store-tests-{os.getpid()}"
T0 = 1_700_000_000_000  # ms


class ApiClient:
    """A synchronous face on an httpx AsyncClient that calls the app in this process, on one event loop."""

    def __init__(self, app: FastAPI) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")

    def get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        return self._loop.run_until_complete(self._client.get(path, params=params))

    def post(self, path: str, data: dict[str, Any]) -> httpx.Response:
        return self._loop.run_until_complete(self._client.post(path, data=data))

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


@pytest.fixture(scope="module")
def client() -> Iterator[ApiClient]:
    engine = ChdbEngine.shared(_CHDB_DIR)
    db = f"t_{uuid.uuid4().hex[:12]}"
    migrate(engine, db)
    batch = MetricBatch()
    for i in range(0, 11):  # 10 minutes at 60 s
        for code, rate in (("200", 10.0), ("500", 1.0)):
            fp = batch.add_sample(
                {"__name__": "http_requests_total", "job": "api", "code": code}, T0 + i * 60_000, rate * 60 * i
            )
        batch.add_sample({"__name__": "up", "job": "api"}, T0 + i * 60_000, 1.0)
    batch.add_exemplar(fp, T0 + 60_000, 5.0, "ab" * 16, "cd" * 8, {"user": "u1"})
    batch.metadata["http_requests"] = MetricMetadata("http_requests", "counter", "Requests served.", "")
    StoreWriter(engine, db).write_metrics([batch])
    reads = MetricReads(engine, db)
    runner = QueryRunner(PromQLEngine(reads), QueryLimits(timeout_s=30, max_concurrency=2))
    job = ScrapeJob(job_name="demo", scrape_interval=15, scrape_timeout=10)
    target = Target(
        "http://127.0.0.1:9/metrics",
        (("instance", "127.0.0.1:9"), ("job", "demo")),
        (("__address__", "127.0.0.1:9"), ("__metrics_path__", "/metrics"), ("__scheme__", "http"), ("job", "demo")),
    )
    statuses = [TargetStatus(job, target, "down", "connection refused", T0 / 1000, 0.0015)]
    app = FastAPI()
    app.include_router(prometheus_router(PrometheusAPI(reads, runner, lambda: statuses)))
    # The same store behind a second prefix, with a tiny sample limit.
    small = QueryRunner(PromQLEngine(reads, max_samples=5), QueryLimits(timeout_s=30, max_concurrency=1))
    limited = prometheus_router(PrometheusAPI(reads, small, lambda: []))
    app.include_router(limited, prefix="/limited")
    client = ApiClient(app)
    yield client
    client.close()
    runner.close()
    small.close()
    engine.command(f"DROP DATABASE IF EXISTS {db}")


def _ok(r: Any) -> Any:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success"
    return body["data"]


def test_grafana_health_check_post_form(client: ApiClient) -> None:
    r = client.post("/api/v1/query", data={"query": "1+1", "time": str(T0 / 1000)})
    assert _ok(r) == {"resultType": "scalar", "result": [T0 // 1000, "2"]}
    info = _ok(client.get("/api/v1/status/buildinfo"))
    assert set(info) == {"version", "revision", "branch", "buildUser", "buildDate", "goVersion"}


def test_instant_and_range_queries(client: ApiClient) -> None:
    at = (T0 + 600_000) / 1000
    data = _ok(
        client.get("/api/v1/query", params={"query": "sum by (code) (rate(http_requests_total[5m]))", "time": at})
    )
    assert data["resultType"] == "vector"
    assert sorted((s["metric"]["code"], s["value"]) for s in data["result"]) == [
        ("200", [at, "10"]),
        ("500", [at, "1"]),
    ]
    data = _ok(
        client.post(
            "/api/v1/query_range",
            data={"query": "up", "start": str(T0 / 1000), "end": str(at), "step": "5m"},
        )
    )
    assert data == {
        "resultType": "matrix",
        "result": [
            {"metric": {"__name__": "up", "job": "api"}, "values": [[T0 // 1000 + i * 300, "1"] for i in range(3)]}
        ],
    }


@pytest.mark.parametrize(
    ("path", "params", "status", "error_type", "message"),
    [
        ("/api/v1/query", {"query": "sum("}, 400, "bad_data", 'invalid parameter "query": parse error'),
        ("/api/v1/query", {}, 400, "bad_data", 'invalid parameter "query": parse error: no expression found'),
        ("/api/v1/query", {"query": "up", "time": "yesterday"}, 400, "bad_data", 'invalid parameter "time"'),
        (
            "/api/v1/query_range",
            {"query": "up", "start": "10", "end": "5", "step": "1"},
            400,
            "bad_data",
            "end timestamp",
        ),
        (
            "/api/v1/query_range",
            {"query": "up", "start": "0", "end": "5", "step": "0"},
            400,
            "bad_data",
            "zero or negative",
        ),
        (
            "/api/v1/query_range",
            {"query": "up", "start": "0", "end": "11001", "step": "1"},
            400,
            "bad_data",
            "exceeded maximum resolution of 11,000 points per timeseries",
        ),
        ("/api/v1/query_range", {"query": "up", "start": "0", "end": "5", "step": "x"}, 400, "bad_data", '"step"'),
        ("/api/v1/series", {}, 400, "bad_data", "no match[] parameter provided"),
        ("/api/v1/series", {"match[]": "rate(up[5m])"}, 400, "bad_data", 'invalid parameter "match[]"'),
        ("/api/v1/label/2bad/values", {}, 400, "bad_data", 'invalid label name: "2bad"'),
        ("/api/v1/query", {"query": "up", "timeout": "soon"}, 400, "bad_data", 'invalid parameter "timeout"'),
    ],
)
def test_errors(
    client: ApiClient, path: str, params: dict[str, str], status: int, error_type: str, message: str
) -> None:
    r = client.get(path, params=params)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == "error" and body["errorType"] == error_type
    assert message in body["error"]


def test_lookups(client: ApiClient) -> None:
    rng = {"start": str(T0 / 1000), "end": str(T0 / 1000 + 600)}
    assert _ok(client.get("/api/v1/labels", params=rng)) == ["__name__", "code", "job"]
    assert _ok(client.post("/api/v1/labels", data={**rng, "match[]": "up"})) == ["__name__", "job"]
    assert _ok(client.get("/api/v1/labels", params={"start": "0", "end": "1"})) == []
    assert _ok(client.get("/api/v1/label/__name__/values", params=rng)) == ["http_requests_total", "up"]
    assert _ok(client.get("/api/v1/label/code/values", params={"match[]": 'http_requests_total{code=~"5.."}'})) == [
        "500"
    ]
    r = client.get("/api/v1/label/code/values", params={"limit": "1"})
    assert r.json() == {"status": "success", "data": ["200"], "warnings": ["results truncated due to limit"]}
    assert _ok(client.post("/api/v1/series", data={"match[]": ["up", 'http_requests_total{code="500"}']})) == [
        {"__name__": "http_requests_total", "code": "500", "job": "api"},
        {"__name__": "up", "job": "api"},
    ]
    assert _ok(client.get("/api/v1/metadata")) == {
        "http_requests": [{"type": "counter", "help": "Requests served.", "unit": ""}]
    }
    assert _ok(client.get("/api/v1/metadata", params={"metric": "nope"})) == {}


def test_exemplars(client: ApiClient) -> None:
    assert _ok(client.get("/api/v1/query_exemplars", params={"query": "test"})) == []  # Grafana's probe
    data = _ok(client.get("/api/v1/query_exemplars", params={"query": "rate(http_requests_total[5m])"}))
    assert data == [
        {
            "seriesLabels": {"__name__": "http_requests_total", "code": "500", "job": "api"},
            "exemplars": [
                {
                    "labels": {"user": "u1", "trace_id": "ab" * 16, "span_id": "cd" * 8},
                    "value": "5",
                    "timestamp": T0 // 1000 + 60,
                }
            ],
        }
    ]


def test_targets_rules_alerts(client: ApiClient) -> None:
    data = _ok(client.get("/api/v1/targets"))
    assert data["droppedTargets"] == []
    [t] = data["activeTargets"]
    assert t["labels"] == {"instance": "127.0.0.1:9", "job": "demo"}
    assert t["discoveredLabels"]["__address__"] == "127.0.0.1:9"
    assert t["discoveredLabels"]["__scrape_interval__"] == "15s"
    assert (t["scrapePool"], t["scrapeUrl"], t["health"], t["lastError"]) == (
        "demo",
        "http://127.0.0.1:9/metrics",
        "down",
        "connection refused",
    )
    assert t["lastScrape"] == "2023-11-14T22:13:20Z" and t["lastScrapeDuration"] == 0.0015
    assert (t["scrapeInterval"], t["scrapeTimeout"]) == ("15s", "10s")
    assert _ok(client.get("/api/v1/rules")) == {"groups": []}
    assert _ok(client.get("/api/v1/alerts")) == {"alerts": []}


def test_too_many_samples_is_an_execution_error(client: ApiClient) -> None:
    r = client.get("/limited/api/v1/query", params={"query": "http_requests_total[10m]", "time": (T0 + 600_000) / 1000})
    assert r.status_code == 422
    body = r.json()
    assert (body["status"], body["errorType"]) == ("error", "execution")
    assert "too many samples" in body["error"]
