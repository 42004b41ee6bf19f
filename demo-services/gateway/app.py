"""The gateway's composition root: an instrumented FastAPI app whose routes hand every request to the Proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import agents
from gateway.breaker import BreakerBoard
from gateway.config import GatewaySettings
from gateway.metrics import GatewayMetrics
from gateway.proxy import Proxy, breaker_listener
from gateway.upstreams import InstanceSource, StaticInstances

VERSION = "0.1.0"
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# httpx adds these to every request unless told otherwise; a proxy must send only what the client sent
# (an Accept-Encoding the client never asked for would come back as a body it cannot read).
_CLIENT_DEFAULT_HEADERS = ("accept", "accept-encoding", "user-agent")


def create_app(
    settings: GatewaySettings,
    *,
    port: int,
    host: str = "127.0.0.1",
    instance_id: str | None = None,
    source: InstanceSource | None = None,
    environ: Mapping[str, str] | None = None,
) -> FastAPI:
    """The gateway app. Instances come from `source`, else discovery (agent.discovery), else
    `static_instances` when discovery is disabled (OBS_REGISTRY_URL empty)."""
    warm_up: list[Callable[[], object]] = []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for step in warm_up:
            await run_in_threadpool(step)
        try:
            yield
        finally:
            await client.aclose()  # the upstream client below, once agents has deregistered and flushed

    app = FastAPI(title="gateway", version=VERSION, lifespan=lifespan, openapi_url=None, docs_url=None)
    agent = agents.instrument(
        app, service="gateway", version=VERSION, port=port, instance_id=instance_id, host=host, environ=environ
    )
    client = agent.http_client(
        timeout=httpx.Timeout(30.0),
        limits=httpx.Limits(max_connections=settings.max_connections, max_keepalive_connections=64),
        follow_redirects=False,
        trust_env=False,  # proxy variables in the environment must not reroute upstream calls
    )
    for name in _CLIENT_DEFAULT_HEADERS:
        client.headers.pop(name, None)
    if source is None and agent.discovery is not None:
        discovery = agent.discovery
        services = sorted({r.service for r in settings.routes})
        # A service's first lookup is a blocking HTTP call: make it here, in a thread, before requests come.
        warm_up.append(lambda: [discovery.watch(service) for service in services])
        source = discovery
    elif source is None:
        source = StaticInstances(settings.static_instances)
    breakers = BreakerBoard(settings.breaker, listener=breaker_listener)
    proxy = Proxy(settings, source, client, GatewayMetrics(agent.registry, breakers.states), breakers=breakers)
    app.state.proxy = proxy

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def forward(request: Request) -> Response:
        return await proxy.handle(request)

    app.add_route("/healthz", healthz, methods=["GET"], include_in_schema=False)
    for route in settings.routes:
        # Two templates per route so RED metrics see `/api/orders/{path:path}`, never raw paths.
        prefix = "" if route.prefix == "/" else route.prefix
        if prefix:
            app.add_route(prefix, forward, methods=METHODS, include_in_schema=False)
        app.add_route(prefix + "/{path:path}", forward, methods=METHODS, include_in_schema=False)
    return app
