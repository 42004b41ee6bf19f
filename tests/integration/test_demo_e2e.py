"""End to end over real HTTP: the demo MSA instrumented by agents, seen whole by a real collector.

One `POST /orders` through the gateway becomes one trace across gateway, orders, inventory and payments
(correct parent links across processes, DB spans), its log records carry its trace id, the service's
`/metrics` holds an exemplar with that trace id, and the pushed business metric arrives. The collector
also scrapes every demo instance it finds through discovery's `/sd/prometheus`: `up`, stale markers
when an instance is killed, and the honor_labels cases on the gateway's `service`/`instance` labels.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TIMELESS, CollectorProcess, free_port, make_collector
from tests.demo_stack import Stack, demo_stack
from tests.peers import prometheus

DEMO_SERVICES = {"gateway", "orders", "inventory", "payments"}


def _wait(check: Callable[[], Any], seconds: float = 45) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    return check()


def _series(c: CollectorProcess, metric: str, **labels: str) -> list[dict[str, Any]]:
    params = [("metric", metric)] + [("label", f"{k}:{v}") for k, v in labels.items()]
    r = httpx.get(f"{c.url}/api/obs/metrics/series", params=params, timeout=10)
    assert r.status_code == 200, r.text
    series: list[dict[str, Any]] = r.json()["series"]
    return series


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CollectorProcess, Stack]]:
    tmp = tmp_path_factory.mktemp("e2e")
    discovery_port = free_port()
    sd = f"http_sd_configs: [{{url: 'http://127.0.0.1:{discovery_port}/sd/prometheus', refresh_interval: 1s}}]"
    config = tmp / "obs.yaml"
    config.write_text(
        f"""
metrics_generator:
  collection_interval: 1s
  service_graphs: {{wait: 2s}}
scrape:
  jobs:
    - job_name: demo
      scrape_interval: 1s
      scrape_timeout: 1s
      {sd}
    - job_name: demo-honor
      scrape_interval: 1s
      scrape_timeout: 1s
      honor_labels: true
      {sd}
