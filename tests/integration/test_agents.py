"""Services instrumented with `agents`, as real processes, against a real collector process.

Two FastAPI apps (this file, run as `python -m tests.integration.test_agents serve ...`) are served by
uvicorn in subprocesses: `front` logs, queries SQLite, calls `back` over httpx and pushes a business
metric. The test reads back what the collector stored: the trace with server, client and DB spans and
their parent links, the logs by trace id, the pushed series, and the exemplar on /metrics. With the
collector down the apps keep answering, drops are counted, and delivery resumes when it comes back.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.conftest import ROOT, CollectorProcess, free_port, make_collector

T = TypeVar("T")


# ---------------------------------------------------------------- the instrumented app (subprocess side)


def build_app(role: str, service: str, port: int, backend: str) -> Any:
    """`front` (checkout: log, SQLite, call back, push a point) or `back` (stock lookup)."""
    from fastapi import FastAPI
    from loguru import logger
    from opentelemetry import trace

    import agents

    app = FastAPI()
    agent = agents.instrument(app, service=service, version="9.9.9", port=port, shutdown_timeout_s=2.0)
    db = agent.instrument_sqlite(sqlite3.connect(":memory:", check_same_thread=False))
    db.execute("CREATE TABLE prices (item TEXT PRIMARY KEY, price REAL)")
    db.execute("INSERT INTO prices VALUES ('widget', 12.5)")
    client = agent.http_client(base_url=backend or "http://127.0.0.1:1", timeout=5)

    @app.get("/checkout/{item}")
    async def checkout(item: str) -> dict[str, Any]:
        logger.bind(item=item, qty=2).info("checkout started")
        [(price,)] = db.execute("SELECT price FROM prices WHERE item = ?", (item,)).fetchall()
        stock = (await client.get(f"/stock/{item}")).json()
        agent.push.write("shop_checkout", {"amount": price, "items": 2}, tags={"item": item})
        ctx = trace.get_current_span().get_span_context()
        return {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}", "stock": stock}

    @app.get("/stock/{item}")
    async def stock(item: str) -> dict[str, Any]:
        logger.bind(item=item).warning("stock checked")
        return {"item": item, "qty": 3}

    @app.get("/work")
    async def work() -> dict[str, str]:
        logger.info("working")
        agent.push.write("shop_work", {"n": 1})
        ctx = trace.get_current_span().get_span_context()
        return {"trace_id": f"{ctx.trace_id:032x}"}

    @app.get("/agent/instances/{name}")
    async def instances(name: str) -> list[dict[str, Any]]:
        found = agent.discovery.instances(name) if agent.discovery else []
        return [{"instance_id": i.instance_id, "base_url": i.base_url, "status": i.status} for i in found]

    @app.get("/agent/stats")
    async def stats() -> dict[str, int]:
        return agent.stats()

    return app


def _serve(argv: list[str]) -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--role", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", default="")
    args = parser.parse_args(argv)
    app = build_app(args.role, args.service, args.port, args.backend)
    # uvicorn's access log on (a server that turns it off keeps it off): its records must reach the agent.
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_config=None, access_log=True, lifespan="on")


# ---------------------------------------------------------------- the test side


@dataclass
class AppProcess:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, timeout: float = 15) -> float:
        """SIGTERM, then wait; seconds it took. Killed if it does not exit in time."""
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return time.monotonic() - started


AppStarter = Callable[..., AppProcess]


@pytest.fixture
def start_app(tmp_path: Path) -> Iterator[AppStarter]:
    started: list[AppProcess] = []

    def start(role: str, service: str, env: dict[str, str], backend: str = "") -> AppProcess:
        port = free_port()
        log_path = tmp_path / f"{service}.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OBS_", "OTEL_"))}
        full_env.update(
            {
                "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "demo-services")]),
                "OBS_REGISTRY_URL": "",
                "OTEL_BSP_SCHEDULE_DELAY": "200",
                "OTEL_BLRP_SCHEDULE_DELAY": "200",
                "OBS_LOG_LEVEL": "INFO",
            }
        )
        full_env.update(env)
        cmd = [sys.executable, "-m", "tests.integration.test_agents", "serve", "--role", role]
        cmd += ["--service", service, "--port", str(port), "--backend", backend]
        with log_path.open("ab") as log:
            proc = subprocess.Popen(cmd, env=full_env, cwd=ROOT, stdout=log, stderr=log)
        app = AppProcess(service, port, proc, log_path)
        started.append(app)
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{service} exited with {proc.returncode}:\n{app.log()}")
            try:
                if httpx.get(f"{app.url}/agent/stats", timeout=1).status_code == 200:
                    return app
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{service} not ready:\n{app.log()}")
            time.sleep(0.1)

    yield start
    for app in started:
        app.stop()
        print(f"--- {app.name} (exit {app.proc.returncode}) ---\n{app.log()}")  # shown when a test fails


def eventually(fetch: Callable[[], T | None], what: str, timeout: float = 20) -> T:
    """Poll `fetch` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        got = fetch()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _trace(c: CollectorProcess, trace_id: str, want: int) -> list[dict[str, Any]] | None:
    r = httpx.get(f"{c.url}/api/obs/traces/{trace_id}", timeout=10)
    if r.status_code != 200:
        return None
    spans: list[dict[str, Any]] = r.json()["spans"]
    return spans if len(spans) >= want else None


