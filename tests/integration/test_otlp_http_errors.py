"""Bad input over OTLP/HTTP and gRPC: the spec's status, a message saying what and where, nothing stored.

Each case sends a request whose valid-looking parts carry a trace id of their own, then checks that no
span of that trace reached the store.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable

import grpc
import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.conftest import CollectorProcess

NOW = 1_700_000_000_000_000_000


def _spans(trace_id: bytes, n: int = 2, bad: dict[int, dict[str, object]] | None = None) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name", value=AnyValue(string_value="bad-input"))
    ss = rs.scope_spans.add()
    for i in range(n):
        span = ss.spans.add(
            trace_id=trace_id,
            span_id=(i + 1).to_bytes(8, "big"),
            name=f"s{i}",
            start_time_unix_nano=NOW + i,
            end_time_unix_nano=NOW + i + 10,
        )
        for key, value in (bad or {}).get(i, {}).items():
            setattr(span, key, value)
    return req


def _stored(c: CollectorProcess, trace_id: bytes) -> int:
    r = httpx.get(f"{c.url}/api/obs/traces/{trace_id.hex()}", timeout=10)
    return len(r.json()["spans"]) if r.status_code == 200 else 0


def _status(r: httpx.Response) -> status_pb2.Status:
    status = status_pb2.Status()
    if r.headers["content-type"].startswith("application/json"):
        data = r.json()
        status.code, status.message = data.get("code", 0), data["message"]
    else:
        status.ParseFromString(r.content)
    return status


def _post(
    c: CollectorProcess, body: bytes, content_type: str = "application/x-protobuf", **headers: str
) -> httpx.Response:
    return httpx.post(
        f"{c.otlp_url}/v1/traces", content=body, headers={"content-type": content_type, **headers}, timeout=30
    )


Case = Callable[[bytes], tuple[bytes, dict[str, str]]]

CASES: list[tuple[str, Case, int, str]] = [
    ("malformed protobuf", lambda t: (_spans(t).SerializeToString()[:-5], {}), 400, "malformed protobuf"),
    (
        "malformed json",
        lambda t: (b'{"resourceSpans":[{', {"content-type": "application/json"}),
        400,
        "malformed JSON at line 1 column 20",
    ),
    (
        "unknown content type",
        lambda t: (_spans(t).SerializeToString(), {"content-type": "text/plain"}),
        415,
        "unsupported Content-Type 'text/plain'",
    ),
    (
        "invalid utf-8",
        lambda t: (_spans(t).SerializeToString().replace(b"s0", b"\xff0"), {}),
        400,
        "spans[0].name: invalid UTF-8",
    ),
    (
        "non-hex json id",
        lambda t: (
            json.dumps(
                {
                    "resourceSpans": [
                        {
                            "scopeSpans": [
                                {
                                    "spans": [
                                        {
                                            "traceId": "xyz" + t.hex()[3:],
                                            "spanId": "0102030405060708",
                                            "startTimeUnixNano": str(NOW),
                                            "endTimeUnixNano": str(NOW + 1),
                                        }
                                    ]
                                }
                            ]
                        }
                    ]
                }
            ).encode(),
            {"content-type": "application/json"},
        ),
        400,
        "is not a hex id",
    ),
    (
        "all ids invalid",
        lambda t: (_spans(t, 2, {0: {"span_id": b"\x01"}, 1: {"span_id": bytes(8)}}).SerializeToString(), {}),
        400,
        "spans[0]: span_id is 1 bytes, must be 8; resource_spans[0].scope_spans[0].spans[1]: span_id is all zeros",
    ),
    (
        "too old",
        lambda t: (
            _spans(t, 1, {0: {"start_time_unix_nano": 1000, "end_time_unix_nano": 2000}}).SerializeToString(),
            {},
        ),
        400,
        "older than the accepted window",
    ),
    ("body over the limit", lambda t: (_spans(t, 2000).SerializeToString(), {}), 413, "larger than the limit"),
    (
        "gzip bomb",
        lambda t: (
            gzip.compress(_spans(t).SerializeToString() + b"\0" * (50 * 1024 * 1024)),
            {"content-encoding": "gzip"},
        ),
        413,
        "counted after decompression",
    ),
    ("bad gzip", lambda t: (b"\x1f\x8bnot really", {"content-encoding": "gzip"}), 400, "not valid gzip"),
]


@pytest.fixture(scope="module")
def strict_collector(tmp_path_factory: pytest.TempPathFactory) -> CollectorProcess:
    from tests.conftest import make_collector

    c = make_collector(
        tmp_path_factory.mktemp("strict"),
        OBS_LIMITS__MAX_BODY_BYTES="64KiB",
        OBS_LIMITS__MAX_AGE="3650d",
        OBS_STORAGE__RETENTION__TRACES="0",
    )
    c.start()
    yield c  # type: ignore[misc]
    c.stop()


@pytest.mark.parametrize(("name", "make", "status", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(strict_collector: CollectorProcess, name: str, make: Case, status: int, message: str) -> None:
    trace_id = uuid.uuid4().bytes
    body, headers = make(trace_id)
    content_type = headers.pop("content-type", "application/x-protobuf")
    r = _post(strict_collector, body, content_type, **headers)
    assert r.status_code == status, r.text
    assert "retry-after" not in r.headers  # bad data is never retryable
    st = _status(r)
    assert message in st.message, st.message
    assert _stored(strict_collector, trace_id) == 0


def test_partial_success_stores_the_valid_part(strict_collector: CollectorProcess) -> None:
    trace_id = uuid.uuid4().bytes
    req = _spans(trace_id, 3, {1: {"trace_id": b"\x00" * 15}})
    r = _post(strict_collector, req.SerializeToString())
    assert r.status_code == 200
    resp = ExportTraceServiceResponse()
    resp.ParseFromString(r.content)
    assert resp.partial_success.rejected_spans == 1
    assert "spans[1]: trace_id is 15 bytes, must be 16" in resp.partial_success.error_message
    assert _stored(strict_collector, trace_id) == 2

    # The same in JSON: the count is an int64, so a string.
    trace_id = uuid.uuid4().bytes
    doc = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id.hex().upper(),
                                "spanId": "0102030405060708",
                                "startTimeUnixNano": str(NOW),
                                "endTimeUnixNano": str(NOW + 5),
                            },
                            {
                                "traceId": trace_id.hex(),
                                "spanId": "0000000000000000",
                                "startTimeUnixNano": str(NOW),
                                "endTimeUnixNano": str(NOW + 5),
                            },
                        ]
                    }
                ]
            }
        ]
    }
    r = _post(strict_collector, json.dumps(doc).encode(), "application/json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert _stored(strict_collector, trace_id) == 1


def test_full_success_bodies(strict_collector: CollectorProcess) -> None:
    r = _post(strict_collector, _spans(uuid.uuid4().bytes).SerializeToString())
    assert (r.status_code, r.content, r.headers["content-type"]) == (200, b"", "application/x-protobuf")
    r = _post(strict_collector, b"{}", "application/json")
    assert (r.status_code, r.json()) == (200, {})
    r = _post(strict_collector, b"")  # an empty request is a success
    assert r.status_code == 200


def test_grpc_bad_data_is_invalid_argument(strict_collector: CollectorProcess) -> None:
    trace_id = uuid.uuid4().bytes
    with grpc.insecure_channel(strict_collector.grpc_target) as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        with pytest.raises(grpc.RpcError) as err:
            export(_spans(trace_id, 1, {0: {"span_id": b"\x01\x02"}}).SerializeToString(), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "span_id is 2 bytes, must be 8" in err.value.details()
        trailing = dict(err.value.trailing_metadata())
        status = status_pb2.Status.FromString(trailing["grpc-status-details-bin"])
        assert status.code == 3  # INVALID_ARGUMENT
        assert "span_id is 2 bytes" in status.message
        with pytest.raises(grpc.RpcError) as err:
            export(b"\x0a\xff\xff", timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _stored(strict_collector, trace_id) == 0
