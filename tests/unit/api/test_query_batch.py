"""POST /api/obs/query_batch over a real store and the real engine: every query's answer equals what
/api/v1/query gives the same expression at the same time on the same data, and the whole-request errors.

chDB allows one data path per process: this suite opens the same path as the store tests (per pid)
and isolates itself with a database of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from collector.api.prom_queries import QueryLimits, QueryRunner
from collector.api.prometheus import PrometheusAPI, prometheus_router
from collector.api.query_batch import query_batch_router
from collector.model import MetricBatch
from collector.query.promql.engine import Engine as PromQLEngine
from collector.query.promql.values import stale_nan
from collector.store.chdb_engine import ChdbEngine
from collector.store.promql_reads import MetricReads
from collector.store.schema import migrate
from collector.store.writer import StoreWriter

_CHDB_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / f"obs-store-tests-{os.getpid()}"
T0 = 1_700_000_000_000  # ms: the data's first sample
STEP = 15_000  # ms between samples
END = T0 + 3_600_000  # one hour of samples
LE = ("0.1", "0.25", "0.5", "1", "+Inf")


def _dataset() -> MetricBatch:
    batch = MetricBatch()
    for i in range(241):
        t = T0 + i * STEP
        for job in ("api", "web"):
            for inst in ("a", "b", "c"):
                for code, per in (("200", 9.0), ("500", 0.5)):
                    value = per * i * (1.5 if inst == "b" else 1.0)
                    if job == "web" and inst == "a" and i >= 200:  # a restart: the counter resets
                        value = per * (i - 200)
                    labels = {"__name__": "http_requests_total", "job": job, "instance": inst, "code": code}
                    batch.add_sample(labels, t, value)
                batch.add_sample({"__name__": "up", "job": job, "instance": inst}, t, 0.0 if inst == "c" else 1.0)
        for inst, base in (("a", 40.0), ("b", 55.0), ("gone", 70.0)):
            if inst == "gone" and i > 220:
                continue
            value = stale_nan() if inst == "gone" and i == 220 else base + (i % 20)
            batch.add_sample({"__name__": "node_temp_celsius", "instance": inst}, t, value)
        for svc, scale in (("orders", 1.0), ("payments", 3.0)):
            for k, le in enumerate(LE):
                count = i * scale * (k + 1) * (2 if le == "+Inf" else 1)
                labels = {"__name__": "req_duration_seconds_bucket", "svc": svc, "le": le}
                batch.add_sample(labels, t, count)
    return batch


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    engine = ChdbEngine.shared(_CHDB_DIR)
    db = f"t_{uuid.uuid4().hex[:12]}"
    migrate(engine, db)
    StoreWriter(engine, db).write_metrics([_dataset()])
    reads = MetricReads(engine, db)
    runner = QueryRunner(PromQLEngine(reads), QueryLimits(timeout_s=30, max_concurrency=2))
    busy = QueryRunner(PromQLEngine(reads), QueryLimits(timeout_s=30, max_concurrency=1))
    app = FastAPI()
    app.include_router(prometheus_router(PrometheusAPI(reads, runner, lambda: [])))
    app.include_router(query_batch_router(runner))
    app.include_router(query_batch_router(runner, max_queries=3), prefix="/small")
    app.include_router(query_batch_router(busy), prefix="/busy")
    app.include_router(query_batch_router(None), prefix="/none")
    c = Client(app, busy)
    yield c
    c.close()
    runner.close()
    busy.close()
    engine.command(f"DROP DATABASE IF EXISTS {db}")


class Client:
    """A synchronous face on an httpx AsyncClient that calls the app in this process, on one event loop."""

    def __init__(self, app: FastAPI, busy: QueryRunner) -> None:
        self.loop = asyncio.new_event_loop()
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
        self.busy = busy

    def get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        return self.loop.run_until_complete(self.http.get(path, params=params))

    def post(self, path: str, body: Any) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.loop.run_until_complete(
            self.http.post(path, content=content, headers={"content-type": "application/json"})
        )

    def close(self) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.close()


EXPRESSIONS = [
    "rate(http_requests_total[5m])",
    "rate(http_requests_total[5m]) > 10",
    "sum by (job) (rate(http_requests_total[5m])) > 20",
    'sum by (job) (rate(http_requests_total{code=~"5.."}[5m])) / sum by (job) (rate(http_requests_total[5m]))',
    'increase(http_requests_total{job="web", instance="a"}[10m])',
    "histogram_quantile(0.9, sum by (le, svc) (rate(req_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.99, sum by (le) (rate(req_duration_seconds_bucket[5m]))) > 0.2",
    'absent(up{job="nope"})',
    'absent(up{job="api"})',
    'absent_over_time(node_temp_celsius{instance="gone"}[5m])',
    "up == 0",
    "up == bool 0",
    "node_temp_celsius > 60",
    "node_temp_celsius offset 10m",
    "node_temp_celsius offset 1h",
    f"node_temp_celsius @ {(T0 + 1_800_000) / 1000}",
    "up and on (instance) node_temp_celsius > 50",
    "up unless on (instance) node_temp_celsius",
    "up or node_temp_celsius",
    "max_over_time(node_temp_celsius[10m:1m])",
    "avg_over_time(rate(http_requests_total[5m])[30m:5m])",
    'http_requests_total{code!="200", instance=~"a|b"}',
    'http_requests_total{instance!~"a|c"}',
    '{__name__=~"node_.*"}',
    'up{job="api"} or up{instance="c"}',
    "count by (job) (up)",
    "topk(2, node_temp_celsius)",
    "deriv(node_temp_celsius[15m])",
    "sum(rate(http_requests_total[1h] offset 5m))",
    "increase(http_requests_total[10m]) > 100",
    "avg_over_time(node_temp_celsius[10m]) > 50",
    'label_replace(up, "host", "$1", "instance", "(.*)")',
    "node_temp_celsius[2m]",
    "scalar(sum(up))",
    "time()",
    "1 + 1",
    '"text"',
    "1 +",
    "rate(up)",
    "unknown_metric > 1",
    # Sub-expressions shared with queries above, then transformed: each must still answer as alone.
    "-rate(http_requests_total[5m])",
    "abs(rate(http_requests_total[5m]) - 5)",
    'label_replace(rate(http_requests_total[5m]), "code", "x", "code", ".*")',
    "sort_desc(rate(http_requests_total[5m]))",
    "sum by (job) (rate(http_requests_total[5m])) > bool 20",
    "sum by (job) (rate(http_requests_total[5m])) * on (job) group_left count by (job) (up)",
    "rate(http_requests_total[5m]) > 10",
    "clamp_max(node_temp_celsius, 50)",
    "timestamp(node_temp_celsius)",
    "node_temp_celsius > 60",
    "max_over_time(node_temp_celsius[10m:1m]) - min_over_time(node_temp_celsius[10m:1m])",
    "histogram_quantile(0.5, sum by (le, svc) (rate(req_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.9, rate(req_duration_seconds_bucket[5m]))",
    "sum(rate(req_duration_seconds_bucket[5m]))",
    # An info names its position in the query: a sub-expression that adds one is not shared.
    "rate(node_temp_celsius[5m])",
    "1 + rate(node_temp_celsius[5m])",
]
TIMES = [END, T0 + 220 * STEP + 30_000, T0 + 30_000, END + 600_000]


@pytest.mark.parametrize("at_ms", TIMES)
def test_every_answer_equals_the_single_query(client: Client, at_ms: int) -> None:
    r = client.post("/api/obs/query_batch", {"time": at_ms / 1000, "queries": EXPRESSIONS})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success"
    results = body["data"]["results"]
    assert len(results) == len(EXPRESSIONS)
    for expr, got in zip(EXPRESSIONS, results, strict=True):
        single = client.get("/api/v1/query", {"query": expr, "time": at_ms / 1000})
        assert got == single.json(), expr


def test_a_failing_query_fails_alone(client: Client) -> None:
    r = client.post("/api/obs/query_batch", {"time": END / 1000, "queries": ["1 +", "up == 0", "rate(up)"]})
    assert r.status_code == 200
    first, second, third = r.json()["data"]["results"]
    assert first["status"] == "error" and first["errorType"] == "bad_data"
    assert first["error"].startswith('invalid parameter "query": parse error')
    assert second["status"] == "success" and {s["metric"]["instance"] for s in second["data"]["result"]} == {"c"}
    assert third["status"] == "error" and third["errorType"] == "bad_data"


def test_an_empty_batch_answers_no_results(client: Client) -> None:
    r = client.post("/api/obs/query_batch", {"time": END / 1000, "queries": []})
    assert r.json() == {"status": "success", "data": {"results": []}}


@pytest.mark.parametrize(
    ("path", "body", "status", "error_type", "says"),
    [
        ("/api/obs/query_batch", b"{not json", 400, "bad_data", "not JSON"),
        ("/api/obs/query_batch", [1, 2], 400, "bad_data", "JSON object"),
        ("/api/obs/query_batch", {"queries": ["up"]}, 400, "bad_data", '"time"'),
        ("/api/obs/query_batch", {"time": "soon", "queries": ["up"]}, 400, "bad_data", '"time"'),
        ("/api/obs/query_batch", {"time": 1, "queries": "up"}, 400, "bad_data", '"queries"'),
        ("/api/obs/query_batch", {"time": 1, "queries": ["up", 3]}, 400, "bad_data", '"queries"'),
        ("/api/obs/query_batch", {"time": 1, "queries": [], "timeout": "soon"}, 400, "bad_data", '"timeout"'),
        ("/small/api/obs/query_batch", {"time": 1, "queries": ["1"] * 4}, 400, "bad_data", "at most 3"),
        ("/none/api/obs/query_batch", {"time": 1, "queries": ["1"]}, 503, "unavailable", "not available"),
    ],
)
def test_whole_request_errors(client: Client, path: str, body: Any, status: int, error_type: str, says: str) -> None:
    r = client.post(path, body)
    assert r.status_code == status, r.text
    answer = r.json()
    assert answer["status"] == "error" and answer["errorType"] == error_type
    assert says in answer["error"]


def test_a_full_query_limit_answers_503_with_retry_after(client: Client) -> None:
    release = threading.Event()

    async def scenario() -> httpx.Response:
        holder = asyncio.ensure_future(client.busy.run(lambda: release.wait(10)))  # takes the only slot
        await asyncio.sleep(0.05)
        try:
            return await client.http.post(
                "/busy/api/obs/query_batch",
                content=json.dumps({"time": END / 1000, "queries": ["up"], "timeout": "200ms"}).encode(),
            )
        finally:
            release.set()
            await holder

    r = client.loop.run_until_complete(scenario())
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert r.json() == {"status": "error", "errorType": "timeout", "error": "query timed out in query queue"}