def _logs(c: CollectorProcess, trace_id: str, want: int) -> list[dict[str, Any]] | None:
    r = httpx.get(f"{c.url}/api/obs/logs", params={"trace_id": trace_id, "direction": "forward"}, timeout=10)
    assert r.status_code == 200, r.text
    logs: list[dict[str, Any]] = r.json()["logs"]
    return logs if len(logs) >= want else None


def _series(c: CollectorProcess, metric: str, **labels: str) -> list[dict[str, Any]]:
    params = [("metric", metric)] + [("label", f"{k}:{v}") for k, v in labels.items()]
    r = httpx.get(f"{c.url}/api/obs/metrics/series", params=params, timeout=10)
    assert r.status_code == 200, r.text
    series: list[dict[str, Any]] = r.json()["series"]
    return series


def _collector_env(c: CollectorProcess, protocol: str, bucket: str) -> dict[str, str]:
    endpoint = f"http://{c.grpc_target}" if protocol == "grpc" else c.otlp_url
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OBS_METRICS_PUSH_URL": c.url,
        "OBS_METRICS_PUSH_BUCKET": bucket,
    }


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_trace_logs_exemplar_and_pushed_metric_arrive(
    collector: CollectorProcess, start_app: AppStarter, protocol: str
) -> None:
    run = uuid.uuid4().hex[:8]
    bucket = f"b-{run}"
    env = _collector_env(collector, protocol, bucket)
    back = start_app("back", f"back-{run}", env)
    front = start_app("front", f"front-{run}", env, backend=back.url)

    answer = httpx.get(f"{front.url}/checkout/widget", timeout=10).json()
    trace_id = answer["trace_id"]
    assert answer["stock"] == {"item": "widget", "qty": 3}

    # The trace: front server span -> (DB span, client span -> back server span).
    spans = eventually(lambda: _trace(collector, trace_id, 4), f"trace {trace_id} with 4 spans")
    by_kind: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in spans:
        by_kind.setdefault((s["service"], s["kind"]), []).append(s)
    [front_server] = by_kind[f"front-{run}", "Server"]
    [db_span] = [s for s in by_kind[f"front-{run}", "Client"] if s["attributes"].get("db.system") == "sqlite"]
    [http_client] = [s for s in by_kind[f"front-{run}", "Client"] if s is not db_span]
    [back_server] = by_kind[f"back-{run}", "Server"]
    assert front_server["span_id"] == answer["span_id"] and front_server["parent_span_id"] == ""
    assert front_server["name"] == "GET /checkout/{item}"
    assert db_span["parent_span_id"] == front_server["span_id"]
    assert "SELECT price FROM prices" in db_span["attributes"]["db.statement"]
    assert http_client["parent_span_id"] == front_server["span_id"]
    assert back_server["parent_span_id"] == http_client["span_id"]  # W3C traceparent crossed the process
    resource = front_server["resource"]
    assert resource["service.name"] == f"front-{run}" and resource["service.version"] == "9.9.9"
    assert resource["service.instance.id"] == f"front-{run}-{front.port}"
    assert resource["deployment.environment"] == "demo" and resource["host.name"]

    # The logs written while serving it, found by its trace id, with their structured fields.
    # Each process exports on its own schedule: wait for both services' records, not for any two.
    want = {(f"front-{run}", "checkout started", "INFO"), (f"back-{run}", "stock checked", "WARNING")}

    def both_services() -> list[dict[str, Any]] | None:
        found = _logs(collector, trace_id, 2) or []
        seen = {(g["service"], g["body"], g["severity_text"]) for g in found}
        access = any(svc == f"back-{run}" and '"GET /stock/widget HTTP/1.1" 200' in body for svc, body, _ in seen)
        return found if want <= seen and access else None

    logs = eventually(both_services, f"logs of trace {trace_id} from both services")
    got = {(g["service"], g["body"], g["severity_text"]) for g in logs}
    assert want <= got
    # Standard-library records (httpx, uvicorn's access log) travel the same way, with the same trace id.
    assert any(svc == f"front-{run}" and body.startswith("HTTP Request: GET") for svc, body, _ in got)
    assert any(svc == f"back-{run}" and '"GET /stock/widget HTTP/1.1" 200' in body for svc, body, _ in got)
    started = next(g for g in logs if g["body"] == "checkout started")
    assert started["attributes"]["item"] == "widget" and started["attributes"]["qty"] == 2
    assert started["span_id"] == front_server["span_id"]

    # /metrics: the request with an exemplar holding that trace id (OpenMetrics only).
    metrics = httpx.get(f"{front.url}/metrics", headers={"Accept": "application/openmetrics-text"}, timeout=10).text
    [line] = [
        ln
        for ln in metrics.splitlines()
        if ln.startswith("http_server_requests_total{") and 'route="/checkout/{item}"' in ln
    ]
    assert f'trace_id="{trace_id}"' in line and 'status="200"' in line

    # The pushed business metric, as series <measurement>_<field> labelled with the bucket.
    # A series is stored before its samples (one write, two tables): wait for the sample itself.
    [amount] = eventually(
        lambda: [s for s in _series(collector, "shop_checkout_amount", bucket=bucket) if s["samples"]], "pushed point"
    )
    assert amount["labels"]["item"] == "widget" and float(amount["samples"][0][1]) == 12.5
    [items] = _series(collector, "shop_checkout_items", bucket=bucket)
    assert float(items["samples"][0][1]) == 2

    stats = eventually(
        lambda: (s := httpx.get(f"{front.url}/agent/stats", timeout=5).json())["points_exported"] and s,
        "points acknowledged",
    )
    assert stats["spans_dropped"] == stats["logs_dropped"] == stats["points_dropped"] == 0
    assert front.stop() < 10 and front.proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM


