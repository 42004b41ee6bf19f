"""The Agent: one service's telemetry (tracer, log pipeline, metrics registry, pusher, discovery) and `start()`.

The composition root of the library: it builds each piece from an `AgentConfig`, wires the shared
`AgentStats`, and owns shutdown (deregister, then flush spans, logs and points in parallel, each
bounded by `config.shutdown_timeout_s`, so shutdown ends within about that time even with the
collector down).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping
from typing import Any, TextIO, TypeVar, cast

import httpx
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from agents.config import AgentConfig, load_config
from agents.discovery import DiscoveryClient
from agents.logs import LogPipeline, log_exporter
from agents.push import MetricsPusher
from agents.sqlite import TracedSQLiteConnection
from agents.stats import AgentStats
from agents.tracing import build_resource, build_tracer_provider

ClientT = TypeVar("ClientT", httpx.Client, httpx.AsyncClient)


class Agent:
    """Everything `agents.start()` / `agents.instrument()` set up for one service."""

    def __init__(self, config: AgentConfig, console: TextIO | None = None) -> None:
        self.config = config
        self._stats = AgentStats()
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.registry.register(self._stats)
        self.tracer_provider: TracerProvider = build_tracer_provider(config, self._stats)
        self.tracer: trace.Tracer = self.tracer_provider.get_tracer("agents", config.version)
        exporter = None if config.sdk_disabled else log_exporter(config)
        self._logs = LogPipeline(config, self._stats, build_resource(config), exporter, console=console)
        self.push = MetricsPusher(config, self._stats)
        self.discovery: DiscoveryClient | None = None
        if config.registry_url:
            metadata = {"version": config.version, "metrics_path": "/metrics", **config.metadata}
            self.discovery = DiscoveryClient(
                registry_url=config.registry_url,
                service=config.service,
                instance_id=config.instance_id,
                host=config.host,
                port=config.port or 0,
                metadata=metadata,
            )
        self._started = False
        self._discovery_started = False
        self._stopped = False
        self._lock = threading.Lock()

    def begin(self) -> None:
        """Capture logs and make this tracer provider the global one (if none is set yet)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        self._logs.install()
        # The global provider can be set once per process; a second agent in one process keeps its own
        # provider (agent.tracer, instrumented clients) without the global one.
        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            trace.set_tracer_provider(self.tracer_provider)

    def start_discovery(self) -> None:
        """Register with discovery (and start heartbeats and cache refresh); never raises if it is down."""
        with self._lock:
            if self._discovery_started or self.discovery is None or self._stopped:
                return
            self._discovery_started = True
        self.discovery.start()

    def server_started(self) -> None:
        """Called from the app's lifespan once the server is up: logging routed again, then registration."""
        self._logs.reroute_stdlib()  # uvicorn configured its own handlers after instrument()
        self.start_discovery()

    def http_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An httpx.AsyncClient whose requests are client spans carrying W3C traceparent."""
        return self._instrumented(httpx.AsyncClient(**kwargs))

    def sync_http_client(self, **kwargs: Any) -> httpx.Client:
        """An httpx.Client whose requests are client spans carrying W3C traceparent."""
        return self._instrumented(httpx.Client(**kwargs))

    def _instrumented(self, client: ClientT) -> ClientT:
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=self.tracer_provider)
        return client

    def instrument_sqlite(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        """The connection, wrapped so every statement (cursor or `conn.execute`) is a DB span."""
        # Duck-typed: callers use it as the sqlite3.Connection they passed in.
        return cast(sqlite3.Connection, TracedSQLiteConnection(conn, self.tracer_provider))

    def stats(self) -> dict[str, int]:
        """`{"spans_dropped", "logs_dropped", "points_dropped", "*_exported", "*_queued", per-reason drops}`."""
        return self._stats.snapshot()

    def flush(self, timeout: float = 5.0) -> bool:
        """Export queued spans and logs now and ask the pusher to send; True when both queues emptied."""
        self.push.flush()
        spans = self.tracer_provider.force_flush(int(timeout * 1000))
        return self._logs.flush(timeout) and spans

    def shutdown(self) -> None:
        """Deregister, then flush spans, logs and points in parallel (bounded). Safe to call twice."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            deregister = self._discovery_started
        if deregister and self.discovery is not None:
            self.discovery.stop(self.config.shutdown_timeout_s)
        workers = [
            threading.Thread(target=self.tracer_provider.shutdown, name="agent-stop-spans", daemon=True),
            threading.Thread(target=self._logs.uninstall, name="agent-stop-logs", daemon=True),
            threading.Thread(target=self.push.close, name="agent-stop-points", daemon=True),
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(self.config.shutdown_timeout_s + 1.0)
        final = self.stats()
        summary = {k: final[k] for k in ("spans_exported", "spans_dropped", "logs_exported", "logs_dropped")}
        summary |= {"points_exported": final["points_exported"], "points_dropped": final["points_dropped"]}
        self._logs.console_only("INFO", "agent stopped", **summary)


def start(
    service: str | None = None,
    version: str = "0.0.0",
    *,
    port: int | None = None,
    instance_id: str | None = None,
    host: str = "127.0.0.1",
    metadata: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    console: TextIO | None = None,
    register: bool = True,
    **overrides: object,
) -> Agent:
    """The plain form: config from arguments + environment, pipelines running; call `agent.shutdown()`.

    Registration with discovery starts at once when `port` is given and `register` is true (a
    process without a server has nothing to register; it can still look services up).
    """
    config = load_config(
        service,
        version,
        port=port,
        instance_id=instance_id,
        host=host,
        metadata=metadata,
        environ=environ,
        **overrides,
    )
    agent = Agent(config, console=console)
    agent.begin()
    if register and port:
        agent.start_discovery()
    return agent
