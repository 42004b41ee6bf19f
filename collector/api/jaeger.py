"""Jaeger query API under /jaeger/api (PROTOCOLS §6), as Grafana's Jaeger datasource and Jaeger UI call it.

Every answer is the Jaeger envelope {"data", "total", "limit", "offset", "errors"}; an error is the HTTP
status plus the same envelope with data null and errors [{code, msg}]. Times are microseconds (trace
search start/end) or milliseconds (dependencies endTs/lookback), as Jaeger defines them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from collector.api.jaeger_model import jaeger_trace
from collector.api.trace_params import normalize_trace_id
from collector.errors import PermanentError
from collector.query.traceql.durations import parse_go_duration
from collector.store.trace_search import SpanFilter, TraceSearch

T = TypeVar("T")

DEFAULT_LOOKBACK_NS = 2 * 86400 * 10**9  # Jaeger UI's default search window when start is missing
DEFAULT_DEPENDENCY_LOOKBACK_MS = 86400 * 1000
DEFAULT_LIMIT = 100
_KINDS = {
    "internal": "Internal",
    "server": "Server",
    "client": "Client",
    "producer": "Producer",
    "consumer": "Consumer",
}
_STATUS = {"error": "Error", "ok": "Ok", "unset": "Unset"}


def envelope(data: Any, status: int = 200, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    total = len(data) if isinstance(data, list) else 0
    body = {"data": data, "total": total, "limit": 0, "offset": 0, "errors": errors}
    return JSONResponse(body, status_code=status)


def error(status: int, msg: str) -> JSONResponse:
    return envelope(None, status, [{"code": status, "msg": msg}])


def parse_lookback_ns(text: str) -> int:
    """Jaeger UI's lookback ("1h", "2d", "custom"); days are not a Go unit, so they are read here."""
    if not text or text == "custom":
        return DEFAULT_LOOKBACK_NS
    if text.endswith("d") and text[:-1].isdigit():
        return int(text[:-1]) * 86400 * 10**9
    return parse_go_duration(text, "lookback")


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise PermanentError(f"{name}: {text!r} is not an integer", field=name) from None


