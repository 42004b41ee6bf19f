"""`agents.instrument(app)`: an Agent wired into a FastAPI app (spans, RED metrics, /metrics, lifespan)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, TextIO

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.concurrency import run_in_threadpool

from agents.agent import Agent, start
from agents.exposition import metrics_endpoint
from agents.red import RedMetrics, RedMiddleware

METRICS_PATH = "/metrics"


def instrument(
    app: FastAPI,
    service: str | None = None,
    version: str = "0.0.0",
    *,
    port: int | None = None,
    instance_id: str | None = None,
    host: str = "127.0.0.1",
    metadata: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    console: TextIO | None = None,
    **overrides: object,
) -> Agent:
    """Instrument `app` and return its Agent. Call before the server starts (middleware is added here).

    Registration with discovery happens when the server starts (lifespan startup, once the app's own
    startup has run); the lifespan's shutdown deregisters and flushes (bounded) after the app's own.
    Scrapes of /metrics are not traced (they would drown the traces of real requests).
    """
    agent = start(
        service,
        version,
        port=port,
        instance_id=instance_id,
        host=host,
        metadata=metadata,
        environ=environ,
        console=console,
        register=False,
        **overrides,
    )
    app.add_middleware(RedMiddleware, metrics=RedMetrics(agent.registry))
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=agent.tracer_provider, excluded_urls=METRICS_PATH, exclude_spans=["receive", "send"]
    )
    app.add_route(METRICS_PATH, metrics_endpoint(agent.registry), methods=["GET"], include_in_schema=False)
    original = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(inner: Any) -> AsyncIterator[Any]:
        async with original(inner) as state:
            await run_in_threadpool(agent.server_started)
            try:
                yield state
            finally:
                # Deregister and flush before the app's own shutdown closes what handlers use.
                await run_in_threadpool(agent.shutdown)

    app.router.lifespan_context = lifespan
    return agent
