"""Composition root: builds the collector from Settings and runs its servers until told to stop.

The only place that knows every concrete piece: the engine adapter, migrations, writer, reader,
pipeline, receivers and API routers are wired here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from prometheus_client import exposition

from collector import __version__
from collector.api.correlate import correlate_router
from collector.api.jaeger import jaeger_router
from collector.api.loki import LokiAPI, loki_router
from collector.api.obs import obs_router
from collector.api.prom_queries import QueryLimits, QueryRunner
from collector.api.prometheus import PrometheusAPI, prometheus_router
from collector.api.query_batch import query_batch_router
from collector.api.tempo import tempo_router
from collector.config import Settings
from collector.exporters.forwarders import Forwarding
from collector.pipeline.admission import Admission
from collector.pipeline.decoding import Decoder, effective_max_age
from collector.pipeline.field_types import FieldTypes
from collector.pipeline.ingest import Ingest
from collector.pipeline.metrics_generator import MetricsGenerator
from collector.pipeline.series_limits import SeriesLimits
from collector.query.correlate import Correlator
from collector.query.promql.engine import Engine as PromQLEngine
from collector.receivers.influx_http import influx_router
from collector.receivers.otlp_grpc import otlp_grpc_server
from collector.receivers.otlp_http import otlp_router
from collector.receivers.remote_write_http import remote_write_router
from collector.receivers.scraper import Scraper, TargetStatus
from collector.store.correlation_reads import CorrelationReads
from collector.store.engine import Engine
from collector.store.head import SampleHead
from collector.store.log_search import LogSearch
from collector.store.promql_reads import MetricReads
from collector.store.readers import StoreReader
from collector.store.schema import apply_retention, migrate, tune_merges, wait_ready
from collector.store.trace_search import TraceSearch
from collector.store.writer import StoreWriter
from collector.telemetry import SelfMetrics

log = logging.getLogger("observatory.collector")


def open_engine(settings: Settings) -> Engine:
    if settings.storage.url:
        from collector.store.clickhouse_engine import ClickHouseEngine

        return ClickHouseEngine(settings.storage.url)
    from collector.store.chdb_engine import ChdbEngine

    return ChdbEngine.shared(settings.storage.data_dir)


@dataclass
class Collector:
    settings: Settings
    engine: Engine
    metrics: SelfMetrics
    ingest: Ingest
    reader: StoreReader
    forwarding: Forwarding
    head: SampleHead | None = None
    ready: bool = False


def build(settings: Settings) -> Collector:
    """Open the store and apply migrations; nothing is accepted before this has succeeded."""
    engine = open_engine(settings)
    wait_ready(engine)
    db = settings.storage.database
    migrate(engine, db, log.info)
    apply_retention(engine, db, settings.storage.retention)
    tune_merges(engine, db, log.warning)
    metrics = SelfMetrics()
    head = open_head(settings, engine)
    writer = StoreWriter(engine, db, settings.storage.insert_delay, metrics.observe_insert, head)
    reader = StoreReader(engine, db)
    metrics.add_store_size(reader.store_sizes)
    if head is not None:
        metrics.add_head(head.stats)
    limits = settings.limits
    max_age = {
        signal: effective_max_age(limits.max_age, getattr(settings.storage.retention, signal))
        for signal in ("traces", "logs", "metrics")
    }
    forwarding = Forwarding(settings.forward, settings.storage.data_dir)
    metrics.add_forwarders(forwarding.stats)
    ingest = Ingest(
        writer,
        Decoder(
            settings.write.decode_workers,
            max_age,
            limits.max_future,
        ),
        Admission(limits.max_inflight_bytes, limits.retry_after),
        metrics,
        settings.write.max_batch_rows,
        settings.write.min_insert_interval,
        settings.write.group_wait,
        series_limits=SeriesLimits(
            limits.max_series_per_metric, int(limits.out_of_order_window * 1000), reader.known_series()
        ),
        metrics_window=(max_age["metrics"], limits.max_future),
        forward=forwarding,
        field_types=FieldTypes(reader.field_types()),
        generator=MetricsGenerator.from_settings(settings.metrics_generator),
    )
    return Collector(settings, engine, metrics, ingest, reader, forwarding, head)


def open_head(settings: Settings, engine: Engine) -> SampleHead | None:
    """The in-memory head of recent samples, filled from the store before anything is accepted."""
    storage = settings.storage
    window = storage.effective_head_window
    if not window:
        return None
    head = SampleHead(int(window * 1000), storage.head_max_samples, int(storage.retention.metrics * 1000))
    head.load(engine, storage.database)
    head.start()
    return head


def prometheus_api(c: Collector, targets: Callable[[], list[TargetStatus]]) -> PrometheusAPI:
    """The Prometheus API over the store: PromQL evaluated by the engine, pushed-down selectors."""
    q = c.settings.query
    reads = MetricReads(c.engine, c.settings.storage.database, c.head)
    promql = PromQLEngine(
        reads, lookback_delta_ms=int(q.lookback_delta * 1000), max_samples=q.max_samples, timeout_s=q.timeout
    )
    runner = QueryRunner(promql, QueryLimits(timeout_s=q.timeout, max_concurrency=q.max_concurrency))
    return PrometheusAPI(reads, runner, targets, alerting_url=q.alerting_url)


def main_app(c: Collector, targets: Callable[[], list[TargetStatus]] = lambda: []) -> FastAPI:
    """Everything HTTP on the main port: OTLP/HTTP, Influx writes, the native API, the Prometheus API,
    health, own metrics. `targets` lists the scrape targets for /api/v1/targets."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield

    app = FastAPI(title="Observatory collector", version=__version__, lifespan=lifespan)
    app.include_router(otlp_router(c.ingest, c.settings.limits.max_body_bytes))
    app.include_router(influx_router(c.ingest, c.settings.limits.max_body_bytes))
    app.include_router(remote_write_router(c.ingest, c.settings.limits.max_body_bytes))
    app.include_router(obs_router(c.reader))
    prometheus = prometheus_api(c, targets)
    app.include_router(prometheus_router(prometheus))
    app.include_router(query_batch_router(prometheus.runner))
    search = LogSearch(c.engine, c.settings.storage.database)
    app.include_router(loki_router(LokiAPI(c.ingest, search, c.settings.limits.max_body_bytes)))
    trace_search = TraceSearch(c.engine, c.settings.storage.database)
    app.include_router(jaeger_router(trace_search))
    app.include_router(tempo_router(trace_search))
    db = c.settings.storage.database
    correlator = Correlator(c.reader, MetricReads(c.engine, db, c.head), CorrelationReads(c.engine, db))
    app.include_router(correlate_router(correlator))

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        # Prometheus answers / with a redirect to its UI, and clients probe it (prometheus-api-client's
        # check_prometheus_connection): until the UI exists, the API's own documentation is the page.
        return RedirectResponse("/docs", status_code=302)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        if not c.ready:
            return JSONResponse({"status": "starting"}, status_code=503)
        try:
            await asyncio.get_running_loop().run_in_executor(None, c.engine.query, "SELECT 1")
        except Exception as exc:
            return JSONResponse({"status": "store unavailable", "error": str(exc)}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def own_metrics(request: Request) -> Response:
        encoder, content_type = exposition.choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(c.metrics.registry), media_type=content_type)

    return app


