"""OTLP logs: ExportLogsServiceRequest -> LogBatch in the otel_logs layout, checking every record."""

from __future__ import annotations

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from collector.codecs.otlp_values import (
    Rejections,
    TimeWindow,
    add_attributes,
    any_value_text,
    check_span_id,
    check_trace_id,
)
from collector.model import LogBatch, MapColumn

_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)


def log_ids(record: LogRecord) -> tuple[str, str] | str:
    """(trace_id hex, span_id hex), empty when absent, or a problem message.

    Log records need no trace context: absent ids and the all-zero ids some SDKs send outside a span
    both mean "no trace". Ids of the wrong length are an error, as for spans.
    """
    tid, sid = record.trace_id, record.span_id
    if tid == _ZERO_TRACE:
        tid = b""
    if sid == _ZERO_SPAN:
        sid = b""
    if tid:
        problem = check_trace_id(tid)
        if problem:
            return problem
    problem = check_span_id(sid, optional=True)
    if problem:
        return problem
    return tid.hex(), sid.hex()


def decode_logs(request: ExportLogsServiceRequest, window: TimeWindow) -> tuple[LogBatch, Rejections]:
    """Flatten a request into columns. Invalid records are left out and counted with their location.

    A record without time_unix_nano takes observed_time_unix_nano, as the data model says; the time
    window is checked on that effective timestamp.
    """
    b = LogBatch()
    rejected = Rejections()
    for ri, rl in enumerate(request.resource_logs):
        res_values, res_types = MapColumn(), MapColumn()
        add_attributes(rl.resource.attributes, res_values, res_types)
        res_dict = dict(zip(res_values.keys, res_values.values, strict=True))
        res_type_dict = dict(zip(res_types.keys, res_types.values, strict=True))
        service = res_dict.get("service.name", "")
        for si, sl in enumerate(rl.scope_logs):
            scope_values, scope_types = MapColumn(), MapColumn()
            add_attributes(sl.scope.attributes, scope_values, scope_types)
            scope_dict = dict(zip(scope_values.keys, scope_values.values, strict=True))
            scope_type_dict = dict(zip(scope_types.keys, scope_types.values, strict=True))
            for li, rec in enumerate(sl.log_records):
                where = f"resource_logs[{ri}].scope_logs[{si}].log_records[{li}]"
                ts = rec.time_unix_nano or rec.observed_time_unix_nano
                if ts == 0:
                    rejected.add(where, "neither time_unix_nano nor observed_time_unix_nano is set")
                    continue
                ids = log_ids(rec)
                problem = ids if isinstance(ids, str) else window.check(ts)
                if problem:
                    rejected.add(where, problem)
                    continue
                assert not isinstance(ids, str)
                b.timestamp.append(ts)
                b.observed_timestamp.append(rec.observed_time_unix_nano or ts)
                b.trace_id.append(ids[0])
                b.span_id.append(ids[1])
                b.trace_flags.append(rec.flags & 0xFF)
                b.severity_text.append(rec.severity_text)
                b.severity_number.append(rec.severity_number & 0xFF)
                b.service_name.append(service)
                if rec.HasField("body"):
                    text, tag = any_value_text(rec.body)
                else:
                    text, tag = "", None
                b.body.append(text)
                b.body_type.append(tag or "")
                b.resource_schema_url.append(rl.schema_url)
                b.resource_attributes.add_row(res_dict)
                b.resource_attribute_types.add_row(res_type_dict)
                b.scope_schema_url.append(sl.schema_url)
                b.scope_name.append(sl.scope.name)
                b.scope_version.append(sl.scope.version)
                b.scope_attributes.add_row(scope_dict)
                b.scope_attribute_types.add_row(scope_type_dict)
                add_attributes(rec.attributes, b.log_attributes, b.log_attribute_types)
                b.event_name.append(rec.event_name)
    return b, rejected
