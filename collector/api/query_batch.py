"""Many PromQL instant queries at one time in one request: `POST /api/obs/query_batch` (rule evaluation).

Request, JSON: `{"time": <Unix seconds, number>, "queries": ["expr", ...], "timeout": "30s"}` (timeout
optional, a Prometheus duration or seconds; it bounds the whole batch, queueing included, and never
exceeds `query.timeout`). At most MAX_QUERIES queries.

Answer, 200: `{"status": "success", "data": {"results": [...]}}`, one result per query in order, each
exactly the body `/api/v1/query?query=<expr>&time=<time>` would answer: `{"status": "success", "data":
{"resultType", "result"}, "warnings"?, "infos"?}`, or `{"status": "error", "errorType": "bad_data" |
"execution" | "timeout" | "canceled" | "internal" | "unavailable", "error": "..."}` for that query alone
(a parse error reads `invalid parameter "query": ...`, as there).

Errors of the whole request use the Prometheus envelope `{"status": "error", "errorType", "error"}`:
400 bad_data (not JSON, a missing or mistyped field, too many queries), 503 with Retry-After when the
query concurrency limit (`query.max_concurrency`, shared with /api/v1/query) stays full for the whole
timeout or the store is unavailable, 503 timeout when evaluation outlasts it.

The batch takes one slot of the query limit; its queries are evaluated one after another over one read
of the metrics they name (Engine.instant_many, query/promql/batch.py).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from fastapi import APIRouter, Request, Response

from collector.api import prom_params as params
from collector.api.prom_queries import QueryRunner
from collector.api.prom_wire import RETRY_AFTER_S, ApiError, PromJSON, error, result_json
from collector.query.promql.errors import PromQLError
from collector.query.promql.values import QueryResult
from collector.store.engine import StoreUnavailable

log = logging.getLogger("observatory.query_batch")

# Queries per request: a rule group is rarely past a few hundred rules; Prometheus has no such API, so
# the bound is ours (a body of MAX_QUERIES long expressions stays a few MB).
MAX_QUERIES = 10_000
QUEUE_TIMEOUT = "query timed out in query queue"


@runtime_checkable
class BatchEngine(Protocol):
    """What this API needs of the PromQL engine: Engine.instant_many. Times in milliseconds."""

    def instant_many(
        self, queries: Sequence[str], time_ms: int, *, timeout_s: float | None = None
    ) -> list[QueryResult | PromQLError]: ...


@dataclass(frozen=True)
class BatchRequest:
    time_ms: int
    queries: list[str]
    timeout_s: float | None


def parse_request(body: bytes, max_queries: int = MAX_QUERIES) -> BatchRequest:
    """The request body, or ApiError(bad_data) saying which field is wrong."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError("bad_data", f"request body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ApiError("bad_data", "request body must be a JSON object")
    at = doc.get("time")
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
        raise ApiError("bad_data", 'invalid parameter "time": a Unix time in seconds (a number) is required')
    queries = doc.get("queries")
    if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
        raise ApiError("bad_data", 'invalid parameter "queries": a list of PromQL expressions (strings) is required')
    if len(queries) > max_queries:
        raise ApiError("bad_data", f'invalid parameter "queries": {len(queries)} queries, at most {max_queries}')
    timeout = doc.get("timeout")
    timeout_s = None
    if timeout is not None:
        if not isinstance(timeout, str | int | float) or isinstance(timeout, bool):
            raise ApiError("bad_data", 'invalid parameter "timeout": a duration such as "30s" is required')
        timeout_s = params.parse_duration(str(timeout), "timeout") / 1000
    return BatchRequest(params.parse_time(repr(at), "time"), queries, timeout_s)


def query_body(outcome: QueryResult | PromQLError) -> str:
    """One query's answer as JSON text, the body /api/v1/query would give it."""
    if isinstance(outcome, PromQLError):
        message = outcome.message
        if outcome.error_type == "bad_data" and not message.startswith("invalid parameter"):
            message = f'invalid parameter "query": {message}'
        return json.dumps({"status": "error", "errorType": outcome.error_type, "error": message}, ensure_ascii=False)
    extra = "".join(
        f',"{key}":{json.dumps(items, ensure_ascii=False)}'
        for key, items in (("warnings", outcome.warnings), ("infos", outcome.infos))
        if items
    )
    return f'{{"status":"success","data":{result_json(outcome)}{extra}}}'


def batch_body(outcomes: Sequence[QueryResult | PromQLError]) -> bytes:
    return ('{"status":"success","data":{"results":[' + ",".join(map(query_body, outcomes)) + "]}}").encode()


def query_batch_router(runner: QueryRunner | None, max_queries: int = MAX_QUERIES) -> APIRouter:
    """The endpoint over the Prometheus API's query runner: its engine and its concurrency limit. An engine
    without instant_many, or no runner, answers 503 unavailable."""
    router = APIRouter(prefix="/api/obs", tags=["native"])
    engine = runner.engine if runner is not None and isinstance(runner.engine, BatchEngine) else None

    @router.post("/query_batch", summary="Many PromQL instant queries at one time", response_class=Response)
    async def query_batch(request: Request) -> Response:
        try:
            req = parse_request(await request.body(), max_queries)
            if runner is None or engine is None:
                raise ApiError("unavailable", "the PromQL engine is not available in this build")
            outcomes = await runner.run(
                lambda: engine.instant_many(req.queries, req.time_ms, timeout_s=req.timeout_s), req.timeout_s
            )
        except ApiError as exc:
            if exc.message == QUEUE_TIMEOUT:  # the limit stayed full: overload, worth retrying later
                return _retryable(error("timeout", exc.message))
            return error(exc.error_type, exc.message)
        except StoreUnavailable as exc:
            return error("unavailable", f"store unavailable: {exc}")
        except Exception as exc:
            log.exception("query batch failed")
            return error("internal", str(exc) or type(exc).__name__)
        return Response(batch_body(outcomes), media_type="application/json")

    return router


def _retryable(response: PromJSON) -> PromJSON:
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


__all__ = ["MAX_QUERIES", "BatchEngine", "parse_request", "query_batch_router"]
