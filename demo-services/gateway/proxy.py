"""Forwards one client request: route, key, rate limit, body limit, then attempts on upstream instances.

Each attempt picks an instance with the route's balancer among those whose breaker admits requests and
that this request has not tried yet. A timeout, a connection failure or a status in the route's
`retry_on_status` is retried on another instance when the method may be repeated, attempts remain,
the route's deadline has not passed and the service's retry budget allows; otherwise the client gets
the upstream's answer, 502 (unreachable), 504 (timed out) or 503 (no instance, or every breaker open).
The upstream response is streamed back; the access log line is written when it has been sent.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from loguru import logger
from opentelemetry import trace
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.auth import WWW_AUTHENTICATE, KeyRing, presented_key
from gateway.balancer import Balancer, Outstanding, make_balancer
from gateway.breaker import BreakerBoard, State
from gateway.config import GatewaySettings, RouteSettings
from gateway.forwarding import client_response_headers, request_id, upstream_request_headers
from gateway.metrics import GatewayMetrics
from gateway.rate_limit import RateLimiter
from gateway.retry_budget import RetryBudget
from gateway.routes import RouteMatch, RouteTable
from gateway.upstreams import Instance, InstanceSource

Clock = Callable[[], float]


@dataclass
class Exchange:
    """What the access log says about one client request; filled in as the request goes."""

    method: str
    path: str
    trace_id: str
    request_id: str
    started: float
    route: str = ""
    status: int = 0
    upstream: str = ""
    attempts: int = 0

    def log(self, now: float) -> None:
        logger.bind(
            method=self.method,
            path=self.path,
            route=self.route,
            status=self.status,
            duration_ms=round((now - self.started) * 1000, 1),
            upstream=self.upstream,
            attempts=self.attempts,
            trace_id=self.trace_id,
            request_id=self.request_id,
        ).info("{} {} -> {}", self.method, self.path, self.status)


class UpstreamResponse(StreamingResponse):
    """Streams an upstream response's raw body back; `on_close` runs however the send ends."""

    def __init__(self, upstream: httpx.Response, on_close: Callable[[], Awaitable[None]]) -> None:
        super().__init__(upstream.aiter_raw(), status_code=upstream.status_code)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in upstream.headers.raw]
        self.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in client_response_headers(headers)]
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._on_close()


@dataclass
class _Failure:
    """A failed attempt kept until the retry decision: its reason and, for a bad status, the open response."""

    reason: str  # connect_error, timeout, reset, status_<code>
    instance_id: str
    response: httpx.Response | None = None
    close: Callable[[], Awaitable[None]] | None = field(default=None, repr=False)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


def current_trace_id() -> str:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else ""


