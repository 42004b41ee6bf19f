"""The ingest path every receiver calls: admit, decode, write through group commit, count.

Receivers know the wire; this knows the order of the steps and what is counted. It raises
PermanentError (bad data) or RetryableError (overload, store down) for the receiver to map.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Protocol

from collector.codecs.influx_metrics import InfluxSamples, SeriesMapper, columns_to_samples
from collector.codecs.line_protocol import LineError, rewrite_lines
from collector.codecs.line_protocol_columns import LineScanner
from collector.codecs.otlp_values import Rejections
from collector.errors import PermanentError, RetryableError
from collector.model import MetricBatch
from collector.pipeline.admission import Admission
from collector.pipeline.decoding import Decoded, Decoder
from collector.pipeline.delta_to_cumulative import DeltaToCumulative
from collector.pipeline.field_types import FieldTypes, write_scope
from collector.pipeline.group_commit import GroupCommitter
from collector.pipeline.metrics_generator import MetricsGenerator
from collector.pipeline.series_limits import LimitOutcome, SeriesLimits
from collector.store.engine import StoreUnavailable
from collector.store.writer import StoreWriter
from collector.telemetry import SelfMetrics


class Forward(Protocol):
    """Where accepted data goes on to (exporters/forwarders.py); called after it is in the store."""

    def lines(self, db: str, rp: str, precision: str, body: bytes) -> None: ...

    def samples(self, batch: MetricBatch) -> None: ...

    def otlp_request(self, signal: str, body: bytes) -> None: ...


class NoForward:
    def lines(self, db: str, rp: str, precision: str, body: bytes) -> None:
        pass

    def samples(self, batch: MetricBatch) -> None:
        pass

    def otlp_request(self, signal: str, body: bytes) -> None:
        pass


@dataclass(frozen=True)
class InfluxResult:
    lines: int
    errors: list[LineError]
    samples: int
    refused_samples: int = 0  # by the series limits (cardinality, out of order, duplicates)
    refused_message: str = ""
    conflicted_lines: int = 0  # dropped whole for a field type conflict
    conflict_message: str = ""  # InfluxDB's wording of the first one


def decode_influx(
    body: bytes,
    precision: str,
    labels: dict[str, str],
    all_or_nothing: bool,
    scanner: LineScanner | None = None,
    mapper: SeriesMapper | None = None,
) -> tuple[InfluxSamples | None, int, list[LineError], bytes]:
    """Parse and map a line protocol body (runs on the decode executor); the last item is the body
    without its bad lines and with the time of receipt written into the lines that had none, as it is
    forwarded to InfluxDB (which would otherwise give them its own, later, arrival time).

    Columnar throughout (see line_protocol_columns): the samples come back as numpy columns; the
    scanner and mapper keep each series' ids, labels and fingerprint from one write to the next."""
    columns, errors = (scanner or LineScanner()).parse(body, precision)
    if errors and all_or_nothing:
        return None, 0, errors, b""
    body = rewrite_lines(body, {e.line for e in errors}, columns.untimed, columns.received)
    return columns_to_samples(columns, labels, mapper), columns.lines, errors, body


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    rejected: int
    message: str


