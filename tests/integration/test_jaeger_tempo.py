"""The Jaeger query API and the Tempo API against a collector process, with spans sent by the real
OpenTelemetry SDK OTLP exporter (PROTOCOLS §6).

Two services (two TracerProviders) send four traces with explicit times, parent/child spans across the
services, attributes of each type, an error span, events and a link. Every expectation (which traces a
search finds, which spans a TraceQL filter matches, the dependency counts, the decoded protobuf) is
computed in the test from the spans the SDK recorded, not restated by hand.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from tests.conftest import CollectorProcess

MS = 1_000_000
S = 1_000_000_000
KIND_NAMES = {
    SpanKind.INTERNAL: "internal",
    SpanKind.SERVER: "server",
    SpanKind.CLIENT: "client",
    SpanKind.PRODUCER: "producer",
    SpanKind.CONSUMER: "consumer",
}
STATUS_NAMES = {StatusCode.UNSET: "unset", StatusCode.OK: "ok", StatusCode.ERROR: "error"}


@dataclass
class Sent:
    frontend: str
    backend: str
    base_ns: int
    spans: list[ReadableSpan]

    def trace_ids(self) -> set[str]:
        return {tid(s) for s in self.spans}

    def of_trace(self, trace_id: str) -> list[ReadableSpan]:
        return [s for s in self.spans if tid(s) == trace_id]


def tid(span: ReadableSpan) -> str:
    return f"{span.get_span_context().trace_id:032x}"


def sid(span: ReadableSpan) -> str:
    return f"{span.get_span_context().span_id:016x}"


def service(span: ReadableSpan) -> str:
    return str(span.resource.attributes["service.name"])


def duration(span: ReadableSpan) -> int:
    assert span.end_time is not None and span.start_time is not None
    return span.end_time - span.start_time


def _send(c: CollectorProcess) -> Sent:
    run = uuid.uuid4().hex[:8]
    frontend, backend = f"jt-frontend-{run}", f"jt-backend-{run}"
    recorded = InMemorySpanExporter()
    providers = []
    for name, extra in (
        (frontend, {"deployment.environment": "test", "host.cpus": 8, "canary": True, "weight": 0.75}),
        (backend, {"deployment.environment": "prod", "host.cpus": 4}),
    ):
        p = TracerProvider(resource=Resource.create({"service.name": name, **extra}))
        p.add_span_processor(SimpleSpanProcessor(recorded))
        p.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{c.otlp_url}/v1/traces")))
        providers.append(p)
    fe = providers[0].get_tracer("jt.frontend", "1.0.0")
    be = providers[1].get_tracer("jt.backend", "2.0.0")
    base = time.time_ns() - 120 * S

    def span(tracer: trace.Tracer, name: str, parent: trace.Span | None, start: int, end: int, **kw: Any) -> trace.Span:
        ctx = trace.set_span_in_context(parent) if parent is not None else None
        s = tracer.start_span(name, context=ctx, start_time=base + start, **kw)
        s.set_attribute("jt.run", run)
        s._jt_end = base + end  # type: ignore[attr-defined]
        return s

    def end(*spans: trace.Span) -> None:
        for s in spans:
            s.end(end_time=s._jt_end)  # type: ignore[attr-defined]

    # T1: checkout across both services; the database span fails, with an event.
    root = span(
        fe,
        "GET /checkout",
        None,
        0,
        300 * MS,
        kind=SpanKind.SERVER,
        attributes={"http.method": "GET", "http.status_code": 200, "cart.items": 3, "ratio": 0.25, "cached": False},
    )
    client = span(fe, "POST /pay", root, 10 * MS, 250 * MS, kind=SpanKind.CLIENT, attributes={"http.method": "POST"})
    server = span(
        be,
        "pay",
        client,
        20 * MS,
        240 * MS,
        kind=SpanKind.SERVER,
        attributes={"payment.amount": 12.5, "http.status_code": 200, "tags": ("a", "b")},
    )
    db = span(be, "db.query", server, 30 * MS, 200 * MS, kind=SpanKind.INTERNAL, attributes={"db.system": "sqlite"})
    db.add_event("retry", {"attempt": 2, "reason": "deadlock"}, timestamp=base + 100 * MS)
    db.set_status(Status(StatusCode.ERROR, "deadlock"))
    end(db, server, client, root)
    # T2: a failing health check, frontend only.
    health = span(
        fe, "GET /health", None, 2 * S, 2 * S + 5 * MS, kind=SpanKind.SERVER, attributes={"http.status_code": 500}
    )
    health.set_status(Status(StatusCode.ERROR))
    end(health)
    health_ctx = health.get_span_context()
    # T3: a slow checkout whose payment succeeds; it links to the health check.
    root3 = span(
        fe,
        "GET /checkout",
        None,
        4 * S,
        5 * S + 500 * MS,
        kind=SpanKind.SERVER,
        attributes={"http.method": "GET", "http.status_code": 200, "cart.items": 12},
        links=[Link(health_ctx, {"link.reason": "probe"})],
    )
    client3 = span(fe, "POST /pay", root3, 4 * S + 10 * MS, 5 * S + 400 * MS, kind=SpanKind.CLIENT)
    server3 = span(be, "pay", client3, 4 * S + 20 * MS, 5 * S + 300 * MS, kind=SpanKind.SERVER)
    server3.set_status(Status(StatusCode.OK))
    end(server3, client3, root3)
    # T4: a backend-only consumer with a bytes attribute.
    refund = span(
        be,
        "refund",
        None,
        6 * S,
        6 * S + 50 * MS,
        kind=SpanKind.CONSUMER,
        attributes={"refund.id": b"\x01\x02\xff", "refund.amount": 3},
    )
    end(refund)
    for p in providers:
        p.shutdown()
    sent = Sent(frontend, backend, base, list(recorded.get_finished_spans()))
    assert len(sent.spans) == 9
    _wait_stored(c, sent)
    return sent


def _wait_stored(c: CollectorProcess, sent: Sent) -> None:
    deadline = time.monotonic() + 30
    for trace_id in sent.trace_ids():
        want = len(sent.of_trace(trace_id))
        while True:
            r = httpx.get(f"{c.url}/api/obs/traces/{trace_id}", timeout=10)
            if r.status_code == 200 and len(r.json()["spans"]) == want:
                break
            assert time.monotonic() < deadline, f"trace {trace_id} not stored: {r.text}"
            time.sleep(0.2)


@pytest.fixture(scope="module")
def sent(collector: CollectorProcess) -> Sent:
    return _send(collector)


@pytest.fixture(scope="module")
def http(collector: CollectorProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=collector.url, timeout=30) as client:
        yield client


# -- trace context for the independent expectations ----------------------------------------------


@dataclass
class Ctx:
    root_service: str
    root_name: str
    trace_duration: int


def contexts(sent: Sent) -> dict[str, Ctx]:
    out = {}
    for trace_id in sent.trace_ids():
        spans = sent.of_trace(trace_id)
        root = next(s for s in spans if s.parent is None)
        start = min(s.start_time or 0 for s in spans)
        out[trace_id] = Ctx(service(root), root.name, max(s.end_time or 0 for s in spans) - start)
    return out


def matching(sent: Sent, pred: Callable[[ReadableSpan, Ctx], bool]) -> dict[str, int]:
    """trace id -> number of its spans for which `pred` holds (traces with none are absent)."""
    ctx = contexts(sent)
    out: dict[str, int] = {}
    for s in sent.spans:
        if pred(s, ctx[tid(s)]):
            out[tid(s)] = out.get(tid(s), 0) + 1
    return out


# -- Jaeger -----------------------------------------------------------------------------------------


def _envelope_ok(body: dict[str, Any]) -> list[Any]:
    assert set(body) == {"data", "total", "limit", "offset", "errors"}
    assert body["errors"] is None and body["limit"] == 0 and body["offset"] == 0
    assert body["total"] == len(body["data"])
    return list(body["data"])


def test_jaeger_services_nonempty_for_grafana_health_check(http: httpx.Client, sent: Sent) -> None:
    data = _envelope_ok(http.get("/jaeger/api/services").json())
    assert data, "Grafana's Save & test fails on an empty list"
    assert {sent.frontend, sent.backend} <= set(data)


def test_jaeger_operations_both_forms(http: httpx.Client, sent: Sent) -> None:
    for svc in (sent.frontend, sent.backend):
        mine = [s for s in sent.spans if service(s) == svc]
        r = http.get(f"/jaeger/api/services/{svc}/operations")
        assert _envelope_ok(r.json()) == sorted({s.name for s in mine})
        r = http.get("/jaeger/api/operations", params={"service": svc})
        want = sorted({(s.name, KIND_NAMES[s.kind]) for s in mine})
        assert sorted((o["name"], o["spanKind"]) for o in _envelope_ok(r.json())) == want
        r = http.get("/jaeger/api/operations", params={"service": svc, "spanKind": "server"})
        assert _envelope_ok(r.json()) == [
            {"name": n, "spanKind": "server"} for n in sorted({s.name for s in mine if s.kind == SpanKind.SERVER})
        ]
    r = http.get("/jaeger/api/operations")
    assert r.status_code == 400
    assert r.json()["data"] is None and r.json()["errors"][0]["code"] == 400


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def has_tag(s: ReadableSpan, key: str, value: str) -> bool:
    """Whether Jaeger's tag search finds key=value on the span: among its attributes, the tags Jaeger
    derives (error), its process (resource) tags and its log (event) fields, compared as text."""
    if key == "error" and value == "true" and s.status.status_code == StatusCode.ERROR:
        return True
    pools = [s.attributes or {}, s.resource.attributes, *[e.attributes or {} for e in s.events]]
    return any(key in pool and _text(pool[key]) == value for pool in pools)


JAEGER_SEARCHES: list[tuple[str, dict[str, Any], Callable[[ReadableSpan, Sent], bool]]] = [
    ("service", {}, lambda s, x: service(s) == x.frontend),
    ("operation", {"operation": "GET /checkout"}, lambda s, x: service(s) == x.frontend and s.name == "GET /checkout"),
    ("minDuration", {"minDuration": "1.2s"}, lambda s, x: service(s) == x.frontend and duration(s) >= 1200 * MS),
    ("maxDuration", {"maxDuration": "100ms"}, lambda s, x: service(s) == x.frontend and duration(s) <= 100 * MS),
    (
        "min and max",
        {"minDuration": "200ms", "maxDuration": "1s"},
        lambda s, x: service(s) == x.frontend and 200 * MS <= duration(s) <= S,
    ),
    (
        "tags JSON",
        {"tags": json.dumps({"http.status_code": "500"})},
        lambda s, x: service(s) == x.frontend and has_tag(s, "http.status_code", "500"),
    ),
    (
        "tags JSON error",
        {"tags": json.dumps({"error": "true"})},
        lambda s, x: service(s) == x.frontend and has_tag(s, "error", "true"),
    ),
    (
        "repeated tag",
        {"tag": ["http.method:GET", "cart.items:12"]},
        lambda s, x: service(s) == x.frontend and has_tag(s, "http.method", "GET") and has_tag(s, "cart.items", "12"),
    ),
    (
        "resource tag",
        {"tags": json.dumps({"deployment.environment": "test"})},
        lambda s, x: service(s) == x.frontend and has_tag(s, "deployment.environment", "test"),
    ),
]


@pytest.mark.parametrize(("case", "params", "pred"), JAEGER_SEARCHES, ids=[c[0] for c in JAEGER_SEARCHES])
def test_jaeger_search(
    http: httpx.Client, sent: Sent, case: str, params: dict[str, Any], pred: Callable[[ReadableSpan, Sent], bool]
) -> None:
    # As Grafana sends it: service, the optional filters, limit, start and end in microseconds.
    query = {
        "service": sent.frontend,
        "limit": 20,
        "start": (sent.base_ns - 60 * S) // 1000,
        "end": time.time_ns() // 1000,
        **params,
    }
    r = http.get("/jaeger/api/traces", params=query)
    assert r.status_code == 200, r.text
    got = {t["traceID"] for t in _envelope_ok(r.json())}
    want = {tid(s) for s in sent.spans if pred(s, sent)}
    assert want, f"case {case} should find something"
    assert got == want


@pytest.mark.parametrize(
    "tag", ["error:true", "reason:deadlock", "attempt:2", "refund.amount:3", "deployment.environment:prod"]
)
def test_jaeger_search_backend_tags(http: httpx.Client, sent: Sent, tag: str) -> None:
    # Error status, an event (log) field, typed attributes and a process tag, as the text Jaeger compares.
    r = http.get("/jaeger/api/traces", params={"service": sent.backend, "tag": tag})
    key, _, value = tag.partition(":")
    want = {tid(s) for s in sent.spans if service(s) == sent.backend and has_tag(s, key, value)}
    assert want
    assert {t["traceID"] for t in _envelope_ok(r.json())} == want


def test_jaeger_search_without_start_end_uses_lookback(http: httpx.Client, sent: Sent) -> None:
    r = http.get("/jaeger/api/traces", params={"service": sent.backend, "lookback": "1h"})
    want = {tid(s) for s in sent.spans if service(s) == sent.backend}
    assert {t["traceID"] for t in _envelope_ok(r.json())} == want


def test_jaeger_search_window_and_limit(http: httpx.Client, sent: Sent) -> None:
    window = {"service": sent.frontend, "start": sent.base_ns // 1000, "end": (sent.base_ns + 3 * S) // 1000}
    got = {t["traceID"] for t in _envelope_ok(http.get("/jaeger/api/traces", params=window).json())}
    want = {tid(s) for s in sent.spans if service(s) == sent.frontend and (s.start_time or 0) <= sent.base_ns + 3 * S}
    assert got == want
    newest = max((s for s in sent.spans if service(s) == sent.frontend), key=lambda s: s.start_time or 0)
    r = http.get("/jaeger/api/traces", params={"service": sent.frontend, "limit": 1})
    assert [t["traceID"] for t in _envelope_ok(r.json())] == [tid(newest)]


def test_jaeger_search_errors(http: httpx.Client) -> None:
    for params in ({}, {"service": "x", "minDuration": "fast"}, {"service": "x", "tags": "{not json"}):
        r = http.get("/jaeger/api/traces", params=params)
        assert r.status_code == 400, params
        body = r.json()
        assert body["data"] is None and body["errors"][0]["code"] == 400 and body["errors"][0]["msg"]


def _typed_tag(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        return {"key": key, "type": "int64", "value": value}
    if isinstance(value, float):
        return {"key": key, "type": "float64", "value": value}
    if isinstance(value, bytes):
        return {"key": key, "type": "binary", "value": base64.b64encode(value).decode()}
    if isinstance(value, tuple):
        return {"key": key, "type": "string", "value": json.dumps(list(value), separators=(",", ":"))}
    return {"key": key, "type": "string", "value": value}


def test_jaeger_trace_by_id_model(http: httpx.Client, sent: Sent) -> None:
    for trace_id in sent.trace_ids():
        r = http.get(f"/jaeger/api/traces/{trace_id}")
        assert r.status_code == 200, r.text
        data = _envelope_ok(r.json())
        assert len(data) == 1
        t = data[0]
        assert set(t) == {"traceID", "spans", "processes", "warnings"}
        assert t["traceID"] == trace_id
        spans = sent.of_trace(trace_id)
        by_id = {s["spanID"]: s for s in t["spans"]}
        assert set(by_id) == {sid(s) for s in spans}
        for s in spans:
            got = by_id[sid(s)]
            assert got["traceID"] == trace_id
            assert got["operationName"] == s.name
            assert got["startTime"] == (s.start_time or 0) // 1000
            assert got["duration"] == duration(s) // 1000
            refs = (
                [{"refType": "CHILD_OF", "traceID": trace_id, "spanID": f"{s.parent.span_id:016x}"}] if s.parent else []
            )
            refs += [
                {
                    "refType": "FOLLOWS_FROM",
                    "traceID": f"{lk.context.trace_id:032x}",
                    "spanID": f"{lk.context.span_id:016x}",
                }
                for lk in s.links
            ]
            assert got["references"] == refs
            tags = {tag["key"]: tag for tag in got["tags"]}
            for k, v in (s.attributes or {}).items():
                assert tags[k] == _typed_tag(k, v)
            assert tags["span.kind"]["value"] == KIND_NAMES[s.kind]
            assert tags["otel.scope.name"]["value"] == s.instrumentation_scope.name
            code = s.status.status_code
            if code == StatusCode.UNSET:
                assert "otel.status_code" not in tags and "error" not in tags
            else:
                assert tags["otel.status_code"] == {"key": "otel.status_code", "type": "string", "value": code.name}
                assert ("error" in tags) == (code == StatusCode.ERROR)
            if code == StatusCode.ERROR:
                assert tags["error"] == {"key": "error", "type": "bool", "value": True}
            if s.status.description:
                assert tags["otel.status_description"]["value"] == s.status.description
            assert got["logs"] == [
                {
                    "timestamp": e.timestamp // 1000,
                    "fields": [{"key": "event", "type": "string", "value": e.name}]
                    + [_typed_tag(k, v) for k, v in (e.attributes or {}).items()],
                }
                for e in s.events
            ]
            process = t["processes"][got["processID"]]
            assert process["serviceName"] == service(s)
            assert process["tags"] == [
                _typed_tag(k, v) for k, v in s.resource.attributes.items() if k != "service.name"
            ]
            assert got["warnings"] == [] and got["flags"] == 1
        assert len(t["processes"]) == len({service(s) for s in spans})


def test_jaeger_trace_not_found(http: httpx.Client) -> None:
    r = http.get(f"/jaeger/api/traces/{uuid.uuid4().hex}")
    assert r.status_code == 404
    body = r.json()
    assert body["data"] is None and body["errors"][0]["code"] == 404
    assert http.get("/jaeger/api/traces/not-hex").status_code == 400


def test_jaeger_search_by_trace_ids(http: httpx.Client, sent: Sent) -> None:
    ids = sorted(sent.trace_ids())[:2]
    r = http.get("/jaeger/api/traces", params={"traceID": ids})
    assert sorted(t["traceID"] for t in _envelope_ok(r.json())) == ids


def test_jaeger_dependencies(http: httpx.Client, sent: Sent) -> None:
    by_id = {sid(s): s for s in sent.spans}
    want: dict[tuple[str, str], int] = {}
    for s in sent.spans:
        parent = by_id.get(f"{s.parent.span_id:016x}") if s.parent else None
        if parent is not None and service(parent) != service(s):
            key = (service(parent), service(s))
            want[key] = want.get(key, 0) + 1
    assert want
    r = http.get("/jaeger/api/dependencies", params={"endTs": time.time_ns() // MS, "lookback": 3600 * 1000})
    data = _envelope_ok(r.json())
    mine = {(d["parent"], d["child"]): d["callCount"] for d in data if d["parent"] in (sent.frontend, sent.backend)}
    assert mine == want
    assert all(set(d) == {"parent", "child", "callCount"} for d in data)


# -- Tempo ------------------------------------------------------------------------------------------


def test_tempo_echo_for_grafana_health_check(http: httpx.Client) -> None:
    r = http.get("/tempo/api/echo")
    assert r.status_code == 200 and r.text == "echo"
    assert http.get("/tempo/api/status/buildinfo").json()["version"]


def _normalized(span: PbSpan) -> PbSpan:
    """The fields the store keeps: the SDK's W3C flags are not stored."""
    out = PbSpan()
    out.CopyFrom(span)
    out.ClearField("flags")
    for link in out.links:
        link.ClearField("flags")
    return out


