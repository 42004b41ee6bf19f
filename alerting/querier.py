"""The query seam over HTTP: evaluates PromQL instant queries against a Prometheus-compatible /api/v1/query.

This is the only way the evaluator reads data (the collector's API, or any Prometheus). Errors are
classified once, here: overload, server errors, timeouts and unreachable servers are retryable (the next
round may succeed); a refused query (4xx, such as bad_data) or a result that is not an instant vector or a
scalar is permanent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from alerting.model import QueryError, Sample


def _value(raw: Any, expr: str) -> float:
    try:
        return float(raw)  # Prometheus writes values as strings: "1.5", "NaN", "+Inf", "-Inf"
    except (TypeError, ValueError):
        raise QueryError(f"query {expr!r}: sample value {raw!r} is not a number", retryable=False) from None


def parse_query_data(data: Any, expr: str) -> list[Sample]:
    """Samples from the `data` of a success envelope: a vector, or a scalar as one sample without labels."""
    if not isinstance(data, dict):
        raise QueryError(f"query {expr!r}: response data is not an object", retryable=False)
    kind, result = data.get("resultType"), data.get("result")
    if kind == "vector" and isinstance(result, list):
        return [Sample(dict(item.get("metric") or {}), _value(item["value"][1], expr)) for item in result]
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        return [Sample({}, _value(result[1], expr))]
    if kind in ("matrix", "string"):
        raise QueryError(
            f"query {expr!r} returned a {kind}; a rule expression must be an instant vector or a scalar",
            retryable=False,
        )
    raise QueryError(f"query {expr!r}: unexpected result type {kind!r}", retryable=False)


class HttpQuerier:
    """A QueryFunc: `querier(expr, at)` POSTs `query=expr&time=at` to `<base_url>/api/v1/query`."""

    def __init__(self, base_url: str, timeout_s: float = 30.0, client: httpx.Client | None = None) -> None:
        self.url = base_url.rstrip("/") + "/api/v1/query"
        self.timeout_s = timeout_s
        self._client = client or httpx.Client()
        self._owns_client = client is None

    def __call__(self, expr: str, at: float) -> Sequence[Sample]:
        form = {"query": expr, "time": f"{at:.9f}".rstrip("0").rstrip(".")}
        try:
            r = self._client.post(self.url, data=form, timeout=self.timeout_s)
        except httpx.TimeoutException as exc:
            raise QueryError(f"query {expr!r} timed out after {self.timeout_s}s: {exc}", retryable=True) from None
        except httpx.HTTPError as exc:
            raise QueryError(f"query {expr!r}: {self.url} unreachable: {exc}", retryable=True) from None
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code == 200 and isinstance(body, dict) and body.get("status") == "success":
            return parse_query_data(body.get("data"), expr)
        retryable = r.status_code >= 500 or r.status_code == 429
        if isinstance(body, dict) and body.get("error"):
            detail = f"{body.get('errorType', 'error')}: {body['error']}"
        else:
            detail = r.text[:500]
        raise QueryError(f"query {expr!r} failed with HTTP {r.status_code}: {detail}", retryable=retryable)

    def close(self) -> None:
        """Closes the HTTP client if this object created it (a client passed in stays the caller's)."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> HttpQuerier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
