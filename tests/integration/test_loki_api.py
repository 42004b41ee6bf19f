"""The Loki API of a real collector process, with logs sent by the OpenTelemetry SDK's OTLP exporter and by
Loki push (JSON, gzip JSON, snappy protobuf), queried with the parameters and encodings Grafana sends.

Expected results are computed in the test from the records it sent (the SDK's in-memory exporter keeps
them), with plain Python: never by the code under test.
"""

from __future__ import annotations

import gzip
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cramjam
import httpx
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from collector.codecs.loki_push import push_request_class
from collector.store.log_search import DEFAULT_LABEL_ATTRIBUTES
from tests.conftest import CollectorProcess

S = 1_000_000_000
LEVELS = [
    (SeverityNumber.DEBUG, "DEBUG", "debug"),
    (SeverityNumber.INFO, "INFO", "info"),
    (SeverityNumber.WARN, "WARNING", "warn"),
    (SeverityNumber.ERROR, "ERROR", "error"),
    (SeverityNumber.ERROR, "", "error"),  # no text: the level comes from the number
]
N = 60


@dataclass
class Record:
    ts: int
    line: str
    stream: dict[str, str]
    metadata: dict[str, str] = field(default_factory=dict)

    def labels(self) -> dict[str, str]:
        return {**self.metadata, **self.stream}


@dataclass
class Sent:
    run: str
    t0: int
    records: list[Record]

    def svc(self, name: str) -> str:
        return f"loki-{self.run}-{name}"

    @property
    def env(self) -> str:
        return f"env-{self.run}"


def _logfmt_fields(line: str) -> dict[str, str]:
    return {m.group(1): m.group(2).strip('"') for m in re.finditer(r'(\w+)=("[^"]*"|\S+)', line)}


