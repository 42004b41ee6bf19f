"""The Loki HTTP API under /loki/api/v1 (PROTOCOLS.md §5), for Grafana's Loki datasource and Loki clients.

Push stores lines through the OTLP logs ingest path (codecs/loki_push.py); queries are LogQL evaluated by
query/logql over store/log_search.py. Handlers parse parameters, call one function and map the result or
error to Loki's answer: 400 with a text message for a bad query or parameter (and for bad push data),
413/415 for bodies, 429/503 with Retry-After when saturated or the store is down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from collector import __version__
from collector.api.loki_wire import (
    BadRequest,
    bad_request,
    bare_response,
    data_response,
    default_step_ns,
    metric_response,
    parse_direction,
    parse_duration_or_seconds,
    parse_limit,
    parse_time,
    streams_response,
)
from collector.codecs.compression import decompress
from collector.codecs.loki_push import decode_json, decode_protobuf
from collector.codecs.otlp_wire import PROTOBUF
from collector.errors import PermanentError, RetryableError
from collector.pipeline.ingest import Ingest
from collector.query.logql.ast import LogQuery, Matcher
from collector.query.logql.engine import LogQLEngine, QueryError
from collector.query.logql.parser import parse_selector
from collector.receivers.otlp_http import declared_size, read_body
from collector.store.engine import StoreUnavailable
from collector.store.log_search import LogSearch

T = TypeVar("T")
HOUR_NS = 3600 * 1_000_000_000
LABELS_LOOKBACK_NS = 6 * HOUR_NS  # labels, label values and series default to the last 6 h


async def _params(request: Request) -> dict[str, list[str]]:
    """Query string and, for a form POST, the form fields: every value of each name."""
    out: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        out.setdefault(key, []).append(value)
    if request.method == "POST" and "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        for key, value in parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True):
            out.setdefault(key, []).append(value)
    return out


def _one(params: dict[str, list[str]], name: str) -> str:
    values = params.get(name)
    return values[-1] if values else ""


def _range(params: dict[str, list[str]], lookback_ns: int) -> tuple[int, int]:
    """(start, end) in ns: end defaults to now, start to end - `since` or end - lookback."""
    end = parse_time(_one(params, "end"), time.time_ns(), "end")
    since = _one(params, "since")
    lookback = parse_duration_or_seconds(since, "since") if since else lookback_ns
    start = parse_time(_one(params, "start"), end - lookback, "start")
    if end < start:
        raise BadRequest("the end timestamp must not be before the start time")
    return start, end


def _matchers(text: str) -> tuple[Matcher, ...]:
    try:
        query = parse_selector(text)
    except Exception as exc:
        raise BadRequest(str(exc)) from None
    return query.matchers


class LokiAPI:
    def __init__(self, ingest: Ingest, search: LogSearch, max_body_bytes: int, max_entries: int = 100_000) -> None:
        self.ingest = ingest
        self.search = search
        self.engine = LogQLEngine(search, max_entries)
        self.max_body_bytes = max_body_bytes

    # Each of these runs on a worker thread: store reads block.

    def query_range(self, params: dict[str, list[str]]) -> Response:
        started = time.perf_counter()
        query = self.engine.parse(_one(params, "query"))
        start, end = _range(params, HOUR_NS)
        if isinstance(query, LogQuery):
            limit = parse_limit(_one(params, "limit"))
            result = self.engine.logs(query, start, end, limit, parse_direction(_one(params, "direction")))
            return streams_response(result, time.perf_counter() - started)
        step_text = _one(params, "step")
        step = parse_duration_or_seconds(step_text, "step") if step_text else default_step_ns(start, end)
        if step <= 0:
            raise BadRequest("zero or negative query resolution step widths are not accepted. Try a positive integer")
        return metric_response(self.engine.range(query, start, end, step), time.perf_counter() - started)

    def query(self, params: dict[str, list[str]]) -> Response:
        started = time.perf_counter()
        query = self.engine.parse(_one(params, "query"))
        at = parse_time(_one(params, "time"), time.time_ns(), "time")
        parse_direction(_one(params, "direction"))
        if isinstance(query, LogQuery):
            raise BadRequest(
                "log queries are not supported as an instant query type, please change your query to a range query type"
            )
        return metric_response(self.engine.instant(query, at), time.perf_counter() - started)

    def _streams(self, params: dict[str, list[str]], selectors: list[str]) -> list[dict[str, str]]:
        start, end = _range(params, LABELS_LOOKBACK_NS)
        if not selectors:
            return self.search.streams((), start, end)
        seen: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
        for text in selectors:
            for labels in self.search.streams(_matchers(text), start, end):
                seen.setdefault(tuple(sorted(labels.items())), labels)
        return list(seen.values())

    def labels(self, params: dict[str, list[str]]) -> Response:
        query = _one(params, "query")
        streams = self._streams(params, [query] if query else [])
        return data_response(sorted({name for labels in streams for name in labels}))

    def label_values(self, name: str, params: dict[str, list[str]]) -> Response:
        query = _one(params, "query")
        streams = self._streams(params, [query] if query else [])
        return data_response(sorted({labels[name] for labels in streams if name in labels}))

    def series(self, params: dict[str, list[str]]) -> Response:
        selectors = params.get("match[]") or params.get("match") or []
        if not selectors:
            raise BadRequest("at least one match[] argument is required")
        return data_response(self._streams(params, selectors))

    def index_stats(self, params: dict[str, list[str]]) -> Response:
        matchers = _matchers(_one(params, "query"))
        start, end = _range(params, HOUR_NS)
        stats = self.search.stats(matchers, start, end)
        # Chunks are a Loki storage detail; one per stream is the nearest meaning here.
        return bare_response(
            {"streams": stats.streams, "chunks": stats.streams, "entries": stats.entries, "bytes": stats.bytes}
        )

    async def push(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        encoding = request.headers.get("content-encoding", "")
        with self.ingest.admit("logs", "loki_push", declared_size(request, self.max_body_bytes)):
            raw = await read_body(request, self.max_body_bytes)
            if content_type in ("application/x-protobuf", "application/protobuf", ""):
                if encoding.lower() not in ("", "snappy"):
                    raw = decompress(raw, encoding, self.max_body_bytes)
                request_msg, entries = await _in_thread(decode_protobuf, raw, self.max_body_bytes)
            elif content_type == "application/json":
                body = decompress(raw, encoding, self.max_body_bytes)
                request_msg, entries = await _in_thread(decode_json, body)
            else:
                raise PermanentError(
                    f"unsupported Content-Type {content_type!r}: use application/json or application/x-protobuf",
                    status=415,
                )
            if not entries:
                return Response(status_code=204)
            result = await self.ingest.otlp("logs", "loki_push", request_msg.SerializeToString(), PROTOBUF)
        if result.rejected:
            return PlainTextResponse(f"{result.rejected} entries refused: {result.message}", 400)
        return Response(status_code=204)


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def _error(exc: Exception) -> Response:
    """The one table from failures to Loki's answers."""
    if isinstance(exc, BadRequest | QueryError):
        return bad_request(str(exc))
    if isinstance(exc, PermanentError):
        return PlainTextResponse(exc.message, exc.status)
    if isinstance(exc, RetryableError):
        return PlainTextResponse(exc.message, exc.status, headers={"Retry-After": str(max(1, round(exc.retry_after)))})
    if isinstance(exc, StoreUnavailable):
        return PlainTextResponse(f"store unavailable: {exc}", 503, headers={"Retry-After": "1"})
    raise exc


