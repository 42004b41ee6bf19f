"""The discovery HTTP API (FastAPI): thin handlers over a `Registry`, per demo-services/README.md.

Each handler parses, calls one registry method, and maps the result or error to the wire:
`UnknownInstance` is 404, an invalid request 400 with the field at fault. Lookups carry the
registry version as an ETag so clients poll cheaply with If-None-Match.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from loguru import logger
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from pydantic import BaseModel, Field

from discovery.evictor import Evictor
from discovery.prometheus_sd import http_sd_groups
from discovery.registry import Instance, Registration, Registry, Status, UnknownInstance

# Names travel in URL paths, so they stay within one path segment.
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class RegistrationBody(BaseModel):
    service: str = Field(pattern=_NAME)
    instance_id: str = Field(pattern=_NAME)
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(ge=1, le=65535)
    status: Status = Status.UP
    metadata: dict[str, str] = Field(default_factory=dict)
    lease_seconds: int | None = Field(None, ge=1)
    # An extension to the contract: the client's heartbeat period, for self-preservation's expected rate.
    heartbeat_interval: float | None = Field(None, gt=0)


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _etag_matches(header: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: a list of (possibly weak) tags, or `*`."""
    if not header:
        return False
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def _versioned(request: Request, version: int, body: Callable[[], dict[str, Any]]) -> Response:
    etag = f'"{version}"'
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag})
    return JSONResponse(body(), headers={"ETag": etag})


def _instance(inst: Instance, status_code: int = 200) -> JSONResponse:
    return JSONResponse(inst.to_json(), status_code=status_code)


def create_app(registry: Registry, *, eviction_interval: float) -> FastAPI:
    """The registry API; its lifespan runs the eviction loop. /metrics is added by `serve_metrics`
    (or by an agent, into whose CollectorRegistry the composition root puts `RegistryCollector`)."""
    evictor = Evictor(registry, eviction_interval)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(evictor.run(), name="discovery-eviction")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(title="discovery", lifespan=lifespan)
    app.state.registry = registry
    app.state.evictor = evictor

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return _error(400, "invalid request: " + "; ".join(problems))

    @app.exception_handler(UnknownInstance)
    async def unknown_instance(_: Request, exc: UnknownInstance) -> JSONResponse:
        return _error(404, str(exc), service=exc.service, instance_id=exc.instance_id)

    @app.post("/v1/instances")
    async def register(body: RegistrationBody) -> JSONResponse:
        try:
            inst, created = registry.register(Registration(**body.model_dump()))
        except ValueError as exc:
            return _error(400, str(exc))
        verb = "registered" if created else "re-registered"
        logger.bind(
            instance_service=inst.service, instance_id=inst.instance_id, address=f"{inst.host}:{inst.port}"
        ).info("{} {}/{} at {}:{}", verb, inst.service, inst.instance_id, inst.host, inst.port)
        return _instance(inst, 201 if created else 200)

    @app.put("/v1/instances/{service}/{instance_id}/heartbeat")
    async def heartbeat(service: str, instance_id: str) -> JSONResponse:
        return _instance(registry.renew(service, instance_id))

    @app.put("/v1/instances/{service}/{instance_id}/status")
    async def set_status(service: str, instance_id: str, value: str) -> JSONResponse:
        try:
            status = Status(value)
        except ValueError:
            allowed = ", ".join(s.value for s in Status)
            return _error(400, f"invalid status {value!r}: use one of {allowed}")
        inst = registry.set_status(service, instance_id, status)
        logger.bind(instance_service=service, instance_id=instance_id, status=status.value).info(
            "status of {}/{} is {}", service, instance_id, status.value
        )
        return _instance(inst)

    @app.delete("/v1/instances/{service}/{instance_id}")
    async def deregister(service: str, instance_id: str) -> Response:
        registry.deregister(service, instance_id)
        logger.bind(instance_service=service, instance_id=instance_id).info("deregistered {}/{}", service, instance_id)
        return Response(status_code=204)

    @app.get("/v1/services")
    async def services(request: Request) -> Response:
        version, by_service = registry.snapshot()
        return _versioned(
            request,
            version,
            lambda: {
                "version": version,
                "services": {name: [i.to_json() for i in members] for name, members in by_service.items()},
            },
        )

    @app.get("/v1/services/{service}")
    async def service(service: str, request: Request) -> Response:
        version, members = registry.service(service)
        return _versioned(
            request,
            version,
            lambda: {"version": version, "service": service, "instances": [i.to_json() for i in members]},
        )

    @app.get("/sd/prometheus")
    async def prometheus_sd() -> JSONResponse:
        _, by_service = registry.snapshot()
        return JSONResponse(http_sd_groups(by_service), media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": registry.version, "self_preservation": registry.self_preservation_active}

    return app


def serve_metrics(app: FastAPI, metrics: CollectorRegistry) -> None:
    """GET /metrics for `metrics`: OpenMetrics or text 0.0.4 as the Accept header asks, gzip if asked."""

    @app.get("/metrics")
    def metrics_endpoint(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        body = encoder(metrics)
        headers = {"Content-Type": content_type}
        if "gzip" in request.headers.get("accept-encoding", ""):
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return Response(body, headers=headers)