"""
    )
    collector = make_collector(tmp, OBS_CONFIG=str(config), **TIMELESS)
    collector.start()
    try:
        with demo_stack(tmp, collector, discovery_port) as stack:
            yield collector, stack
    finally:
        collector.stop()


def _trace(c: CollectorProcess, trace_id: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{c.url}/api/obs/traces/{trace_id}", timeout=10)
    if r.status_code == 404:
        return []
    assert r.status_code == 200, r.text
    spans: list[dict[str, Any]] = r.json()["spans"]
    return spans


def test_one_order_is_one_trace_with_its_logs_exemplar_and_business_metric(
    e2e: tuple[CollectorProcess, Stack],
) -> None:
    collector, stack = e2e
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    response = stack.place("e2e-alice", [{"sku": "KB-001", "qty": 1}], traceparent=f"00-{trace_id}-{caller_span}-01")
    assert response.status_code == 201, response.text

    def complete() -> list[dict[str, Any]]:
        spans = _trace(collector, trace_id)
        services = {s["service"] for s in spans}
        db_services = {s["service"] for s in spans if s["attributes"].get("db.system") == "sqlite"}
        # Each service exports on its own schedule: wait until no span misses its parent (but the caller's).
        ids = {s["span_id"] for s in spans} | {caller_span}
        whole = all(s["parent_span_id"] in ids for s in spans)
        every_db = db_services >= {"orders", "inventory", "payments"}
        return spans if whole and services >= DEMO_SERVICES and every_db else []

    spans = _wait(complete)
    assert spans, f"incomplete trace: {sorted({s['service'] for s in _trace(collector, trace_id)})}"
    by_id = {s["span_id"]: s for s in spans}
    assert all(s["trace_id"] == trace_id for s in spans)
    # The caller's span is the only parent outside the trace: everything else hangs off a stored span.
    roots = [s for s in spans if s["parent_span_id"] not in by_id]
    assert {s["parent_span_id"] for s in roots} == {caller_span}
    assert {(s["service"], s["kind"]) for s in roots} == {("gateway", "Server")}

    def hops(callee: str) -> set[tuple[str, str]]:
        """(caller service, caller span kind) for each server span of `callee`."""
        return {
            (by_id[s["parent_span_id"]]["service"], by_id[s["parent_span_id"]]["kind"])
            for s in spans
            if s["service"] == callee and s["kind"] == "Server"
        }

    # Across processes: each service's server span is the child of its caller's client span.
    assert hops("orders") == {("gateway", "Client")}
    assert hops("inventory") == {("orders", "Client")}
    assert hops("payments") == {("orders", "Client")}
    for span in spans:
        if span["attributes"].get("db.system") == "sqlite":
            parent = by_id[span["parent_span_id"]]
            assert parent["service"] == span["service"]  # a DB span belongs to the request that ran it

    # The log records written while serving it carry its trace id, from every service on its path.
    def logs() -> list[dict[str, Any]]:
        r = httpx.get(f"{collector.url}/api/obs/logs", params={"trace_id": trace_id, "limit": 500}, timeout=10)
        records: list[dict[str, Any]] = r.json()["logs"]
        return records if {rec["service"] for rec in records} >= DEMO_SERVICES else []

    records = _wait(logs)
    assert records, "no log records for the trace from every service"
    assert all(rec["trace_id"] == trace_id for rec in records)
    assert all(rec["span_id"] in by_id for rec in records if rec["span_id"])

    # The orders service's /metrics shows the request, with an exemplar holding the trace id.
    metrics = httpx.get(
        f"{stack.orders.url}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}, timeout=10
    ).text
    exemplar_lines = [
        line
        for line in metrics.splitlines()
        if line.startswith("http_server_request_duration_seconds_bucket") and 'route="/orders"' in line
        and 'method="POST"' in line and f'trace_id="{trace_id}"' in line
    ]  # fmt: skip
    assert exemplar_lines, "no duration bucket with an exemplar for the trace"

    # The pushed business metric arrives at the collector as <measurement>_<field>.
    placed = _wait(lambda: _series(collector, "orders_placed_count", bucket="demo"))
    assert placed and any(float(v) >= 1 for s in placed for _, v in s["samples"])


def test_the_collector_scrapes_every_demo_instance_found_through_discovery(
    e2e: tuple[CollectorProcess, Stack],
) -> None:
    collector, stack = e2e
    instances = {f"127.0.0.1:{s.port}" for s in [stack.gateway, stack.orders, stack.payments, *stack.inventory]}

    def up_everywhere() -> bool:
        ups = _series(collector, "up", job="demo")
        healthy = {s["labels"]["instance"] for s in ups if s["samples"] and float(s["samples"][-1][1]) == 1}
        return instances <= healthy

    assert _wait(up_everywhere)
    [orders_up] = _series(collector, "up", job="demo", instance=f"127.0.0.1:{stack.orders.port}")
    assert orders_up["labels"]["service"] == "orders"  # the HTTP SD labels come along


def test_honor_labels_on_the_gateways_own_service_and_instance_labels(e2e: tuple[CollectorProcess, Stack]) -> None:
    collector, stack = e2e
    gateway = f"127.0.0.1:{stack.gateway.port}"
    assert stack.place("e2e-bob", [{"sku": "MS-002", "qty": 1}]).status_code == 201
    # honor_labels false: the target's labels win; the gateway's own are kept as exported_*.
    plain = _wait(lambda: _series(collector, "gateway_upstream_requests_total", job="demo", service="gateway"))
    assert plain and all(s["labels"]["instance"] == gateway for s in plain)
    assert {"orders"} <= {s["labels"]["exported_service"] for s in plain}
    assert all("exported_instance" in s["labels"] for s in plain)
    # honor_labels true: the scraped values win.
    honored = _wait(lambda: _series(collector, "gateway_upstream_requests_total", job="demo-honor", service="orders"))
    assert honored and all(s["labels"]["instance"] != gateway for s in honored)
    assert all("exported_service" not in s["labels"] for s in honored)


def test_a_killed_instance_goes_down_with_stale_markers_at_the_next_scrape(
    e2e: tuple[CollectorProcess, Stack],
) -> None:
    collector, stack = e2e
    doomed = stack.service("inventory", "--data-dir", str(stack.tmp / "data")).start()
    doomed.wait_ready()
    instance = f"127.0.0.1:{doomed.port}"
    assert _wait(lambda: _series(collector, "process_cpu_seconds_total", job="demo", instance=instance))
    doomed.kill9()  # no deregistration: discovery keeps listing it until its lease runs out

    def down_and_stale() -> bool:
        [up] = _series(collector, "up", job="demo", instance=instance)
        [cpu] = _series(collector, "process_cpu_seconds_total", job="demo", instance=instance)
        return float(up["samples"][-1][1]) == 0 and cpu["samples"][-1][1] == "NaN"

    assert _wait(down_and_stale, seconds=20)
    [up] = _series(collector, "up", job="demo", instance=instance)
    values = [float(v) for _, v in up["samples"]]
    first_down = values.index(0.0)
    assert all(v == 1.0 for v in values[:first_down])
    # The stale marker is written by the first failed scrape, with the same timestamp as its up == 0.
    [cpu] = _series(collector, "process_cpu_seconds_total", job="demo", instance=instance)
    stale_at = next(t for t, v in cpu["samples"] if v == "NaN")
    assert stale_at == up["samples"][first_down][0]


def test_a_real_prometheus_discovers_and_scrapes_every_demo_instance(
    e2e: tuple[CollectorProcess, Stack], tmp_path: Path
) -> None:
    _, stack = e2e
    instances = {f"127.0.0.1:{s.port}" for s in [stack.gateway, stack.orders, stack.payments, *stack.inventory]}
    config = f"""