class Ingest:
    def __init__(
        self,
        writer: StoreWriter,
        decoder: Decoder,
        admission: Admission,
        metrics: SelfMetrics,
        max_batch_rows: int,
        min_insert_interval: float = 0.0,
        group_wait: float = 0.0,
        delta_series: int = 100_000,
        series_limits: SeriesLimits | None = None,
        metrics_window: tuple[float, float] = (0.0, 0.0),
        forward: Forward | None = None,
        field_types: FieldTypes | None = None,
        generator: MetricsGenerator | None = None,
    ) -> None:
        """metrics_window: (max age, max future) in seconds for metric samples; 0 is unbounded.
        field_types: the recorded line protocol field types (seeded from the store).
        generator: derives metrics from spans once they are stored, and writes them as samples."""
        self._writer = writer
        self._field_types = field_types or FieldTypes()
        self._decoder = decoder
        self._admission = admission
        self._metrics = metrics
        self._deltas = DeltaToCumulative(delta_series)
        self._limits = series_limits or SeriesLimits(10**9, 2**62)
        self._metrics_window = metrics_window
        self._forward: Forward = forward or NoForward()
        self._influx_scanner = LineScanner()
        self._influx_series = SeriesMapper()
        self._generator = generator
        self._generator_task: asyncio.Task[None] | None = None
        self.committers: dict[str, GroupCommitter] = {
            signal: GroupCommitter(signal, write, max_batch_rows, min_insert_interval, group_wait)
            for signal, write in (
                ("traces", writer.write_spans),
                ("logs", writer.write_logs),
                ("metrics", writer.write_metrics),
            )
        }

    def start(self) -> None:
        for committer in self.committers.values():
            committer.start()
        if self._generator is not None:
            self._generator.start()
            self._generator_task = asyncio.get_running_loop().create_task(
                self._generator.run(self.derived), name="metrics-generator"
            )

    async def close(self) -> None:
        if self._generator is not None and self._generator_task is not None:
            self._generator_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._generator_task
            await asyncio.get_running_loop().run_in_executor(None, self._generator.close)  # count what is queued
            with contextlib.suppress(Exception):  # the last totals, while the committers still run
                await self.derived(self._generator.collect())
        for committer in self.committers.values():
            await committer.close()
        self._decoder.close()

    @contextmanager
    def admit(self, signal: str, protocol: str, body_bytes: int) -> Iterator[None]:
        """Reserve memory for a body before reading it; raises (and counts) RetryableError when saturated."""
        try:
            reservation = self._admission.reserve(body_bytes)
            reservation.__enter__()
        except RetryableError as exc:
            self._metrics.refused.labels(signal, protocol, exc.reason).inc()
            self._metrics.requests.labels(signal, protocol, str(exc.status)).inc()
            raise
        try:
            yield
        finally:
            reservation.__exit__(None, None, None)

    @asynccontextmanager
    async def _request(self, signal: str, protocol: str, body_bytes: int, status: str) -> AsyncIterator[_Status]:
        """One ingest request: admission for its memory, and the counting every protocol shares.

        The caller sets `.status` when it answers something other than `status`; refusals raised
        inside (bad data, saturation) are counted by reason here.
        """
        started = time.perf_counter()
        m = self._metrics
        outcome = _Status(status)
        try:
            with self._admission.reserve(body_bytes), self.committers[signal].arriving():
                m.inflight_bytes.set(self._admission.inflight)
                yield outcome
        except (PermanentError, RetryableError) as exc:
            outcome.status = str(exc.status)
            items = exc.items if isinstance(exc, PermanentError) else 1
            m.refused.labels(signal, protocol, exc.reason).inc(items)
            raise
        finally:
            m.inflight_bytes.set(self._admission.inflight)
            m.requests.labels(signal, protocol, outcome.status).inc()
            m.request_duration.labels(signal, protocol).observe(time.perf_counter() - started)

    async def otlp(self, signal: str, protocol: str, body: bytes, encoding: str) -> IngestResult:
        """Store what is valid in one OTLP request; returns the counts for partial_success."""
        async with self._request(signal, protocol, len(body), "200"):
            decoded = await self._decoder.decode(signal, body, encoding)
            self._metrics.received.labels(signal, protocol).inc(decoded.received)
            result = await self._write(decoded, protocol)
            self._forward.otlp_request(signal, decoded.extra.get("protobuf", body))
            return result

    async def influx(
        self, protocol: str, body: bytes, precision: str, labels: dict[str, str], all_or_nothing: bool
    ) -> InfluxResult:
        """Store the parsable lines of a line protocol write (all or none with all_or_nothing).

        Returns the accepted lines and the errors of the others; the receiver words the answer.
        Raises RetryableError when saturated; a ValueError for an unknown precision.
        """
        m = self._metrics
        async with self._request("metrics", protocol, len(body), "204") as outcome:
            samples, lines, errors, good_lines = await self._decoder.run(
                decode_influx, body, precision, labels, all_or_nothing, self._influx_scanner, self._influx_series
            )
            m.received.labels("metrics", protocol).inc(lines + len(errors))
            if errors:
                outcome.status = "400"
                m.refused.labels("metrics", protocol, "invalid").inc(len(errors) + (lines if samples is None else 0))
            if samples is None:
                return InfluxResult(0, errors, 0)
            scope = write_scope(labels)
            typed = self._field_types.check(samples, scope)
            if typed.new_types:  # recorded before the samples: a reader never sees them without a type
                try:
                    await self._decoder.run(self._writer.write_field_types, scope, labels, typed.new_types)
                except StoreUnavailable as exc:  # the retry sets them again
                    self._field_types.forget(scope, typed.new_types)
                    raise RetryableError(f"the store is unavailable: {exc}", status=503, reason="store") from exc
            if typed.dropped_lines:
                outcome.status = "400"
                m.refused.labels("metrics", protocol, "field_type_conflict").inc(len(typed.dropped_lines))
                lines -= len(typed.dropped_lines)
                # Forwarded without them too (InfluxDB would refuse them as well): the body again, as
                # decode_influx rewrote it, less the dropped lines (rare: off the decode executor).
                cols = samples.columns
                assert cols is not None
                dropped = {e.line for e in errors} | set(typed.dropped_lines)
                good_lines = rewrite_lines(body, dropped, cols.untimed, cols.received)
                samples = typed.samples
            if samples.skipped_strings:
                m.skipped_fields.labels(protocol).inc(samples.skipped_strings)
            limited = await self._store_samples(samples.batch, protocol)
            m.accepted.labels("metrics", protocol).inc(lines)
            self._forward.lines(
                labels.get("db") or labels.get("bucket", ""), labels.get("rp", ""), precision, good_lines
            )
            return InfluxResult(
                lines,
                errors,
                len(limited.batch),
                limited.refused,
                "; ".join(limited.messages),
                len(typed.dropped_lines),
                typed.message,
            )

    async def metrics(
        self, protocol: str, body: bytes, decode: Callable[[bytes], tuple[MetricBatch, Rejections, int]]
    ) -> IngestResult:
        """Store what is valid in a metrics write decoded by `decode` (remote write and the like).

        Raises PermanentError when nothing in it is usable, RetryableError when saturated.
        """
        m = self._metrics
        async with self._request("metrics", protocol, len(body), "204") as outcome:
            batch, rejected, accepted = await self._decoder.run(decode, body)
            m.received.labels("metrics", protocol).inc(accepted + rejected.count)
            if rejected.count and not accepted:
                raise PermanentError(
                    f"every series was refused: {rejected.summary()}", reason="invalid", items=rejected.count
                )
            if rejected.count:
                outcome.status = "400"
                m.refused.labels("metrics", protocol, "invalid").inc(rejected.count)
            limited = await self._store_samples(batch, protocol)
            _add_refusals(rejected, limited, "sample")
            m.accepted.labels("metrics", protocol).inc(accepted - limited.refused)
            return IngestResult(accepted - limited.refused, rejected.count, rejected.summary())

    async def scraped(self, batch: MetricBatch) -> None:
        """Write what a scrape produced (the scraper bounds its own concurrency)."""
        self._metrics.received.labels("metrics", "scrape").inc(len(batch))
        limited = await self._store_samples(batch, "scrape")
        self._metrics.accepted.labels("metrics", "scrape").inc(len(limited.batch))

    async def derived(self, batch: MetricBatch) -> None:
        """Write what the metrics generator collected (span metrics, service graph)."""
        if not len(batch):
            return
        self._metrics.received.labels("metrics", "metrics_generator").inc(len(batch))
        limited = await self._store_samples(batch, "metrics_generator")
        self._metrics.accepted.labels("metrics", "metrics_generator").inc(len(limited.batch))

    async def _store_samples(self, batch: MetricBatch, protocol: str) -> LimitOutcome:
        """Series limits, then the store, then the forwarders: the path every metric sample takes."""
        limited = self._limit(batch, protocol)
        if len(limited.batch):
            await self.committers["metrics"].submit(limited.batch, len(limited.batch))
        limited.commit()
        self._forward.samples(limited.batch)
        return limited

    def _limit(self, batch: MetricBatch, protocol: str) -> LimitOutcome:
        """Apply the series limits; what they refuse is counted here, by reason."""
        max_age, max_future = self._metrics_window
        now_ms = int(time.time() * 1000)
        outcome = self._limits.apply(
            batch,
            now_ms - int(max_age * 1000) if max_age else 0,
            now_ms + int(max_future * 1000) if max_future else 0,
        )
        for reason, count in outcome.by_reason.items():
            self._metrics.refused.labels("metrics", protocol, reason).inc(count)
        return outcome

    async def _write(self, decoded: Decoded, protocol: str) -> IngestResult:
        signal, rejected = decoded.signal, decoded.rejected
        m = self._metrics
        accepted = decoded.accepted
        payload = decoded.payload
        if signal == "metrics":
            dropped, commit_deltas = self._deltas.apply(payload.batch, payload.deltas)
            if dropped:
                rejected.add("metrics", f"{dropped} delta points overlapped or came out of order")
                rejected.count += dropped - 1
                accepted -= dropped
            limited = self._limit(payload.batch, protocol)
            _add_refusals(rejected, limited, "data point")
            rows = len(limited.batch)
            payload = limited.batch
        else:
            rows = decoded.accepted
        if accepted == 0 and rejected.count:
            # Nothing usable: the whole request is bad data, which OTLP answers with 400.
            raise PermanentError(
                f"every item was rejected: {rejected.summary()}", reason="invalid", items=rejected.count
            )
        if rejected.count:
            m.refused.labels(signal, protocol, "invalid").inc(rejected.count)
        if rows:
            committer = self.committers[signal]
            m.queue_depth.labels(signal).set(committer.queued_rows + rows)
            await committer.submit(payload, rows)
            m.queue_depth.labels(signal).set(committer.queued_rows)
            # After the insert: a refused one is retried by the client and must not count twice. The
            # generator's thread counts them; only a full backlog makes the request wait.
            if signal == "traces" and self._generator is not None and not self._generator.submit(payload):
                await asyncio.get_running_loop().run_in_executor(None, self._generator.submit, payload, True)
        m.accepted.labels(signal, protocol).inc(accepted)
        if signal == "metrics":
            commit_deltas()
            limited.commit()
            self._forward.samples(payload)
        return IngestResult(accepted, rejected.count, rejected.summary())


@dataclass
class _Status:
    status: str


def _add_refusals(rejected: Rejections, limited: LimitOutcome, what: str) -> None:
    """Fold the series limits' refusals into a request's rejections (messages capped, count exact)."""
    for message in limited.messages:
        rejected.add(what, message)
    rejected.count += limited.refused - len(limited.messages)
