"""Traces: the resource, the OTLP span exporter (HTTP/protobuf or gRPC) and a queueing span processor.

Ended spans go into an `ExportQueue` (bounded, dropped spans counted) instead of the SDK's
BatchSpanProcessor, whose drops are not observable. The sampler comes from OTEL_TRACES_SAMPLER /
OTEL_TRACES_SAMPLER_ARG, which the SDK reads when the TracerProvider is built (at start, not import).
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from agents.config import AgentConfig
from agents.export_queue import ExportQueue, once
from agents.stats import AgentStats


def build_resource(config: AgentConfig) -> Resource:
    """Resource attributes: OTEL_RESOURCE_ATTRIBUTES first, then what the agent knows (which wins)."""
    attrs: dict[str, str] = dict(config.resource_attributes)
    attrs.update(
        {
            "service.name": config.service,
            "service.instance.id": config.instance_id,
            "service.version": config.version,
            "deployment.environment": config.environment,
            "host.name": config.host_name,
        }
    )
    # Resource.create would read OTEL_RESOURCE_ATTRIBUTES again; the config already did.
    return Resource(attrs)


def span_exporter(config: AgentConfig) -> SpanExporter:
    if config.otlp_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter

        return GrpcSpanExporter(
            endpoint=config.otlp_endpoint,
            insecure=config.otlp_endpoint.startswith("http://"),
            timeout=config.otlp_timeout_s,
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter

    return HttpSpanExporter(endpoint=f"{config.otlp_endpoint}/v1/traces", timeout=config.otlp_timeout_s)


class QueueingSpanProcessor(SpanProcessor):
    """Hands sampled, ended spans to a bounded export queue; never blocks the thread that ended the span."""

    def __init__(self, exporter: SpanExporter, stats: AgentStats, config: AgentConfig) -> None:
        self._exporter = exporter
        self._stop_exporter = once(exporter.shutdown)
        self._queue: ExportQueue[ReadableSpan] = ExportQueue(
            "spans", self._export, stats, config.spans, interrupt=self._stop_exporter
        )
        self._shutdown_timeout = config.shutdown_timeout_s

    def _export(self, batch: Sequence[ReadableSpan]) -> bool:
        return self._exporter.export(batch) == SpanExportResult.SUCCESS

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and span.context.trace_flags.sampled:
            self._queue.offer(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._queue.force_flush(timeout_millis / 1000)

    def shutdown(self) -> None:
        self._queue.shutdown(self._shutdown_timeout)
        self._stop_exporter()


def build_tracer_provider(config: AgentConfig, stats: AgentStats) -> TracerProvider:
    """A TracerProvider exporting to the collector; with OTEL_SDK_DISABLED=true, one that exports nothing."""
    provider = TracerProvider(resource=build_resource(config), shutdown_on_exit=False)
    if not config.sdk_disabled:
        provider.add_span_processor(QueueingSpanProcessor(span_exporter(config), stats, config))
    return provider
