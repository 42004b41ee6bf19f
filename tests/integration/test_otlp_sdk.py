"""The real OpenTelemetry Python SDK exporters (HTTP/protobuf and gRPC) against a collector process.

Every span, log record and data point the SDK exported is read back through the lookup API with
identical ids, timestamps, attributes and values. The SDK's own in-memory exporters record what was
sent, so the expectation is the SDK's data, not something the test restates.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from tests.conftest import CollectorProcess

KINDS = {
    SpanKind.INTERNAL: "Internal",
    SpanKind.SERVER: "Server",
    SpanKind.CLIENT: "Client",
    SpanKind.PRODUCER: "Producer",
    SpanKind.CONSUMER: "Consumer",
}
STATUS = {StatusCode.UNSET: "Unset", StatusCode.OK: "Ok", StatusCode.ERROR: "Error"}


def _exporters(transport: str, c: CollectorProcess) -> tuple[Any, Any, Any]:
    if transport == "http":
        return (
            HttpSpanExporter(endpoint=f"{c.otlp_url}/v1/traces"),
            HttpLogExporter(endpoint=f"{c.otlp_url}/v1/logs"),
            HttpMetricExporter(endpoint=f"{c.otlp_url}/v1/metrics"),
        )
    return (
        GrpcSpanExporter(endpoint=c.grpc_target, insecure=True),
        GrpcLogExporter(endpoint=c.grpc_target, insecure=True),
        GrpcMetricExporter(endpoint=c.grpc_target, insecure=True),
    )


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_traces_read_back_identical(collector: CollectorProcess, transport: str) -> None:
    service = f"svc-{transport}-{uuid.uuid4().hex[:8]}"
    resource = Resource.create(
        {"service.name": service, "service.instance.id": "i-1", "deployment.environment": "test"}
    )
    provider = TracerProvider(resource=resource)
    sent = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(sent))
    provider.add_span_processor(SimpleSpanProcessor(_exporters(transport, collector)[0]))
    tracer = provider.get_tracer("test.scope", "1.2.3")

    with tracer.start_as_current_span("linked-target") as target:
        target_ctx = target.get_span_context()
    attrs = {"str": "v", "int": 42, "float": 2.5, "bool": True, "strs": ("a", "b"), "ints": (1, 2, 3)}
    with tracer.start_as_current_span(
        "GET /orders", kind=SpanKind.SERVER, attributes=attrs, links=[Link(target_ctx, {"link.attr": 7})]
    ) as root:
        root.add_event("cache.miss", {"key": "k1", "size": 3})
        with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT) as child:
            child.set_attribute("db.system", "sqlite")
            child.set_status(Status(StatusCode.ERROR, "disk full"))
    provider.shutdown()

    spans = sent.get_finished_spans()
    assert len(spans) == 3
    for span in spans:
        ctx = span.get_span_context()
        trace_id = f"{ctx.trace_id:032x}"
        r = httpx.get(f"{collector.url}/api/obs/traces/{trace_id}", timeout=10)
        assert r.status_code == 200, r.text
        got = {s["span_id"]: s for s in r.json()["spans"]}
        s = got[f"{ctx.span_id:016x}"]
        assert s["trace_id"] == trace_id
        assert s["parent_span_id"] == (f"{span.parent.span_id:016x}" if span.parent else "")
        assert s["name"] == span.name
        assert s["kind"] == KINDS[span.kind]
        assert s["service"] == service
        assert int(s["start_time_unix_nano"]) == span.start_time
        assert int(s["end_time_unix_nano"]) == span.end_time
        assert s["attributes"] == {k: _plain(v) for k, v in span.attributes.items()}
        assert s["resource"] == dict(span.resource.attributes)
        assert s["scope"] == {"name": "test.scope", "version": "1.2.3"}
        assert s["status"] == {"code": STATUS[span.status.status_code], "message": span.status.description or ""}
        assert [(int(e["time_unix_nano"]), e["name"], e["attributes"]) for e in s["events"]] == [
            (e.timestamp, e.name, dict(e.attributes)) for e in span.events
        ]
        assert [(link["trace_id"], link["span_id"], link["attributes"]) for link in s["links"]] == [
            (f"{lk.context.trace_id:032x}", f"{lk.context.span_id:016x}", dict(lk.attributes)) for lk in span.links
        ]


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_logs_read_back_identical(collector: CollectorProcess, transport: str) -> None:
    service = f"logs-{transport}-{uuid.uuid4().hex[:8]}"
    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    sent = InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(sent))
    provider.add_log_record_processor(SimpleLogRecordProcessor(_exporters(transport, collector)[1]))
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": service}))
    otel_logger = provider.get_logger("test.logs", "0.1")
    with tracer_provider.get_tracer("t").start_as_current_span("work"):
        otel_logger.emit(
            severity_number=SeverityNumber.WARN,
            severity_text="WARNING",
            body="payment p-1 declined",
            attributes={"order_id": 17, "amount": 9.5, "tags": ("a", "b")},
        )
    otel_logger.emit(
        severity_number=SeverityNumber.INFO,
        severity_text="INFO",
        body={"msg": "structured", "n": 2},
        timestamp=time.time_ns(),
        event_name="app.event",
    )
    provider.shutdown()

    records = [d.log_record for d in sent.get_finished_logs()]
    assert len(records) == 2
    r = httpx.get(f"{collector.url}/api/obs/logs", params={"service": service, "direction": "forward"}, timeout=10)
    assert r.status_code == 200, r.text
    got = r.json()["logs"]
    assert len(got) == 2
    for rec, g in zip(records, got, strict=True):
        assert int(g["time_unix_nano"]) == (rec.timestamp or rec.observed_timestamp)  # the data model's fallback
        assert int(g["observed_time_unix_nano"]) == rec.observed_timestamp
        assert g["body"] == rec.body
        assert g["event_name"] == (rec.event_name or "")
        assert g["severity_text"] == rec.severity_text
        assert g["severity_number"] == rec.severity_number.value
        assert g["trace_id"] == (f"{rec.trace_id:032x}" if rec.trace_id else "")
        assert g["span_id"] == (f"{rec.span_id:016x}" if rec.span_id else "")
        assert g["attributes"] == {k: _plain(v) for k, v in rec.attributes.items()}
    # The record written inside the span is found by its trace id.
    tid = got[0]["trace_id"]
    assert tid
    by_trace = httpx.get(f"{collector.url}/api/obs/logs", params={"trace_id": tid}, timeout=10).json()["logs"]
    assert [g["body"] for g in by_trace] == ["payment p-1 declined"]
    assert got[1]["trace_id"] == ""  # written outside any span


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_metrics_read_back_identical(collector: CollectorProcess, transport: str) -> None:
    service = f"metrics-{transport}-{uuid.uuid4().hex[:8]}"
    reader = PeriodicExportingMetricReader(_exporters(transport, collector)[2], export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": service, "service.instance.id": "i-9", "host.name": "box"}),
        metric_readers=[reader],
    )
    meter = provider.get_meter("test.meter")
    counter = meter.create_counter("orders.placed", unit="{order}", description="Orders placed")
    histogram = meter.create_histogram("http.server.duration", unit="ms", description="Request time")
    gauge = meter.create_up_down_counter("queue.depth", description="Items queued")
    for amount in (1, 2, 3):
        counter.add(amount, {"region": "eu"})
    for v in (3.0, 30.0, 300.0, 3000.0):
        histogram.record(v, {"route": "/orders"})
    gauge.add(5)
    gauge.add(-2)
    before_ms = int(time.time() * 1000)
    provider.shutdown()

    def series(metric: str, **labels: str) -> list[dict[str, Any]]:
        params = [("metric", metric), ("label", f"job:{service}")] + [("label", f"{k}:{v}") for k, v in labels.items()]
        r = httpx.get(f"{collector.url}/api/obs/metrics/series", params=params, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()["series"]

    [orders] = series("orders_placed_total")
    assert orders["labels"] == {"__name__": "orders_placed_total", "job": service, "instance": "i-9", "region": "eu"}
    [[ts, value]] = orders["samples"]
    assert value == "6.0" or float(value) == 6.0
    assert ts >= before_ms - 60_000
    buckets = {s["labels"]["le"]: float(s["samples"][0][1]) for s in series("http_server_duration_milliseconds_bucket")}
    # SDK default boundaries: 0,5,10,25,50,75,100,250,500,750,1000,2500,5000,7500,10000
    assert buckets["5"] == 1 and buckets["50"] == 2 and buckets["500"] == 3 and buckets["5000"] == 4
    assert buckets["+Inf"] == 4
    [count] = series("http_server_duration_milliseconds_count")
    assert float(count["samples"][0][1]) == 4
    [total] = series("http_server_duration_milliseconds_sum")
    assert float(total["samples"][0][1]) == 3333.0
    [depth] = series("queue_depth")
    assert float(depth["samples"][0][1]) == 3
    [info] = series("target_info")
    assert info["labels"]["host_name"] == "box"
