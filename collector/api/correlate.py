"""Native correlation API, `GET /api/obs/correlate`: exactly one of `trace_id`, `log` or `series` says
where to start (answers documented in collector/query/correlate.py).

400 with {"detail": message} for a bad or missing parameter, 404 when the trace or log record is unknown.
Times are RFC 3339 or Unix time as elsewhere under /api/obs; `window` is a duration (5m, 30s).
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from collector.api.obs import parse_time_ns
from collector.api.prom_params import expression_selectors
from collector.api.prom_wire import ApiError
from collector.config import parse_duration
from collector.query.correlate import Correlator, parse_log_identity

_HEX_TRACE = re.compile(r"[0-9a-fA-F]{32}")
DEFAULT_WINDOW = "5m"


def _window_ms(text: str) -> int:
    try:
        return int(parse_duration(text) * 1000)
    except ValueError as exc:
        raise HTTPException(400, f"window: {exc}") from None


def correlate_router(correlator: Correlator) -> APIRouter:
    router = APIRouter(prefix="/api/obs", tags=["native"])

    async def run(fn: Any, *args: Any) -> Any:
        # Store reads block; keep the event loop (and ingest) going while they run.
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    @router.get("/correlate", summary="From a trace, a log record or a metric series to the other signals")
    async def correlate(
        trace_id: str = "",
        log: str = "",
        series: str = "",
        time_: Annotated[str, Query(alias="time")] = "",
        window: str = DEFAULT_WINDOW,
        limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    ) -> dict[str, Any]:
        given = [name for name, value in (("trace_id", trace_id), ("log", log), ("series", series)) if value]
        if len(given) != 1:
            raise HTTPException(400, "give exactly one of trace_id, log or series")
        window_ms = _window_ms(window)
        if trace_id:
            if not _HEX_TRACE.fullmatch(trace_id):
                raise HTTPException(400, f"trace_id: {trace_id!r} must be 32 hex digits")
            found = await run(correlator.from_trace, trace_id.lower(), window_ms)
            if found is None:
                raise HTTPException(404, f"trace {trace_id.lower()} not found")
            return found
        if log:
            try:
                service, time_ns = parse_log_identity(log)
            except ValueError as exc:
                raise HTTPException(400, str(exc)) from None
            found = await run(correlator.from_log, service, time_ns)
            if found is None:
                raise HTTPException(404, f"no log record {log!r}")
            return found
        try:
            selectors = expression_selectors(series)
        except ApiError as exc:
            raise HTTPException(400, f"series: {exc.message}") from None
        if not selectors:
            raise HTTPException(400, "series: the expression selects no series")
        # To the nearest ms: a Unix time in ms or s goes through a float on its way to ns.
        at_ms = (parse_time_ns(time_, "time") + 500_000) // 1_000_000 if time_ else time.time_ns() // 1_000_000
        return await run(correlator.from_series, selectors, at_ms, window_ms, limit)

    return router
