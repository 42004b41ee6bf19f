"""Grafana's requests to a Prometheus data source, byte for byte, answered by the collector as by Prometheus 2.42.

Both servers hold the seeded dataset of tests/promql_dataset.py and scrape the same prometheus_client
target (so /api/v1/metadata has something to say). Each request below is what Grafana (10-12, data
source `httpMethod` POST, its default) puts on the wire, with the same method, parameter order and
encoding:
- the backend client (pkg/promlib/client) POSTs query, query_range and query_exemplars with a body from
  Go's url.Values.Encode (keys sorted, spaces as `+`), times as float seconds, step as float seconds;
- resource calls from the frontend go through the backend: POST for labels, series and query_exemplars with
  the browser's URLSearchParams body; GET for label values and metadata with encodeURIComponent
  parameters; every other path (rules, status/buildinfo) is first POSTed with an empty body and retried as
  GET on 405 or 400;
- the health check is an instant query `1+1` at the end of the range 1 s - 4 s, then buildinfo.
Answers are compared whole (status, keys, JSON types, resultType, values within 1e-9 relative), except the
version fields of buildinfo and the text of errors from the PromQL parser.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from tests.conftest import free_port
from tests.promql_dataset import END_MS, differences, loaded_servers

FORM = {"content-type": "application/x-www-form-urlencoded"}
Pairs = list[tuple[str, str]]


def go_form(params: dict[str, str]) -> str:
    """Go's url.Values.Encode of single values: keys sorted, QueryEscape (space as `+`)."""
    return "&".join(f"{quote_plus(k, safe='')}={quote_plus(v, safe='')}" for k, v in sorted(params.items()))


def url_search_params(pairs: Pairs) -> str:
    """A browser's URLSearchParams text: in order, `*-._` and alphanumerics kept, space as `+`."""

    def escape(s: str) -> str:
        return quote_plus(s, safe="*").replace("~", "%7E")

    return "&".join(f"{escape(k)}={escape(v)}" for k, v in pairs)


def uri_components(pairs: Pairs) -> str:
    """Grafana's GET query string: encodeURIComponent of each key and value."""
    return "&".join(f"{quote(k, safe='!~*()' + chr(39))}={quote(v, safe='!~*()' + chr(39))}" for k, v in pairs)


def lookup_range() -> Pairs:
    """Grafana's start/end for lookups over `now-1h` to `now`: whole seconds, snapped out to the minute."""
    now = time.time()
    return [("start", str(math.floor((now - 3600) / 60) * 60)), ("end", str(math.ceil(now / 60) * 60))]


def panel_range(step_s: int) -> dict[str, str]:
    """query_range parameters of a panel over the hour before the dataset's end, aligned to the step."""
    end = END_MS // 1000 // step_s * step_s
    return {"start": str(end - 3600), "end": str(end), "step": str(step_s)}


@dataclass(frozen=True)
class Request:
    name: str
    method: str
    path: str
    query: str = ""  # the URL's query string, already encoded
    body: str | None = None  # a form body, already encoded
    compare_error_text: bool = True


def _requests() -> list[Request]:
    at = str(END_MS / 1000 + 0.123)  # a panel's instant query runs at the range's end, to the millisecond
    now_ms = int(time.time() * 1000)
    rng = lookup_range()
    return [
        # Save & test: the health check, then buildinfo (first POSTed: Grafana retries with GET on 405).
        Request("healthcheck", "POST", "query", body=go_form({"query": "1+1", "time": "4"})),
        Request("buildinfo-post", "POST", "status/buildinfo", body=""),
        # A data source set to `httpMethod: GET` sends the same parameters in the URL.
        Request("healthcheck-get", "GET", "query", query=go_form({"query": "1+1", "time": "4"})),
        # Data source init: recording rules (POST, then GET), the exemplars probe (start/end in milliseconds).
        Request("rules-post", "POST", "rules", body=""),
        Request("rules", "GET", "rules"),
        Request(
            "exemplars-probe",
            "POST",
            "query_exemplars",
            body=url_search_params([("query", "test"), ("start", str(now_ms - 1_800_000)), ("end", str(now_ms))]),
        ),
        # Query editor: metric names, metadata, label names (with and without match[]), label values, series.
        Request("metric-names", "GET", "label/__name__/values", query=uri_components(rng)),
        Request("metadata", "GET", "metadata"),
        Request("label-names", "POST", "labels", body=url_search_params(rng)),
        Request(
            "label-names-match",
            "POST",
            "labels",
            body=url_search_params([*rng, ("match[]", "http_requests_total"), ("match[]", "up")]),
        ),
        Request(
            "label-values-match",
            "GET",
            "label/code/values",
            query=uri_components([*rng, ("match[]", 'http_requests_total{job="web", method=~"GET|POST"}')]),
        ),
        Request(
            "label-values-limit",
            "GET",
            "label/job/values",
            query=uri_components([*rng, ("match[]", '{__name__=~"up|jobs_processed_total"}'), ("limit", "40000")]),
        ),
        Request("label-values-none", "GET", "label/nonexistent/values", query=uri_components(rng)),
        Request(
            "series",
            "POST",
            "series",
            body=url_search_params(
                [*rng, ("match[]", 'http_request_duration_seconds_bucket{le="+Inf"}'), ("limit", "40000")]
            ),
        ),
        Request(
            "series-scraped",
            "POST",
            "series",
            body=url_search_params([*rng, ("match[]", '{job="scraped", __name__!~"scrape_.*"}'), ("limit", "40000")]),
        ),
        # Panels: range queries (the default), instant queries, exemplars, a query that does not parse.
        Request(
            "panel-range-rate",
            "POST",
            "query_range",
            body=go_form({"query": "sum by (job) (rate(http_requests_total[1m]))", **panel_range(15)}),
        ),
        Request(
            "panel-range-quantile",
            "POST",
            "query_range",
            body=go_form(
                {
                    "query": "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[2m])))",
                    **panel_range(60),
                    "timeout": "60s",
                }
            ),
        ),
        Request("panel-range-raw", "POST", "query_range", body=go_form({"query": "up", **panel_range(30)})),
        Request(
            "panel-range-get",
            "GET",
            "query_range",
            query=go_form({"query": 'avg by (instance) (temperature_celsius{job=~"api|web"})', **panel_range(60)}),
        ),
        Request(
            "panel-instant",
            "POST",
            "query",
            body=go_form({"query": "sum by (code) (increase(http_requests_total[3600s]))", "time": at}),
        ),
        Request(
            "panel-instant-topk", "POST", "query", body=go_form({"query": "topk(3, temperature_celsius)", "time": at})
        ),
        Request(
            "panel-exemplars",
            "POST",
            "query_exemplars",
            body=go_form({"query": "sum(rate(http_requests_total[1m]))", "start": panel_range(15)["start"], "end": at}),
        ),
        Request(
            "panel-exemplars-errors",
            "POST",
            "query_exemplars",
            body=go_form(
                {
                    "query": 'sum by (job) (rate(http_requests_total{code="500"}[1m])) / 2',
                    "start": str(END_MS / 1000 - 1200),
                    "end": at,
                }
            ),
        ),
        Request(
            "panel-parse-error",
            "POST",
            "query_range",
            body=go_form({"query": "sum(rate(http_requests_total[1m])", **panel_range(15)}),
            compare_error_text=False,  # the PromQL parser's message; its error type and shape are compared
        ),
        # Not Grafana's, but answered by the same handlers: an end before the start. Prometheus answers series
        # with nothing and rejects query_exemplars with its own message.
        Request(
            "edge-series-end-before-start",
            "GET",
            "series",
            query=uri_components([("match[]", "up"), ("start", rng[1][1]), ("end", rng[0][1])]),
        ),
        Request(
            "edge-exemplars-end-before-start",
            "GET",
            "query_exemplars",
            query=uri_components([("query", "http_requests_total"), ("start", rng[1][1]), ("end", rng[0][1])]),
        ),
    ]


