"""RED metrics for an ASGI app: requests, duration and in-flight by route template, with trace exemplars.

`RedMiddleware` must run inside the OpenTelemetry server-span middleware so that the active span is
the request's: its trace and span ids become the exemplar of the request counter and the duration
histogram (exemplars show only in OpenMetrics output, as prometheus-client does it).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = ""  # the route label of a request no route matched


class RedMetrics:
    """The three RED metrics, registered in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "http_server_requests",
            "HTTP requests served, by route template, method and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "http_server_request_duration_seconds",
            "Time to serve an HTTP request (seconds), by route template, method and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "http_server_requests_in_flight",
            "HTTP requests being served, by route template and method",
            ["method", "route"],
            registry=registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request; the active span (if sampled) becomes the exemplar."""
        exemplar = current_exemplar()
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc(1, exemplar=exemplar)
        self.duration.labels(*labels).observe(seconds, exemplar=exemplar)


def current_exemplar() -> dict[str, str] | None:
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid or not ctx.trace_flags.sampled:
        return None
    return {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}


def route_template(routes: Iterable[BaseRoute], scope: Scope) -> str:
    """The path template of the route that serves `scope` (`/orders/{order_id}`), or "" when none does.

    A route that matches the path but not the method (a 405) still names the route.
    """
    partial = UNMATCHED
    for route in routes:
        match, _ = route.matches(scope)
        path = getattr(route, "path", None)
        if match == Match.FULL:
            return path if isinstance(path, str) else UNMATCHED
        if match == Match.PARTIAL and partial == UNMATCHED and isinstance(path, str):
            partial = path
    return partial


class RedMiddleware:
    """Pure ASGI middleware (no body buffering) recording RED metrics for every HTTP request."""

    def __init__(self, app: ASGIApp, metrics: RedMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        router: Any = scope["app"].router
        route = route_template(router.routes, scope)
        status = 500  # what the client gets if the app raises before answering
        in_flight = self.metrics.in_flight.labels(method, route)
        in_flight.inc()
        start = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            in_flight.dec()
            self.metrics.observe(method, route, status, time.perf_counter() - start)
