"""Prometheus remote write 1.0 receiver: `POST /api/v1/write` (snappy-block protobuf).

204 on success. Series that cannot be stored (no name, duplicate labels, native histograms) are
refused with a 400 that names them while the valid ones are written, as Prometheus' own receiver
does; senders never retry a 4xx. A saturated write path answers 503 with Retry-After, which senders
retry with backoff. Remote write 2.0 is answered 415 so a sender can fall back to 1.0.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from collector.codecs.remote_write import decode_write_request, decompress_snappy
from collector.errors import PermanentError, RetryableError
from collector.pipeline.ingest import Ingest
from collector.receivers.otlp_http import declared_size, read_body


def remote_write_router(ingest: Ingest, max_body_bytes: int) -> APIRouter:
    router = APIRouter(tags=["prometheus"])

    @router.post("/api/v1/write", summary="Prometheus remote write 1.0")
    async def write(request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        if "io.prometheus.write.v2" in content_type:
            return PlainTextResponse("remote write 2.0 is not supported; send 1.0 (prometheus.WriteRequest)", 415)
        if request.headers.get("content-encoding", "snappy").lower() != "snappy":
            return PlainTextResponse("remote write bodies must be snappy-compressed (Content-Encoding: snappy)", 415)
        try:
            with ingest.admit("metrics", "remote_write", declared_size(request, max_body_bytes)):
                raw = await read_body(request, max_body_bytes)
                result = await ingest.metrics(
                    "remote_write", raw, lambda body: decode_write_request(decompress_snappy(body, max_body_bytes))
                )
        except PermanentError as exc:
            return PlainTextResponse(exc.message, exc.status)
        except RetryableError as exc:
            return PlainTextResponse(exc.message, 503, headers={"Retry-After": str(max(1, round(exc.retry_after)))})
        if result.rejected:
            return PlainTextResponse(f"{result.rejected} series refused: {result.message}", 400)
        return Response(status_code=204)

    return router