def otlp_app(c: Collector) -> FastAPI:
    """The separate OTLP/HTTP port (4318): only /v1/*, as an OpenTelemetry Collector serves it."""
    app = FastAPI(title="Observatory OTLP/HTTP receiver", version=__version__, openapi_url=None)
    app.include_router(otlp_router(c.ingest, c.settings.limits.max_body_bytes))
    return app


class _Server(uvicorn.Server):
    # Signals are handled once for all servers of the process, in `serve`.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM; then stop accepting, finish in-flight inserts and exit."""
    c = build(settings)
    s = settings.server
    common = {"log_level": "warning", "access_log": False, "timeout_graceful_shutdown": 10, "lifespan": "off"}
    scraper = Scraper(settings.scrape, c.ingest.scraped)
    app = main_app(c, scraper.target_statuses)
    servers = [_Server(uvicorn.Config(app, host=s.host, port=s.http_port, **common))]  # type: ignore[arg-type]
    grpc_server = None
    if s.otlp_ports:
        servers.append(_Server(uvicorn.Config(otlp_app(c), host=s.host, port=s.otlp_http_port, **common)))  # type: ignore[arg-type]
        grpc_server, _ = otlp_grpc_server(
            c.ingest, f"{s.host}:{s.otlp_grpc_port}", settings.limits.max_grpc_message_bytes
        )
    c.ingest.start()
    c.forwarding.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if grpc_server is not None:
        await grpc_server.start()
    tasks = [asyncio.create_task(srv.serve()) for srv in servers]
    while not all(srv.started for srv in servers):
        if any(t.done() for t in tasks):
            break
        await asyncio.sleep(0.05)
    failed = [t for t in tasks if t.done()]
    if failed:
        for t in failed:
            t.result()  # re-raise a bind error and the like
        raise SystemExit("a server failed to start")
    c.ready = True
    scraper.start()
    ports = f"http {s.host}:{s.http_port}"
    if s.otlp_ports:
        ports += f", otlp/http :{s.otlp_http_port}, otlp/grpc :{s.otlp_grpc_port}"
    log.info("collector ready (%s; store %s)", ports, c.engine.name)
    await stop.wait()
    log.info("shutting down")
    c.ready = False
    for srv in servers:
        srv.should_exit = True
    if grpc_server is not None:
        await grpc_server.stop(grace=5)
    await asyncio.gather(*tasks, return_exceptions=True)
    await scraper.close()
    await c.ingest.close()
    await c.forwarding.close()
    if c.head is not None:
        c.head.close()
    c.engine.close()