def test_tempo_trace_by_id_protobuf_is_what_was_sent(http: httpx.Client, sent: Sent) -> None:
    for trace_id in sent.trace_ids():
        spans = sent.of_trace(trace_id)
        r = http.get(f"/tempo/api/traces/{trace_id}", headers={"Accept": "application/protobuf"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/protobuf")
        got = TracesData.FromString(r.content)
        expected = encode_spans(spans)

        def flat(resource_spans: Any) -> dict[bytes, tuple[Any, ...]]:
            out = {}
            for rs in resource_spans:
                res = sorted((kv.key, kv.value.SerializeToString()) for kv in rs.resource.attributes)
                for ss in rs.scope_spans:
                    for sp in ss.spans:
                        out[sp.span_id] = (res, ss.scope.name, ss.scope.version, _normalized(sp))
            return out

        assert flat(got.resource_spans) == flat(expected.resource_spans)


def test_tempo_trace_by_id_json_and_v2(http: httpx.Client, sent: Sent) -> None:
    trace_id = next(iter(sent.trace_ids()))
    spans = sent.of_trace(trace_id)
    body = http.get(f"/tempo/api/traces/{trace_id}").json()
    got = [sp for rs in body["resourceSpans"] for ss in rs["scopeSpans"] for sp in ss["spans"]]
    assert {base64.b64decode(sp["spanId"]).hex() for sp in got} == {sid(s) for s in spans}
    assert all(base64.b64decode(sp["traceId"]).hex() == trace_id for sp in got)
    assert {sp["kind"] for sp in got} == {f"SPAN_KIND_{KIND_NAMES[s.kind].upper()}" for s in spans}
    v2 = http.get(f"/tempo/api/v2/traces/{trace_id}", params={"start": 0, "end": int(time.time())}).json()
    assert v2 == {"trace": body}
    # v2 in protobuf is Tempo's TraceByIDResponse {trace = 1}, whose Trace has TracesData's layout.
    pb = http.get(f"/tempo/api/traces/{trace_id}", headers={"Accept": "application/protobuf"}).content
    wrapped = http.get(f"/tempo/api/v2/traces/{trace_id}", headers={"Accept": "application/protobuf"}).content
    assert wrapped[0] == 0x0A
    length, pos, shift = 0, 1, 0
    while True:
        length |= (wrapped[pos] & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not wrapped[pos - 1] & 0x80:
            break
    assert len(wrapped) == pos + length and TracesData.FromString(wrapped[pos:]) == TracesData.FromString(pb)
    assert http.get("/tempo/ready").status_code == 200
    assert http.get(f"/tempo/api/traces/{uuid.uuid4().hex}").status_code == 404
    assert http.get(f"/tempo/api/v2/traces/{uuid.uuid4().hex}").status_code == 404


def _attr(s: ReadableSpan, key: str) -> Any:
    """The unscoped `.key`: the span attribute, else the resource attribute."""
    if s.attributes and key in s.attributes:
        return s.attributes[key]
    return s.resource.attributes.get(key)


def _mine(s: ReadableSpan, sent: Sent) -> bool:
    return service(s) in (sent.frontend, sent.backend)


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _window(sent: Sent) -> dict[str, int]:
    """Unix seconds around the test's traces (sent 2 minutes in the past, over 7 s), so that traces other
    tests send to the shared collector meanwhile stay out of the searches."""
    return {"start": sent.base_ns // S - 1, "end": sent.base_ns // S + 10}


# (TraceQL with {fe} and {be} for the service names, independent predicate over span and trace context)
TRACEQL: list[tuple[str, Callable[[ReadableSpan, Ctx, Sent], bool]]] = [
    ('{ resource.service.name = "{fe}" }', lambda s, c, x: service(s) == x.frontend),
    ('{ resource.service.name != "{fe}" }', lambda s, c, x: service(s) != x.frontend),
    (
        "{ span.http.status_code >= 500 }",
        lambda s, c, x: _num(_attr(s, "http.status_code")) and _attr(s, "http.status_code") >= 500,
    ),
    ("{ .http.status_code = 200 }", lambda s, c, x: _attr(s, "http.status_code") == 200),
    (
        "{ span.cart.items > 5 }",
        lambda s, c, x: _num((s.attributes or {}).get("cart.items")) and s.attributes["cart.items"] > 5,
    ),
    ("{ .ratio < 0.5 }", lambda s, c, x: _num(_attr(s, "ratio")) and _attr(s, "ratio") < 0.5),
    (
        "{ .payment.amount >= 12.5 }",
        lambda s, c, x: _num(_attr(s, "payment.amount")) and _attr(s, "payment.amount") >= 12.5,
    ),
    ("{ .cached = false }", lambda s, c, x: _attr(s, "cached") is False),
    ("{ resource.canary = true }", lambda s, c, x: s.resource.attributes.get("canary") is True),
    ("{ resource.host.cpus <= 4 }", lambda s, c, x: s.resource.attributes.get("host.cpus", 99) <= 4),
    ('{ .deployment.environment = "prod" }', lambda s, c, x: _attr(s, "deployment.environment") == "prod"),
    ('{ span.http.method =~ "G.*" }', lambda s, c, x: str((s.attributes or {}).get("http.method", "")).startswith("G")),
    (
        '{ span.http.method !~ "G.*" }',
        lambda s, c, x: "http.method" in (s.attributes or {}) and not str(s.attributes["http.method"]).startswith("G"),
    ),
    ('{ name = "pay" }', lambda s, c, x: s.name == "pay"),
    ('{ name =~ "GET .*" && duration > 1s }', lambda s, c, x: s.name.startswith("GET ") and duration(s) > S),
    ("{ status = error }", lambda s, c, x: s.status.status_code == StatusCode.ERROR),
    ("{ status = ok }", lambda s, c, x: s.status.status_code == StatusCode.OK),
    ("{ status != unset }", lambda s, c, x: s.status.status_code != StatusCode.UNSET),
    ("{ kind = server }", lambda s, c, x: s.kind == SpanKind.SERVER),
    ("{ kind = consumer || kind = internal }", lambda s, c, x: s.kind in (SpanKind.CONSUMER, SpanKind.INTERNAL)),
    ("{ duration >= 200ms && duration < 1s }", lambda s, c, x: 200 * MS <= duration(s) < S),
    ('{ rootServiceName = "{be}" }', lambda s, c, x: c.root_service == x.backend),
    (
        '{ rootName = "GET /checkout" && kind = client }',
        lambda s, c, x: c.root_name == "GET /checkout" and s.kind == SpanKind.CLIENT,
    ),
    ("{ traceDuration > 1s }", lambda s, c, x: c.trace_duration > S),
    (
        '{ (kind = server || kind = consumer) && resource.service.name = "{be}" }',
        lambda s, c, x: s.kind in (SpanKind.SERVER, SpanKind.CONSUMER) and service(s) == x.backend,
    ),
    (
        '{ .jt.run != "" && status = error && .http.status_code = 500 }',
        lambda s, c, x: s.status.status_code == StatusCode.ERROR and _attr(s, "http.status_code") == 500,
    ),
    ("{ }", lambda s, c, x: True),
    ("{ span:duration > 1s && span:kind = server }", lambda s, c, x: duration(s) > S and s.kind == SpanKind.SERVER),
    (
        '{ trace:rootService = "{fe}" && span:status = error }',
        lambda s, c, x: c.root_service == x.frontend and s.status.status_code == StatusCode.ERROR,
    ),
    ("{ trace:duration < 100ms }", lambda s, c, x: c.trace_duration < 100 * MS),
]


@pytest.mark.parametrize(("query", "pred"), TRACEQL, ids=[q for q, _ in TRACEQL])
def test_tempo_traceql_search(
    http: httpx.Client, sent: Sent, query: str, pred: Callable[[ReadableSpan, Ctx, Sent], bool]
) -> None:
    q = query.replace("{fe}", sent.frontend).replace("{be}", sent.backend)
    # As Grafana sends it: q, limit, spss, start and end in Unix seconds.
    params = {"q": q, "limit": 1000, "spss": 100, **_window(sent)}
    r = http.get("/tempo/api/search", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"traces", "metrics"}
    got = {t["traceID"]: t for t in body["traces"] if t["traceID"] in sent.trace_ids()}
    want = matching(sent, lambda s, c: _mine(s, sent) and pred(s, c, sent))
    assert {k: t["spanSet"]["matched"] for k, t in got.items()} == want
    ctx = contexts(sent)
    for trace_id, t in got.items():
        spans = sent.of_trace(trace_id)
        assert t["rootServiceName"] == ctx[trace_id].root_service
        assert t["rootTraceName"] == ctx[trace_id].root_name
        assert t["startTimeUnixNano"] == str(min(s.start_time or 0 for s in spans))
        assert t["durationMs"] == ctx[trace_id].trace_duration // MS
        assert t["spanSets"] == [t["spanSet"]]
        by_id = {sid(s): s for s in spans}
        for sp in t["spanSet"]["spans"]:
            s = by_id[sp["spanID"]]
            assert pred(s, ctx[trace_id], sent)
            assert sp["name"] == s.name
            assert sp["startTimeUnixNano"] == str(s.start_time)
            assert sp["durationNanos"] == str(duration(s))
            assert {"key": "service.name", "value": {"stringValue": service(s)}} in sp["attributes"]


def test_tempo_search_tags_logfmt_durations_limit(http: httpx.Client, sent: Sent) -> None:
    window = {**_window(sent), "limit": 1000}
    r = http.get("/tempo/api/search", params={**window, "tags": f"service.name={sent.frontend} http.status_code=200"})
    want = matching(sent, lambda s, c: service(s) == sent.frontend and _attr(s, "http.status_code") == 200)
    assert {t["traceID"] for t in r.json()["traces"]} & sent.trace_ids() == set(want)
    r = http.get("/tempo/api/search", params={**window, "tags": f'service.name="{sent.backend}"', "minDuration": "1s"})
    ctx = contexts(sent)
    want = matching(sent, lambda s, c: service(s) == sent.backend and c.trace_duration >= S)
    assert {t["traceID"] for t in r.json()["traces"]} & sent.trace_ids() == set(want)
    q = f'{{ resource.service.name = "{sent.frontend}" }}'
    r = http.get("/tempo/api/search", params={**window, "q": q, "maxDuration": "100ms"})
    want = {k for k in matching(sent, lambda s, c: service(s) == sent.frontend) if ctx[k].trace_duration <= 100 * MS}
    assert {t["traceID"] for t in r.json()["traces"]} & sent.trace_ids() == want
    r = http.get("/tempo/api/search", params={**window, "q": q, "limit": 1, "spss": 1})
    traces = r.json()["traces"]
    newest = max(
        matching(sent, lambda s, c: service(s) == sent.frontend),
        key=lambda k: min(s.start_time or 0 for s in sent.of_trace(k)),
    )
    assert [t["traceID"] for t in traces] == [newest]
    assert len(traces[0]["spanSet"]["spans"]) == 1


def test_tempo_search_rejects_bad_traceql(http: httpx.Client) -> None:
    for q in ("{ .a = }", '{ name = "x"', "{ foo = 1 }", '{ .a =~ "(" }', "{ status > error }"):
        r = http.get("/tempo/api/search", params={"q": q})
        assert r.status_code == 400, q
        assert r.text


def test_tempo_search_tags_v1_and_v2(http: httpx.Client, sent: Sent) -> None:
    span_keys = {k for s in sent.spans for k in (s.attributes or {})}
    res_keys = {k for s in sent.spans for k in s.resource.attributes}
    v1 = http.get("/tempo/api/search/tags").json()
    assert set(v1) == {"tagNames"} and (span_keys | res_keys) <= set(v1["tagNames"])
    v1_res = http.get("/tempo/api/search/tags", params={"scope": "resource"}).json()["tagNames"]
    assert res_keys <= set(v1_res) and "http.method" not in v1_res
    v2 = http.get("/tempo/api/v2/search/tags").json()
    scopes = {sc["name"]: set(sc["tags"]) for sc in v2["scopes"]}
    assert span_keys <= scopes["span"] and res_keys <= scopes["resource"]
    assert {"name", "status", "kind", "duration"} <= scopes["intrinsic"]
    only_span = http.get("/tempo/api/v2/search/tags", params={"scope": "span"}).json()
    assert [sc["name"] for sc in only_span["scopes"]] == ["span"]
    assert http.get("/tempo/api/search/tags", params={"scope": "bogus"}).status_code == 400


def test_tempo_tag_values_v1_and_v2(http: httpx.Client, sent: Sent) -> None:
    v1 = http.get("/tempo/api/search/tag/service.name/values").json()
    assert set(v1) == {"tagValues"} and {sent.frontend, sent.backend} <= set(v1["tagValues"])
    v2 = http.get("/tempo/api/v2/search/tag/resource.service.name/values").json()["tagValues"]
    assert {"type": "string", "value": sent.frontend} in v2
    codes = http.get("/tempo/api/v2/search/tag/span.http.status_code/values").json()["tagValues"]
    for s in sent.spans:
        if "http.status_code" in (s.attributes or {}):
            assert {"type": "int", "value": str(s.attributes["http.status_code"])} in codes
    amounts = http.get("/tempo/api/v2/search/tag/.payment.amount/values").json()["tagValues"]
    assert {"type": "float", "value": "12.5"} in amounts
    names = http.get("/tempo/api/v2/search/tag/name/values").json()["tagValues"]
    assert {"type": "string", "value": "pay"} in names
    status = http.get("/tempo/api/v2/search/tag/status/values").json()["tagValues"]
    assert {"type": "keyword", "value": "error"} in status
    roots = http.get("/tempo/api/v2/search/tag/rootServiceName/values").json()["tagValues"]
    root_services = {ctx.root_service for ctx in contexts(sent).values()}
    assert {sent.frontend, sent.backend} == root_services  # the backend roots the refund trace
    assert all({"type": "string", "value": svc} in roots for svc in root_services)
    kinds = http.get("/tempo/api/v2/search/tag/kind/values").json()["tagValues"]
    assert {"type": "keyword", "value": "consumer"} in kinds
