"""Loki push bodies (JSON, or snappy-block protobuf `logproto.PushRequest`) -> an OTLP ExportLogsServiceRequest.

Pushed lines become ordinary OTLP log records, so they take the same ingest path as OTLP logs. Each stream
becomes a resource whose attributes are the stream labels, except `service_name`, which becomes
`service.name` (taken from `service`, `app`, ... when absent, else `unknown_service`, as Loki's service name
discovery does), and `level`, which becomes the severity. Structured metadata becomes log attributes; a
`trace_id` of 32 and a `span_id` of 16 hex digits become the record's ids.

The protobuf classes are built at runtime from a descriptor with the field numbers of Loki's
`pkg/push/push.proto`, in a private pool, as remote_write.py does.
"""

from __future__ import annotations

import json
import re
import time
from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs

from collector.codecs.remote_write import decompress_snappy
from collector.errors import PermanentError

_F = descriptor_pb2.FieldDescriptorProto
_LABEL_PAIR = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|\})')
_HEX = re.compile(r"[0-9a-fA-F]+")
# Loki's discover_service_name default: the first of these labels present names the service.
SERVICE_NAME_LABELS = (
    "service",
    "app",
    "application",
    "name",
    "app_kubernetes_io_name",
    "container",
    "container_name",
    "component",
    "workload",
    "job",
)
# Level names -> the first SeverityNumber of their range (OpenTelemetry log data model).
SEVERITY_NUMBER = {
    "trace": 1,
    "debug": 5,
    "dbg": 5,
    "info": 9,
    "information": 9,
    "notice": 10,
    "warn": 13,
    "warning": 13,
    "error": 17,
    "err": 17,
    "critical": 21,
    "fatal": 21,
}


@cache
def _classes() -> dict[str, Any]:
    file = descriptor_pb2.FileDescriptorProto(name="observatory_logproto.proto", package="logproto", syntax="proto3")
    opt, rep = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED

    def message(name: str, fields: list[tuple[str, int, int, int, str]]) -> None:
        msg = file.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            f = msg.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = type_name

    # Wire-compatible with google.protobuf.Timestamp, declared here so the pool needs no imports.
    message("Timestamp", [("seconds", 1, _F.TYPE_INT64, opt, ""), ("nanos", 2, _F.TYPE_INT32, opt, "")])
    message("LabelPairAdapter", [("name", 1, _F.TYPE_STRING, opt, ""), ("value", 2, _F.TYPE_STRING, opt, "")])
    message(
        "EntryAdapter",
        [
            ("timestamp", 1, _F.TYPE_MESSAGE, opt, ".logproto.Timestamp"),
            ("line", 2, _F.TYPE_STRING, opt, ""),
            ("structuredMetadata", 3, _F.TYPE_MESSAGE, rep, ".logproto.LabelPairAdapter"),
        ],
    )
    message(
        "StreamAdapter",
        [
            ("labels", 1, _F.TYPE_STRING, opt, ""),
            ("entries", 2, _F.TYPE_MESSAGE, rep, ".logproto.EntryAdapter"),
            ("hash", 3, _F.TYPE_UINT64, opt, ""),
        ],
    )
    message(
        "PushRequest",
        [("streams", 1, _F.TYPE_MESSAGE, rep, ".logproto.StreamAdapter"), ("format", 2, _F.TYPE_STRING, opt, "")],
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"logproto.{name}"))
        for name in ("PushRequest", "StreamAdapter", "EntryAdapter", "LabelPairAdapter", "Timestamp")
    }


def push_request_class() -> Any:
    """The logproto.PushRequest message class (for tests and clients)."""
    return _classes()["PushRequest"]


def parse_labels(text: str, where: str) -> dict[str, str]:
    """`{a="b", c="d"}` (Prometheus label syntax, Go string escapes) -> dict."""
    body = text.strip()
    if not body.startswith("{"):
        raise PermanentError(f'{where}: labels {text!r} must be in braces, like {{app="x"}}', field=where)
    labels: dict[str, str] = {}
    pos = 1
    if body[1:].strip() == "}":
        return labels
    while pos < len(body):
        m = _LABEL_PAIR.match(body, pos)
        if m is None:
            raise PermanentError(f"{where}: cannot parse labels {text!r} at offset {pos}", field=where)
        labels[m.group(1)] = json.loads(f'"{m.group(2)}"')
        pos = m.end()
        if m.group(3) == "}":
            if body[pos:].strip():
                raise PermanentError(f"{where}: unexpected text after labels {text!r}", field=where)
            return labels
    raise PermanentError(f"{where}: labels {text!r} are not closed with '}}'", field=where)


