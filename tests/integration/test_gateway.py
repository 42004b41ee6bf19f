"""The gateway as a process: real discovery (`python -m discovery`), real upstream HTTP servers, real clients.

One discovery and one gateway process serve the whole module; each test uses routes and services of its
own (see CONFIG), so the breakers, budgets and buckets one test drives do not touch another's. Upstreams
are small FastAPI apps served by uvicorn in threads of this process on free loopback ports; a test can
make one fail (500s), slow, or stop it (connections refused), and registers them through discovery's
HTTP API as the services' agents would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, free_port

DEMO = ROOT / "demo-services"
KEY = {"X-API-Key": "demo-key"}
OPEN_FOR = 2.0  # breaker cool-down in CONFIG

CONFIG = """
max_body_bytes: 64KiB
routes:
  - {name: basic, prefix: /api/basic, service: basic, upstream_prefix: /things}
  - {name: inv, prefix: /api/inv, service: basic}
  - {name: flaky, prefix: /api/flaky, service: flaky, timeout: 5s, retries: 2}
  - {name: refuse, prefix: /api/refuse, service: refuse, timeout: 5s, retries: 2}
  - {name: posty, prefix: /api/posty, service: posty, retries: 2}
  - {name: down, prefix: /api/down, service: down}
  - {name: ghost, prefix: /api/ghost, service: ghost}
  - {name: slow, prefix: /api/slow, service: slow, timeout: 1s, retries: 0}
  - {name: lor, prefix: /api/lor, service: lor, balancer: least_outstanding}
  - {name: small, prefix: /api/small, service: basic, max_body_bytes: 1KiB}
  - {name: dyn, prefix: /api/dyn, service: dyn}
keys:
  - {name: demo, key: demo-key, rate: 1000, burst: 1000}
  - {name: readonly, key: readonly-key, routes: [inv], rate: 1000, burst: 1000}
  - {name: tiny, key: tiny-key-1, rate: 0.5, burst: 2}
breaker:
  consecutive_failures: 3
  min_requests: 100
  open_for: 2s  # OPEN_FOR
  half_open_probes: 1
retry_budget: {ratio: 0.2, min_per_second: 20, window: 10s}
"""


class ThreadServer:
    """An ASGI app served by uvicorn in a thread of this process on a free loopback port."""

    def __init__(self, app: FastAPI, name: str) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=name, daemon=True)
        self._thread.start()
        wait_for(lambda: self._server.started, f"{name} to start", 10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


class OtlpSink:
    """A recording OTLP/HTTP receiver: keeps every span and log record the gateway exports."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.logs: list[LogRecord] = []
        app = FastAPI()

        @app.post("/v1/{signal}")
        async def export(signal: str, request: Request) -> Response:
            body = await request.body()
            if signal == "traces":
                traces = ExportTraceServiceRequest.FromString(body)
                self.spans.extend(s for rs in traces.resource_spans for ss in rs.scope_spans for s in ss.spans)
            elif signal == "logs":
                logs = ExportLogsServiceRequest.FromString(body)
                self.logs.extend(r for rl in logs.resource_logs for sl in rl.scope_logs for r in sl.log_records)
            return Response(b"", media_type="application/x-protobuf")

        self.server = ThreadServer(app, "otlp-sink")

    def spans_of(self, trace_id: str) -> list[Span]:
        return [sp for sp in self.spans if sp.trace_id.hex() == trace_id]