def test_collector_down_then_back(tmp_path: Path, start_app: AppStarter) -> None:
    run = uuid.uuid4().hex[:8]
    bucket = f"b-{run}"
    (tmp_path / "c").mkdir()
    down = make_collector(tmp_path / "c")  # ports chosen, nothing listening yet
    env = _collector_env(down, "http/protobuf", bucket) | {"OTEL_EXPORTER_OTLP_TIMEOUT": "5"}
    app = start_app("front", f"lonely-{run}", env)

    # The app answers while every export fails. An export that failed here would take about 3 s (the
    # exporter retries after 1 s and 2 s within its 5 s timeout): no request may wait for one.
    for _ in range(5):
        started = time.monotonic()
        assert httpx.get(f"{app.url}/work", timeout=10).status_code == 200
        assert time.monotonic() - started < 2.5

    def dropped() -> dict[str, int] | None:
        s: dict[str, int] = httpx.get(f"{app.url}/agent/stats", timeout=5).json()
        return s if s["spans_dropped_export_failed"] and s["logs_dropped_export_failed"] else None

    stats = eventually(dropped, "failed exports counted", timeout=30)
    assert stats["spans_exported"] == 0
    exposed = httpx.get(f"{app.url}/metrics", timeout=5).text
    for signal_name in ("spans", "logs"):
        [line] = [
            ln
            for ln in exposed.splitlines()
            if ln.startswith("agent_dropped_total{") and f'signal="{signal_name}"' in ln and "export_failed" in ln
        ]
        assert float(line.rsplit(" ", 1)[1]) >= 1

    # The collector comes up on the ports the app was given; new telemetry arrives.
    down.start()
    try:
        trace_id = httpx.get(f"{app.url}/work", timeout=10).json()["trace_id"]
        eventually(lambda: _trace(down, trace_id, 1), "trace after the collector came back", timeout=30)
        eventually(lambda: _logs(down, trace_id, 1), "logs after the collector came back", timeout=30)
        eventually(lambda: _series(down, "shop_work_n", bucket=bucket), "points after the collector came back", 30)
        assert app.stop() < 10 and app.proc.returncode in (0, -signal.SIGTERM)
    finally:
        down.stop()


