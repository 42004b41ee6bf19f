"""Tempo HTTP API under /tempo/api and /tempo/ready (PROTOCOLS §6), as Grafana's Tempo datasource calls it.

Trace by id answers OTLP `TracesData` protobuf to `Accept: application/protobuf` and protobuf-JSON
otherwise; search takes a TraceQL subset (`q`) or logfmt `tags`; tag names and values come in the v1
and v2 shapes. Errors are 400 with a text body saying what was wrong, 404 for unknown traces.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from collector import __version__
from collector.api.tempo_model import otlp_json_kv, trace_by_id_response, traces_data, traces_json
from collector.api.tempo_params import seconds_ns, tags_filter
from collector.api.trace_params import normalize_trace_id
from collector.errors import PermanentError
from collector.query.traceql.ast import INTRINSICS, SCOPED_INTRINSICS, Field, fields_of
from collector.query.traceql.durations import parse_go_duration
from collector.query.traceql.parser import parse
from collector.query.traceql.search import SearchRequest, TraceMatch, search
from collector.store.trace_search import StoredSpan, TraceSearch

T = TypeVar("T")

DEFAULT_LIMIT = 20
DEFAULT_SPSS = 3  # spans per spanset
PROTOBUF = "application/protobuf"
# The column behind each intrinsic's tag values, and whether only root spans count.
_INTRINSIC_COLUMNS = {
    "name": ("SpanName", False),
    "status": ("StatusCode", False),
    "kind": ("SpanKind", False),
    "rootServiceName": ("ServiceName", True),
    "rootName": ("SpanName", True),
}
# Stored type tags -> the value types of the v2 tag-values shape (other types are listed as strings).
_V2_TYPES = {"": "string", "int": "int", "double": "float", "bool": "bool"}


def _span_json(s: StoredSpan, fields: list[Field]) -> dict[str, Any]:
    """A spanset span: its id, name, times and the attributes the query used, plus service.name."""
    attrs = []
    seen = set()
    wanted = [Field("resource", "service.name"), *[f for f in fields if f.scope != "intrinsic"]]
    for f in wanted:
        pools = {"span": [s.attributes], "resource": [s.resource], "any": [s.attributes, s.resource]}[f.scope]
        for pool in pools:
            hit = next((a for a in pool if a[0] == f.name), None)
            if hit is not None:
                if hit[0] not in seen:
                    seen.add(hit[0])
                    attrs.append(otlp_json_kv(*hit))
                break
    return {
        "spanID": s.span_id,
        "name": s.name,
        "startTimeUnixNano": str(s.start_ns),
        "durationNanos": str(s.duration_ns),
        "attributes": attrs,
    }


def search_result(t: TraceMatch, fields: list[Field], spss: int) -> dict[str, Any]:
    spanset = {"spans": [_span_json(s, fields) for s in t.matched[:spss]], "matched": len(t.matched)}
    return {
        "traceID": t.trace_id,
        "rootServiceName": t.root_service or "<root span not yet received>",
        "rootTraceName": t.root_name,
        "startTimeUnixNano": str(t.start_ns),
        "durationMs": t.duration_ns // 1_000_000,
        "spanSet": spanset,
        "spanSets": [spanset],
    }


def _int(text: str, name: str, default: int) -> int:
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise PermanentError(f"{name}: {text!r} is not an integer", field=name) from None
    return value if value > 0 else default


def search_request(q: str, tags: str, min_d: str, max_d: str, limit: str, start: str, end: str) -> SearchRequest:
    return SearchRequest(
        filter=parse(q) if q.strip() else tags_filter(tags),
        start_ns=seconds_ns(start, "start"),
        end_ns=seconds_ns(end, "end"),
        min_trace_duration_ns=parse_go_duration(min_d, "minDuration") if min_d else 0,
        max_trace_duration_ns=parse_go_duration(max_d, "maxDuration") if max_d else 0,
        limit=_int(limit, "limit", DEFAULT_LIMIT),
    )


def _split_scoped(tag: str) -> tuple[str, str]:
    """`resource.service.name` -> ("resource", "service.name"); `.x` and `x` -> ("any", "x")."""
    tag = SCOPED_INTRINSICS.get(tag, tag)
    if tag in INTRINSICS:
        return "intrinsic", tag
    for scope in ("resource", "span"):
        if tag.startswith(scope + "."):
            return scope, tag[len(scope) + 1 :]
    return "any", tag.removeprefix(".")


def tempo_router(store: TraceSearch) -> APIRouter:
    router = APIRouter(prefix="/tempo", tags=["tempo"])

    async def run(fn: Callable[..., T], *args: Any) -> T:
        # Store reads block; keep the event loop (and ingest) going while they run.
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def trace_spans(trace_id: str) -> list[StoredSpan] | Response:
        try:
            tid = normalize_trace_id(trace_id, "traceID")
        except PermanentError as exc:
            return PlainTextResponse(exc.message, status_code=400)
        spans = await run(store.trace, tid)
        if not spans:
            return PlainTextResponse(f"trace not found: {tid}", status_code=404)
        return spans

    @router.get("/ready", summary="Readiness, as Tempo answers it")
    async def ready() -> PlainTextResponse:
        return PlainTextResponse("ready")

    @router.get("/api/echo", summary="Grafana's health check")
    async def echo() -> PlainTextResponse:
        return PlainTextResponse("echo")

    @router.get("/api/status/buildinfo", summary="Version information")
    async def buildinfo() -> dict[str, str]:
        return {"version": __version__, "revision": "", "branch": "", "buildDate": "", "buildUser": "", "goVersion": ""}

    @router.get("/api/traces/{trace_id}", summary="A trace as OTLP TracesData (protobuf on request, else JSON)")
    async def get_trace(trace_id: str, request: Request, start: str = "", end: str = "") -> Response:
        # start/end (Unix s) are accepted and not needed: the trace-id lookup table gives the time range.
        spans = await trace_spans(trace_id)
        if isinstance(spans, Response):
            return spans
        if PROTOBUF in request.headers.get("accept", ""):
            return Response(traces_data(spans).SerializeToString(), media_type=PROTOBUF)
        return JSONResponse(traces_json(spans))

    @router.get("/api/v2/traces/{trace_id}", summary="A trace wrapped as {trace: TracesData}")
    async def get_trace_v2(trace_id: str, request: Request, start: str = "", end: str = "") -> Response:
        spans = await trace_spans(trace_id)
        if isinstance(spans, Response):
            return spans
        if PROTOBUF in request.headers.get("accept", ""):
            return Response(trace_by_id_response(traces_data(spans)), media_type=PROTOBUF)
        return JSONResponse({"trace": traces_json(spans)})

    @router.get("/api/search", summary="Search traces with TraceQL (q) or logfmt tags")
    async def find(
        q: str = "",
        tags: str = "",
        minDuration: str = "",  # Tempo's names
        maxDuration: str = "",
        limit: str = "",
        start: str = "",
        end: str = "",
        spss: str = "",
    ) -> Response:
        began = time.monotonic()
        try:
            req = search_request(q, tags, minDuration, maxDuration, limit, start, end)
            per_set = _int(spss, "spss", DEFAULT_SPSS)
            found, inspected = await run(search, store, req)
        except PermanentError as exc:
            return PlainTextResponse(exc.message, status_code=400)
        fields = fields_of(req.filter)
        return JSONResponse(
            {
                "traces": [search_result(t, fields, per_set) for t in found],
                "metrics": {
                    "inspectedTraces": inspected,
                    "inspectedBytes": "0",
                    "totalBlocks": 0,
                    "completedJobs": 1,
                    "totalJobs": 1,
                    "elapsedMs": int((time.monotonic() - began) * 1000),
                },
            }
        )

    async def names(scope: str, start: str, end: str) -> list[str]:
        s, e = seconds_ns(start, "start"), seconds_ns(end, "end")
        if scope == "intrinsic":
            return list(INTRINSICS)
        return await run(store.tag_names, scope, s, e)

    @router.get("/api/search/tags", summary="Attribute names (v1 shape)")
    async def search_tags(scope: str = "", start: str = "", end: str = "") -> Response:
        try:
            if scope and scope not in ("span", "resource", "intrinsic"):
                raise PermanentError(f"scope: {scope!r} must be span, resource or intrinsic", field="scope")
            scopes = [scope] if scope else ["span", "resource"]
            found: set[str] = set()
            for sc in scopes:
                found.update(await names(sc, start, end))
        except PermanentError as exc:
            return PlainTextResponse(exc.message, status_code=400)
        return JSONResponse({"tagNames": sorted(found)})

    @router.get("/api/v2/search/tags", summary="Attribute names by scope (v2 shape)")
    async def search_tags_v2(scope: str = "", start: str = "", end: str = "") -> Response:
        try:
            if scope and scope not in ("span", "resource", "intrinsic", "all"):
                raise PermanentError(f"scope: {scope!r} must be span, resource, intrinsic or all", field="scope")
            scopes = [scope] if scope and scope != "all" else ["resource", "span", "intrinsic"]
            out = [{"name": sc, "tags": await names(sc, start, end)} for sc in scopes]
        except PermanentError as exc:
            return PlainTextResponse(exc.message, status_code=400)
        return JSONResponse({"scopes": out})

    async def typed_values(tag: str, start: str, end: str) -> list[dict[str, str]]:
        scope, name = _split_scoped(tag)
        s, e = seconds_ns(start, "start"), seconds_ns(end, "end")
        if scope == "intrinsic":
            if name not in _INTRINSIC_COLUMNS:
                return []
            column, roots_only = _INTRINSIC_COLUMNS[name]
            values = await run(store.intrinsic_values, column, s, e, 1000, roots_only)
            if name in ("status", "kind"):
                return [{"type": "keyword", "value": v.lower()} for v in values]
            return [{"type": "string", "value": v} for v in values]
        scopes = ["span", "resource"] if scope == "any" else [scope]
        seen: dict[tuple[str, str], None] = {}
        for sc in scopes:
            for text, ty in await run(store.tag_values, sc, name, s, e):
                seen[(_V2_TYPES.get(ty, "string"), text)] = None
        return [{"type": ty, "value": v} for ty, v in seen]

    @router.get("/api/search/tag/{tag}/values", summary="Values of an attribute (v1 shape: strings)")
    async def tag_values(tag: str, start: str = "", end: str = "") -> Response:
        try:
            values = await typed_values(tag, start, end)
        except PermanentError as exc:
            return PlainTextResponse(exc.message, status_code=400)
        return JSONResponse({"tagValues": sorted({v["value"] for v in values})})

    @router.get("/api/v2/search/tag/{tag}/values", summary="Values of a scoped attribute or intrinsic, typed (v2)")
    async def tag_values_v2(tag: str, start: str = "", end: str = "") -> Response:
        try:
            values = await typed_values(tag, start, end)
        except PermanentError as exc:
            return PlainTextResponse(exc.message, status_code=400)
        return JSONResponse({"tagValues": values})

    return router
