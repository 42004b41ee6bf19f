"""Log records: one readable console line, trace ids injected, typed OTLP attributes, stdlib routed in."""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Iterator, Sequence

import pytest
from loguru import logger
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from agents.config import load_config
from agents.logs import LogPipeline, route_stdlib_logging, severity_number
from agents.stats import AgentStats
from collector.codecs.otlp_logs import decode_logs
from collector.codecs.otlp_values import TimeWindow


class Captured:
    def __init__(self) -> None:
        self.console = io.StringIO()
        self.exported = InMemoryLogRecordExporter()  # the SDK's own in-memory exporter, a real one
        self.stats = AgentStats()
        config = load_config("orders", "0.1.0", environ={"OTEL_BLRP_SCHEDULE_DELAY": "20"})
        self.pipeline = LogPipeline(
            config, self.stats, Resource({"service.name": "orders"}), self.exported, console=self.console
        )

    def records(self) -> list[object]:
        assert self.pipeline.flush(5)
        return [r.log_record for r in self.exported.get_finished_logs()]


@pytest.fixture
def captured() -> Iterator[Captured]:
    c = Captured()
    c.pipeline.install()
    try:
        yield c
    finally:
        c.pipeline.uninstall()


def test_record_inside_a_span_carries_its_trace_id(captured: Captured) -> None:
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("work") as span:
        logger.bind(order_id=7, amount=9.5, paid=True, customer="ann lee").info("order placed")
        ctx = span.get_span_context()
    trace_id, span_id = f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"

    line = captured.console.getvalue().strip()
    assert re.fullmatch(
        rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{{3}} INFO     orders \[{trace_id}\] order placed "
        r"order_id=7 amount=9\.5 paid=True customer='ann lee'",
        line,
    ), line

    [rec] = captured.records()
    assert rec.body == "order placed"
    assert rec.severity_text == "INFO" and rec.severity_number == SeverityNumber.INFO
    assert (rec.trace_id, rec.span_id) == (ctx.trace_id, ctx.span_id)
    assert int(rec.trace_flags) == int(ctx.trace_flags) and rec.trace_flags.sampled
    attrs = dict(rec.attributes)
    assert {k: attrs[k] for k in ("order_id", "amount", "paid", "customer")} == {
        "order_id": 7,
        "amount": 9.5,
        "paid": True,
        "customer": "ann lee",
    }
    assert "trace_id" not in attrs and "service" not in attrs  # ids travel in the record, not as attributes
    assert attrs["code.function"] == "test_record_inside_a_span_carries_its_trace_id"
    assert span_id


def test_record_outside_a_span_has_no_trace(captured: Captured) -> None:
    logger.warning("disk almost full")
    assert "[-] disk almost full" in captured.console.getvalue()
    [rec] = captured.records()
    assert rec.trace_id == 0 and rec.span_id == 0
    assert rec.severity_number == SeverityNumber.WARN


def test_collector_decodes_what_the_agent_sends(captured: Captured) -> None:
    """The wire form is what collector/codecs/otlp_logs.py stores: ids, flags, severity, typed attributes."""
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("work") as span:
        logger.bind(qty=3).error("reservation failed")
        ctx = span.get_span_context()
    assert captured.pipeline.flush(5)
    batch, rejected = decode_logs(encode_logs(captured.exported.get_finished_logs()), TimeWindow())
    assert rejected.count == 0, rejected.messages
    assert batch.trace_id == [f"{ctx.trace_id:032x}"] and batch.span_id == [f"{ctx.span_id:016x}"]
    assert (
        batch.trace_flags == [int(ctx.trace_flags)]
        and batch.severity_number == [17]
        and batch.severity_text == ["ERROR"]
    )
    assert batch.body == ["reservation failed"] and batch.service_name == ["orders"]


def test_exception_is_kept(captured: Captured) -> None:
    try:
        raise KeyError("sku-1")
    except KeyError:
        logger.exception("lookup failed")
    assert "KeyError: 'sku-1'" in captured.console.getvalue()
    [rec] = captured.records()
    assert rec.attributes["exception.type"] == "KeyError"
    assert "Traceback" in rec.attributes["exception.stacktrace"]


def test_stdlib_logging_is_routed_in(captured: Captured) -> None:
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("work") as span:
        logging.getLogger("uvicorn.error").warning("from %s", "uvicorn")
        trace_id = f"{span.get_span_context().trace_id:032x}"
    assert f"[{trace_id}] from uvicorn logger=uvicorn.error" in captured.console.getvalue()
    [rec] = captured.records()
    assert rec.body == "from uvicorn" and rec.attributes["logger"] == "uvicorn.error"


def test_exporter_own_logs_stay_off_the_export_path(captured: Captured) -> None:
    logging.getLogger("opentelemetry.exporter.otlp.proto.http").warning("Failed to export")
    assert "Failed to export" in captured.console.getvalue()
    assert captured.records() == []


class GatedLogExporter(InMemoryLogRecordExporter):
    """The SDK's in-memory exporter that holds each export until `gate` opens (a busy collector)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.entered.set()
        self.gate.wait(10)
        return super().export(batch)


def test_full_queue_drops_are_counted() -> None:
    config = load_config(
        "orders",
        environ={"OTEL_BLRP_MAX_QUEUE_SIZE": "3", "OTEL_BLRP_SCHEDULE_DELAY": "60000"},
        shutdown_timeout_s=2,
    )
    stats = AgentStats()
    exported = GatedLogExporter()
    pipeline = LogPipeline(config, stats, Resource({}), exported, console=io.StringIO())
    pipeline.install()
    try:
        for i in range(3):  # a full batch: the worker takes it and waits at the gate
            logger.info("first {}", i)
        assert exported.entered.wait(5)
        for i in range(10):
            logger.info("burst {}", i)
        assert stats.snapshot()["logs_dropped_queue_full"] == 7
        assert stats.snapshot()["logs_queued"] == 3
    finally:
        exported.gate.set()
        pipeline.uninstall()
    bodies = [r.log_record.body for r in exported.get_finished_logs()]
    assert bodies == ["first 0", "first 1", "first 2", "burst 0", "burst 1", "burst 2"]
    assert stats.snapshot()["logs_exported"] == 6


@pytest.mark.parametrize(
    ("level", "number"),
    [
        (5, SeverityNumber.TRACE),
        (10, SeverityNumber.DEBUG),
        (20, SeverityNumber.INFO),
        (25, SeverityNumber.INFO2),
        (30, SeverityNumber.WARN),
        (40, SeverityNumber.ERROR),
        (50, SeverityNumber.FATAL),
    ],
)
def test_severity_mapping(level: int, number: SeverityNumber) -> None:
    assert severity_number(level) == number


def test_stdlib_routing_keeps_a_logger_a_server_switched_off() -> None:
    """uvicorn's access_log=False empties uvicorn.access and stops it propagating: it must stay off."""
    access, error = logging.getLogger("uvicorn.access"), logging.getLogger("uvicorn.error")
    saved = [(lg, lg.handlers[:], lg.propagate) for lg in (access, error)]
    handler = logging.NullHandler()
    try:
        access.handlers, access.propagate = [], False
        error.handlers, error.propagate = [logging.StreamHandler(io.StringIO())], False
        route_stdlib_logging(handler, logging.INFO)
        assert (access.handlers, access.propagate) == ([], False)
        assert (error.handlers, error.propagate) == ([], True)  # its own handler gone: it reaches ours
    finally:
        logging.getLogger().removeHandler(handler)
        for lg, handlers, propagate in saved:
            lg.handlers, lg.propagate = handlers, propagate