def test_shutdown_is_bounded_with_the_collector_down(tmp_path: Path, start_app: AppStarter) -> None:
    nowhere = make_collector(tmp_path)  # never started
    env = _collector_env(nowhere, "http/protobuf", "b") | {"OTEL_BSP_SCHEDULE_DELAY": "60000"}
    app = start_app("front", f"stopper-{uuid.uuid4().hex[:8]}", env)
    for _ in range(3):
        httpx.get(f"{app.url}/work", timeout=10)
    assert app.stop() < 8  # shutdown_timeout_s=2 per signal, flushed in parallel
    assert app.proc.returncode in (0, -signal.SIGTERM)
    [summary] = [line for line in app.log().splitlines() if "agent stopped" in line]
    assert "spans_exported=0" in summary and "spans_dropped=0" not in summary  # the flush ran, and gave up


def test_registers_at_startup_and_deregisters_at_shutdown(
    tmp_path: Path, collector: CollectorProcess, start_app: AppStarter
) -> None:
    port = free_port()
    registry_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "demo-services")])
    with (tmp_path / "discovery.log").open("ab") as log:
        registry = subprocess.Popen(
            [sys.executable, "-m", "discovery", "--port", str(port)], env=env, cwd=ROOT, stdout=log, stderr=log
        )
    try:
        eventually(lambda: _reachable(f"{registry_url}/healthz"), "discovery up")
        run = uuid.uuid4().hex[:8]
        app_env = _collector_env(collector, "http/protobuf", "b") | {"OBS_REGISTRY_URL": registry_url}
        back = start_app("back", f"back-{run}", app_env)
        front = start_app("front", f"front-{run}", app_env)

        def registered() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = httpx.get(f"{registry_url}/v1/services/back-{run}", timeout=5).json()[
                "instances"
            ]
            return found

        [instance] = eventually(registered, "registration")
        assert (instance["instance_id"], instance["port"], instance["status"]) == (
            f"back-{run}-{back.port}",
            back.port,
            "UP",
        )
        assert instance["metadata"]["version"] == "9.9.9" and instance["metadata"]["metrics_path"] == "/metrics"
        seen = httpx.get(f"{front.url}/agent/instances/back-{run}", timeout=10).json()
        assert seen == [{"instance_id": f"back-{run}-{back.port}", "base_url": back.url, "status": "UP"}]

        back.stop()
        eventually(lambda: not registered() or None, "deregistration at shutdown", timeout=10)
    finally:
        registry.terminate()
        try:
            registry.wait(timeout=10)
        except subprocess.TimeoutExpired:
            registry.kill()
            registry.wait(timeout=10)


def _reachable(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    _serve(sys.argv[2:])
