"""Logs: loguru records enriched with trace context, printed on one line and exported as OTLP LogRecords.

`LogPipeline.install()` puts three things on the process-wide loguru logger (the logging API is global
by nature; `uninstall()` takes them off again):
- a patcher adding `service`, `trace_id`, `span_id` (hex, empty outside a span) to `record["extra"]`;
- a console sink writing `time level service [trace_id] message key=value...` to stderr;
- an export sink converting each record to an OTLP LogRecord and offering it to a bounded `ExportQueue`.
Standard-library logging (root logger, uvicorn, httpx) is routed into loguru by `InterceptHandler`.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from loguru import logger
from opentelemetry import trace
from opentelemetry._logs import LogRecord as OTelLogRecord
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from agents.config import AgentConfig
from agents.export_queue import ExportQueue, once
from agents.stats import AgentStats

if TYPE_CHECKING:  # loguru's types exist only in its stub file
    from loguru import Message, Record

# extra keys the agent adds itself; not repeated as key=value or as attributes
CONTEXT_KEYS = ("service", "trace_id", "span_id")
NO_EXPORT = "_no_export"  # set on records that must stay off the export path (the exporters' own logs)
_FLAGS = "_trace_flags"

# loguru level number -> OTLP severity number (data model: TRACE 1-4, DEBUG 5-8, INFO 9-12, WARN 13-16, ...)
_SEVERITY = (
    (50, SeverityNumber.FATAL),
    (40, SeverityNumber.ERROR),
    (30, SeverityNumber.WARN),
    (25, SeverityNumber.INFO2),  # loguru SUCCESS
    (20, SeverityNumber.INFO),
    (10, SeverityNumber.DEBUG),
    (0, SeverityNumber.TRACE),
)


def severity_number(level_no: int) -> SeverityNumber:
    for floor, number in _SEVERITY:
        if level_no >= floor:
            return number
    return SeverityNumber.TRACE


def add_trace_context(record: Record, service: str) -> None:
    """The patcher's work: service and the active span's ids into `extra` (caller's values kept)."""
    extra = record["extra"]
    extra.setdefault("service", service)
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        extra["trace_id"] = f"{ctx.trace_id:032x}"
        extra["span_id"] = f"{ctx.span_id:016x}"
        extra[_FLAGS] = int(ctx.trace_flags)
    else:
        extra.setdefault("trace_id", "")
        extra.setdefault("span_id", "")


def fields(record: Record) -> dict[str, Any]:
    """The record's structured fields: `extra` minus the agent's context keys and private keys."""
    return {k: v for k, v in record["extra"].items() if k not in CONTEXT_KEYS and not k.startswith("_")}


def _console_value(value: Any) -> str:
    """Strings with spaces (or empty) quoted, so `key=value` pairs stay readable and unambiguous."""
    if isinstance(value, str) and (not value or " " in value):
        return repr(value)
    return str(value)


def format_console_line(record: Record) -> str:
    """`2026-01-02 10:11:12.345 INFO     orders [trace_id] message key=value ...` (+ traceback if any)."""
    when = record["time"].strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    extra = record["extra"]
    kv = "".join(f" {k}={_console_value(v)}" for k, v in fields(record).items())
    head = f"{when} {record['level'].name:<8} {extra.get('service', '')} [{extra.get('trace_id') or '-'}]"
    line = f"{head} {record['message']}{kv}\n"
    exc = record["exception"]
    if exc is not None and exc.type is not None:
        import traceback

        line += "".join(traceback.format_exception(exc.type, exc.value, exc.traceback))
    return line


def attribute_value(value: Any) -> Any:
    """An OTel attribute value: str, bool, int, float kept typed; homogeneous lists kept; the rest as str."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple) and value:
        first = type(value[0])
        if first in (str, bool, int, float) and all(type(v) is first for v in value):
            return tuple(value)
    return str(value)


def to_otel_record(record: Record) -> OTelLogRecord:
    """The OTLP LogRecord for one loguru record (trace ids from the patcher's `extra`)."""
    extra = record["extra"]
    attributes = {k: attribute_value(v) for k, v in fields(record).items()}
    attributes["code.function"] = record["function"]
    attributes["code.lineno"] = record["line"]
    attributes["code.namespace"] = record["name"] or ""
    exc = record["exception"]
    if exc is not None and exc.type is not None:
        import traceback

        attributes["exception.type"] = exc.type.__name__
        attributes["exception.message"] = str(exc.value)
        attributes["exception.stacktrace"] = "".join(traceback.format_exception(exc.type, exc.value, exc.traceback))
    context = None
    if extra.get("trace_id") and extra.get("span_id"):
        span_ctx = SpanContext(
            int(extra["trace_id"], 16),
            int(extra["span_id"], 16),
            is_remote=False,
            trace_flags=TraceFlags(extra.get(_FLAGS, TraceFlags.SAMPLED)),
        )
        context = trace.set_span_in_context(NonRecordingSpan(span_ctx))
    else:
        context = trace.set_span_in_context(trace.INVALID_SPAN)
    return OTelLogRecord(
        timestamp=int(record["time"].timestamp() * 1e9),
        observed_timestamp=time.time_ns(),
        context=context,
        severity_text=record["level"].name,
        severity_number=severity_number(record["level"].no),
        body=record["message"],
        attributes=attributes,
    )


def log_exporter(config: AgentConfig) -> LogRecordExporter:
    if config.otlp_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter

        return GrpcLogExporter(
            endpoint=config.otlp_endpoint,
            insecure=config.otlp_endpoint.startswith("http://"),
            timeout=config.otlp_timeout_s,
        )
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter

    return HttpLogExporter(endpoint=f"{config.otlp_endpoint}/v1/logs", timeout=config.otlp_timeout_s)


class InterceptHandler(logging.Handler):
    """Sends standard-library log records to loguru, keeping the caller's location and exception."""

    def emit(self, record: logging.LogRecord) -> None:
        level: str | int
        try:
            level = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = inspect.currentframe(), 0
        while frame is not None and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        extra: dict[str, Any] = {"logger": record.name}
        if record.name.startswith("opentelemetry"):
            # The exporters log their own failures; exporting those would feed the queue that is failing.
            extra[NO_EXPORT] = True
        logger.opt(depth=depth, exception=record.exc_info).bind(**extra).log(level, record.getMessage())


# stdlib loggers that keep their own handlers and do not propagate unless told to
ROUTED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "fastapi", "httpx")


def route_stdlib_logging(handler: logging.Handler, level: int) -> None:
    """Root logger -> `handler`; uvicorn's (and friends') loggers propagate to it instead of printing."""
    root = logging.getLogger()
    if handler not in root.handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name in ROUTED_LOGGERS:
        named = logging.getLogger(name)
        if not named.handlers and not named.propagate:
            continue  # switched off on purpose: uvicorn does this to its access log with access_log=False
        named.handlers = []
        named.propagate = True


def _no_patch(record: Record) -> None:
    return None


class LogPipeline:
    """The agent's log sinks, patcher and stdlib routing, with the export queue behind them."""

    def __init__(
        self,
        config: AgentConfig,
        stats: AgentStats,
        resource: Resource,
        exporter: LogRecordExporter | None,
        console: TextIO | None = None,
    ) -> None:
        self._config = config
        self._resource = resource
        self._scope = InstrumentationScope("agents", config.version)
        self._exporter = exporter
        self._console = console
        self.queue: ExportQueue[ReadableLogRecord] | None = None
        self._stop_exporter: Callable[[], None] | None = None
        if exporter is not None:
            self._stop_exporter = once(exporter.shutdown)
            self.queue = ExportQueue("logs", self._export, stats, config.logs, interrupt=self._stop_exporter)
        self._sink_ids: list[int] = []
        self.handler = InterceptHandler()

    def _export(self, batch: Sequence[ReadableLogRecord]) -> bool:
        assert self._exporter is not None
        return self._exporter.export(batch) == LogRecordExportResult.SUCCESS

    def _write_console(self, message: Message) -> None:
        (self._console or sys.stderr).write(format_console_line(message.record))

    def console_only(self, level: str, message: str, **values: object) -> None:
        """A line on the console without loguru (its sinks are gone after `uninstall`), same layout."""
        when = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        kv = "".join(f" {k}={_console_value(v)}" for k, v in values.items())
        (self._console or sys.stderr).write(f"{when} {level:<8} {self._config.service} [-] {message}{kv}\n")

    def _offer(self, message: Message) -> None:
        record = message.record
        if record["extra"].get(NO_EXPORT) or self.queue is None:
            return
        readable = ReadableLogRecord(
            log_record=to_otel_record(record), resource=self._resource, instrumentation_scope=self._scope
        )
        self.queue.offer(readable)

    def install(self) -> None:
        service = self._config.service
        logger.configure(patcher=lambda record: add_trace_context(record, service))
        with contextlib.suppress(ValueError):
            logger.remove(0)  # loguru's default stderr sink; ours replaces it
        level = self._config.log_level
        self._sink_ids.append(logger.add(self._write_console, level=level, format="{message}", colorize=False))
        self._sink_ids.append(logger.add(self._offer, level=level, format="{message}", catch=True))
        route_stdlib_logging(self.handler, logger.level(level).no)

    def reroute_stdlib(self) -> None:
        """Again, after a server (uvicorn) configured its own logging handlers."""
        route_stdlib_logging(self.handler, logging.getLogger().level)

    def flush(self, timeout: float) -> bool:
        return self.queue.force_flush(timeout) if self.queue is not None else True

    def uninstall(self) -> None:
        """Stop capturing (sinks off, stdlib handler off), then drain the queue within the shutdown bound."""
        for sink_id in self._sink_ids:
            with contextlib.suppress(ValueError):
                logger.remove(sink_id)
        if self._sink_ids:
            logger.configure(patcher=_no_patch)  # loguru cannot unset a patcher; this one does nothing
        self._sink_ids.clear()
        logging.getLogger().removeHandler(self.handler)
        if self.queue is not None:
            self.queue.shutdown(self._config.shutdown_timeout_s)
        if self._stop_exporter is not None:
            self._stop_exporter()