class Upstream:
    """A tiny HTTP service: echoes what it received, or fails with 500 (`failing`), served until `stop()`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.failing = False
        self.hits = 0
        self.in_flight = 0
        app = FastAPI()

        @app.api_route("/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "DELETE"])
        async def echo(path: str, request: Request) -> JSONResponse:
            self.hits += 1
            self.in_flight += 1
            try:
                body = await request.body()
                if path.endswith("sleep"):
                    await asyncio.sleep(float(request.query_params.get("secs", "1")))
                return JSONResponse(
                    {
                        "instance": self.name,
                        "method": request.method,
                        "path": "/" + path,
                        "query": request.url.query,
                        "headers": dict(request.headers),
                        "body_bytes": len(body),
                    },
                    status_code=500 if self.failing else 200,
                )
            finally:
                self.in_flight -= 1

        self._server = ThreadServer(app, f"upstream-{name}")
        self.port = self._server.port
        self.url = self._server.url

    def stop(self) -> None:
        self._server.stop()


def metric(url: str, name: str, **labels: str) -> float | None:
    """One sample of a /metrics page (parsed by prometheus_client), or None when the series is absent."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def wait_for(check: Callable[[], Any], what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Stack:
    """Discovery and gateway processes, the upstreams, and helpers to drive them."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.upstreams: list[Upstream] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.discovery_url = f"http://127.0.0.1:{free_port()}"
        self.gateway_url = f"http://127.0.0.1:{free_port()}"
        self.gateway_log = tmp / "gateway.log"
        self.dead_port = free_port()  # nothing listens here: connections are refused
        self.otlp = OtlpSink()

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OBS_", "OTEL_"))}
        env.update(
            {
                "PYTHONPATH": f"{DEMO}{os.pathsep}{ROOT}",
                "OBS_REGISTRY_URL": self.discovery_url,
                "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp.server.url,
                "OTEL_BSP_SCHEDULE_DELAY": "100",
                "OTEL_BLRP_SCHEDULE_DELAY": "100",
                "OBS_METRICS_PUSH_URL": self.otlp.server.url,  # nothing is pushed by the gateway
            }
        )
        return env

    def spawn(self, args: list[str], log: Path, **env: str) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, *args], env={**self.env(), **env}, cwd=ROOT, stdout=out, stderr=out
            )
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        port = self.discovery_url.rsplit(":", 1)[1]
        proc = self.spawn(["-m", "discovery", "--port", port], self.tmp / "discovery.log")
        self.wait_healthy(self.discovery_url, proc, self.tmp / "discovery.log")
        self.basic = [self.upstream("basic", "basic-1")]
        self.flaky_good, self.flaky_bad = self.upstream("flaky", "flaky-good"), self.upstream("flaky", "flaky-bad")
        self.flaky_bad.failing = True
        self.refuse_good = self.upstream("refuse", "refuse-good")
        self.register("refuse", "refuse-dead", self.dead_port)
        self.posty = [self.upstream("posty", "posty-a"), self.upstream("posty", "posty-b")]
        self.register("down", "down-dead", self.dead_port)
        self.slow = self.upstream("slow", "slow-1")
        self.lor = [self.upstream("lor", "lor-a"), self.upstream("lor", "lor-b")]
        self.dyn = [self.upstream("dyn", "dyn-1")]
        config = self.tmp / "gateway.yaml"
        config.write_text(CONFIG)
        port = self.gateway_url.rsplit(":", 1)[1]
        proc = self.spawn(["-m", "gateway", "--port", port, "--config", str(config)], self.gateway_log)
        self.wait_healthy(self.gateway_url, proc, self.gateway_log)

    def wait_healthy(self, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{url} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{url} not healthy after 30s:\n{log.read_text()[-3000:]}")

    def upstream(self, service: str, name: str) -> Upstream:
        up = Upstream(name)
        self.upstreams.append(up)
        self.register(service, name, up.port)
        return up

    def register(self, service: str, instance_id: str, port: int) -> None:
        body = {"service": service, "instance_id": instance_id, "host": "127.0.0.1", "port": port, "lease_seconds": 300}
        r = httpx.post(f"{self.discovery_url}/v1/instances", json=body, timeout=5)
        assert r.status_code in (200, 201), r.text

    def deregister(self, service: str, instance_id: str) -> None:
        r = httpx.delete(f"{self.discovery_url}/v1/instances/{service}/{instance_id}", timeout=5)
        assert r.status_code == 204, r.text

    def get(self, path: str, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        return httpx.get(self.gateway_url + path, headers=KEY if headers is None else headers, timeout=10, **kw)

    def metric(self, name: str, **labels: str) -> float | None:
        return metric(self.gateway_url, name, **labels)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        for up in self.upstreams:
            up.stop()
        self.otlp.server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("gateway"))
    try:
        s.start()
        yield s
    finally:
        s.stop()


def served_by(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["instance"])


def test_keys_401_403_and_open_endpoints(stack: Stack) -> None:
    missing = stack.get("/api/basic/x", headers={})
    assert missing.status_code == 401
    assert "X-API-Key" in missing.headers["WWW-Authenticate"]
    wrong = stack.get("/api/basic/x", headers={"X-API-Key": "not-a-key"})
    assert wrong.status_code == 401 and "WWW-Authenticate" in wrong.headers
    forbidden = stack.get("/api/basic/x", headers={"X-API-Key": "readonly-key"})
    assert forbidden.status_code == 403
    assert served_by(stack.get("/api/inv/x", headers={"X-API-Key": "readonly-key"})) == "basic-1"
    assert served_by(stack.get("/api/basic/x", headers={"Authorization": "Bearer demo-key"})) == "basic-1"
    assert stack.get("/healthz", headers={}).status_code == 200
    assert stack.get("/metrics", headers={}).status_code == 200
    assert stack.get("/api/nowhere", headers={}).status_code == 404
    assert stack.metric("gateway_auth_failures_total", reason="missing") == 1
    assert stack.metric("gateway_auth_failures_total", reason="invalid") == 1
    assert stack.metric("gateway_auth_failures_total", reason="forbidden") == 1


def test_forwarding_headers_path_and_trace(stack: Stack) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    incoming = {
        **KEY,
        "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
        "X-Forwarded-For": "198.51.100.9",
        "X-Request-Id": "req-abc-1",
        "Connection": "keep-alive, X-Hop",
        "X-Hop": "secret",
    }
    r = stack.get("/api/basic/a/b?q=1&r=2", headers=incoming)
    echo = r.json()
    assert (echo["path"], echo["query"]) == ("/things/a/b", "q=1&r=2")
    seen = echo["headers"]
    assert seen["x-forwarded-for"] == "198.51.100.9, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == stack.gateway_url.removeprefix("http://")
    assert seen["x-request-id"] == "req-abc-1"
    assert "x-api-key" not in seen and "x-hop" not in seen
    # The trace continues: same trace id, the parent is the gateway's client span, not the caller's span.
    version, upstream_trace, parent, _ = seen["traceparent"].split("-")
    assert (version, upstream_trace) == ("00", trace_id)
    assert parent != "00f067aa0ba902b7"
    assert r.headers["X-Request-Id"] == "req-abc-1"
    assert r.headers["X-RateLimit-Limit"] == "1000"
    # One access log line for the request, carrying the trace id and the upstream.
    line = wait_for(
        lambda: next((ln for ln in stack.gateway_log.read_text().splitlines() if "req-abc-1" in ln), None),
        "the access log line",
        5,
    )
    assert trace_id in line and "route=basic" in line and "basic-1" in line and "status=200" in line
    # The exported spans: the gateway's server span is a child of the caller's, and its client span is
    # the parent the upstream saw. The access log record carries the trace id too.
    spans = wait_for(
        lambda: len(stack.otlp.spans_of(trace_id)) >= 2 and stack.otlp.spans_of(trace_id),
        "the gateway's spans",
        10,
    )
    server = next(sp for sp in spans if sp.kind == Span.SPAN_KIND_SERVER)
    client = next(sp for sp in spans if sp.kind == Span.SPAN_KIND_CLIENT)
    assert server.parent_span_id.hex() == "00f067aa0ba902b7"
    assert client.span_id.hex() == parent
    assert client.trace_id == server.trace_id
    record = wait_for(
        lambda: next((r for r in stack.otlp.logs if "req-abc-1" in str(r.attributes)), None), "the log record", 10
    )
    assert record.trace_id.hex() == trace_id


def test_rate_limit_429_with_retry_after(stack: Stack) -> None:
    tiny = {"X-API-Key": "tiny-key-1"}
    codes = [stack.get("/api/basic/x", headers=tiny) for _ in range(3)]
    assert [c.status_code for c in codes] == [200, 200, 429]
    refused = codes[2]
    # A token every 2 s: the wait is at most 2 s, less whatever the first requests took.
    assert refused.headers["Retry-After"] in ("1", "2")
    assert refused.headers["X-RateLimit-Limit"] == "2"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert stack.metric("gateway_rate_limited_total", key="tiny") == 1
    time.sleep(int(refused.headers["Retry-After"]))
    assert stack.get("/api/basic/x", headers=tiny).status_code == 200


def test_retries_and_breaker_with_a_failing_instance(stack: Stack) -> None:
    served = [served_by(stack.get(f"/api/flaky/item/{i}")) for i in range(8)]
    assert set(served) == {"flaky-good"}
    assert stack.metric("gateway_retries_total", service="flaky", reason="status_500") == 3
    assert stack.metric("gateway_upstream_requests_total", service="flaky", instance="flaky-bad", status="500") == 3
    assert stack.metric("gateway_circuit_state", service="flaky", instance="flaky-bad") == 2
    assert stack.metric("gateway_circuit_state", service="flaky", instance="flaky-good") == 0
    hits = stack.flaky_bad.hits
    for _ in range(4):
        assert served_by(stack.get("/api/flaky/x")) == "flaky-good"
    assert stack.flaky_bad.hits == hits  # open: not even tried
    # After the cool-down the breaker is half-open (seen at scrape time); the instance has recovered,
    # so the probe succeeds and closes it.
    wait_for(
        lambda: stack.metric("gateway_circuit_state", service="flaky", instance="flaky-bad") == 1,
        "half-open",
        OPEN_FOR + 3,
    )
    stack.flaky_bad.failing = False
    served = [served_by(stack.get("/api/flaky/x")) for _ in range(4)]
    assert "flaky-bad" in served
    assert stack.metric("gateway_circuit_state", service="flaky", instance="flaky-bad") == 0


def test_failed_probe_opens_the_breaker_again(stack: Stack) -> None:
    for _ in range(6):
        assert served_by(stack.get("/api/refuse/x")) == "refuse-good"
    assert stack.metric("gateway_retries_total", service="refuse", reason="connect_error") == 3
    assert stack.metric("gateway_circuit_state", service="refuse", instance="refuse-dead") == 2
    wait_for(
        lambda: stack.metric("gateway_circuit_state", service="refuse", instance="refuse-dead") == 1,
        "half-open",
        OPEN_FOR + 3,
    )
    for _ in range(3):
        assert served_by(stack.get("/api/refuse/x")) == "refuse-good"
    assert stack.metric("gateway_circuit_state", service="refuse", instance="refuse-dead") == 2
    assert (
        stack.metric(
            "gateway_upstream_requests_total", service="refuse", instance="refuse-dead", status="connect_error"
        )
        == 4
    )


def test_post_is_not_retried(stack: Stack) -> None:
    stack.posty[1].failing = True
    try:
        statuses = sorted(
            httpx.post(f"{stack.gateway_url}/api/posty/charges", json={"n": i}, headers=KEY, timeout=10).status_code
            for i in range(2)
        )
    finally:
        stack.posty[1].failing = False
    assert statuses == [200, 500]  # round-robin sent one to the failing instance, and it was not retried
    assert stack.metric("gateway_retries_total", service="posty", reason="status_500") is None


def test_all_breakers_open_or_no_instance_503(stack: Stack) -> None:
    first = [stack.get("/api/down/x").status_code for _ in range(3)]
    assert first == [502, 502, 502]  # connection refused, no other instance to retry on
    open_ = stack.get("/api/down/x")
    assert open_.status_code == 503
    assert 1 <= int(open_.headers["Retry-After"]) <= OPEN_FOR
    ghost = stack.get("/api/ghost/x")
    assert ghost.status_code == 503 and ghost.headers["Retry-After"] == "1"


def test_timeout_504_within_the_route_timeout(stack: Stack) -> None:
    started = time.monotonic()
    r = stack.get("/api/slow/sleep", params={"secs": "5"})
    elapsed = time.monotonic() - started
    assert r.status_code == 504
    assert 0.9 <= elapsed < 3.0  # the route's timeout is 1s; the upstream would take 5s
    assert stack.metric("gateway_upstream_requests_total", service="slow", instance="slow-1", status="timeout") == 1


def test_least_outstanding_avoids_the_busy_instance(stack: Stack) -> None:
    holder = threading.Thread(target=lambda: stack.get("/api/lor/sleep", params={"secs": "3"}))
    holder.start()
    try:
        busy = wait_for(lambda: next((u for u in stack.lor if u.in_flight), None), "a request in flight", 5)
        served = {served_by(stack.get("/api/lor/x")) for _ in range(6)}
        idle = next(u for u in stack.lor if u is not busy)
        assert served == {idle.name}
    finally:
        holder.join(10)
    # With nothing in flight, ties rotate.
    assert {served_by(stack.get("/api/lor/x")) for _ in range(4)} == {"lor-a", "lor-b"}


def test_body_limit_413(stack: Stack) -> None:
    url = f"{stack.gateway_url}/api/small/upload"
    assert httpx.post(url, content=b"x" * 2000, headers=KEY, timeout=10).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while reading
        for _ in range(4):
            yield b"y" * 400

    assert httpx.post(url, content=chunks(), headers=KEY, timeout=10).status_code == 413
    ok = httpx.post(url, content=b"z" * 1000, headers=KEY, timeout=10)
    assert ok.status_code == 200 and ok.json()["body_bytes"] == 1000


def test_instances_join_and_leave_without_restart(stack: Stack) -> None:
    assert {served_by(stack.get("/api/dyn/x")) for _ in range(3)} == {"dyn-1"}
    stack.dyn.append(stack.upstream("dyn", "dyn-2"))
    wait_for(lambda: served_by(stack.get("/api/dyn/x")) == "dyn-2", "dyn-2 in rotation", 15)
    assert {served_by(stack.get("/api/dyn/x")) for _ in range(4)} == {"dyn-1", "dyn-2"}
    # dyn-1 is killed and leaves the registry (as its agent deregisters on shutdown): every request
    # keeps succeeding meanwhile (retried on dyn-2), and dyn-1 drops out of rotation.
    stack.dyn[0].stop()
    stack.deregister("dyn", "dyn-1")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert served_by(stack.get("/api/dyn/x")) == "dyn-2"
        if stack.metric("gateway_circuit_state", service="dyn", instance="dyn-1") is None:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("dyn-1 still known to the gateway after 15s")


def test_bad_config_stops_startup_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("routes:\n  - {name: a, prefix: /a, service: a, timeout: soon}\n")
    env = {**os.environ, "PYTHONPATH": f"{DEMO}{os.pathsep}{ROOT}"}
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "--port", str(free_port()), "--config", str(bad)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert b"routes.0.timeout" in done.stderr


def test_retry_budget_and_static_instances_without_discovery(stack: Stack, tmp_path: Path) -> None:
    """A second gateway with discovery disabled (instances from static_instances) and a budget of one retry."""
    bad, good = stack.upstream("budget", "budget-bad"), stack.upstream("budget", "budget-good")
    bad.failing = True
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "routes: [{name: budget, prefix: /api/budget, service: budget}]\n"
        "keys: [{name: demo, key: demo-key}]\n"
        "breaker: {consecutive_failures: 100, min_requests: 100}\n"
        # 0.1 retries a second over 10 s: one retry in the window, whatever the traffic.
        "retry_budget: {ratio: 0, min_per_second: 0.1, window: 10s}\n"
        f"static_instances: {{budget: [{bad.url}, {good.url}]}}\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "gateway.log"
    proc = stack.spawn(["-m", "gateway", "--port", str(port), "--config", str(config)], log, OBS_REGISTRY_URL="")
    stack.wait_healthy(url, proc, log)
    statuses = [httpx.get(f"{url}/api/budget/x", headers=KEY, timeout=10).status_code for _ in range(4)]
    assert metric(url, "gateway_retries_total", service="budget", reason="status_500") == 1
    assert metric(url, "gateway_retry_budget_exhausted_total") == statuses.count(500) >= 1
    assert statuses.count(200) == 4 - statuses.count(500)
    assert good.hits + bad.hits == 5  # four requests and the one retry