def loki_router(api: LokiAPI) -> APIRouter:
    router = APIRouter(tags=["loki"])
    prefix = "/loki/api/v1"

    async def answer(fn: Callable[..., Response], *args: Any) -> Response:
        try:
            return await _in_thread(fn, *args)
        except Exception as exc:
            return _error(exc)

    @router.post(f"{prefix}/push", summary="Loki push: JSON or snappy-compressed logproto.PushRequest")
    async def push(request: Request) -> Response:
        try:
            return await api.push(request)
        except Exception as exc:
            return _error(exc)

    @router.api_route(f"{prefix}/query_range", methods=["GET", "POST"], summary="LogQL over a time range")
    async def query_range(request: Request) -> Response:
        return await answer(api.query_range, await _params(request))

    @router.api_route(f"{prefix}/query", methods=["GET", "POST"], summary="LogQL metric query at one instant")
    async def query(request: Request) -> Response:
        return await answer(api.query, await _params(request))

    @router.get(f"{prefix}/labels", summary="Stream label names")
    @router.get(f"{prefix}/label", include_in_schema=False)
    async def labels(request: Request) -> Response:
        return await answer(api.labels, await _params(request))

    @router.get(f"{prefix}/label/{{name}}/values", summary="Values of one stream label")
    async def label_values(name: str, request: Request) -> Response:
        return await answer(api.label_values, name, await _params(request))

    @router.api_route(f"{prefix}/series", methods=["GET", "POST"], summary="Streams matching match[] selectors")
    async def series(request: Request) -> Response:
        return await answer(api.series, await _params(request))

    @router.get(f"{prefix}/index/stats", summary="Streams, chunks, entries and bytes a query would read")
    async def index_stats(request: Request) -> Response:
        return await answer(api.index_stats, await _params(request))

    @router.get(f"{prefix}/status/buildinfo", summary="Version information")
    async def buildinfo() -> Response:
        return bare_response(
            {
                "version": __version__,
                "revision": "",
                "branch": "",
                "buildUser": "",
                "buildDate": "",
                "goVersion": "",
            }
        )

    @router.get("/ready", include_in_schema=False)
    async def ready() -> Response:
        return PlainTextResponse("ready")

    return router
