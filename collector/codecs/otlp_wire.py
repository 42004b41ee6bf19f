"""OTLP request bodies (protobuf or OTLP/JSON) -> Export*ServiceRequest messages, and responses back.

Errors say where: for JSON the line and column or the field path, for protobuf the field path and
byte offset of the first malformed field (found by a second, schema-guided walk over the wire bytes,
only when the fast parser has already refused the body).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from collector.errors import PermanentError

REQUESTS: dict[str, type[Message]] = {
    "traces": ExportTraceServiceRequest,
    "logs": ExportLogsServiceRequest,
    "metrics": ExportMetricsServiceRequest,
}
RESPONSES: dict[str, type[Message]] = {
    "traces": ExportTraceServiceResponse,
    "logs": ExportLogsServiceResponse,
    "metrics": ExportMetricsServiceResponse,
}
# partial_success field that counts rejected items, per signal.
REJECTED_FIELD = {"traces": "rejected_spans", "logs": "rejected_log_records", "metrics": "rejected_data_points"}

_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def media_type(content_type: str) -> str:
    """The bare media type of a Content-Type header ('' when absent)."""
    return content_type.split(";", 1)[0].strip().lower()


def parse_request(signal: str, body: bytes, encoding: str) -> Message:
    """Parse a request body; `encoding` is PROTOBUF or JSON. Raises PermanentError saying where."""
    msg = REQUESTS[signal]()
    if encoding == JSON:
        _parse_json(body, msg)
        return msg
    try:
        msg.ParseFromString(body)
    except DecodeError as exc:
        where = locate_protobuf_error(body, msg.DESCRIPTOR)
        raise PermanentError(f"malformed protobuf {msg.DESCRIPTOR.name}: {where or exc}", reason="malformed") from None
    return msg


def _parse_json(body: bytes, msg: Message) -> None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PermanentError(f"body is not valid UTF-8 at byte offset {exc.start}", reason="malformed") from None
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise PermanentError(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", reason="malformed"
        ) from None
    if not isinstance(data, dict):
        raise PermanentError("OTLP/JSON body must be a JSON object", reason="malformed")
    _hex_ids_to_base64(data, "")
    try:
        json_format.ParseDict(data, msg, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise PermanentError(f"invalid OTLP/JSON: {exc}", reason="malformed") from None


def _hex_ids_to_base64(node: Any, path: str) -> None:
    """OTLP/JSON carries ids as case-insensitive hex where proto3 JSON would use base64: convert."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else key
            if key in _ID_KEYS and isinstance(value, str):
                try:
                    raw = bytes.fromhex(value)
                except ValueError:
                    raise PermanentError(
                        f"{here}: {value!r} is not a hex id", field=here, reason="invalid_id"
                    ) from None
                node[key] = base64.b64encode(raw).decode()
            elif isinstance(value, dict | list):
                _hex_ids_to_base64(value, here)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            if isinstance(item, dict | list):
                _hex_ids_to_base64(item, f"{path}[{i}]")


def locate_protobuf_error(data: bytes, descriptor: Any) -> str:
    """Walk protobuf wire bytes with the schema; describe the first malformed field and its offset."""
    try:
        _walk(data, 0, len(data), descriptor, "")
    except _WireProblem as problem:
        return str(problem)
    return ""


class _WireProblem(Exception):
    pass


def _varint(data: bytes, pos: int, end: int, path: str) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise _WireProblem(f"{path or 'message'}: truncated varint at byte offset {pos}")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _WireProblem(f"{path or 'message'}: varint too long at byte offset {pos}")


def _walk(data: bytes, pos: int, end: int, desc: Any, path: str) -> None:
    # desc is a protobuf Descriptor (the upb and pure-Python classes differ in their stubs).
    counts: dict[int, int] = {}
    while pos < end:
        start = pos
        key, pos = _varint(data, pos, end, path)
        number, wire = key >> 3, key & 7
        field = desc.fields_by_number.get(number)
        name = field.name if field else f"#{number}"
        idx = counts.get(number, 0)
        counts[number] = idx + 1
        here = f"{path}.{name}" if path else name
        if field is not None and field.is_repeated:
            here += f"[{idx}]"
        if number == 0:
            raise _WireProblem(f"{path or 'message'}: invalid field number 0 at byte offset {start}")
        if wire == 0:
            _, pos = _varint(data, pos, end, here)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(data, pos, end, here)
            if pos + length > end:
                raise _WireProblem(f"{here}: length {length} at byte offset {start} runs past the end of its message")
            if field is not None and field.type == FieldDescriptor.TYPE_MESSAGE:
                _walk(data, pos, pos + length, field.message_type, here)
            elif field is not None and field.type == FieldDescriptor.TYPE_STRING:
                try:
                    data[pos : pos + length].decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise _WireProblem(f"{here}: invalid UTF-8 in string at byte offset {pos + exc.start}") from None
            pos += length
        else:
            raise _WireProblem(f"{here}: unsupported wire type {wire} at byte offset {start}")
        if pos > end:
            raise _WireProblem(f"{here}: truncated field at byte offset {start}")


def success_body(signal: str, encoding: str, rejected: int = 0, message: str = "") -> bytes:
    """The Export*ServiceResponse: empty on full success, with partial_success otherwise."""
    resp = RESPONSES[signal]()
    if rejected or message:
        ps = resp.partial_success  # type: ignore[attr-defined]
        setattr(ps, REJECTED_FIELD[signal], rejected)
        ps.error_message = message
    if encoding == JSON:
        return json.dumps(json_format.MessageToDict(resp)).encode() if (rejected or message) else b"{}"
    return resp.SerializeToString()


def status_body(code: int, message: str, encoding: str, field: str = "", retry_after: float = 0.0) -> bytes:
    """A google.rpc.Status error body (with BadRequest or RetryInfo details) in the request's encoding."""
    status = status_pb2.Status(code=code, message=message)
    if field:
        detail = error_details_pb2.BadRequest(
            field_violations=[error_details_pb2.BadRequest.FieldViolation(field=field, description=message)]
        )
        status.details.add().Pack(detail)
    if retry_after:
        info = error_details_pb2.RetryInfo()
        info.retry_delay.FromNanoseconds(int(retry_after * 1e9))
        status.details.add().Pack(info)
    if encoding == JSON:
        return json.dumps(json_format.MessageToDict(status)).encode()
    return status.SerializeToString()


def grpc_code_for_http(status: int) -> int:
    """google.rpc.Code that matches an HTTP error status, for the Status body."""
    return {
        400: code_pb2.INVALID_ARGUMENT,
        413: code_pb2.INVALID_ARGUMENT,
        415: code_pb2.INVALID_ARGUMENT,
        429: code_pb2.RESOURCE_EXHAUSTED,
        503: code_pb2.UNAVAILABLE,
    }.get(status, code_pb2.UNKNOWN)
