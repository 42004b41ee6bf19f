"""Flattens OTLP trace requests into otel_traces inside ClickHouse, reading the protobuf natively.

Why: walking ten attributes per span through Python protobuf objects costs about 18 µs a span, which
caps one core near 55,000 spans/s. ClickHouse's Protobuf input format reads the same bytes in C++
(with the GIL released), so the collector only parses and checks span-level fields in Python (ids,
times: about 2 µs a span) and lets one INSERT ... SELECT per group commit do the flattening.

The requests of one group are written length-delimited to a file that ClickHouse reads with a schema
of ours (SCHEMA below): a subset of the OTLP messages with the same field numbers, where `optional`
on the AnyValue members makes ClickHouse report which member is set (NULL for the others). Arrays
and key-value lists are read one level deep: enough for span attributes, which the OTel spec limits
to primitives and arrays of primitives; a deeper value is stored as JSON null.

The result is the same rows the Python flattener (codecs/otlp_traces.py) makes, with one difference
in text: doubles are written by ClickHouse's shortest round-trip formatting (`5` where Python writes
`5.0`), which reads back as the same double.
"""

from __future__ import annotations

from pathlib import Path

SCHEMA = """syntax = "proto3";
package observatory.ingest;

message Leaf {
  optional string string_value = 1;
  optional bool bool_value = 2;
  optional int64 int_value = 3;
  optional double double_value = 4;
  bytes array_value = 5;
  bytes kvlist_value = 6;
  optional bytes bytes_value = 7;
}
message LeafKeyValue { string key = 1; Leaf value = 2; }
message ArrayValue { repeated Leaf values = 1; }
message KeyValueList { repeated LeafKeyValue values = 1; }
message AnyValue {
  optional string string_value = 1;
  optional bool bool_value = 2;
  optional int64 int_value = 3;
  optional double double_value = 4;
  ArrayValue array_value = 5;
  KeyValueList kvlist_value = 6;
  optional bytes bytes_value = 7;
}
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; }
message InstrumentationScope { string name = 1; string version = 2; }
message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; }
message Link { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; repeated KeyValue attributes = 4; }
message Status { string message = 2; int32 code = 3; }
message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  string trace_state = 3;
  bytes parent_span_id = 4;
  string name = 5;
  int32 kind = 6;
  fixed64 start_time_unix_nano = 7;
  fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9;
  repeated Event events = 11;
  repeated Link links = 13;
  Status status = 15;
}
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
"""

_LEAF = (
    "Tuple(string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64), "
    "double_value Nullable(Float64), array_value String, kvlist_value String, bytes_value Nullable(String))"
)
_ANY = (
    "Tuple(string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64), "
    f"double_value Nullable(Float64), array_value Tuple(values Array({_LEAF})), "
    f"kvlist_value Tuple(values Array(Tuple(key String, value {_LEAF}))), bytes_value Nullable(String))"
)
_ATTRS = f"Array(Tuple(key String, value {_ANY}))"
STRUCTURE = (
    f"resource_spans Array(Tuple(resource Tuple(attributes {_ATTRS}), "
    "scope_spans Array(Tuple(scope Tuple(name String, version String), spans Array(Tuple("
    "trace_id String, span_id String, trace_state String, parent_span_id String, name String, kind Int32, "
    f"start_time_unix_nano UInt64, end_time_unix_nano UInt64, attributes {_ATTRS}, "
    f"events Array(Tuple(time_unix_nano UInt64, name String, attributes {_ATTRS})), "
    f"links Array(Tuple(trace_id String, span_id String, trace_state String, attributes {_ATTRS})), "
    "status Tuple(message String, code Int32)))))))"
)


def _double(x: str) -> str:
    return f"multiIf(isNaN({x}), 'NaN', isInfinite({x}), if({x} > 0, '+Inf', '-Inf'), toString({x}))"


def _leaf_json(v: str) -> str:
    return (
        f"multiIf({v}.string_value IS NOT NULL, toJSONString(assumeNotNull({v}.string_value)), "
        f"{v}.int_value IS NOT NULL, toString({v}.int_value), "
        f"{v}.double_value IS NOT NULL, if(isFinite(assumeNotNull({v}.double_value)), "
        f"toString({v}.double_value), toJSONString({_double(f'assumeNotNull({v}.double_value)')})), "
        f"{v}.bool_value IS NOT NULL, if({v}.bool_value, 'true', 'false'), "
        f"{v}.bytes_value IS NOT NULL, toJSONString(base64Encode(assumeNotNull({v}.bytes_value))), 'null')"
    )


def _text(v: str) -> str:
    """The stored text of an AnyValue tuple expression, as codecs/otlp_values.any_value_text makes it."""
    return (
        f"multiIf({v}.string_value IS NOT NULL, assumeNotNull({v}.string_value), "
        f"{v}.int_value IS NOT NULL, toString({v}.int_value), "
        f"{v}.double_value IS NOT NULL, {_double(f'assumeNotNull({v}.double_value)')}, "
        f"{v}.bool_value IS NOT NULL, if({v}.bool_value, 'true', 'false'), "
        f"{v}.bytes_value IS NOT NULL, base64Encode(assumeNotNull({v}.bytes_value)), "
        f"notEmpty({v}.array_value.values), "
        f"concat('[', arrayStringConcat(arrayMap(x -> {_leaf_json('x')}, {v}.array_value.values), ','), ']'), "
        f"notEmpty({v}.kvlist_value.values), concat('{{', arrayStringConcat(arrayMap(kv -> "
        f"concat(toJSONString(kv.key), ':', {_leaf_json('kv.value')}), {v}.kvlist_value.values), ','), '}}'), '')"
    )


