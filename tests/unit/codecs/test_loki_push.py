"""Loki push decoding: JSON and snappy-compressed logproto.PushRequest into OTLP log records."""

from __future__ import annotations

import json

import cramjam
import pytest

from collector.codecs.loki_push import decode_json, decode_protobuf, parse_labels, push_request_class
from collector.errors import PermanentError

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"


def _records(request: object) -> list[tuple[dict[str, str], int, str, int, str, dict[str, str], str, str]]:
    out = []
    for rl in request.resource_logs:  # type: ignore[attr-defined]
        resource = {a.key: a.value.string_value for a in rl.resource.attributes}
        for sl in rl.scope_logs:
            for r in sl.log_records:
                attrs = {a.key: a.value.string_value for a in r.attributes}
                out.append(
                    (
                        resource,
                        r.time_unix_nano,
                        r.body.string_value,
                        r.severity_number,
                        r.severity_text,
                        attrs,
                        r.trace_id.hex(),
                        r.span_id.hex(),
                    )
                )
    return out


EXPECTED = [
    (
        {"service.name": "checkout", "env": "prod"},
        1_700_000_000_123_456_789,
        "payment failed",
        17,
        "error",
        {"user": "u1"},
        TRACE,
        SPAN,
    ),
    ({"service.name": "checkout", "env": "prod"}, 1_700_000_001_000_000_000, "retrying", 17, "error", {}, "", ""),
    ({"service.name": "web", "app": "web"}, 1_700_000_002_000_000_000, "plain", 0, "", {"trace_id": "xyz"}, "", ""),
    ({"service.name": "unknown_service", "pod": "p-1"}, 1, "no service", 0, "", {}, "", ""),
]


def test_json_push() -> None:
    body = {
        "streams": [
            {
                "stream": {"service_name": "checkout", "env": "prod", "level": "error"},
                "values": [
                    ["1700000000123456789", "payment failed", {"trace_id": TRACE, "span_id": SPAN, "user": "u1"}],
                    ["1700000001000000000", "retrying"],
                ],
            },
            {"stream": {"app": "web"}, "values": [["1700000002000000000", "plain", {"trace_id": "xyz"}]]},
            {"stream": {"pod": "p-1"}, "values": [["1", "no service"]]},
        ]
    }
    request, entries = decode_json(json.dumps(body).encode())
    assert entries == 4
    assert _records(request) == EXPECTED


def test_protobuf_push() -> None:
    push = push_request_class()()
    s = push.streams.add(labels='{service_name="checkout", env="prod", level="error"}')
    e = s.entries.add(line="payment failed")
    e.timestamp.seconds, e.timestamp.nanos = 1_700_000_000, 123_456_789
    for name, value in (("trace_id", TRACE), ("span_id", SPAN), ("user", "u1")):
        e.structuredMetadata.add(name=name, value=value)
    e = s.entries.add(line="retrying")
    e.timestamp.seconds = 1_700_000_001
    s = push.streams.add(labels='{app="web"}')
    e = s.entries.add(line="plain")
    e.timestamp.seconds = 1_700_000_002
    e.structuredMetadata.add(name="trace_id", value="xyz")
    s = push.streams.add(labels='{pod="p-1"}')
    e = s.entries.add(line="no service")
    e.timestamp.nanos = 1
    body = bytes(cramjam.snappy.compress_raw(push.SerializeToString()))
    request, entries = decode_protobuf(body, 1 << 20)
    assert entries == 4
    assert _records(request) == EXPECTED


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("{}", {}),
        ('{a="b"}', {"a": "b"}),
        ('{a="b", c="d \\"q\\" \\\\"}', {"a": "b", "c": 'd "q" \\'}),
        ('{ a = "1" ,b="2"}', {"a": "1", "b": "2"}),
    ],
)
def test_parse_labels(text: str, labels: dict[str, str]) -> None:
    assert parse_labels(text, "streams[0]") == labels


BAD_JSON = [
    (b"not json", "not valid JSON"),
    (b'{"streams": {}}', '"streams" array'),
    (b'{"streams": [{"stream": {"a": "b"}, "values": [[1700000000000000000, "x"]]}]}', "string of nanoseconds"),
    (b'{"streams": [{"stream": {"a": "b"}, "values": [["1", 5]]}]}', "streams[0].values[0]"),
    (b'{"streams": [{"stream": {"a": 1}, "values": []}]}', "string value"),
    (b'{"streams": [{"stream": {"a": "b"}, "values": [["1", "x", {"k": 1}]]}]}', "structured metadata"),
]


@pytest.mark.parametrize(("body", "message"), BAD_JSON)
def test_bad_json(body: bytes, message: str) -> None:
    with pytest.raises(PermanentError) as info:
        decode_json(body)
    assert info.value.status == 400
    assert message in info.value.message


def test_bad_protobuf() -> None:
    with pytest.raises(PermanentError, match="snappy"):
        decode_protobuf(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 1 << 20)
    push = push_request_class()()
    push.streams.add(labels="a=b").entries.add(line="x").timestamp.seconds = 1
    with pytest.raises(PermanentError, match="braces"):
        decode_protobuf(bytes(cramjam.snappy.compress_raw(push.SerializeToString())), 1 << 20)