def search_tags(tags_json: str, tag: list[str]) -> list[tuple[str, str]]:
    """Tag conditions from the JSON map `tags` and the repeated `tag=key:value`, in that order."""
    pairs: list[tuple[str, str]] = []
    if tags_json:
        try:
            parsed = json.loads(tags_json)
        except json.JSONDecodeError as exc:
            raise PermanentError(f"tags: not a JSON object: {exc}", field="tags") from None
        if not isinstance(parsed, dict):
            raise PermanentError("tags: must be a JSON object of key to value", field="tags")
        pairs.extend((str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in parsed.items())
    for item in tag:
        key, sep, value = item.partition(":")
        if not sep or not key:
            raise PermanentError(f"tag: {item!r} must be key:value", field="tag")
        pairs.append((key, value))
    return pairs


def span_filter(
    service: str,
    operation: str,
    tags: list[tuple[str, str]],
    start_us: str,
    end_us: str,
    lookback: str,
    min_duration: str,
    max_duration: str,
    limit: str,
    now_ns: int,
) -> SpanFilter:
    """A SpanFilter from Jaeger search parameters. The tags that Jaeger synthesizes from OTLP fields
    (span.kind, otel.status_code, error) become conditions on those fields, not on attributes."""
    f = SpanFilter(service=service, operation=operation)
    for key, value in tags:
        if key == "span.kind" and value.lower() in _KINDS:
            f.kind = _KINDS[value.lower()]
        elif key == "otel.status_code" and value.lower() in _STATUS:
            f.status = _STATUS[value.lower()]
        elif key == "error" and value.lower() == "true":
            f.status = "Error"
        else:
            f.attributes.append((key, value))
    f.end_ns = _int(end_us, "end") * 1000 if end_us else now_ns
    f.start_ns = _int(start_us, "start") * 1000 if start_us else f.end_ns - parse_lookback_ns(lookback)
    if min_duration:
        f.min_duration_ns = parse_go_duration(min_duration, "minDuration")
    if max_duration:
        f.max_duration_ns = parse_go_duration(max_duration, "maxDuration")
    f.limit = _int(limit, "limit") if limit else DEFAULT_LIMIT
    if f.limit <= 0:
        f.limit = DEFAULT_LIMIT
    return f


def jaeger_router(search: TraceSearch) -> APIRouter:
    router = APIRouter(prefix="/jaeger/api", tags=["jaeger"])

    async def run(fn: Callable[..., T], *args: Any) -> T:
        # Store reads block; keep the event loop (and ingest) going while they run.
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    @router.get("/services", summary="Services that sent spans (Grafana's health check needs one)")
    async def services() -> JSONResponse:
        return envelope(await run(search.services))

    @router.get("/services/{service}/operations", summary="Span names of a service")
    async def service_operations(service: str) -> JSONResponse:
        ops = await run(search.operations, service)
        return envelope(sorted({name for name, _ in ops}))

    @router.get("/operations", summary="Span names and kinds of a service")
    async def operations(service: str = "", spanKind: str = "") -> JSONResponse:  # Jaeger's name
        if not service:
            return error(400, "parameter 'service' is required")
        kind = _KINDS.get(spanKind.lower(), "") if spanKind else ""
        if spanKind and not kind:
            return error(400, f"spanKind: {spanKind!r} is not one of {', '.join(_KINDS)}")
        ops = await run(search.operations, service, kind)
        data = [{"name": name, "spanKind": k.lower() if k in _KINDS.values() else ""} for name, k in ops]
        return envelope(data)

    @router.get("/traces", summary="Search traces; a trace matches when one span meets every condition")
    async def find_traces(
        service: str = "",
        operation: str = "",
        tags: str = "",
        tag: Annotated[list[str] | None, Query()] = None,
        start: str = "",
        end: str = "",
        lookback: str = "",
        minDuration: str = "",  # Jaeger's names
        maxDuration: str = "",
        limit: str = "",
        traceID: Annotated[list[str] | None, Query()] = None,
    ) -> JSONResponse:
        try:
            if traceID:
                ids = [normalize_trace_id(t) for t in traceID]
            else:
                if not service:
                    return error(400, "parameter 'service' is required")
                f = span_filter(
                    service,
                    operation,
                    search_tags(tags, tag or []),
                    start,
                    end,
                    lookback,
                    minDuration,
                    maxDuration,
                    limit,
                    time.time_ns(),
                )
                ids = await run(search.find_trace_ids, f)
        except PermanentError as exc:
            return error(400, exc.message)
        found = await run(search.traces, ids)
        return envelope([jaeger_trace(found[t]) for t in ids if t in found])

    @router.get("/traces/{trace_id}", summary="One trace by id")
    async def get_trace(trace_id: str) -> JSONResponse:
        try:
            tid = normalize_trace_id(trace_id)
        except PermanentError as exc:
            return error(400, exc.message)
        spans = await run(search.trace, tid)
        if not spans:
            return error(404, "trace not found")
        return envelope([jaeger_trace(spans)])

    @router.get("/dependencies", summary="Calls between services: the service graph's client/server span pairs")
    async def dependencies(endTs: str = "", lookback: str = "") -> JSONResponse:
        try:
            end_ms = _int(endTs, "endTs") if endTs else time.time_ns() // 10**6
            back_ms = _int(lookback, "lookback") if lookback else DEFAULT_DEPENDENCY_LOOKBACK_MS
        except PermanentError as exc:
            return error(400, exc.message)
        edges = await run(search.dependencies, (end_ms - back_ms) * 10**6, end_ms * 10**6)
        return envelope([{"parent": p, "child": c, "callCount": n} for p, c, n in edges])

    return router