REQUEST_NAMES = [r.name for r in _requests()]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    registry = CollectorRegistry()
    Counter("jobs_processed", "Jobs processed.", registry=registry).inc(3)
    Gauge("queue_length", "Bytes waiting.", unit="bytes", registry=registry).set(7)
    Histogram("task_duration_seconds", "Task durations.", buckets=(0.1, 1), registry=registry).observe(0.5)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        with loaded_servers(
            tmp_path_factory.mktemp("grafana"), scrape_target=f"127.0.0.1:{port}", with_exemplars=True
        ) as urls:
            # Both must have scraped (and stored the metadata) before the lookups compare anything.
            families = {"jobs_processed", "queue_length_bytes", "task_duration_seconds"}
            deadline = time.monotonic() + 30
            while any(not families <= set(_get(u, "metadata")[1].get("data", {})) for u in urls):
                assert time.monotonic() < deadline, "the scrape target's metadata did not show up"
                time.sleep(0.5)
            yield urls
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _get(url: str, path: str) -> tuple[int, Any]:
    r = httpx.get(f"{url}/api/v1/{path}", timeout=30)
    return r.status_code, r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text


def _send(url: str, request: Request) -> httpx.Response:
    target = f"{url}/api/v1/{request.path}" + (f"?{request.query}" if request.query else "")
    if request.method == "GET":
        return httpx.get(target, timeout=60)
    return httpx.post(target, content=(request.body or "").encode(), headers=FORM, timeout=60)


@pytest.mark.parametrize("name", REQUEST_NAMES)
def test_grafana_request_answered_alike(servers: tuple[str, str], name: str) -> None:
    [request] = [r for r in _requests() if r.name == name]
    prom_url, collector_url = servers
    expected, got = _send(prom_url, request), _send(collector_url, request)
    assert got.status_code == expected.status_code, f"{got.status_code} {got.text[:500]} vs {expected.text[:500]}"
    if expected.status_code == 405:
        return  # only the status matters to Grafana: it retries with GET (Prometheus' body is plain text)
    assert got.headers["content-type"].startswith("application/json")
    e_body, g_body = expected.json(), got.json()
    if not request.compare_error_text:
        assert e_body["status"] == "error"  # the request is a failing one, as intended
        e_body["error"] = g_body.get("error")
    problems = differences(e_body, g_body)
    assert not problems, "\n".join(problems)


def test_buildinfo(servers: tuple[str, str]) -> None:
    """GET buildinfo (after the POST's 405): Prometheus' keys and types, and no `features` (Grafana would take
    a server with features for Mimir and use its ruler API). The values name the build, so they differ."""
    prom_url, collector_url = servers
    (e_status, expected), (g_status, got) = _get(prom_url, "status/buildinfo"), _get(collector_url, "status/buildinfo")
    assert g_status == e_status == 200
    assert got["status"] == expected["status"] == "success"
    assert set(got) == set(expected)
    assert {k: type(v) for k, v in got["data"].items()} == {k: type(v) for k, v in expected["data"].items()}
    assert "features" not in got["data"]
    # Grafana compares the version with semver (e.g. >= 2.24.0 for match[] on labels): it must parse alike.
    assert got["data"]["version"].split(".")[:2] == expected["data"]["version"].split(".")[:2]
