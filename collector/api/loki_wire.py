"""The Loki HTTP API's wire format: time and step parameters as Loki parses them, and its answers.

Errors are plain text with the status (400 for a bad query or parameter), as Loki's HTTP handlers write
them. Stream answers carry timestamps as strings of nanoseconds; metric answers reuse the Prometheus
matrix/vector shapes (prom_wire), plus Loki's `stats`.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any

from fastapi.responses import PlainTextResponse, Response

from collector.api.prom_wire import result_json
from collector.query.logql.engine import MetricResult, StreamsResult
from collector.query.logql.lexer import duration_ns


class BadRequest(Exception):
    """A parameter or query Loki answers with 400 and this text."""


def parse_time(value: str, default_ns: int, name: str) -> int:
    """Loki's parseTimestamp: float seconds when it has a '.', else an integer (seconds when at most 10
    digits, nanoseconds otherwise), else RFC 3339. Nanoseconds out."""
    text = value.strip()
    if not text:
        return default_ns
    if "." in text:
        try:
            seconds = float(text)
        except ValueError:
            pass
        else:
            whole = math.floor(seconds)
            return whole * 1_000_000_000 + round((seconds - whole) * 1e9)
    if re.fullmatch(r"-?\d+", text):
        number = int(text)
        return number * 1_000_000_000 if len(text) <= 10 else number
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"invalid {name}: cannot parse {text!r} as a timestamp") from None
    if parsed.tzinfo is None:
        raise BadRequest(f"invalid {name}: {text!r} has no time zone")
    return int(parsed.timestamp()) * 1_000_000_000 + parsed.microsecond * 1000


def parse_duration_or_seconds(value: str, name: str) -> int:
    """A step or `since`: a duration such as 30s or 1m, or float seconds. Nanoseconds out."""
    text = value.strip()
    try:
        return round(float(text) * 1e9)
    except ValueError:
        pass
    try:
        return duration_ns(text)
    except ValueError:
        raise BadRequest(f"invalid {name}: cannot parse {text!r} as a duration or a number of seconds") from None


def default_step_ns(start_ns: int, end_ns: int) -> int:
    """Loki's default: (end - start) / 250, in whole seconds, at least 1 s."""
    return max(math.floor((end_ns - start_ns) / 1e9 / 250), 1) * 1_000_000_000


MAX_ENTRIES_LIMIT = 5000  # Loki's default max_entries_limit_per_query


def parse_limit(value: str, default: int = 100) -> int:
    if not value:
        return default
    try:
        limit = int(value)
    except ValueError:
        raise BadRequest(f"invalid limit: {value!r} is not an integer") from None
    if limit <= 0:
        raise BadRequest("limit must be a positive value")
    if limit > MAX_ENTRIES_LIMIT:
        raise BadRequest(
            f"max entries limit per query exceeded, limit > max_entries_limit ({limit} > {MAX_ENTRIES_LIMIT})"
        )
    return limit


def parse_direction(value: str) -> bool:
    """True for backward (the default)."""
    direction = (value or "backward").lower()
    if direction not in ("forward", "backward"):
        raise BadRequest(f"invalid direction {value!r}: use forward or backward")
    return direction == "backward"


def bad_request(message: str) -> Response:
    return PlainTextResponse(message, 400)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _stats(entries: int, size: int, returned: int, seconds: float) -> dict[str, Any]:
    """Loki's stats summary (the part Grafana shows); the per-component sections are left out."""
    seconds = max(seconds, 1e-9)
    return {
        "summary": {
            "bytesProcessedPerSecond": int(size / seconds),
            "linesProcessedPerSecond": int(entries / seconds),
            "totalBytesProcessed": size,
            "totalLinesProcessed": entries,
            "execTime": seconds,
            "queueTime": 0,
            "subqueries": 0,
            "totalEntriesReturned": returned,
            "splits": 0,
            "shards": 0,
            "totalPostFilterLines": returned,
            "totalStructuredMetadataBytesProcessed": 0,
        }
    }


def streams_response(result: StreamsResult, seconds: float) -> Response:
    streams = [
        {"stream": labels, "values": [[str(ts), line] for ts, line in values]} for labels, values in result.streams
    ]
    returned = sum(len(values) for _labels, values in result.streams)
    data = {
        "resultType": "streams",
        "result": streams,
        "stats": _stats(result.entries_scanned, result.bytes_scanned, returned, seconds),
    }
    body: dict[str, Any] = {"status": "success", "data": data}
    if result.warnings:
        body["warnings"] = result.warnings
    return Response(_dumps(body).encode(), media_type="application/json")


def metric_response(result: MetricResult, seconds: float) -> Response:
    q = result.result
    returned = len(q.matrix) if q.result_type == "matrix" else len(q.vector)
    stats = _dumps(_stats(result.entries_scanned, result.bytes_scanned, returned, seconds))
    data = result_json(q)[:-1] + f',"stats":{stats}}}'
    return Response(f'{{"status":"success","data":{data}}}'.encode(), media_type="application/json")


def data_response(data: Any) -> Response:
    return Response(_dumps({"status": "success", "data": data}).encode(), media_type="application/json")


def bare_response(data: Any) -> Response:
    return Response(_dumps(data).encode(), media_type="application/json")
