"""OTLP value helpers shared by the trace, log and metric codecs: AnyValue to text, ids, time windows."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from collector.model import (
    TYPE_ARRAY,
    TYPE_BOOL,
    TYPE_BYTES,
    TYPE_DOUBLE,
    TYPE_EMPTY,
    TYPE_INT,
    TYPE_KVLIST,
    MapColumn,
    format_double,
)

# Stop collecting messages after this many; the counts still cover every rejected item.
MAX_MESSAGES = 5


def _plain(value: AnyValue) -> Any:
    """AnyValue as a JSON-able Python value (for arrays and maps, which are stored as JSON text)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        d = value.double_value
        return d if math.isfinite(d) else format_double(d)
    if kind == "bool_value":
        return value.bool_value
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if kind == "array_value":
        return [_plain(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _plain(kv.value) for kv in value.kvlist_value.values}
    return None


def any_value_text(value: AnyValue) -> tuple[str, str | None]:
    """(text, type tag) of an AnyValue; the tag is None for strings, which are the common case."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value, None
    if kind == "int_value":
        return str(value.int_value), TYPE_INT
    if kind == "double_value":
        return format_double(value.double_value), TYPE_DOUBLE
    if kind == "bool_value":
        return ("true" if value.bool_value else "false"), TYPE_BOOL
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode(), TYPE_BYTES
    if kind == "array_value":
        return json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False), TYPE_ARRAY
    if kind == "kvlist_value":
        return json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False), TYPE_KVLIST
    return "", TYPE_EMPTY


def add_attributes(attrs: Iterable[KeyValue], values: MapColumn, types: MapColumn) -> None:
    """Append one row to an attribute map column and its types column."""
    vk, vv, tk, tv = values.keys, values.values, types.keys, types.values
    for kv in attrs:
        key = kv.key
        value = kv.value
        if value.WhichOneof("value") == "string_value":
            vk.append(key)
            vv.append(value.string_value)
            continue
        text, tag = any_value_text(value)
        vk.append(key)
        vv.append(text)
        if tag is not None:
            tk.append(key)
            tv.append(tag)
    values.offsets.append(len(vk))
    types.offsets.append(len(tk))


def attribute_dict(attrs: Iterable[KeyValue]) -> dict[str, str]:
    """Attributes as a plain str -> str dict (for metric labels and resource lookups)."""
    return {kv.key: any_value_text(kv.value)[0] for kv in attrs}


_MAX_NS = 2**63


@dataclass(frozen=True)
class TimeWindow:
    """Accepted item timestamps, in ns since the epoch, both bounds inclusive; 0 means unbounded."""

    min_ns: int = 0
    max_ns: int = 0

    def check(self, ts_ns: int) -> str | None:
        """A message when ts_ns lies outside the window, else None."""
        if ts_ns >= _MAX_NS:  # whatever the window: the store's timestamps are signed 64-bit
            return f"timestamp {ts_ns} ns is beyond the year 2262 (the largest signed 64-bit nanosecond)"
        if self.min_ns and ts_ns < self.min_ns:
            return f"timestamp {ts_ns} ns is older than the accepted window (before {self.min_ns})"
        if self.max_ns and ts_ns > self.max_ns:
            return f"timestamp {ts_ns} ns is too far in the future (after {self.max_ns})"
        return None


@dataclass
class Rejections:
    """Items refused inside an otherwise valid request: the count and the first few reasons."""

    count: int = 0
    messages: list[str] = field(default_factory=list)

    def add(self, where: str, what: str) -> None:
        self.count += 1
        if len(self.messages) < MAX_MESSAGES:
            self.messages.append(f"{where}: {what}")

    def summary(self) -> str:
        if not self.count:
            return ""
        more = self.count - len(self.messages)
        tail = f" (and {more} more)" if more > 0 else ""
        return "; ".join(self.messages) + tail


_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)


def check_trace_id(raw: bytes) -> str | None:
    if len(raw) != 16:
        return f"trace_id is {len(raw)} bytes, must be 16"
    if raw == _ZERO_TRACE:
        return "trace_id is all zeros"
    return None


def check_span_id(raw: bytes, name: str = "span_id", optional: bool = False) -> str | None:
    if optional and not raw:
        return None
    if len(raw) != 8:
        return f"{name} is {len(raw)} bytes, must be 8"
    if raw == _ZERO_SPAN:
        return f"{name} is all zeros"
    return None
