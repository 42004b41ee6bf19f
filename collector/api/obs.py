"""Native lookup API under /api/obs: traces by id and by search, services, logs, metric series.

Times in requests are RFC 3339 or Unix time (seconds, fractional allowed; values above 1e14 are taken
as nanoseconds, above 1e11 as milliseconds); in responses, nanosecond integers as strings (they do not
fit a JavaScript number) plus durations in milliseconds.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from collector.store.readers import SEVERITY_MIN, LogQuery, StoreReader, TraceQuery

_HEX_TRACE = re.compile(r"[0-9a-fA-F]{32}")


def parse_time_ns(value: str, name: str) -> int:
    """Nanoseconds since the epoch from RFC 3339 or Unix seconds/milliseconds/nanoseconds."""
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        return _rfc3339_ns(text, name)
    if number > 1e14:
        return int(text) if text.isdigit() else int(number)
    if number > 1e11:
        return int(number * 1e6)
    return int(number * 1e9)


def _rfc3339_ns(text: str, name: str) -> int:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(400, f"{name}: {text!r} is neither RFC 3339 nor a Unix timestamp") from None
    if parsed.tzinfo is None:
        raise HTTPException(400, f"{name}: {text!r} has no time zone (add Z or an offset)")
    return int(parsed.timestamp() * 1e9)


def parse_attrs(values: list[str]) -> list[tuple[str, str]]:
    out = []
    for item in values:
        key, sep, val = item.partition(":")
        if not sep or not key:
            raise HTTPException(400, f"attr: {item!r} must be key:value")
        out.append((key, val))
    return out


def obs_router(reader: StoreReader) -> APIRouter:
    router = APIRouter(prefix="/api/obs", tags=["native"])

    async def run(fn: Any, *args: Any) -> Any:
        # Store reads block; keep the event loop (and ingest) going while they run.
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    @router.get("/traces/{trace_id}", summary="A trace by id: every span with its links, events and status")
    async def get_trace(trace_id: str) -> dict[str, Any]:
        if not _HEX_TRACE.fullmatch(trace_id):
            raise HTTPException(400, f"trace_id: {trace_id!r} must be 32 hex digits")
        spans = await run(reader.trace, trace_id.lower())
        if not spans:
            raise HTTPException(404, f"trace {trace_id.lower()} not found")
        return {"trace_id": trace_id.lower(), "span_count": len(spans), "spans": spans}

    @router.get("/traces", summary="Search traces (any span matching every condition), newest first")
    async def search_traces(
        service: str = "",
        operation: str = "",
        min_duration_ms: Annotated[float, Query(ge=0)] = 0,
        max_duration_ms: Annotated[float, Query(ge=0)] = 0,
        status: Annotated[str, Query(pattern="^(|ok|error|unset)$")] = "",
        attr: Annotated[list[str] | None, Query()] = None,
        start: str = "",
        end: str = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    ) -> dict[str, Any]:
        q = TraceQuery(
            service=service,
            operation=operation,
            min_duration_ns=int(min_duration_ms * 1e6),
            max_duration_ns=int(max_duration_ms * 1e6),
            status=status,
            attributes=parse_attrs(attr or []),
            start_ns=parse_time_ns(start, "start") if start else 0,
            end_ns=parse_time_ns(end, "end") if end else 0,
            limit=limit,
        )
        traces = await run(reader.search_traces, q)
        return {"traces": traces}

    @router.get("/services", summary="Services that sent spans, with their operations")
    async def services(start: str = "", end: str = "") -> dict[str, Any]:
        start_ns = parse_time_ns(start, "start") if start else 0
        end_ns = parse_time_ns(end, "end") if end else 0
        return {"services": await run(reader.services, start_ns, end_ns)}

    @router.get("/logs", summary="Search log records")
    async def logs(
        service: str = "",
        severity: str = "",
        trace_id: str = "",
        contains: str = "",
        regex: str = "",
        attr: Annotated[list[str] | None, Query()] = None,
        start: str = "",
        end: str = "",
        limit: Annotated[int, Query(ge=1, le=5000)] = 100,
        direction: Annotated[str, Query(pattern="^(forward|backward)$")] = "backward",
    ) -> dict[str, Any]:
        if severity and not severity.isdigit() and severity.lower() not in SEVERITY_MIN:
            raise HTTPException(400, f"severity: {severity!r} must be a level ({', '.join(SEVERITY_MIN)}) or 1-24")
        if trace_id and not _HEX_TRACE.fullmatch(trace_id):
            raise HTTPException(400, f"trace_id: {trace_id!r} must be 32 hex digits")
        if regex:
            _check_regex(regex)
        q = LogQuery(
            service=service,
            severity=severity,
            trace_id=trace_id.lower(),
            contains=contains,
            regex=regex,
            attributes=parse_attrs(attr or []),
            start_ns=parse_time_ns(start, "start") if start else 0,
            end_ns=parse_time_ns(end, "end") if end else 0,
            limit=limit,
            backward=direction == "backward",
        )
        return {"logs": await run(reader.search_logs, q)}

    @router.get("/metrics/series", summary="Raw samples and exemplars of one metric's series")
    async def series(
        metric: str,
        label: Annotated[list[str] | None, Query()] = None,
        start: str = "0",
        end: str = "",
        limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    ) -> dict[str, Any]:
        start_ms = parse_time_ns(start, "start") // 1_000_000
        end_ms = parse_time_ns(end, "end") // 1_000_000 if end else 2**62
        found = await run(reader.series, metric, parse_attrs(label or []), start_ms, end_ms, limit)
        return {"series": found}

    return router


def _check_regex(regex: str) -> None:
    """ClickHouse uses RE2; Python's re is close enough to reject what is plainly broken, with a message."""
    try:
        re.compile(regex)
    except re.error as exc:
        raise HTTPException(400, f"regex: {regex!r} is not a valid regular expression: {exc}") from None
