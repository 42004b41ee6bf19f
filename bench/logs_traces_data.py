"""Generated log lines and traces for bench/logs_traces.py, as OTLP/HTTP and Loki push request bodies.

Everything is derived from (seed, chunk number), so sender processes build their own share of the
bodies without talking to each other. Chunk k of n covers the k-th of n equal slices of the 24 h
[end - 24 h, end): senders deliver history roughly in time order, as agents catching up do.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import cramjam
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, Status

from collector.codecs.loki_push import push_request_class

DAY_NS = 86_400 * 10**9
SERVICES = [
    "gateway",
    "orders",
    "payments",
    "inventory",
    "shipping",
    "users",
    "catalog",
    "cart",
    "notifications",
    "search",
]
# Who a service calls (a client span there, a server span in the callee), as in a shop's call graph.
CALLS = {
    "gateway": ["orders", "users", "catalog", "cart", "search"],
    "orders": ["payments", "inventory", "shipping", "notifications"],
    "cart": ["catalog", "inventory"],
    "payments": ["users"],
    "shipping": ["notifications"],
}
ROUTES = ["/api/orders", "/api/orders/{id}", "/api/cart", "/api/users/{id}", "/api/search", "/api/catalog/{sku}"]
# (severity text, severity number, share of lines in per mille)
LEVELS = [("DEBUG", 5, 150), ("INFO", 9, 700), ("WARN", 13, 100), ("ERROR", 17, 50)]
USERS = 10_000  # "user=u-000042" is the rare literal: ~1 line in 30,000 carries a given user
NEEDLE_USER = 42
# The literal of the common filter: in about 1 line in 60 (upstream timeouts, warnings and errors).
COMMON_LITERAL = "timeout"


def needle() -> str:
    return f"user=u-{NEEDLE_USER:06d}"


def chunk_window(chunk: int, chunks: int, end_ns: int) -> tuple[int, int]:
    """[start, end) in ns of chunk `chunk` of `chunks` over the 24 h before end_ns."""
    start = end_ns - DAY_NS
    return start + DAY_NS * chunk // chunks, start + DAY_NS * (chunk + 1) // chunks


def _kv(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _resource(service: str, pod: int) -> list[KeyValue]:
    return [
        _kv("service.name", service),
        _kv("service.version", "1.14.2"),
        _kv("service.instance.id", f"{service}-{pod}"),
        _kv("host.name", f"node-{pod % 3}"),
        _kv("deployment.environment", "production"),
    ]


def _level(rng: random.Random) -> tuple[str, int]:
    r = rng.randrange(1000)
    for text, number, share in LEVELS:
        if r < share:
            return text, number
        r -= share
    return LEVELS[-1][0], LEVELS[-1][1]


def log_line(rng: random.Random, service: str, level: str) -> tuple[str, bytes]:
    """A body as services write them, and the trace id it carries in its text (b"" when none)."""
    user = f"u-{rng.randrange(USERS):06d}"
    ms = int(rng.lognormvariate(3.0, 1.0))
    route = rng.choice(ROUTES)
    if level == "ERROR" or (level == "WARN" and rng.random() < 0.3):
        trace_id = rng.randbytes(16)
        callee = rng.choice(SERVICES)
        if rng.random() < 0.5:
            return f"upstream {COMMON_LITERAL} after {ms}ms calling {callee} user={user} trace_id={trace_id.hex()}", (
                trace_id
            )
        return (
            f'{{"msg":"request failed","route":"{route}","status":503,"error":"connection refused by {callee}",'
            f'"user":"{user}","trace_id":"{trace_id.hex()}"}}',
            trace_id,
        )
    kind = rng.randrange(6)
    if kind == 0:
        return f"GET {route} 200 {ms}ms user={user}", b""
    if kind == 1:
        return f"order ord-{rng.randrange(10**8):08d} created for user={user} items={rng.randint(1, 9)}", b""
    if kind == 2:
        return f"cache miss key=session:{rng.randrange(10**6)} took {ms}us", b""
    if kind == 3:
        return f"inventory reserved sku=SKU-{rng.randrange(5000):05d} qty={rng.randint(1, 5)} warehouse=eu-west", b""
    if kind == 4:
        return f'{{"msg":"request completed","route":"{route}","status":200,"duration_ms":{ms}}}', b""
    return f'level={level.lower()} msg="processed batch" size={rng.randint(1, 500)} duration={ms}ms', b""


def logs_request(seed: int, chunk: int, chunks: int, lines: int, end_ns: int) -> bytes:
    """One ExportLogsServiceRequest of `lines` log records over all services (one ResourceLogs each).

    A third of the records carry OTLP trace and span ids; error lines name a trace id in their text."""
    rng = random.Random(seed * 1_000_003 + chunk)
    lo, hi = chunk_window(chunk, chunks, end_ns)
    req = ExportLogsServiceRequest()
    scopes = []
    for i, service in enumerate(SERVICES):
        rl: ResourceLogs = req.resource_logs.add()
        rl.resource.attributes.extend(_resource(service, chunk % 4 + i))
        sl = rl.scope_logs.add()
        sl.scope.name = "io.opentelemetry.logback"
        scopes.append(sl)
    times = sorted(rng.randrange(lo, hi) for _ in range(lines))
    for t in times:
        service_index = rng.randrange(len(SERVICES))
        level, number = _level(rng)
        body, _ = log_line(rng, SERVICES[service_index], level)
        record = scopes[service_index].log_records.add(
            time_unix_nano=t,
            observed_time_unix_nano=t + 1_000_000,
            severity_text=level,
            severity_number=number,
        )
        record.body.string_value = body
        record.attributes.append(_kv("thread.name", f"http-nio-8080-exec-{rng.randrange(1, 20)}"))
        record.attributes.append(_kv("code.namespace", f"com.shop.{SERVICES[service_index]}.Handler"))
        if rng.random() < 0.33:
            record.trace_id = rng.randbytes(16)
            record.span_id = rng.randbytes(8)
            record.flags = 1
    return req.SerializeToString()


@dataclass
class _Draft:
    service: str
    kind: int
    name: str
    start: int
    duration: int
    span_id: bytes
    parent: bytes
    status: int


def _trace(rng: random.Random, start_ns: int, size: int) -> list[_Draft]:
    """A request through the gateway: `size` spans, calls down the call graph, children inside parents."""
    duration = int(rng.lognormvariate(17.5, 1.0))  # median e^17.5 ns = 40 ms
    route = rng.choice(ROUTES)
    root = _Draft("gateway", Span.SPAN_KIND_SERVER, f"GET {route}", start_ns, duration, rng.randbytes(8), b"", 0)
    spans = [root]
    while len(spans) < size:
        parent = rng.choice(spans)
        if parent.name == "SELECT shop":  # a database call has no spans under it
            continue
        offset = rng.randrange(max(1, parent.duration // 2))
        length = max(1000, int(parent.duration * rng.uniform(0.1, 0.5)))
        callees = CALLS.get(parent.service, [])
        if parent.kind == Span.SPAN_KIND_CLIENT:
            # The server side of a call: the callee is named in the client span's name.
            callee = parent.name.split(" ", 1)[1]
            kind, service, name = Span.SPAN_KIND_SERVER, callee, f"{callee}.handle"
        elif callees and rng.random() < 0.6:
            callee = rng.choice(callees)
            kind, service, name = Span.SPAN_KIND_CLIENT, parent.service, f"call {callee}"
        elif rng.random() < 0.3:
            kind, service, name = Span.SPAN_KIND_CLIENT, parent.service, "SELECT shop"
        else:
            kind, service, name = Span.SPAN_KIND_INTERNAL, parent.service, f"{parent.service}.process"
        status = 2 if rng.random() < 0.01 else 0
        start = parent.start + offset
        spans.append(_Draft(service, kind, name, start, length, rng.randbytes(8), parent.span_id, status))
    return spans


def spans_request(seed: int, chunk: int, chunks: int, spans: int, end_ns: int) -> tuple[bytes, list[tuple[str, int]]]:
    """One ExportTraceServiceRequest of `spans` spans in whole traces of 5-30 spans, and each trace's id and size."""
    rng = random.Random(seed * 1_000_033 + chunk)
    lo, hi = chunk_window(chunk, chunks, end_ns)
    req = ExportTraceServiceRequest()
    by_service = {}
    for i, service in enumerate(SERVICES):
        rs: ResourceSpans = req.resource_spans.add()
        rs.resource.attributes.extend(_resource(service, chunk % 4 + i))
        ss = rs.scope_spans.add()
        ss.scope.name = "io.opentelemetry.spring-webmvc-6.0"
        by_service[service] = ss
    trace_ids = []
    made = 0
    while made < spans:
        size = min(rng.randint(5, 30), spans - made) if spans - made >= 5 else spans - made
        trace_id = rng.randbytes(16)
        trace_ids.append((trace_id.hex(), size))
        for d in _trace(rng, rng.randrange(lo, hi), size):
            span = by_service[d.service].spans.add(
                trace_id=trace_id,
                span_id=d.span_id,
                parent_span_id=d.parent,
                name=d.name,
                kind=d.kind,
                start_time_unix_nano=d.start,
                end_time_unix_nano=d.start + d.duration,
            )
            if d.kind == Span.SPAN_KIND_SERVER:
                span.attributes.extend([_kv("http.request.method", "GET"), _kv("http.route", d.name)])
                span.attributes.append(_kv("http.response.status_code", 500 if d.status else 200))
            elif d.name == "SELECT shop":
                span.attributes.extend([_kv("db.system", "postgresql"), _kv("db.name", "shop")])
            elif d.kind == Span.SPAN_KIND_CLIENT:
                span.attributes.append(_kv("peer.service", d.name.split(" ", 1)[1]))
            if d.status:
                span.status.code = Status.STATUS_CODE_ERROR
        made += size
    return req.SerializeToString(), trace_ids


