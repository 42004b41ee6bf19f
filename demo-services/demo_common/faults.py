"""Fault injection for the business services: the typed fault settings, the injector and its admin API.

`PUT /admin/faults` replaces the whole setting (fields left out take their defaults, so
`{"error_rate": 1.0}` means "only that fault"); `DELETE /admin/faults` resets; `GET` shows it. The
middleware applies the faults to every route outside `/admin/`, `/metrics`, `/healthz` and `/readyz`,
so a faulty service can still be observed and repaired.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Response
from loguru import logger
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

EXEMPT_PREFIXES = ("/admin/", "/metrics", "/healthz", "/readyz")
CRASH_EXIT_CODE = 1


class FaultConfig(BaseModel):
    """What to inject. Durations in milliseconds; `error_rate` is a probability per request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: int = Field(default=0, ge=0, le=60_000, description="added to every request")
    latency_jitter_ms: int = Field(default=0, ge=0, le=60_000, description="plus a uniform random 0..jitter")
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="share of requests answered with error_status")
    error_status: int = Field(default=500, ge=400, le=599, description="the status of an injected error")
    dependency_timeout: bool = Field(default=False, description="outgoing calls stall until their timeout expires")
    crash: bool = Field(default=False, description="the process exits with code 1 after answering the next request")
    memory_leak_kb_per_s: int = Field(default=0, ge=0, le=100_000, description="a background task keeps this much more")

    @property
    def active(self) -> bool:
        return self != FaultConfig()


class FaultInjector:
    """Holds the current faults, the leaked memory, and what happens on a crash.

    `on_crash` runs (bounded by the caller) before the process exits, so a crash can flush telemetry.
    """

    def __init__(self, service: str, on_crash: Callable[[], object] | None = None, rng: random.Random | None = None):
        self.service = service
        self.config = FaultConfig()
        self.on_crash = on_crash
        self._rng = rng or random.Random()
        self._leak: list[bytearray] = []
        self._leak_task: asyncio.Task[None] | None = None
        self._crashing = False

    @property
    def leaked_bytes(self) -> int:
        return sum(len(chunk) for chunk in self._leak)

    def set(self, config: FaultConfig) -> FaultConfig:
        """Replace the faults; starts or stops the memory leak task (must run on the event loop)."""
        previous, self.config = self.config, config
        if config.active:
            logger.bind(faults=config.model_dump(exclude_defaults=True)).warning("faults injected")
        elif previous.active:
            logger.info("faults cleared")
        if config.memory_leak_kb_per_s and self._leak_task is None:
            self._leak_task = asyncio.get_running_loop().create_task(self._grow())
        elif not config.memory_leak_kb_per_s and self._leak_task is not None:
            self._leak_task.cancel()
            self._leak_task = None
        return config

    def reset(self) -> FaultConfig:
        """No faults, and the leaked memory is given back."""
        config = self.set(FaultConfig())
        self._leak.clear()
        return config

    def delay_seconds(self) -> float:
        cfg = self.config
        jitter = self._rng.uniform(0, cfg.latency_jitter_ms) if cfg.latency_jitter_ms else 0.0
        return (cfg.latency_ms + jitter) / 1000

    def should_fail(self) -> bool:
        rate = self.config.error_rate
        return rate >= 1.0 or (rate > 0 and self._rng.random() < rate)

    async def _grow(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            kb = self.config.memory_leak_kb_per_s
            # Touch every page (bytearray is zero-filled) so the memory is resident, not just reserved.
            self._leak.append(bytearray(b"x" * (kb * 1024)))
            logger.bind(leaked_bytes=self.leaked_bytes).debug("memory leak grew")

    def crash_soon(self) -> None:
        """Exit with code 1 shortly, after the response in flight has gone out (once)."""
        if self._crashing:
            return
        self._crashing = True
        logger.bind(exit_code=CRASH_EXIT_CODE).critical("crash fault: the process exits")
        threading.Thread(target=self._exit, name="fault-crash", daemon=True).start()

    def _exit(self) -> None:
        # Let the event loop write the response first; then flush what we can, then die without cleanup
        # as a crashing process does.
        threading.Event().wait(0.2)
        if self.on_crash is not None:
            flusher = threading.Thread(target=self.on_crash, daemon=True)
            flusher.start()
            flusher.join(timeout=2.0)
        os._exit(CRASH_EXIT_CODE)


class FaultMiddleware:
    """ASGI middleware applying the injector's faults to non-admin HTTP requests."""

    def __init__(self, app: ASGIApp, injector: FaultInjector) -> None:
        self.app = app
        self.injector = injector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        injector, cfg = self.injector, self.injector.config
        delay = injector.delay_seconds()
        span = trace.get_current_span()
        if delay > 0:
            span.set_attribute("fault.latency_ms", round(delay * 1000, 1))
            await asyncio.sleep(delay)
        if injector.should_fail():
            await self._inject_error(scope, send, cfg.error_status)
        else:
            await self.app(scope, receive, send)
        if cfg.crash:
            injector.crash_soon()

    async def _inject_error(self, scope: Scope, send: Send, status: int) -> None:
        span = trace.get_current_span()
        span.set_attribute("fault.injected", "error")
        span.set_status(Status(StatusCode.ERROR, f"injected fault: HTTP {status}"))
        logger.bind(status=status, method=scope.get("method"), path=scope.get("path")).error(
            "injected error fault answered {}", status
        )
        body = json.dumps({"error": "injected_fault", "status": status, "service": self.injector.service}).encode()
        start: Message = {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
        await send(start)
        await send({"type": "http.response.body", "body": body})


def fault_router(injector: FaultInjector) -> APIRouter:
    """`GET`, `PUT` and `DELETE /admin/faults`."""
    router = APIRouter(prefix="/admin", tags=["admin"])

    @router.get("/faults")
    async def get_faults() -> dict[str, Any]:
        return injector.config.model_dump()

    @router.put("/faults")
    async def put_faults(config: FaultConfig) -> dict[str, Any]:
        return injector.set(config).model_dump()

    @router.delete("/faults")
    async def delete_faults() -> Response:
        injector.reset()
        return Response(status_code=204)

    return router
