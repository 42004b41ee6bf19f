"""/api/v1/rules and /api/v1/alerts answered by the alerting service, so Grafana sees our rules and alerts.

The alerting service speaks Prometheus' shapes itself (alerting/api.py); this passes the request's query
string through (Prometheus 2.42 filters by `type`, `rule_name[]`, ...) and the answer back unchanged. When the
service cannot be reached the answer is Prometheus' `unavailable` error (503 with Retry-After), never an
empty list that would read as "no alerts are firing".
"""

from __future__ import annotations

import httpx
from fastapi import Request, Response

from collector.api.prom_wire import error

# Rules and alerts are small and answered from memory: a slow answer means the service is in trouble.
TIMEOUT_S = 5.0


async def proxy_to_alerting(base_url: str, path: str, request: Request) -> Response:
    url = base_url.rstrip("/") + path
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
            upstream = await client.get(url, params=list(request.query_params.multi_items()))
    except httpx.HTTPError as exc:
        return error("unavailable", f"alerting service at {base_url} did not answer: {exc.__class__.__name__}: {exc}")
    if upstream.status_code >= 500 and not upstream.headers.get("content-type", "").startswith("application/json"):
        return error("unavailable", f"alerting service at {base_url} answered {upstream.status_code}")
    return Response(
        upstream.content,
        status_code=upstream.status_code,
        media_type=upstream.headers.get("content-type", "application/json"),
    )
