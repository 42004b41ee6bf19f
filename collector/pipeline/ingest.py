"""The ingest path every receiver calls: admit, decode, write through group commit, count.

Receivers know the wire; this knows the order of the steps and what is counted. It raises
PermanentError (bad data) or RetryableError (overload, store down) for the receiver to map.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from collector.errors import PermanentError, RetryableError
from collector.pipeline.admission import Admission
from collector.pipeline.decoding import Decoded, Decoder
from collector.pipeline.delta_to_cumulative import DeltaToCumulative
from collector.pipeline.group_commit import GroupCommitter
from collector.store.writer import StoreWriter
from collector.telemetry import SelfMetrics


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
        delta_series: int = 100_000,
    ) -> None:
        self._decoder = decoder
        self._admission = admission
        self._metrics = metrics
        self._deltas = DeltaToCumulative(delta_series)
        self.committers: dict[str, GroupCommitter] = {
            signal: GroupCommitter(signal, write, max_batch_rows, min_insert_interval)
            for signal, write in (
                ("traces", writer.write_spans),
                ("logs", writer.write_logs),
                ("metrics", writer.write_metrics),
            )
        }

    def start(self) -> None:
        for committer in self.committers.values():
            committer.start()

    async def close(self) -> None:
        for committer in self.committers.values():
            await committer.close()
        self._decoder.close()

    async def otlp(self, signal: str, protocol: str, body: bytes, encoding: str) -> IngestResult:
        """Store what is valid in one OTLP request; returns the counts for partial_success."""
        started = time.perf_counter()
        m = self._metrics
        status = "200"
        try:
            with self._admission.reserve(len(body)):
                m.inflight_bytes.set(self._admission.inflight)
                decoded = await self._decoder.decode(signal, body, encoding)
                m.received.labels(signal, protocol).inc(decoded.received)
                result = await self._write(decoded, protocol)
            return result
        except PermanentError as exc:
            status = str(exc.status)
            m.refused.labels(signal, protocol, exc.reason).inc(exc.items)
            raise
        except RetryableError as exc:
            status = str(exc.status)
            m.refused.labels(signal, protocol, exc.reason).inc()
            raise
        finally:
            m.inflight_bytes.set(self._admission.inflight)
            m.requests.labels(signal, protocol, status).inc()
            m.request_duration.labels(signal, protocol).observe(time.perf_counter() - started)

    async def _write(self, decoded: Decoded, protocol: str) -> IngestResult:
        signal, rejected = decoded.signal, decoded.rejected
        m = self._metrics
        accepted = decoded.accepted
        payload = decoded.payload
        if signal == "metrics":
            dropped = self._deltas.apply(payload.batch, payload.deltas)
            if dropped:
                rejected.add("metrics", f"{dropped} delta points overlapped or came out of order")
                rejected.count += dropped - 1
                accepted -= dropped
            rows = len(payload.batch)
            payload = payload.batch
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
        m.accepted.labels(signal, protocol).inc(accepted)
        return IngestResult(accepted, rejected.count, rejected.summary())
