"""RED metrics through `agents.instrument`: labels by route template, exemplars in OpenMetrics, gzip."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from opentelemetry import trace
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.parser import text_string_to_metric_families as text_families

import agents
from tests.conftest import free_port
from tests.unit.agents.serving import serve_in_thread


def _environ() -> dict[str, str]:
    # Nothing listens on the collector port: export fails in the background, requests must not care.
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "OBS_REGISTRY_URL": "",
        "OBS_METRICS_PUSH_URL": "",
    }


@pytest.fixture
def served() -> Iterator[tuple[httpx.Client, agents.Agent]]:
    app = FastAPI()

    @app.get("/orders/{order_id}")
    async def get_order(order_id: int) -> dict[str, str]:
        if order_id == 0:
            raise HTTPException(404, "no such order")
        ctx = trace.get_current_span().get_span_context()
        return {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}

    agent = agents.instrument(
        app, service="orders", version="0.1.0", environ=_environ(), console=io.StringIO(), shutdown_timeout_s=0.5
    )
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client, agent


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float, object]]:
    return [
        (dict(s.labels), s.value, s.exemplar)
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == name
    ]


def test_route_template_method_and_status_labels(served: tuple[httpx.Client, agents.Agent]) -> None:
    client, _ = served
    assert client.get("/orders/7").status_code == 200
    assert client.get("/orders/8").status_code == 200
    assert client.get("/orders/0").status_code == 404
    assert client.post("/orders/7").status_code == 405
    assert client.get("/nowhere/else").status_code == 404
    text = client.get("/metrics", headers={"Accept": "application/openmetrics-text"}).text
    counts = {(lb["method"], lb["route"], lb["status"]): v for lb, v, _ in _samples(text, "http_server_requests_total")}
    assert counts == {
        ("GET", "/orders/{order_id}", "200"): 2,
        ("GET", "/orders/{order_id}", "404"): 1,
        ("POST", "/orders/{order_id}", "405"): 1,
        ("GET", "", "404"): 1,
    }
    [(labels, value, _)] = [
        s for s in _samples(text, "http_server_request_duration_seconds_count") if s[0]["status"] == "200"
    ]
    assert value == 2 and labels["route"] == "/orders/{order_id}"
    in_flight = {
        lb["route"]: v for lb, v, _ in _samples(text, "http_server_requests_in_flight") if lb["method"] == "GET"
    }
    assert in_flight["/orders/{order_id}"] == 0
    assert in_flight["/metrics"] == 1  # this scrape itself


def test_exemplars_hold_the_request_trace(served: tuple[httpx.Client, agents.Agent]) -> None:
    client, _ = served
    ids = client.get("/orders/42").json()
    text = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}).text
    [(_, _, counter_exemplar)] = [
        s for s in _samples(text, "http_server_requests_total") if s[0]["route"] == "/orders/{order_id}"
    ]
    assert counter_exemplar is not None and dict(counter_exemplar.labels) == ids
    bucket_exemplars = [
        dict(e.labels)
        for lb, _, e in _samples(text, "http_server_request_duration_seconds_bucket")
        if lb["route"] == "/orders/{order_id}" and e is not None
    ]
    assert bucket_exemplars == [ids]


def test_plain_text_by_default_and_gzip_when_asked(served: tuple[httpx.Client, agents.Agent]) -> None:
    client, _ = served
    client.get("/orders/1")
    plain = client.get("/metrics")
    assert plain.headers["content-type"].startswith("text/plain")
    assert "# EOF" not in plain.text and "trace_id" not in plain.text  # exemplars are OpenMetrics-only
    names = {fam.name for fam in text_families(plain.text)}
    assert {"http_server_requests", "process_cpu_seconds", "python_gc_objects_collected", "python_info"} <= names
    assert {"agent_dropped", "agent_exported", "agent_queue_size"} <= names
    with client.stream("GET", "/metrics", headers={"Accept-Encoding": "gzip"}) as zipped:
        assert zipped.headers["content-encoding"] == "gzip"
        raw = b"".join(zipped.iter_raw())
    assert b"http_server_requests_total" in gzip.decompress(raw)
    with client.stream("GET", "/metrics", headers={"Accept-Encoding": "identity"}) as unzipped:
        assert "content-encoding" not in unzipped.headers


def test_registry_is_per_agent(served: tuple[httpx.Client, agents.Agent]) -> None:
    client, agent = served
    from prometheus_client import REGISTRY, Counter

    Counter("orders_custom", "a service's own metric", registry=agent.registry).inc(3)
    assert "orders_custom_total 3.0" in client.get("/metrics").text
    assert REGISTRY.get_sample_value("http_server_requests_total") is None
