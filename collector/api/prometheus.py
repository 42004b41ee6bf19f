"""The Prometheus HTTP API at /api/v1 (query, query_range, series, labels, metadata, targets, ...).

Shapes, parameters, messages and error types are Prometheus' (PROTOCOLS.md §4), so Grafana, promtool
and client libraries work unchanged. Handlers are thin: parse the parameters (prom_params), call one
store read or the query runner, write the envelope (prom_wire). Errors are mapped in one place,
`_answer`. GET and POST (form) are accepted where Prometheus accepts both; POST body values come first.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response

from collector import __version__
from collector.api import prom_params as params
from collector.api.prom_queries import QueryRunner
from collector.api.prom_rules_proxy import proxy_to_alerting
from collector.api.prom_wire import ApiError, error, format_time, format_value, query_success, success
from collector.query.promql.errors import PromQLError
from collector.query.promql.storage import Matcher
from collector.query.promql.values import QueryResult
from collector.receivers.scraper import TargetStatus
from collector.store.engine import StoreUnavailable
from collector.store.promql_reads import MAX_MS, MIN_MS, MetricReads

log = logging.getLogger("observatory.prometheus_api")

MAX_POINTS_PER_SERIES = 11_000
TRUNCATED = "results truncated due to limit"
# The Prometheus release whose API this one matches: clients (Grafana) pick features by version.
# No `features` key: Grafana would take the server for Mimir and call its ruler API.
BUILD_INFO = {
    "version": "2.42.0",
    "revision": f"observatory-{__version__}",
    "branch": "observatory",
    "buildUser": "observatory",
    "buildDate": "",
    "goVersion": f"python{sys.version_info.major}.{sys.version_info.minor}",
}


class Form:
    """Request parameters: the form body of a POST first, then the URL query, as Go's r.Form."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items

    @staticmethod
    async def of(request: Request) -> Form:
        items: list[tuple[str, str]] = []
        if request.method == "POST" and request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            items = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        return Form(items + list(request.query_params.multi_items()))

    def get(self, name: str) -> str | None:
        return next((v for k, v in self._items if k == name), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self._items if k == name]


@dataclass(frozen=True)
class PrometheusAPI:
    """What the router reads from: the store, the query runner (None: no engine), the scrape targets."""

    reads: MetricReads
    runner: QueryRunner | None
    targets: Callable[[], list[TargetStatus]]
    # The alerting service (`query.alerting_url`): /rules and /alerts are its answers; "" answers none.
    alerting_url: str = ""


async def _answer(work: Awaitable[Response]) -> Response:
    """The one place errors become envelopes: classified errors keep their type, the rest are internal."""
    try:
        return await work
    except (ApiError, PromQLError) as exc:
        return error(exc.error_type, exc.message)
    except StoreUnavailable as exc:
        return error("unavailable", f"store unavailable: {exc}")
    except Exception as exc:
        log.exception("Prometheus API request failed")
        return error("internal", str(exc) or type(exc).__name__)


async def _blocking(fn: Callable[..., Any], *args: Any) -> Any:
    # Store reads block; keep the event loop (and ingest) going while they run.
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _truncate(items: list[Any], limit: int) -> tuple[list[Any], list[str]]:
    """At most `limit` items (0: all), with Prometheus' warning when some were cut."""
    if limit and len(items) > limit:
        return items[:limit], [TRUNCATED]
    return items, []


def _query_options(form: Form) -> tuple[float | None, int | None, int]:
    """(timeout in seconds, lookback delta in ms, limit) of query and query_range."""
    timeout = form.get("timeout")
    lookback = form.get("lookback_delta")
    return (
        params.parse_duration(timeout, "timeout") / 1000 if timeout else None,
        params.parse_duration(lookback, "lookback_delta") if lookback else None,
        params.parse_limit(form.get("limit")),
    )


def _range(form: Form) -> tuple[int, int]:
    """start and end of a lookup (MIN_MS, MAX_MS when absent). Like Prometheus, series and label lookups take
    an end before the start (and find nothing in it); only query_exemplars rejects one."""
    start = params.optional_time(form.get("start"), "start", MIN_MS)
    end = params.optional_time(form.get("end"), "end", MAX_MS)
    return start, end


