"""OTLP/HTTP receiver: POST /v1/traces, /v1/metrics, /v1/logs in protobuf or JSON.

Status codes follow the OTLP spec: 200 (with partial_success when some items were rejected), 400 for
data that can never be accepted, 413 over the size limit, 415 for an unknown content type, 429 with
Retry-After when the write path is saturated, 503 when the store is unavailable. Error bodies are
google.rpc.Status in the request's encoding.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from google.rpc import code_pb2

from collector.codecs.compression import decompress
from collector.codecs.otlp_wire import (
    JSON,
    PROTOBUF,
    grpc_code_for_http,
    media_type,
    status_body,
    success_body,
)
from collector.errors import PermanentError, RetryableError
from collector.pipeline.ingest import Ingest

log = logging.getLogger("observatory.receivers.otlp_http")

_ENCODINGS = {"application/x-protobuf": PROTOBUF, "application/protobuf": PROTOBUF, "application/json": JSON}


def declared_size(request: Request, limit: int) -> int:
    """The body size a request announces (capped at the limit; 0 when chunked), for admission
    before any of it is read: a saturated collector refuses without buffering the body first."""
    declared = request.headers.get("content-length", "")
    return min(int(declared), limit) if declared.isdigit() else 0


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) as soon as more than `limit` bytes arrive."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PermanentError(
            f"request body of {declared} bytes is larger than the limit of {limit} bytes",
            status=413,
            reason="too_large",
        )
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise PermanentError(
                f"request body is larger than the limit of {limit} bytes", status=413, reason="too_large"
            )
    return bytes(chunks)


def otlp_router(ingest: Ingest, max_body_bytes: int) -> APIRouter:
    router = APIRouter()

    async def handle(signal: str, request: Request) -> Response:
        encoding = _ENCODINGS.get(media_type(request.headers.get("content-type", "")), "")
        reply_type = "application/json" if encoding == JSON else "application/x-protobuf"
        try:
            if not encoding:
                raise PermanentError(
                    f"unsupported Content-Type {request.headers.get('content-type', '')!r}: "
                    "use application/x-protobuf or application/json",
                    status=415,
                    reason="content_type",
                )
            with ingest.admit(signal, "http", declared_size(request, max_body_bytes)):
                raw = await read_body(request, max_body_bytes)
                body = decompress(raw, request.headers.get("content-encoding", ""), max_body_bytes)
                result = await ingest.otlp(signal, "http", body, encoding)
        except PermanentError as exc:
            data = status_body(grpc_code_for_http(exc.status), exc.message, encoding or PROTOBUF, exc.field)
            return Response(data, status_code=exc.status, media_type=reply_type)
        except RetryableError as exc:
            seconds = max(1, round(exc.retry_after))
            data = status_body(grpc_code_for_http(exc.status), exc.message, encoding, retry_after=seconds)
            return Response(data, status_code=exc.status, media_type=reply_type, headers={"Retry-After": str(seconds)})
        except Exception as exc:  # a bug or a store error we did not classify: never a retry loop
            log.exception("OTLP/HTTP %s request failed", signal)
            data = status_body(code_pb2.INTERNAL, f"internal error: {exc}", encoding or PROTOBUF)
            return Response(data, status_code=500, media_type=reply_type)
        body_out = success_body(signal, encoding, result.rejected, result.message)
        return Response(body_out, status_code=200, media_type=reply_type)

    def endpoint_for(signal: str):  # type: ignore[no-untyped-def]
        async def endpoint(request: Request) -> Response:
            return await handle(signal, request)

        return endpoint

    for signal in ("traces", "metrics", "logs"):
        router.add_api_route(
            f"/v1/{signal}",
            endpoint_for(signal),
            methods=["POST"],
            summary=f"OTLP/HTTP export of {signal} (protobuf or JSON)",
        )
    return router