@pytest.fixture(scope="module")
def sent(collector: CollectorProcess) -> Sent:
    run = uuid.uuid4().hex[:8]
    t0 = (time.time_ns() // S - 900) * S
    records: list[Record] = []
    for service, host in (("api", "h1"), ("db", "h2"), ("web", "h1")):
        resource = Resource.create(
            {"service.name": f"loki-{run}-{service}", "deployment.environment": f"env-{run}", "host.name": host}
        )
        provider = LoggerProvider(resource=resource)
        memory = InMemoryLogRecordExporter()
        provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
        provider.add_log_record_processor(
            SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{collector.otlp_url}/v1/logs"))
        )
        tracer = TracerProvider(resource=resource).get_tracer("t")
        logger = provider.get_logger("loki.test")
        for i in range(N):
            if ("api", "db", "web")[i % 3] != service:
                continue
            number, text, _ = LEVELS[i % len(LEVELS)]
            status = (200, 404, 500, 503)[i % 4]
            if i % 2 == 0:
                body = f'level={text.lower() or "error"} msg="order {i}" status={status} duration={i * 10}ms'
                body += f" tag={TAGS[(i // 2) % len(TAGS)]}"  # LIKE's metacharacters, matched literally
            else:
                body = json.dumps(
                    {"msg": f"order {i}", "code": status, "user": ("ann", "bob")[i % 2 == 1 and i % 4 == 1]}
                )
            attrs = {"order.id": i, "customer": ("alice", "bob", "carol")[i % 3]}
            kwargs: dict[str, Any] = {
                "timestamp": t0 + i * 2 * S,
                "severity_number": number,
                "severity_text": text or None,
                "body": body,
                "attributes": attrs,
            }
            if i % 5 == 0:
                with tracer.start_as_current_span("work"):
                    logger.emit(**kwargs)
            else:
                logger.emit(**kwargs)
        provider.shutdown()
        for data in memory.get_finished_logs():
            rec = data.log_record
            level = next(
                lv for num, txt, lv in LEVELS if txt == (rec.severity_text or "") and num == rec.severity_number
            )
            metadata = {k.replace(".", "_"): str(v) for k, v in rec.attributes.items()}
            if rec.trace_id:
                metadata["trace_id"] = f"{rec.trace_id:032x}"
                metadata["span_id"] = f"{rec.span_id:016x}"
            # Loki's OTLP mapping: the configured resource attributes become labels, dots as underscores.
            stream = {
                key.replace(".", "_"): str(value)
                for key, value in data.resource.attributes.items()
                if key in DEFAULT_LABEL_ATTRIBUTES
            }
            stream.update({"service_name": f"loki-{run}-{service}", "level": level})
            records.append(Record(rec.timestamp, str(rec.body), stream, metadata))
    assert len(records) == N
    return Sent(run, t0, sorted(records, key=lambda r: r.ts))


def get(c: CollectorProcess, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{c.url}{path}", params=params, timeout=30)


def query_range(c: CollectorProcess, sent: Sent, query: str, **extra: Any) -> httpx.Response:
    # What Grafana's Loki datasource sends for a logs panel: ns start/end, limit, direction, a step.
    params = {
        "query": query,
        "start": str(sent.t0),
        "end": str(sent.t0 + 300 * S),
        "limit": "1000",
        "direction": "backward",
        "step": "60s",
    }
    params.update(extra)
    return get(c, "/loki/api/v1/query_range", **params)


def _lines(body: dict[str, Any]) -> list[tuple[int, str]]:
    assert body["status"] == "success"
    data = body["data"]
    assert data["resultType"] == "streams"
    assert "summary" in data["stats"]
    out = []
    for stream in data["result"]:
        assert set(stream) == {"stream", "values"}
        for ts, line in stream["values"]:
            assert isinstance(ts, str)
            out.append((int(ts), line))
    return sorted(out, reverse=True)


def _status(r: Record) -> int:
    fields = _logfmt_fields(r.line) if r.line.startswith("level=") else {"status": json.loads(r.line)["code"]}
    return int(fields["status"])


# Literal filters become LIKE patterns in the store: `_`, `%` and `\` must still match only themselves.
TAGS = ["x_y", "50%", "a\\b", "plain"]

LOG_CASES: list[tuple[str, Callable[[Sent, Record], bool]]] = [
    ('{deployment_environment="ENV"} |= "_"', lambda s, r: "_" in r.line),
    ('{deployment_environment="ENV"} |= "0%"', lambda s, r: "0%" in r.line),
    ('{deployment_environment="ENV"} |= "a\\\\b"', lambda s, r: "a\\b" in r.line),
    ('{deployment_environment="ENV"} != "_" != "%"', lambda s, r: "_" not in r.line and "%" not in r.line),
    ('{service_name="SVC_api"}', lambda s, r: r.stream["service_name"] == s.svc("api")),
    (
        '{service_name=~"loki-RUN-(api|db)", level!="debug"}',
        lambda s, r: r.stream["service_name"] in (s.svc("api"), s.svc("db")) and r.stream["level"] != "debug",
    ),
    ('{deployment_environment="ENV", level="error"}', lambda s, r: r.stream["level"] == "error"),
    ('{deployment_environment="ENV", host_name!~"h1"}', lambda s, r: r.stream["host_name"] != "h1"),
    ('{deployment_environment="ENV"} |= "order 1"', lambda s, r: "order 1" in r.line),
    (
        '{deployment_environment="ENV"} |= "status" != "status=500" |~ "order [0-9]*[05]\\""',
        lambda s, r: (
            "status" in r.line and "status=500" not in r.line and re.search(r'order [0-9]*[05]"', r.line) is not None
        ),
    ),
    ('{deployment_environment="ENV"} !~ "^level="', lambda s, r: not r.line.startswith("level=")),
    (
        '{deployment_environment="ENV"} |= "level=" | logfmt | status >= 500 and duration > 100ms',
        lambda s, r: (
            r.line.startswith("level=") and _status(r) >= 500 and int(_logfmt_fields(r.line)["duration"][:-2]) > 100
        ),
    ),
    (
        '{deployment_environment="ENV"} |= "{" | json | code < 300 or user="bob"',
        lambda s, r: (
            r.line.startswith("{") and (json.loads(r.line)["code"] < 300 or json.loads(r.line)["user"] == "bob")
        ),
    ),
    ('{deployment_environment="ENV"} | customer="carol"', lambda s, r: r.metadata["customer"] == "carol"),
    ('{deployment_environment="ENV"} | trace_id!=""', lambda s, r: "trace_id" in r.metadata),
]


@pytest.mark.parametrize(("query", "want"), LOG_CASES, ids=[c[0] for c in LOG_CASES])
def test_log_queries(collector: CollectorProcess, sent: Sent, query: str, want: Callable[[Sent, Record], bool]) -> None:
    text = query.replace("SVC_", f"loki-{sent.run}-").replace("RUN", sent.run).replace("ENV", sent.env)
    r = query_range(collector, sent, text)
    assert r.status_code == 200, r.text
    expected = sorted(((rec.ts, rec.line) for rec in sent.records if want(sent, rec)), reverse=True)
    assert expected, "a case must select something"
    assert _lines(r.json()) == expected


def test_stream_labels_and_metadata(collector: CollectorProcess, sent: Sent) -> None:
    r = query_range(collector, sent, f'{{deployment_environment="{sent.env}"}}')
    got = {int(ts): stream["stream"] for stream in r.json()["data"]["result"] for ts, _line in stream["values"]}
    assert got == {rec.ts: rec.labels() for rec in sent.records}


def test_limit_and_direction(collector: CollectorProcess, sent: Sent) -> None:
    selector = f'{{deployment_environment="{sent.env}"}}'
    newest = _lines(query_range(collector, sent, selector, limit="7").json())
    assert newest == sorted(((r.ts, r.line) for r in sent.records), reverse=True)[:7]
    body = query_range(collector, sent, selector, limit="5", direction="forward").json()
    values = [(int(ts), line) for s in body["data"]["result"] for ts, line in s["values"]]
    assert sorted(values) == [(r.ts, r.line) for r in sent.records][:5]
    for stream in body["data"]["result"]:  # each stream oldest first
        times = [int(ts) for ts, _ in stream["values"]]
        assert times == sorted(times)


def test_line_format_label_format_drop_keep(collector: CollectorProcess, sent: Sent) -> None:
    q = (
        f'{{service_name="{sent.svc("api")}"}} |= "level=" | logfmt | label_format lvl=level, '
        'tag="{{.msg}}!" | line_format "{{.lvl}} {{.status}}" | drop duration, customer | keep lvl, tag, status'
    )
    body = query_range(collector, sent, q).json()
    got = sorted(
        (int(ts), line, tuple(sorted(s["stream"].items()))) for s in body["data"]["result"] for ts, line in s["values"]
    )
    expected = []
    for rec in sent.records:
        if rec.stream["service_name"] == sent.svc("api") and rec.line.startswith("level="):
            f = _logfmt_fields(rec.line)
            # logfmt's `level` collides with the stream label and becomes level_extracted: lvl is the stream's
            level = rec.stream["level"]
            labels = {"lvl": level, "tag": f["msg"] + "!", "status": f["status"]}
            expected.append((rec.ts, f"{level} {f['status']}", tuple(sorted(labels.items()))))
    assert got == sorted(expected)


def _window_counts(sent: Sent, at: int, range_ns: int, pick: Callable[[Record], bool]) -> list[Record]:
    return [r for r in sent.records if at - range_ns < r.ts <= at and pick(r)]


@pytest.mark.parametrize(
    "stages",
    ["", ' |= "order"', ' | customer!="nobody"'],
    ids=["counted in the store", "with a line filter, in the store", "with a label filter, in Python"],
)
@pytest.mark.parametrize(
    ("range_s", "step_ms", "offset_ms"), [(60, 30_000, 0), (120, 45_000, 500), (10, 7_000, 250)], ids=str
)
def test_metric_range_query(
    collector: CollectorProcess, sent: Sent, stages: str, range_s: int, step_ms: int, offset_ms: int
) -> None:
    q = f'sum by (level) (count_over_time({{deployment_environment="{sent.env}"}}{stages}[{range_s}s]))'
    start, end, step = sent.t0 + offset_ms * 1_000_000, sent.t0 + 180 * S, step_ms * 1_000_000
    r = query_range(collector, sent, q, start=str(start), end=str(end), step=f"{step_ms}ms")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["resultType"] == "matrix"
    got = {s["metric"]["level"]: s["values"] for s in data["result"]}
    expected: dict[str, list[list[Any]]] = {}
    for t in range(start, end + 1, step):
        for level in ("debug", "info", "warn", "error"):
            n = len(_window_counts(sent, t, range_s * S, lambda rec, lv=level: rec.stream["level"] == lv))  # type: ignore[misc]
            if n:
                stamp = t // S if t % S == 0 else t / S
                expected.setdefault(level, []).append([stamp, str(n)])
    assert got == expected


METRIC_CASES: list[tuple[str, Callable[[Sent, int], dict[tuple[tuple[str, str], ...], float]]]] = [
    (
        'sum by (service_name) (rate({deployment_environment="ENV"} |= "order" [2m]))',
        lambda s, at: _group(s, at, 120, lambda r: "order" in r.line, ("service_name",), lambda rs: len(rs) / 120),
    ),
    (
        'sum(bytes_over_time({deployment_environment="ENV"}[10m]))',
        lambda s, at: _group(s, at, 600, lambda r: True, (), lambda rs: sum(len(r.line.encode()) for r in rs)),
    ),
    (
        'sum by (host_name) (bytes_rate({deployment_environment="ENV", level="error"}[5m]))',
        lambda s, at: _group(
            s,
            at,
            300,
            lambda r: r.stream["level"] == "error",
            ("host_name",),
            lambda rs: sum(len(r.line) for r in rs) / 300,
        ),
    ),
    (
        'count(count_over_time({deployment_environment="ENV"} | trace_id!="" [10m]))',
        lambda s, at: _group(s, at, 600, lambda r: "trace_id" in r.metadata, (), lambda rs: len(rs)),
    ),
    (
        'max by (level) (count_over_time({deployment_environment="ENV"} |= "level=" | logfmt | drop order_id, '
        "trace_id, span_id, customer, msg, status, duration, tag, level_extracted [10m]))",
        lambda s, at: _max_level(s, at),
    ),
]


def _group(
    s: Sent,
    at: int,
    seconds: int,
    pick: Callable[[Record], bool],
    by: tuple[str, ...],
    value: Callable[[list[Record]], float],
) -> dict[tuple[tuple[str, str], ...], float]:
    groups: dict[tuple[tuple[str, str], ...], list[Record]] = {}
    for r in _window_counts(s, at, seconds * S, pick):
        groups.setdefault(tuple((k, r.stream[k]) for k in by), []).append(r)
    return {k: float(value(v)) for k, v in groups.items()}


def _max_level(s: Sent, at: int) -> dict[tuple[tuple[str, str], ...], float]:
    # After the drop only the stream labels are left: the largest stream's count per level.
    streams: dict[tuple[tuple[str, str], ...], int] = {}
    for r in _window_counts(s, at, 600 * S, lambda r: r.line.startswith("level=")):
        key = tuple(sorted(r.stream.items()))
        streams[key] = streams.get(key, 0) + 1
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for key, n in streams.items():
        k = (("level", dict(key)["level"]),)
        out[k] = max(out.get(k, 0.0), float(n))
    return out


@pytest.mark.parametrize(("query", "want"), METRIC_CASES, ids=[c[0] for c in METRIC_CASES])
def test_metric_instant_queries(collector: CollectorProcess, sent: Sent, query: str, want: Any) -> None:
    at = sent.t0 + 130 * S
    text = query.replace("ENV", sent.env)
    r = get(collector, "/loki/api/v1/query", query=text, time=str(at), limit="100", direction="backward")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["resultType"] == "vector"
    got = {}
    for sample in data["result"]:
        assert sample["value"][0] == at // S
        got[tuple(sorted(sample["metric"].items()))] = float(sample["value"][1])
    assert got == pytest.approx(want(sent, at))


def test_topk(collector: CollectorProcess, sent: Sent) -> None:
    at = sent.t0 + 130 * S
    q = f'topk(2, sum by (customer) (count_over_time({{deployment_environment="{sent.env}"}}[10m])))'
    data = get(collector, "/loki/api/v1/query", query=q, time=str(at)).json()["data"]
    counts: dict[str, int] = {}
    for r in _window_counts(sent, at, 600 * S, lambda r: True):
        counts[r.metadata["customer"]] = counts.get(r.metadata["customer"], 0) + 1
    top = sorted(counts.values(), reverse=True)[:2]
    assert sorted((float(s["value"][1]) for s in data["result"]), reverse=True) == [float(v) for v in top]


def test_grafana_health_check(collector: CollectorProcess) -> None:
    # Grafana's "Save & test": an instant query through /loki/api/v1/query that must give one sample of 2.
    now = time.time_ns()
    r = get(
        collector, "/loki/api/v1/query", query="vector(1)+vector(1)", time=str(now), limit="1", direction="backward"
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success"
    assert body["data"]["resultType"] == "vector"
    result = body["data"]["result"]
    assert len(result) == 1
    assert result[0]["metric"] == {}
    assert result[0]["value"][1] == "2"


def test_labels_values_series_stats(collector: CollectorProcess, sent: Sent) -> None:
    window = {"start": str(sent.t0), "end": str(sent.t0 + 300 * S)}
    selector = f'{{deployment_environment="{sent.env}"}}'
    r = get(collector, "/loki/api/v1/labels", **window)
    assert r.status_code == 200
    assert {"service_name", "level", "deployment_environment", "host_name"} <= set(r.json()["data"])
    r = get(collector, "/loki/api/v1/labels", query=selector, **window)
    assert r.json() == {"status": "success", "data": sorted({name for rec in sent.records for name in rec.stream})}
    r = get(collector, "/loki/api/v1/label/service_name/values", query=selector, **window)
    assert r.json() == {"status": "success", "data": sorted({rec.stream["service_name"] for rec in sent.records})}
    r = get(collector, "/loki/api/v1/label/level/values", query=selector, **window)
    assert r.json()["data"] == sorted({rec.stream["level"] for rec in sent.records})
    expected_series = sorted(
        {tuple(sorted(rec.stream.items())) for rec in sent.records if rec.stream["host_name"] == "h1"}
    )
    params = [("match[]", f'{{deployment_environment="{sent.env}", host_name="h1"}}'), *window.items()]
    for response in (
        httpx.get(f"{collector.url}/loki/api/v1/series", params=params, timeout=30),
        httpx.post(f"{collector.url}/loki/api/v1/series", data=dict(params), timeout=30),
    ):
        assert response.status_code == 200, response.text
        assert sorted(tuple(sorted(s.items())) for s in response.json()["data"]) == expected_series
    r = get(collector, "/loki/api/v1/index/stats", query=selector, **window)
    stats = r.json()
    assert set(stats) == {"streams", "chunks", "entries", "bytes"}
    assert stats["entries"] == len(sent.records)
    assert stats["bytes"] == sum(len(rec.line.encode()) for rec in sent.records)
    assert stats["streams"] == len({tuple(sorted(rec.stream.items())) for rec in sent.records})


def test_ready_and_buildinfo(collector: CollectorProcess) -> None:
    r = get(collector, "/ready")
    assert (r.status_code, r.text.strip()) == (200, "ready")
    r = get(collector, "/loki/api/v1/status/buildinfo")
    assert r.status_code == 200
    assert {"version", "revision", "branch", "buildUser", "buildDate", "goVersion"} <= set(r.json())


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/loki/api/v1/query_range", {"query": '{app="x"'}, "parse error"),
        ("/loki/api/v1/query_range", {"query": "{}"}, "at least one"),
        ("/loki/api/v1/query_range", {"query": '{app="x"}', "start": "tomorrow"}, "invalid start"),
        ("/loki/api/v1/query_range", {"query": '{app="x"}', "direction": "sideways"}, "direction"),
        ("/loki/api/v1/query", {"query": '{app="x"}'}, "instant query"),
        ("/loki/api/v1/series", {}, "match[]"),
    ],
)
def test_bad_requests(collector: CollectorProcess, path: str, params: dict[str, str], message: str) -> None:
    r = get(collector, path, **params)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/plain")
    assert message in r.text


def _pushed(collector: CollectorProcess, service: str, t0: int) -> list[tuple[int, str, dict[str, str]]]:
    r = get(
        collector,
        "/loki/api/v1/query_range",
        query=f'{{service_name="{service}"}}',
        start=str(t0),
        end=str(t0 + 60 * S),
        direction="forward",
    )
    assert r.status_code == 200, r.text
    return sorted((int(ts), line, s["stream"]) for s in r.json()["data"]["result"] for ts, line in s["values"])


@pytest.mark.parametrize("encoding", ["json", "gzip-json", "protobuf"])
def test_push_round_trip(collector: CollectorProcess, encoding: str) -> None:
    service = f"pushed-{encoding}-{uuid.uuid4().hex[:8]}"
    t0 = (time.time_ns() // S - 120) * S + 123
    trace = uuid.uuid4().hex
    entries = [(t0 + i * S, f"line {i} of {service}", {"trace_id": trace, "k": str(i)}) for i in range(5)]
    labels = {"service_name": service, "env": "e1", "level": "warn"}
    if encoding == "protobuf":
        push = push_request_class()()
        stream = push.streams.add(labels="{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}")
        for ts, line, meta in entries:
            e = stream.entries.add(line=line)
            e.timestamp.seconds, e.timestamp.nanos = divmod(ts, S)
            for k, v in meta.items():
                e.structuredMetadata.add(name=k, value=v)
        body = bytes(cramjam.snappy.compress_raw(push.SerializeToString()))
        headers = {"Content-Type": "application/x-protobuf"}
    else:
        doc = {"streams": [{"stream": labels, "values": [[str(ts), line, meta] for ts, line, meta in entries]}]}
        body = json.dumps(doc).encode()
        headers = {"Content-Type": "application/json"}
        if encoding == "gzip-json":
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
    r = httpx.post(f"{collector.url}/loki/api/v1/push", content=body, headers=headers, timeout=30)
    assert r.status_code == 204, r.text
    expected = [(ts, line, {**labels, **meta}) for ts, line, meta in entries]
    assert _pushed(collector, service, t0) == expected
    # the pushed trace id is the record's trace id: the native API finds it
    logs = httpx.get(f"{collector.url}/api/obs/logs", params={"trace_id": trace}, timeout=30).json()["logs"]
    assert sorted(log["body"] for log in logs) == [line for _ts, line, _m in entries]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"streams":[{"stream":{"a":"b"},"values":[[1700000000000000000,"x"]]}]}', "application/json"),
        (b"{not json", "application/json"),
        (b"\x00\x01garbage", "application/x-protobuf"),
    ],
)
def test_push_refusals(collector: CollectorProcess, body: bytes, content_type: str) -> None:
    r = httpx.post(
        f"{collector.url}/loki/api/v1/push", content=body, headers={"Content-Type": content_type}, timeout=30
    )
    assert r.status_code == 400
    assert r.text


def test_empty_push_is_204(collector: CollectorProcess) -> None:
    r = httpx.post(f"{collector.url}/loki/api/v1/push", json={"streams": []}, timeout=30)
    assert r.status_code == 204
