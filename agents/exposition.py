"""`/metrics`: the agent's registry in Prometheus text or OpenMetrics (by Accept), gzipped when asked for."""

from __future__ import annotations

import gzip
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import Response


def encode_metrics(registry: CollectorRegistry, accept: str, accept_encoding: str) -> tuple[bytes, dict[str, str]]:
    """(body, headers) for a scrape with these Accept and Accept-Encoding headers."""
    encoder, content_type = choose_encoder(accept)
    body = encoder(registry)
    headers = {"Content-Type": content_type, "Vary": "Accept, Accept-Encoding"}
    if "gzip" in accept_encoding.lower():
        body = gzip.compress(body, compresslevel=5)  # scrapes repeat often; speed over ratio
        headers["Content-Encoding"] = "gzip"
    return body, headers


def metrics_endpoint(registry: CollectorRegistry) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint serving `registry`."""

    async def metrics(request: Request) -> Response:
        body, headers = encode_metrics(
            registry, request.headers.get("accept", ""), request.headers.get("accept-encoding", "")
        )
        return Response(body, headers=headers)

    return metrics