class _Builder:
    """Collects streams into one ExportLogsServiceRequest."""

    def __init__(self) -> None:
        self.request = ExportLogsServiceRequest()
        self.observed = time.time_ns()
        self.entries = 0

    def stream(self, labels: dict[str, str], where: str) -> tuple[ResourceLogs, int, str]:
        for name, value in labels.items():
            if not isinstance(value, str):
                raise PermanentError(f"{where}: label {name!r} must have a string value", field=where)
        labels = dict(labels)
        level = labels.pop("level", "")
        service = labels.pop("service_name", "") or next(
            (labels[k] for k in SERVICE_NAME_LABELS if labels.get(k)), "unknown_service"
        )
        rl = self.request.resource_logs.add()
        rl.resource.attributes.add(key="service.name").value.string_value = service
        for name, value in sorted(labels.items()):
            rl.resource.attributes.add(key=name).value.string_value = value
        rl.scope_logs.add().scope.name = "loki.push"
        return rl, SEVERITY_NUMBER.get(level.lower(), 0), level

    def entry(
        self, rl: ResourceLogs, severity: tuple[int, str], ts_ns: int, line: str, metadata: dict[str, str]
    ) -> None:
        rec = rl.scope_logs[0].log_records.add()
        rec.time_unix_nano = ts_ns
        rec.observed_time_unix_nano = self.observed
        rec.severity_number, rec.severity_text = severity  # type: ignore[assignment]
        rec.body.string_value = line
        for name, value in metadata.items():
            if name == "trace_id" and len(value) == 32 and _HEX.fullmatch(value):
                rec.trace_id = bytes.fromhex(value)
            elif name == "span_id" and len(value) == 16 and _HEX.fullmatch(value):
                rec.span_id = bytes.fromhex(value)
            else:
                rec.attributes.add(key=name).value.string_value = value
        self.entries += 1


def _timestamp_ns(value: Any, where: str) -> int:
    if not isinstance(value, str) or not value.isdigit():
        raise PermanentError(
            f"{where}: the timestamp must be a string of nanoseconds since the epoch, got {json.dumps(value)}",
            field=where,
        )
    return int(value)


def decode_json(body: bytes) -> tuple[ExportLogsServiceRequest, int]:
    """(request, entries) from a JSON push body; raises PermanentError saying where it is wrong."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise PermanentError(f"body is not valid JSON: {exc}") from None
    streams = doc.get("streams") if isinstance(doc, dict) else None
    if not isinstance(streams, list):
        raise PermanentError('body must be an object with a "streams" array')
    b = _Builder()
    for si, stream in enumerate(streams):
        where = f"streams[{si}]"
        if not isinstance(stream, dict) or not isinstance(stream.get("stream", {}), dict):
            raise PermanentError(f'{where}: must be an object with a "stream" label object', field=where)
        values = stream.get("values", [])
        if not isinstance(values, list):
            raise PermanentError(f'{where}.values: must be an array of ["<ns>", "line"]', field=where)
        rl, level_number, level = b.stream(stream.get("stream", {}), where)
        for vi, value in enumerate(values):
            at = f"{where}.values[{vi}]"
            if not isinstance(value, list) or len(value) not in (2, 3) or not isinstance(value[1], str):
                raise PermanentError(f'{at}: must be ["<ns>", "line"] or ["<ns>", "line", {{metadata}}]', field=at)
            metadata = value[2] if len(value) == 3 else {}
            if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
                raise PermanentError(f"{at}: structured metadata must be an object of strings", field=at)
            b.entry(rl, (level_number, level), _timestamp_ns(value[0], at), value[1], metadata)
    return b.request, b.entries


def decode_protobuf(body: bytes, limit: int) -> tuple[ExportLogsServiceRequest, int]:
    """(request, entries) from a snappy-compressed logproto.PushRequest."""
    push = _classes()["PushRequest"]()
    try:
        push.ParseFromString(decompress_snappy(body, limit))
    except DecodeError as exc:
        raise PermanentError(f"malformed logproto.PushRequest protobuf: {exc}", reason="malformed") from None
    b = _Builder()
    for si, stream in enumerate(push.streams):
        where = f"streams[{si}]"
        rl, level_number, level = b.stream(parse_labels(stream.labels, where), where)
        for ei, entry in enumerate(stream.entries):
            ts = entry.timestamp.seconds * 1_000_000_000 + entry.timestamp.nanos
            if ts <= 0:
                raise PermanentError(f"{where}.entries[{ei}]: the timestamp is missing", field=where)
            metadata = {pair.name: pair.value for pair in entry.structuredMetadata}
            b.entry(rl, (level_number, level), ts, entry.line, metadata)
    return b.request, b.entries
