"""The query seam over HTTP: evaluates PromQL instant queries against a Prometheus-compatible /api/v1/query.

This is the only way the evaluator reads data (the collector's API, or any Prometheus). Errors are
classified once, here: overload, server errors, timeouts and unreachable servers are retryable (the next
round may succeed); a refused query (4xx, such as bad_data) or a result that is not an instant vector or a
scalar is permanent.

`query_many` sends several expressions at one time to the collector's `/api/obs/query_batch`, which reads
the data once for all of them; against a server without it (a Prometheus), it falls back to one query each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from alerting.model import QueryError, Sample

# Expressions per batch request: bounds one request's size and time (the collector accepts up to 10,000).
BATCH_SIZE = 500


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
        self._batch_url: str | None = base_url.rstrip("/") + "/api/obs/query_batch"
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

    def query_many(self, exprs: Sequence[str], at: float) -> list[Sequence[Sample] | QueryError]:
        """A result or a QueryError per expression, in order (model.QueryManyFunc)."""
        out: list[Sequence[Sample] | QueryError] = []
        for first in range(0, len(exprs), BATCH_SIZE):
            chunk = exprs[first : first + BATCH_SIZE]
            if self._batch_url is None:
                out.extend(self._one_by_one(chunk, at))
            else:
                out.extend(self._batch(chunk, at))
        return out

    def _one_by_one(self, exprs: Sequence[str], at: float) -> list[Sequence[Sample] | QueryError]:
        results: list[Sequence[Sample] | QueryError] = []
        for expr in exprs:
            try:
                results.append(self(expr, at))
            except QueryError as exc:
                results.append(exc)
        return results

    def _batch(self, exprs: Sequence[str], at: float) -> list[Sequence[Sample] | QueryError]:
        assert self._batch_url is not None
        what = f"a batch of {len(exprs)} queries"
        try:
            r = self._client.post(self._batch_url, json={"time": at, "queries": list(exprs)}, timeout=self.timeout_s)
        except httpx.TimeoutException as exc:
            raise QueryError(f"{what} timed out after {self.timeout_s}s: {exc}", retryable=True) from None
        except httpx.HTTPError as exc:
            raise QueryError(f"{what}: {self._batch_url} unreachable: {exc}", retryable=True) from None
        if r.status_code in (404, 405):
            # Not the collector (a Prometheus has no batch endpoint): from now on, one query per rule.
            self._batch_url = None
            return self._one_by_one(exprs, at)
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code != 200 or not isinstance(body, dict) or body.get("status") != "success":
            retryable = r.status_code >= 500 or r.status_code == 429
            detail = body.get("error") if isinstance(body, dict) else r.text[:500]
            raise QueryError(f"{what} failed with HTTP {r.status_code}: {detail}", retryable=retryable)
        results = body.get("data", {}).get("results")
        if not isinstance(results, list) or len(results) != len(exprs):
            raise QueryError(f"{what}: the answer does not hold one result per query", retryable=False)
        out: list[Sequence[Sample] | QueryError] = []
        for expr, item in zip(exprs, results, strict=True):
            if isinstance(item, dict) and item.get("status") == "success":
                try:
                    out.append(parse_query_data(item.get("data"), expr))
                except QueryError as exc:
                    out.append(exc)
            else:
                kind = item.get("errorType", "error") if isinstance(item, dict) else "error"
                message = item.get("error", "") if isinstance(item, dict) else repr(item)
                # Overload and timeouts may pass by the next round; a query the engine refuses will not.
                retryable = kind in ("timeout", "unavailable", "canceled", "internal")
                out.append(QueryError(f"query {expr!r} failed: {kind}: {message}", retryable=retryable))
        return out

    def close(self) -> None:
        """Closes the HTTP client if this object created it (a client passed in stays the caller's)."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> HttpQuerier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
