"""The Proxy in process, in front of two real upstream HTTP servers (uvicorn in threads on loopback).

The gateway side is the Proxy behind a bare Starlette route, reached through httpx's ASGI transport; the
upstream side is real HTTP. Each test builds a fresh Proxy, so its round-robin starts at the first
instance id in sorted order, and drives the breaker with a test clock where time matters.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from gateway.breaker import BreakerBoard, State
from gateway.config import parse_settings
from gateway.metrics import GatewayMetrics
from gateway.proxy import Proxy
from gateway.upstreams import StaticInstances
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.routing import Route

from tests.conftest import free_port

BIG = 2 * 1024 * 1024


def upstream_app(name: str) -> FastAPI:
    """Echoes; `/fail-on/<name>` fails and `/slow-on/<name>` sleeps on the instance called <name> only."""
    app = FastAPI()

    @app.get("/big")
    async def big() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(BIG // 65536):
                yield b"b" * 65536

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    @app.api_route("/{path:path}", methods=["GET", "HEAD", "POST"])
    async def echo(path: str, request: Request) -> Response:
        body = await request.body()
        if path == f"slow-on/{name}":
            await asyncio.sleep(2)
        status = 500 if path == f"fail-on/{name}" else 200
        payload = {"instance": name, "path": "/" + path, "query": request.url.query, "body": body.decode()}
        return JSONResponse(payload, status_code=status, headers={"X-Upstream": name})

    return app


@dataclass
class Upstreams:
    urls: dict[str, str]  # name -> base URL

    def ids_in_order(self) -> list[str]:
        """Names in the order the proxy's round-robin visits them (sorted static instance ids)."""
        by_id = {f"svc@{url.removeprefix('http://')}": name for name, url in self.urls.items()}
        return [by_id[i] for i in sorted(by_id)]


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []
    urls = {}
    try:
        for name in ("u1", "u2"):
            port = free_port()
            config = uvicorn.Config(
                upstream_app(name),
                host="127.0.0.1",
                port=port,
                log_level="warning",
                lifespan="off",
                ws="none",
                timeout_graceful_shutdown=1,
            )
            server = uvicorn.Server(config)
            thread = threading.Thread(target=server.run, name=f"upstream-{name}", daemon=True)
            thread.start()
            servers.append((server, thread))
            deadline = time.monotonic() + 10
            while not server.started:
                assert time.monotonic() < deadline, f"upstream {name} did not start"
                time.sleep(0.01)
            urls[name] = f"http://127.0.0.1:{port}"
        yield Upstreams(urls)
    finally:
        for server, thread in servers:
            server.should_exit = True
            thread.join(10)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run_proxy(
    route: dict[str, Any],
    urls: list[str],
    requests: list[tuple[str, str, bytes]],
    clock: Clock | None = None,
    between: Any = None,
) -> tuple[list[httpx.Response], Proxy, CollectorRegistry]:
    """Send `requests` (method, path, body) in order through a fresh Proxy; `between(i, proxy)` runs before each."""
    settings = parse_settings(
        {
            "routes": [{"name": "svc", "prefix": "/api/svc", "service": "svc", **route}],
            "keys": [{"name": "demo", "key": "demo-key", "rate": 1000, "burst": 1000}],
            "breaker": {"consecutive_failures": 2, "open_for": 30, "half_open_probes": 1},
            "static_instances": {"svc": urls},
        }
    )
    registry = CollectorRegistry()
    wall = clock or time.monotonic
    board = BreakerBoard(settings.breaker, wall)
    responses: list[httpx.Response] = []

    async def main() -> Proxy:
        async with httpx.AsyncClient(trust_env=False) as upstream_client:
            proxy = Proxy(
                settings,
                StaticInstances(settings.static_instances),
                upstream_client,
                GatewayMetrics(registry, board.states),
                breakers=board,
                clock=wall,
            )
            app = Starlette(routes=[Route("/{path:path}", proxy.handle, methods=["GET", "HEAD", "POST"])])
            transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 5555))
            async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
                for i, (method, path, body) in enumerate(requests):
                    if between is not None:
                        between(i, proxy)
                    responses.append(
                        await client.request(method, path, content=body or None, headers={"X-API-Key": "demo-key"})
                    )
            return proxy

    return responses, asyncio.run(main()), registry


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_path_query_and_head(upstreams: Upstreams) -> None:
    (get, head), _, _ = run_proxy(
        {"upstream_prefix": "/p"},
        [upstreams.urls["u1"]],
        [("GET", "/api/svc/a?x=1&y=%20", b""), ("HEAD", "/api/svc/a", b"")],
    )
    assert get.status_code == 200
    assert (get.json()["path"], get.json()["query"]) == ("/p/a", "x=1&y=%20")
    assert get.headers["X-Upstream"] == "u1" and get.headers["X-Request-Id"]
    assert head.status_code == 200 and head.content == b""