def _tag(v: str) -> str:
    """The type tag of an AnyValue tuple expression ('' for strings), as in collector.model."""
    return (
        f"multiIf({v}.string_value IS NOT NULL, '', {v}.int_value IS NOT NULL, 'int', "
        f"{v}.double_value IS NOT NULL, 'double', {v}.bool_value IS NOT NULL, 'bool', "
        f"{v}.bytes_value IS NOT NULL, 'bytes', notEmpty({v}.array_value.values), 'array', "
        f"notEmpty({v}.kvlist_value.values), 'kvlist', 'empty')"
    )


def _map(attrs: str) -> str:
    return f"mapFromArrays(arrayMap(kv -> kv.key, {attrs}), arrayMap(kv -> {_text('kv.value')}, {attrs}))"


def _types(attrs: str) -> str:
    typed = f"arrayFilter(kv -> {_tag('kv.value')} != '', {attrs})"
    return f"mapFromArrays(arrayMap(kv -> kv.key, {typed}), arrayMap(kv -> {_tag('kv.value')}, {typed}))"


def _ns(x: str) -> str:
    return f"fromUnixTimestamp64Nano(toInt64({x}), 'UTC')"


_SELECT = f"""
SELECT
    {_ns("sp.start_time_unix_nano")} AS Timestamp,
    lower(hex(sp.trace_id)) AS TraceId,
    lower(hex(sp.span_id)) AS SpanId,
    lower(hex(sp.parent_span_id)) AS ParentSpanId,
    sp.trace_state AS TraceState,
    sp.name AS SpanName,
    if(sp.kind BETWEEN 0 AND 5, ['Unspecified', 'Internal', 'Server', 'Client', 'Producer', 'Consumer'][sp.kind + 1],
       toString(sp.kind)) AS SpanKind,
    {_text("arrayFirst(kv -> kv.key = 'service.name', rs.resource.attributes).value")} AS ServiceName,
    {_map("rs.resource.attributes")} AS ResourceAttributes,
    {_types("rs.resource.attributes")} AS ResourceAttributeTypes,
    ss.scope.name AS ScopeName,
    ss.scope.version AS ScopeVersion,
    {_map("sp.attributes")} AS SpanAttributes,
    {_types("sp.attributes")} AS SpanAttributeTypes,
    sp.end_time_unix_nano - sp.start_time_unix_nano AS Duration,
    if(sp.status.code BETWEEN 0 AND 2, ['Unset', 'Ok', 'Error'][sp.status.code + 1], toString(sp.status.code))
        AS StatusCode,
    sp.status.message AS StatusMessage,
    arrayMap(e -> {_ns("e.time_unix_nano")}, sp.events) AS `Events.Timestamp`,
    arrayMap(e -> e.name, sp.events) AS `Events.Name`,
    arrayMap(e -> {_map("e.attributes")}, sp.events) AS `Events.Attributes`,
    arrayMap(e -> {_types("e.attributes")}, sp.events) AS `Events.AttributeTypes`,
    arrayMap(l -> lower(hex(l.trace_id)), sp.links) AS `Links.TraceId`,
    arrayMap(l -> lower(hex(l.span_id)), sp.links) AS `Links.SpanId`,
    arrayMap(l -> l.trace_state, sp.links) AS `Links.TraceState`,
    arrayMap(l -> {_map("l.attributes")}, sp.links) AS `Links.Attributes`,
    arrayMap(l -> {_types("l.attributes")}, sp.links) AS `Links.AttributeTypes`
FROM file({{path:String}}, 'Protobuf', '{STRUCTURE}')
ARRAY JOIN resource_spans AS rs
ARRAY JOIN rs.scope_spans AS ss
ARRAY JOIN ss.spans AS sp
"""

COLUMNS = (
    "Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName, ResourceAttributes, "
    "ResourceAttributeTypes, ScopeName, ScopeVersion, SpanAttributes, SpanAttributeTypes, Duration, StatusCode, "
    "StatusMessage, `Events.Timestamp`, `Events.Name`, `Events.Attributes`, `Events.AttributeTypes`, "
    "`Links.TraceId`, `Links.SpanId`, `Links.TraceState`, `Links.Attributes`, `Links.AttributeTypes`"
)


def select_sql(schema_file: Path) -> str:
    """SELECT of otel_traces rows from a file of length-delimited requests (`{path:String}` bound)."""
    # format_schema names a file, never a value from a request, so it is written into the SQL.
    return _SELECT + f"SETTINGS format_schema = '{schema_file}:ExportTraceServiceRequest'"


def insert_sql(database: str, schema_file: Path) -> str:
    return f"INSERT INTO {database}.otel_traces ({COLUMNS})" + select_sql(schema_file)


def write_schema(directory: Path) -> Path:
    """Write SCHEMA where ClickHouse can read it; returns the file's path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "otlp_traces_ingest.proto"
    if not path.exists() or path.read_text() != SCHEMA:
        path.write_text(SCHEMA)
    return path


def length_delimited(bodies: list[bytes]) -> bytes:
    """Requests framed as ClickHouse's Protobuf format reads them: varint length, then the message."""
    out = bytearray()
    for body in bodies:
        n = len(body)
        while n >= 0x80:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)
        out += body
    return bytes(out)
