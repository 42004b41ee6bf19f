"""OTLP/gRPC receiver: the Export RPCs of the trace, metrics and logs services.

Bad data -> INVALID_ARGUMENT (never retried); saturation or store down -> UNAVAILABLE with a
google.rpc.RetryInfo in the status details, which OTLP clients honour as the retry delay. Messages over
the configured size get gRPC's own RESOURCE_EXHAUSTED before any of this runs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import grpc
from google.rpc import code_pb2

from collector.codecs.otlp_wire import PROTOBUF, status_body, success_body
from collector.errors import PermanentError, RetryableError
from collector.pipeline.ingest import Ingest

log = logging.getLogger("observatory.receivers.otlp_grpc")

SERVICES = {
    "traces": "opentelemetry.proto.collector.trace.v1.TraceService",
    "metrics": "opentelemetry.proto.collector.metrics.v1.MetricsService",
    "logs": "opentelemetry.proto.collector.logs.v1.LogsService",
}

Handler = Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]


def _export_handler(ingest: Ingest, signal: str) -> Handler:
    async def export(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        try:
            result = await ingest.otlp(signal, "grpc", request, PROTOBUF)
        except PermanentError as exc:
            details = status_body(code_pb2.INVALID_ARGUMENT, exc.message, PROTOBUF, exc.field)
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, exc.message, trailing_metadata=(("grpc-status-details-bin", details),)
            )
        except RetryableError as exc:
            details = status_body(code_pb2.UNAVAILABLE, exc.message, PROTOBUF, retry_after=exc.retry_after)
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, exc.message, trailing_metadata=(("grpc-status-details-bin", details),)
            )
        except Exception as exc:  # a bug or a store error we did not classify
            log.exception("OTLP/gRPC %s export failed", signal)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {exc}")
        return success_body(signal, PROTOBUF, result.rejected, result.message)

    return export


def otlp_grpc_server(ingest: Ingest, address: str, max_message_bytes: int) -> tuple[grpc.aio.Server, int]:
    """A server (not yet started) with the three OTLP services bound to `address`; returns its port."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
    )
    for signal, service in SERVICES.items():
        # No (de)serializers: the handler gets the raw request bytes, as the HTTP receiver does.
        method = grpc.unary_unary_rpc_method_handler(_export_handler(ingest, signal))
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, {"Export": method}),))
    port = server.add_insecure_port(address)
    return server, port
