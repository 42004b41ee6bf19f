"""Trace context written into log lines: ids found in the body of a log record that came without them.

Services that log text rather than OTLP records (a stdlib formatter with `trace_id=%(otelTraceID)s`,
a JSON logger, lines pushed to Loki) still say which trace a line belongs to. At ingest, a record with
no OTLP trace id gets the ids its body carries, so it is found by trace id like any other:

- logfmt-ish `trace_id=<32 hex>` (optionally quoted, anywhere in the text) and `span_id=<16 hex>`;
- a JSON object body (a string holding one, or an OTLP kvlist body, stored as JSON) with a `trace_id`
  field and optionally `span_id`.

An all-zero id means "no trace" (PROTOCOLS §8: what the OTel logging format prints outside a span). A
span id is taken only together with a trace id. Ids come back as lowercase hex, "" when absent.
"""

from __future__ import annotations

import json
import re

from collector.model import LogBatch

_TRACE_KV = re.compile(r"(?<![\w.])trace_id=(\"?)([0-9a-fA-F]{32})\1(?![0-9a-zA-Z])")
_SPAN_KV = re.compile(r"(?<![\w.])span_id=(\"?)([0-9a-fA-F]{16})\1(?![0-9a-zA-Z])")
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_HEX16 = re.compile(r"[0-9a-fA-F]{16}")


def _id(value: object, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value) or not value.strip("0"):
        return ""
    return value.lower()


def trace_ids_in_body(body: str) -> tuple[str, str]:
    """(trace_id, span_id) a log body carries, lowercase hex; ("", "") when it carries no trace id."""
    if "trace_id" not in body:
        return "", ""
    text = body.strip()
    if text.startswith("{") and text.endswith("}"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            trace_id = _id(parsed.get("trace_id"), _HEX32)
            if trace_id:
                return trace_id, _id(parsed.get("span_id"), _HEX16)
    match = _TRACE_KV.search(body)
    trace_id = _id(match.group(2), _HEX32) if match else ""
    if not trace_id:
        return "", ""
    span = _SPAN_KV.search(body)
    return trace_id, _id(span.group(2), _HEX16) if span else ""


def fill_trace_ids(batch: LogBatch) -> int:
    """Give the records of `batch` that have no trace id the ids of their body; returns how many got one."""
    filled = 0
    for i, trace_id in enumerate(batch.trace_id):
        if trace_id:
            continue
        found, span_id = trace_ids_in_body(batch.body[i])
        if found:
            batch.trace_id[i] = found
            batch.span_id[i] = span_id
            filled += 1
    return filled