class Proxy:
    def __init__(
        self,
        settings: GatewaySettings,
        source: InstanceSource,
        client: httpx.AsyncClient,
        metrics: GatewayMetrics | None = None,
        *,
        breakers: BreakerBoard,
        clock: Clock = time.monotonic,
    ) -> None:
        self.settings = settings
        self.table = RouteTable(settings.routes)
        self.keys = KeyRing(settings.keys)
        self.limiter = RateLimiter(clock)
        self.outstanding = Outstanding()
        self.breakers = breakers
        self._source = source
        self._client = client
        self._metrics = metrics
        self._clock = clock
        self._balancers: dict[str, Balancer] = {
            r.name: make_balancer(r.balancer, self.outstanding) for r in settings.routes
        }
        self._budgets: dict[str, RetryBudget] = {}

    async def handle(self, request: Request) -> Response:
        raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        ex = Exchange(request.method, request.url.path, current_trace_id(), request_id(raw), self._clock())
        response = await self._handle(request, raw, ex)
        response.headers["X-Request-Id"] = ex.request_id
        ex.status = response.status_code
        if not isinstance(response, UpstreamResponse):
            ex.log(self._clock())
        return response

    async def _handle(self, request: Request, raw: list[tuple[str, str]], ex: Exchange) -> Response:
        match = self.table.match(request.url.path)
        if match is None:
            return error_response(404, f"no route for {request.url.path}")
        route = match.route
        ex.route = route.name
        auth = self.keys.check(presented_key(request.headers), route.name)
        if auth.failure is not None:
            if self._metrics:
                self._metrics.auth_failures.labels(auth.failure.value).inc()
            messages = {
                "missing": "an API key is required (X-API-Key or Authorization: Bearer)",
                "invalid": "unknown API key",
                "forbidden": f"this API key may not use route {route.name!r}",
            }
            challenge = {"WWW-Authenticate": WWW_AUTHENTICATE} if auth.status == 401 else None
            return error_response(auth.status, messages[auth.failure.value], challenge)
        assert auth.key is not None
        decision = self.limiter.take(auth.key.name, auth.key.rate, auth.key.burst)
        limit_headers = decision.headers()
        if not decision.allowed:
            if self._metrics:
                self._metrics.rate_limited.labels(auth.key.name).inc()
            return error_response(429, f"rate limit of {auth.key.rate:g}/s exceeded", limit_headers)
        limit = self.settings.body_limit(route)
        body = await read_body(request, limit)
        if body is None:
            return error_response(413, f"request body larger than {limit} bytes", limit_headers)
        headers = upstream_request_headers(
            raw,
            client_host=request.client.host if request.client else None,
            scheme=request.url.scheme,
            host=request.headers.get("host"),
            req_id=ex.request_id,
        )
        response = await self._forward(request.method, match, request.url.query, headers, body, ex)
        response.headers.update(limit_headers)
        return response

    async def _forward(
        self, method: str, match: RouteMatch, query: str, headers: list[tuple[str, str]], body: bytes, ex: Exchange
    ) -> Response:
        route = match.route
        service = route.service
        budget = self._budgets.get(service)
        if budget is None:
            budget = self._budgets[service] = RetryBudget(self.settings.retry_budget, self._clock)
        budget.record_request()
        may_retry = method in route.methods_retried()
        deadline = self._clock() + route.timeout
        target = match.upstream_path + (f"?{query}" if query else "")
        content = body if body or method in ("POST", "PUT", "PATCH") else None
        tried: set[str] = set()
        failure: _Failure | None = None
        while True:
            instances = {i.instance_id: i for i in self._source.instances(service)}
            self.breakers.retain(service, instances)
            candidates = sorted(i for i in instances if i not in tried and self.breakers.get(service, i).available())
            if failure is not None:
                if not may_retry or ex.attempts > route.retries or self._clock() >= deadline or not candidates:
                    return self._give_up(failure, ex)
                if not budget.try_withdraw():
                    if self._metrics:
                        self._metrics.retry_budget_exhausted.inc()
                    return self._give_up(failure, ex)
                if self._metrics:
                    self._metrics.retries.labels(service, failure.reason).inc()
                if failure.close is not None:
                    await failure.close()
            elif not instances:
                return error_response(503, f"no instance of {service} is registered", {"Retry-After": "1"})
            elif not candidates:
                wait = min(self.breakers.get(service, i).retry_after() for i in instances)
                return error_response(
                    503,
                    f"every instance of {service} is failing (circuit open)",
                    {"Retry-After": str(max(1, math.ceil(wait)))},
                )
            instance_id = self._balancers[route.name].choose(candidates)
            tried.add(instance_id)
            ex.attempts += 1
            ex.upstream = instance_id
            result = await self._attempt(route, instances[instance_id], method, target, headers, content, deadline, ex)
            if isinstance(result, Response):
                return result
            failure = result

    async def _attempt(
        self,
        route: RouteSettings,
        instance: Instance,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        content: bytes | None,
        deadline: float,
        ex: Exchange,
    ) -> Response | _Failure:
        service, instance_id = route.service, instance.instance_id
        breaker = self.breakers.get(service, instance_id)
        probe = breaker.acquire()
        if probe is None:  # cannot happen: candidates were available a moment ago, in this same task
            probe = False
        started = self._clock()
        timeout = max(0.001, min(route.per_try_timeout or route.timeout, deadline - started))
        request = self._client.build_request(
            method, instance.base_url + target, headers=headers, content=content, timeout=httpx.Timeout(timeout)
        )
        self.outstanding.acquire(instance_id)
        reason: str | None = None
        try:
            async with asyncio.timeout(timeout):
                upstream = await self._client.send(request, stream=True)
        except (TimeoutError, httpx.TimeoutException):
            reason = "timeout"
        except httpx.ConnectError:
            reason = "connect_error"
        except httpx.TransportError:
            reason = "reset"
        except BaseException:
            self.outstanding.release(instance_id)
            breaker.release(probe)
            raise
        elapsed = self._clock() - started
        if self._metrics:
            self._metrics.upstream_duration.labels(service, instance_id).observe(elapsed)
        if reason is not None:
            self.outstanding.release(instance_id)
            breaker.record(False, probe)
            if self._metrics:
                self._metrics.upstream_requests.labels(service, instance_id, reason).inc()
            return _Failure(reason, instance_id)
        if self._metrics:
            self._metrics.upstream_requests.labels(service, instance_id, str(upstream.status_code)).inc()
        # Passive health: any 5xx counts against the instance, retried or not.
        breaker.record(upstream.status_code < 500, probe)

        async def close() -> None:
            try:
                await upstream.aclose()
            finally:
                self.outstanding.release(instance_id)

        if upstream.status_code in route.retry_on_status:
            return _Failure(f"status_{upstream.status_code}", instance_id, upstream, close)
        return self._stream(upstream, close, ex)

    def _stream(self, upstream: httpx.Response, close: Callable[[], Awaitable[None]], ex: Exchange) -> Response:
        async def on_close() -> None:
            await close()
            ex.log(self._clock())

        return UpstreamResponse(upstream, on_close)

    def _give_up(self, failure: _Failure, ex: Exchange) -> Response:
        """What the client gets after the last attempt: its upstream response, or 504 / 502."""
        if failure.response is not None and failure.close is not None:
            return self._stream(failure.response, failure.close, ex)
        if failure.reason == "timeout":
            return error_response(504, f"upstream {failure.instance_id} did not answer in time")
        return error_response(502, f"upstream {failure.instance_id} failed: {failure.reason}")


def breaker_listener(service: str, instance_id: str, old: State, new: State) -> None:
    """Logs breaker transitions (the BreakerBoard listener the app wires in)."""
    logger.bind(upstream=service, instance=instance_id, old=old.name, new=new.name).warning(
        "circuit breaker for {}/{}: {} -> {}", service, instance_id, old.name.lower(), new.name.lower()
    )


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it is larger than `limit` bytes (read no further than that)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