def loki_push_body(seed: int, chunk: int, chunks: int, lines: int, end_ns: int) -> bytes:
    """A snappy-compressed logproto.PushRequest as Promtail and Alloy send it: one stream per
    (service, level), entries in time order, trace ids as structured metadata on some.

    Services are named `promtail-<service>`, so the pushed lines never fall in the OTLP queries' streams."""
    rng = random.Random(seed * 1_000_037 + chunk)
    lo, hi = chunk_window(chunk, chunks, end_ns)
    push = push_request_class()()
    streams: dict[tuple[str, str], Any] = {}
    for t in sorted(rng.randrange(lo, hi) for _ in range(lines)):
        service = rng.choice(SERVICES)
        level, _ = _level(rng)
        key = (service, level)
        stream = streams.get(key)
        if stream is None:
            stream = streams[key] = push.streams.add()
            stream.labels = f'{{service_name="promtail-{service}", level="{level.lower()}", job="varlogs"}}'
        body, trace_id = log_line(rng, service, level)
        entry = stream.entries.add(line=body)
        entry.timestamp.seconds, entry.timestamp.nanos = divmod(t, 10**9)
        if trace_id:
            entry.structuredMetadata.add(name="trace_id", value=trace_id.hex())
    return bytes(cramjam.snappy.compress_raw(push.SerializeToString()))
