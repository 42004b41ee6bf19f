"""InfluxDB write API: v1 `POST /write`, v2 `POST /api/v2/write`, `/ping` and `/health`.

Answers as InfluxDB does (PROTOCOLS.md §2), so influxdb-client and Telegraf behave as with the real
thing: 204 on success; v1 writes every parsable line and reports the others as a `partial write`
400; v2 (as OSS 2.x) rejects the whole batch with 400 `invalid` when a line is malformed. Bad data is
never answered with 429/5xx (the clients would retry it forever); a saturated write path gets 503
with Retry-After. A point whose field type conflicts with the field's recorded type is dropped and
the rest written, answered as InfluxDB does (v1: 400 `partial write: field type conflict: ...`, ahead
of any parse error; v2: 422, see pipeline/field_types.py). Any database or bucket is accepted
(created on first write, as VictoriaMetrics does), and credentials are not checked yet.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from collector import __version__
from collector.codecs.compression import decompress
from collector.codecs.line_protocol import LineError
from collector.errors import PermanentError, RetryableError
from collector.pipeline.ingest import Ingest
from collector.receivers.otlp_http import declared_size, read_body

VERSION = f"observatory-{__version__}"
_V1_PRECISIONS = {"": "ns", "n": "ns", "ns": "ns", "u": "us", "us": "us", "ms": "ms", "s": "s", "m": "m", "h": "h"}
_V2_PRECISIONS = {"": "ns", "ns": "ns", "us": "us", "ms": "ms", "s": "s"}


def _headers() -> dict[str, str]:
    request_id = str(uuid.uuid4())
    return {
        "X-Influxdb-Version": VERSION,
        "X-Influxdb-Build": "OSS",
        "X-Request-Id": request_id,
        "Request-Id": request_id,
    }


def _v1_error(status: int, message: str, extra: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers={**_headers(), **(extra or {})})


def _v2_error(status: int, code: str, message: str, extra: dict[str, str] | None = None) -> Response:
    headers = {**_headers(), "X-Platform-Error-Code": code, **(extra or {})}
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def _first(errors: list[LineError]) -> str:
    e = errors[0]
    return f"unable to parse '{e.text}': {e.reason}"


def influx_router(ingest: Ingest, max_body_bytes: int) -> APIRouter:
    router = APIRouter(tags=["influx"])

    async def body_of(request: Request) -> bytes:
        raw = await read_body(request, max_body_bytes)
        return decompress(raw, request.headers.get("content-encoding", ""), max_body_bytes)

    @router.post("/write", summary="InfluxDB 1.x write (line protocol)")
    async def write_v1(request: Request, db: str = "", rp: str = "", precision: str = "") -> Response:
        if not db:
            return _v1_error(400, "database is required")
        if precision not in _V1_PRECISIONS:
            return _v1_error(400, f"invalid precision {precision!r}: use n, u, ms, s, m or h")
        try:
            with ingest.admit("metrics", "influx_v1", declared_size(request, max_body_bytes)):
                body = await body_of(request)
                if not body.strip():
                    return Response(status_code=200, headers=_headers())  # InfluxDB 1.x: an empty body is EOF
                labels = {"db": db} | ({"rp": rp} if rp else {})
                result = await ingest.influx("influx_v1", body, _V1_PRECISIONS[precision], labels, False)
        except PermanentError as exc:
            return _v1_error(exc.status, exc.message)
        except RetryableError as exc:
            retry = {"Retry-After": str(max(1, round(exc.retry_after)))}
            return _v1_error(503, "request throttled, queue full", retry)
        if result.conflicted_lines:  # InfluxDB 1.x answers a field type conflict ahead of the bad lines
            return _v1_error(400, f"partial write: {result.conflict_message} dropped={result.conflicted_lines}")
        if result.errors and result.lines:
            return _v1_error(400, f"partial write: {_first(result.errors)} dropped={len(result.errors)}")
        if result.errors:
            return _v1_error(400, _first(result.errors))
        if result.refused_samples:  # parsed, but refused by the series limits (InfluxDB: a field conflict)
            return _v1_error(400, f"partial write: {result.refused_message} dropped={result.refused_samples}")
        return Response(status_code=204, headers=_headers())

    @router.post("/api/v2/write", summary="InfluxDB 2.x write (line protocol)")
    async def write_v2(
        request: Request,
        bucket: str = "",
        org: str = "",
        orgID: str = "",
        precision: str = "",
    ) -> Response:
        if not bucket:
            return _v2_error(400, "invalid", "bucket is required")
        if not org and not orgID:
            return _v2_error(400, "invalid", "org or orgID is required")
        if precision not in _V2_PRECISIONS:
            return _v2_error(400, "invalid", f"invalid precision {precision!r}: use ns, us, ms or s")
        try:
            with ingest.admit("metrics", "influx_v2", declared_size(request, max_body_bytes)):
                body = await body_of(request)
                if not body.strip():
                    return Response(status_code=204, headers=_headers())
                result = await ingest.influx("influx_v2", body, _V2_PRECISIONS[precision], {"bucket": bucket}, True)
        except PermanentError as exc:
            code = "request too large" if exc.status == 413 else "invalid"
            return _v2_error(exc.status, code, exc.message)
        except RetryableError as exc:
            retry = {"Retry-After": str(max(1, round(exc.retry_after)))}
            return _v2_error(503, "unavailable", exc.message, retry)
        if result.errors:
            where = f"line {result.errors[0].line}"
            return _v2_error(400, "invalid", f"{_first(result.errors)} ({where}; {len(result.errors)} bad lines)")
        if result.conflicted_lines or result.refused_samples:  # as OSS 2.x answers schema conflicts: 422, the good
            # points written
            if result.conflicted_lines:
                reason, dropped = result.conflict_message, result.conflicted_lines
            else:
                reason, dropped = result.refused_message, result.refused_samples
            message = f"failure writing points to database: partial write: {reason}"
            return _v2_error(422, "unprocessable entity", f"{message} dropped={dropped}")
        return Response(status_code=204, headers=_headers())

    @router.api_route("/ping", methods=["GET", "HEAD"], summary="InfluxDB liveness probe")
    async def ping(verbose: str = "") -> Response:
        if verbose.lower() == "true":
            return JSONResponse({"version": VERSION}, headers=_headers())
        return Response(status_code=204, headers=_headers())

    @router.get("/health", summary="InfluxDB health")
    async def health() -> dict[str, Any]:
        return {
            "name": "influxdb",
            "message": "ready for queries and writes",
            "status": "pass",
            "checks": [],
            "version": VERSION,
            "commit": "observatory",
        }

    return router