def _selectors(form: Form, required: bool) -> list[list[Matcher]]:
    texts = form.all("match[]")
    if required and not texts:
        raise ApiError("bad_data", "no match[] parameter provided")
    return [params.selector_matchers(t) for t in texts]


async def _evaluate(run: QueryRunner, evaluate: Callable[[], QueryResult], timeout: float | None) -> QueryResult:
    """Run a query; a query that does not parse is a bad `query` parameter, named as Prometheus names it."""
    try:
        return await run.run(evaluate, timeout)
    except PromQLError as exc:
        if exc.error_type == "bad_data" and not exc.message.startswith("invalid parameter"):
            raise PromQLError("bad_data", f'invalid parameter "query": {exc.message}') from None
        raise


def _limited_result(result: QueryResult, limit: int) -> QueryResult:
    if limit:
        result.matrix, warn_m = _truncate(result.matrix, limit)
        result.vector, warn_v = _truncate(result.vector, limit)
        result.warnings = [*result.warnings, *warn_m, *warn_v]
    return result


def _go_duration(seconds: float) -> str:
    """A duration as Prometheus' model.Duration prints it: 15s, 1m, 1h30m, 500ms."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    out = ""
    for unit, size in (("y", 31_536_000_000), ("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)):
        if ms >= size:
            out += f"{ms // size}{unit}"
            ms %= size
    if ms >= 1000:
        out += f"{ms // 1000}s"
        ms %= 1000
    return out + (f"{ms}ms" if ms else "")


def _target(status: TargetStatus) -> dict[str, Any]:
    last = (
        datetime.fromtimestamp(status.last_scrape_s, UTC).isoformat().replace("+00:00", "Z")
        if status.last_scrape_s
        else "0001-01-01T00:00:00Z"
    )
    discovered = dict(status.target.discovered)
    discovered.setdefault("__scrape_interval__", _go_duration(status.job.scrape_interval))
    discovered.setdefault("__scrape_timeout__", _go_duration(status.job.scrape_timeout))
    return {
        "discoveredLabels": discovered,
        "labels": status.target.label_dict,
        "scrapePool": status.job.job_name,
        "scrapeUrl": status.target.url,
        "globalUrl": status.target.url,
        "lastError": status.last_error,
        "lastScrape": last,
        "lastScrapeDuration": status.last_duration_s,
        "health": status.health,
        "scrapeInterval": _go_duration(status.job.scrape_interval),
        "scrapeTimeout": _go_duration(status.job.scrape_timeout),
    }


def prometheus_router(api: PrometheusAPI) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["prometheus"])
    reads = api.reads

    def runner() -> QueryRunner:
        if api.runner is None:
            raise ApiError("unavailable", "the PromQL engine is not available in this build")
        return api.runner

    async def instant_query(form: Form) -> Response:
        query = form.get("query") or ""
        at = params.optional_time(form.get("time"), "time", _now_ms())
        timeout, lookback, limit = _query_options(form)
        run = runner()
        result = await _evaluate(run, lambda: run.engine.instant(query, at, lookback_delta_ms=lookback), timeout)
        result = _limited_result(result, limit)
        return query_success(result)

    async def range_query(form: Form) -> Response:
        start = params.parse_time(form.get("start") or "", "start")
        end = params.parse_time(form.get("end") or "", "end")
        if end < start:
            raise ApiError("bad_data", "end timestamp must not be before start time")
        step = params.parse_duration(form.get("step") or "", "step")
        if step <= 0:
            raise ApiError(
                "bad_data", "zero or negative query resolution step widths are not accepted. Try a positive integer"
            )
        if (end - start) // step > MAX_POINTS_PER_SERIES:
            raise ApiError(
                "bad_data",
                "exceeded maximum resolution of 11,000 points per timeseries. "
                "Try decreasing the query resolution (?step=XX)",
            )
        query = form.get("query") or ""
        timeout, lookback, limit = _query_options(form)
        run = runner()
        result = await _evaluate(
            run, lambda: run.engine.range(query, start, end, step, lookback_delta_ms=lookback), timeout
        )
        result = _limited_result(result, limit)
        return query_success(result)

    async def series(form: Form) -> Response:
        selectors = _selectors(form, required=True)
        start, end = _range(form)
        limit = params.parse_limit(form.get("limit"))
        found = await _blocking(reads.series, selectors, start, end, limit + 1 if limit else 0)
        found, warnings = _truncate(found, limit)
        return success(found, warnings)

    async def labels(form: Form) -> Response:
        selectors = _selectors(form, required=False)
        start, end = _range(form)
        limit = params.parse_limit(form.get("limit"))
        names = await _blocking(reads.label_names, selectors, start, end, limit + 1 if limit else 0)
        names, warnings = _truncate(names, limit)
        return success(names, warnings)

    async def label_values(name: str, form: Form) -> Response:
        params.label_name(name)
        selectors = _selectors(form, required=False)
        start, end = _range(form)
        limit = params.parse_limit(form.get("limit"))
        values = await _blocking(reads.label_values, name, selectors, start, end, limit + 1 if limit else 0)
        values, warnings = _truncate(values, limit)
        return success(values, warnings)

    async def metadata(form: Form) -> Response:
        limit = params.parse_limit(form.get("limit"))
        params.parse_limit(form.get("limit_per_metric"), "limit_per_metric")  # one entry per metric is kept
        rows = await _blocking(reads.metadata, form.get("metric") or "", limit)
        return success({r.metric: [{"type": r.type, "help": r.help, "unit": r.unit}] for r in rows})

    async def exemplars(form: Form) -> Response:
        selectors = params.expression_selectors(form.get("query") or "")
        start, end = _range(form)
        if end < start:
            raise ApiError("bad_data", "end timestamp must not be before start timestamp")
        found = await _blocking(reads.exemplars, selectors, start, end)
        # Prometheus sorts the series by label set (labels.Compare); the store groups them by fingerprint.
        found = sorted(found, key=lambda group: sorted(group.series_labels.items()))
        return success(
            [
                {
                    "seriesLabels": group.series_labels,
                    "exemplars": [
                        {"labels": e.labels, "value": format_value(e.value), "timestamp": format_time(e.timestamp_ms)}
                        for e in group.exemplars
                    ],
                }
                for group in found
            ]
        )

    async def targets(form: Form) -> Response:
        state = (form.get("state") or "any").lower()
        active = [_target(s) for s in api.targets()] if state in ("active", "any") else []
        active.sort(key=lambda t: (t["scrapePool"], t["scrapeUrl"]))
        return success({"activeTargets": active, "droppedTargets": []})

    def route(path: str, handler: Callable[[Form], Awaitable[Response]], methods: list[str], summary: str) -> None:
        async def endpoint(request: Request) -> Response:
            return await _answer(_with_form(request, handler))

        router.add_api_route(path, endpoint, methods=methods, summary=summary, response_class=Response)

    route("/query", instant_query, ["GET", "POST"], "PromQL instant query")
    route("/query_range", range_query, ["GET", "POST"], "PromQL range query")
    route("/series", series, ["GET", "POST"], "Series matching match[] selectors")
    route("/labels", labels, ["GET", "POST"], "Label names")
    route("/metadata", metadata, ["GET"], "Metric metadata (type, help, unit)")
    route("/query_exemplars", exemplars, ["GET", "POST"], "Exemplars of the series a query selects")
    route("/targets", targets, ["GET"], "Scrape targets and their health")

    @router.get("/label/{name}/values", summary="Values of a label", response_class=Response)
    async def label_values_endpoint(name: str, request: Request) -> Response:
        return await _answer(_with_form(request, lambda form: label_values(name, form)))

    @router.get("/status/buildinfo", summary="Build information", response_class=Response)
    async def buildinfo() -> Response:
        return success(BUILD_INFO)

    @router.get("/rules", summary="Alerting and recording rules (from the alerting service)", response_class=Response)
    async def rules(request: Request) -> Response:
        if not api.alerting_url:
            return success({"groups": []})
        return await proxy_to_alerting(api.alerting_url, "/api/v1/rules", request)

    @router.get("/alerts", summary="Active alerts (from the alerting service)", response_class=Response)
    async def alerts(request: Request) -> Response:
        if not api.alerting_url:
            return success({"alerts": []})
        return await proxy_to_alerting(api.alerting_url, "/api/v1/alerts", request)

    return router


async def _with_form(request: Request, handler: Callable[[Form], Awaitable[Response]]) -> Response:
    return await handler(await Form.of(request))