global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
  - job_name: demo
    http_sd_configs: [{{url: "{stack.discovery.url}/sd/prometheus", refresh_interval: 1s}}]
"""
    with prometheus(config, tmp_path) as url:

        def up() -> dict[str, tuple[str, float]]:
            r = httpx.get(f"{url}/api/v1/query", params={"query": 'up{job="demo"}'}, timeout=10).json()
            return {
                s["metric"]["instance"]: (s["metric"].get("service", ""), float(s["value"][1]))
                for s in r["data"]["result"]
            }

        assert _wait(lambda: instances <= {i for i, (_, v) in up().items() if v == 1}), up()
        services = {service for i, (service, _) in up().items() if i in instances}
        assert services == DEMO_SERVICES


def test_injected_payment_errors_show_as_error_spans_and_logs_and_the_stock_comes_back(
    e2e: tuple[CollectorProcess, Stack],
) -> None:
    collector, stack = e2e
    before = stack.stock("MN-003")
    for instance in [stack.payments]:
        r = httpx.put(f"{instance.url}/admin/faults", json={"error_rate": 1.0}, timeout=5)
        assert r.status_code == 200, r.text
    trace_id = secrets.token_hex(16)
    try:
        response = stack.place("e2e-carol", [{"sku": "MN-003", "qty": 2}], traceparent=f"00-{trace_id}-{'1' * 16}-01")
    finally:
        assert httpx.delete(f"{stack.payments.url}/admin/faults", timeout=5).status_code == 204
    assert response.status_code == 502, response.text
    assert response.json()["step"] == "charge"
    assert stack.stock("MN-003") == before  # the compensation released the reservation

    def errors() -> list[dict[str, Any]]:
        spans = _trace(collector, trace_id)
        failed = {s["service"] for s in spans if s["status"]["code"] == "Error"}
        released = any(s["service"] == "inventory" and "release" in s["name"] for s in spans)
        return spans if {"payments", "orders"} <= failed and released else []

    spans = _wait(errors)
    assert spans, f"no error spans: {[(s['service'], s['name'], s['status']) for s in _trace(collector, trace_id)]}"

    def error_logs() -> list[dict[str, Any]]:
        params = {"trace_id": trace_id, "severity": "error", "limit": 100}
        records: list[dict[str, Any]] = httpx.get(f"{collector.url}/api/obs/logs", params=params, timeout=10).json()[
            "logs"
        ]
        return records if {"payments", "orders"} <= {r["service"] for r in records} else []

    records = _wait(error_logs)
    assert records, "no error logs from payments and orders for the trace"
    assert all(r["severity_number"] >= 17 for r in records)  # ERROR and above


# -- metrics derived from the spans, and correlation ------------------------------------------------


def _stored_spans(c: CollectorProcess) -> list[dict[str, Any]]:
    """Every stored span of a trace that touches a demo service, read back through the Jaeger API:
    {trace_id, span_id, parent_span_id, service, name, kind ("server"...), status ("", "OK", "ERROR")}."""
    traces: dict[str, dict[str, Any]] = {}
    for service in sorted(DEMO_SERVICES):
        r = httpx.get(f"{c.url}/jaeger/api/traces", params={"service": service, "limit": 5000}, timeout=30)
        assert r.status_code == 200, r.text
        found = r.json()["data"]
        assert len(found) < 5000
        traces.update((t["traceID"], t) for t in found)
    spans = []
    for t in traces.values():
        for s in t["spans"]:
            tags = {tag["key"]: tag["value"] for tag in s["tags"]}
            parents = [ref["spanID"] for ref in s["references"] if ref["refType"] == "CHILD_OF"]
            spans.append(
                {
                    "trace_id": s["traceID"],
                    "span_id": s["spanID"],
                    "parent_span_id": parents[0] if parents else "",
                    "service": t["processes"][s["processID"]]["serviceName"],
                    "name": s["operationName"],
                    "kind": tags.get("span.kind", ""),
                    "status": tags.get("otel.status_code", ""),
                }
            )
    return spans


def _span_pairs(spans: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """(client service, server service) -> requests: server spans whose parent is a client span."""
    by_id = {(s["trace_id"], s["span_id"]): s for s in spans}
    pairs: dict[tuple[str, str], int] = {}
    for s in spans:
        parent = by_id.get((s["trace_id"], s["parent_span_id"]))
        if s["kind"] == "server" and parent is not None and parent["kind"] == "client":
            key = (parent["service"], s["service"])
            pairs[key] = pairs.get(key, 0) + 1
    return pairs


def _instant(c: CollectorProcess, query: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{c.url}/api/v1/query", params={"query": query}, timeout=10)
    assert r.status_code == 200, r.text
    result: list[dict[str, Any]] = r.json()["data"]["result"]
    return result


def _place_orders(c: CollectorProcess, stack: Stack, n: int) -> None:
    """`n` orders through the gateway; returns once each one's trace is stored whole, so that no span of
    theirs is still on its way when the test compares counts."""
    for i in range(n):
        trace_id, caller = secrets.token_hex(16), secrets.token_hex(8)
        response = stack.place(f"graph-{i}", [{"sku": "KB-001", "qty": 1}], traceparent=f"00-{trace_id}-{caller}-01")
        assert response.status_code == 201, response.text

        def whole(trace_id: str = trace_id, caller: str = caller) -> bool:
            spans = _trace(c, trace_id)
            ids = {s["span_id"] for s in spans} | {caller}
            db = {s["service"] for s in spans if s["attributes"].get("db.system") == "sqlite"}
            services = {s["service"] for s in spans}
            parents = all(s["parent_span_id"] in ids for s in spans)
            return services >= DEMO_SERVICES and db >= {"orders", "inventory", "payments"} and parents

        assert _wait(whole), f"trace {trace_id} not stored whole"


def test_service_graph_edges_equal_the_client_server_pairs_of_the_stored_spans(
    e2e: tuple[CollectorProcess, Stack],
) -> None:
    collector, stack = e2e
    _place_orders(collector, stack, 3)

    def compare() -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
        want = _span_pairs(_stored_spans(collector))
        got = {
            (s["metric"]["client"], s["metric"]["server"]): int(float(s["value"][1]))
            for s in _instant(collector, 'traces_service_graph_request_total{connection_type=""}')
        }
        return want, got

    def settled() -> bool:
        want, got = compare()
        edges = {("gateway", "orders"), ("orders", "inventory"), ("orders", "payments")}
        return edges <= set(want) and want == got

    assert _wait(settled), compare()
    want, _ = compare()
    assert want[("gateway", "orders")] >= 3 and want[("orders", "payments")] >= 3
    # The Jaeger dependencies are the same graph, read from the stored spans.
    r = httpx.get(f"{collector.url}/jaeger/api/dependencies", params={"lookback": 86_400_000}, timeout=10)
    dependencies = {(d["parent"], d["child"]): d["callCount"] for d in r.json()["data"]}
    assert dependencies == want
    # Requests that came from outside without a caller span (the harness's readiness checks through the
    # gateway) hang off the virtual client "user".
    user = _instant(collector, 'traces_service_graph_request_total{client="user", server="gateway"}')
    assert user and user[0]["metric"]["connection_type"] == "virtual_node"
    # Latency histograms of the same edges, as seen by the client and by the server.
    for side in ("client", "server"):
        counts = {
            (s["metric"]["client"], s["metric"]["server"]): int(float(s["value"][1]))
            for s in _instant(collector, f'traces_service_graph_request_{side}_seconds_count{{connection_type=""}}')
        }
        assert counts == want


def test_span_metrics_count_every_stored_span_by_service_name_kind_and_status(
    e2e: tuple[CollectorProcess, Stack],
) -> None:
    collector, stack = e2e
    _place_orders(collector, stack, 2)

    def compare() -> tuple[dict[tuple[str, ...], int], dict[tuple[str, ...], int]]:
        want: dict[tuple[str, ...], int] = {}
        for s in _stored_spans(collector):
            if s["service"] in DEMO_SERVICES:
                kind = "SPAN_KIND_" + (s["kind"].upper() or "UNSPECIFIED")
                key = (s["service"], s["name"], kind, "STATUS_CODE_" + (s["status"] or "UNSET"))
                want[key] = want.get(key, 0) + 1
        got: dict[tuple[str, ...], int] = {}
        for series in _instant(collector, "traces_spanmetrics_calls_total"):
            m = series["metric"]
            if m["service"] in DEMO_SERVICES:
                got[(m["service"], m["span_name"], m["span_kind"], m["status_code"])] = int(float(series["value"][1]))
        return want, got

    def latency_counts() -> dict[tuple[str, ...], int]:
        return {
            (m["service"], m["span_name"], m["span_kind"], m["status_code"]): int(float(s["value"][1]))
            for s in _instant(collector, "traces_spanmetrics_latency_count")
            for m in [s["metric"]]
            if m["service"] in DEMO_SERVICES
        }

    def settled() -> bool:
        # The latency histogram counts the same spans as the calls counter.
        want, got = compare()
        return {key[0] for key in want} >= DEMO_SERVICES and want == got == latency_counts()

    assert _wait(settled), (compare(), latency_counts())


def _push_loki(c: CollectorProcess, service: str, lines: list[tuple[int, str]]) -> None:
    body = {"streams": [{"stream": {"service_name": service}, "values": [[str(ns), line] for ns, line in lines]}]}
    r = httpx.post(f"{c.url}/loki/api/v1/push", json=body, timeout=10)
    assert r.status_code == 204, r.text


def test_correlation_from_a_demo_request_to_its_logs_series_and_exemplars_and_back(
    e2e: tuple[CollectorProcess, Stack],
) -> None:
    collector, stack = e2e
    trace_id = secrets.token_hex(16)
    response = stack.place("corr-dave", [{"sku": "KB-001", "qty": 1}], traceparent=f"00-{trace_id}-{'2' * 16}-01")
    assert response.status_code == 201, response.text

    def correlated() -> dict[str, Any]:
        r = httpx.get(f"{collector.url}/api/obs/correlate", params={"trace_id": trace_id}, timeout=10)
        if r.status_code == 404:
            return {}
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        ids = {s["span_id"] for s in body["trace"]["spans"]} | {"2" * 16}
        whole = all(s["parent_span_id"] in ids for s in body["trace"]["spans"])  # each exporter in its own time
        spans_exemplars = {e["series_labels"]["__name__"] for e in body["exemplars"]}
        series = {(s["labels"]["__name__"], s["labels"]["service"]) for s in body["metrics"]["series"]}
        ready = (
            whole
            and set(body["trace"]["services"]) >= DEMO_SERVICES
            and {r["service"] for r in body["logs"]["by_trace_id"]} >= DEMO_SERVICES
            and "traces_spanmetrics_latency_bucket" in spans_exemplars
            and {("traces_spanmetrics_calls_total", "orders"), ("http_server_requests_total", "orders")} <= series
        )
        return body if ready else {}

    body = _wait(correlated)
    assert body, "the trace never had its logs, RED series and exemplars together"
    trace = body["trace"]
    assert trace["trace_id"] == trace_id and trace["root"]["service"] == "gateway"
    assert trace["span_count"] == len(trace["spans"])
    assert {s["span_id"] for s in trace["spans"]} <= {s["span_id"] for s in _trace(collector, trace_id)}
    assert all(r["trace_id"] == trace_id for r in body["logs"]["by_trace_id"])
    assert all(e["trace_id"] == trace_id for e in body["exemplars"])
    start, end = int(trace["start_time_unix_nano"]), int(trace["end_time_unix_nano"])
    assert body["metrics"]["start_ms"] <= start // 10**6 and end // 10**6 <= body["metrics"]["end_ms"]

    # Log lines that name the trace only in their text get its ids at ingest; lines without any id are
    # found by service and time.
    marker = secrets.token_hex(4)
    _push_loki(
        collector,
        "orders",
        [(start + 1, f"level=info msg=audit-{marker} trace_id={trace_id}"), (start + 2, f"untraced-{marker}")],
    )

    def pushed_lines() -> tuple[list[str], list[str]]:
        got = httpx.get(f"{collector.url}/api/obs/correlate", params={"trace_id": trace_id}, timeout=10).json()
        by_id = [r["body"] for r in got["logs"]["by_trace_id"] if marker in r["body"]]
        by_time = [r["body"] for r in got["logs"]["by_service_and_time"] if marker in r["body"]]
        return by_id, by_time

    assert _wait(
        lambda: pushed_lines() == ([f"level=info msg=audit-{marker} trace_id={trace_id}"], [f"untraced-{marker}"])
    )

    # From a log record to its trace.
    record = next(r for r in body["logs"]["by_trace_id"] if r["service"] == "payments")
    r = httpx.get(f"{collector.url}/api/obs/correlate", params={"log": record["log"]}, timeout=10)
    assert r.status_code == 200, r.text
    assert trace_id in {t["trace_id"] for t in r.json()["traces"]}
    assert record["log"] in {rec["log"] for rec in r.json()["logs"]}

    # From a metric series at a time to the exemplar traces near it.
    exemplar = next(
        e for e in body["exemplars"] if e["series_labels"]["__name__"] == "traces_spanmetrics_latency_bucket"
    )
    selector = (
        "traces_spanmetrics_latency_bucket{"
        + ",".join(f'{k}="{v}"' for k, v in exemplar["series_labels"].items() if k != "__name__")
        + "}"
    )
    params = {"series": selector, "time": str(exemplar["timestamp_ms"]), "window": "1m"}  # Unix ms
    r = httpx.get(f"{collector.url}/api/obs/correlate", params=params, timeout=10)
    assert r.status_code == 200, r.text
    found = r.json()
    assert found["trace_ids"][0] == trace_id and found["exemplars"][0]["distance_ms"] == 0

    # Unknown things and bad requests.
    missing = httpx.get(f"{collector.url}/api/obs/correlate", params={"trace_id": "0" * 31 + "1"}, timeout=10)
    assert missing.status_code == 404
    for bad in ({}, {"trace_id": trace_id, "log": record["log"]}, {"log": "orders"}, {"series": "rate("}):
        assert httpx.get(f"{collector.url}/api/obs/correlate", params=bad, timeout=10).status_code == 400