def test_large_body_is_streamed_back(upstreams: Upstreams) -> None:
    (big,), _, _ = run_proxy({"upstream_prefix": ""}, [upstreams.urls["u1"]], [("GET", "/api/svc/big", b"")])
    assert big.status_code == 200 and len(big.content) == BIG


@pytest.mark.parametrize(("retry_non_idempotent", "statuses", "retries"), [(False, [500], None), (True, [200], 1.0)])
def test_post_retried_only_when_the_route_allows(
    upstreams: Upstreams, retry_non_idempotent: bool, statuses: list[int], retries: float | None
) -> None:
    first = upstreams.ids_in_order()[0]
    responses, _, registry = run_proxy(
        {"retry_non_idempotent": retry_non_idempotent},
        list(upstreams.urls.values()),
        [("POST", f"/api/svc/fail-on/{first}", b"{}")],
    )
    assert [r.status_code for r in responses] == statuses
    assert sample(registry, "gateway_retries_total", service="svc", reason="status_500") == retries


def test_per_try_timeout_moves_on_to_another_instance(upstreams: Upstreams) -> None:
    first, second = upstreams.ids_in_order()
    (r,), _, registry = run_proxy(
        {"timeout": 5, "per_try_timeout": 0.3},
        list(upstreams.urls.values()),
        [("GET", f"/api/svc/slow-on/{first}", b"")],
    )
    assert r.status_code == 200 and r.json()["instance"] == second
    assert sample(registry, "gateway_retries_total", service="svc", reason="timeout") == 1
    ids = {name: f"svc@{url.removeprefix('http://')}" for name, url in upstreams.urls.items()}
    assert (
        sample(registry, "gateway_upstream_requests_total", service="svc", instance=ids[first], status="timeout") == 1
    )


def test_breaker_cycle_with_a_test_clock(upstreams: Upstreams) -> None:
    first, second = upstreams.ids_in_order()
    ids = {name: f"svc@{url.removeprefix('http://')}" for name, url in upstreams.urls.items()}
    clock = Clock()
    states: list[State] = []

    def between(i: int, proxy: Proxy) -> None:
        states.append(proxy.breakers.get("svc", ids[first]).state)
        if i == 4:
            clock.now += 30  # the cool-down passes without any real waiting

    paths = [f"/api/svc/fail-on/{first}"] * 4 + ["/api/svc/x"] * 3
    responses, proxy, registry = run_proxy(
        {}, list(upstreams.urls.values()), [("GET", p, b"") for p in paths], clock, between
    )
    assert all(r.status_code == 200 for r in responses)
    served = [r.json()["instance"] for r in responses]
    # Round-robin puts `first` first; its two failures open the breaker, so the next two go to `second`
    # straight away; after the cool-down one probe reaches `first`, succeeds and closes the breaker.
    assert served[:4] == [second] * 4
    assert states[:5] == [State.CLOSED, State.CLOSED, State.OPEN, State.OPEN, State.OPEN]
    assert first in served[4:]
    assert proxy.breakers.get("svc", ids[first]).state is State.CLOSED
    assert sample(registry, "gateway_circuit_state", service="svc", instance=ids[first]) == 0
    assert sample(registry, "gateway_upstream_requests_total", service="svc", instance=ids[first], status="500") == 2


def test_refused_connections_502_then_open_breaker_503() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    responses, _, registry = run_proxy({}, [dead], [("GET", "/api/svc/x", b"")] * 3)
    assert [r.status_code for r in responses] == [502, 502, 503]
    assert responses[2].headers["Retry-After"] == "30"
    assert responses[2].json()["error"].endswith("(circuit open)")
    assert sample(registry, "gateway_circuit_state", service="svc", instance=f"svc@{dead.removeprefix('http://')}") == 2
