"""Turns OTLP request bodies into writable batches, in this process or in worker processes.

Decoding is pure CPU (protobuf parse, then flattening into columns). With `write.decode_workers` > 0
it runs in a pool of worker processes so it does not hold the server process' GIL: the body goes in as
bytes, the columns come back as Arrow tables (cheap to move between processes).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector.codecs.otlp_logs import decode_logs
from collector.codecs.otlp_metrics import decode_metrics
from collector.codecs.otlp_traces import c_flattener_available, check_traces, decode_traces, flatten_traces_c
from collector.codecs.otlp_values import Rejections, TimeWindow
from collector.codecs.otlp_wire import PROTOBUF, parse_request
from collector.pipeline.log_trace_ids import fill_trace_ids

T = TypeVar("T")


@dataclass
class Decoded:
    """One request's data ready to write: `payload` is an Arrow table (spans, logs) or the metric result."""

    signal: str
    accepted: int
    rejected: Rejections
    payload: Any
    received: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def window_now(max_age: float, max_future: float) -> TimeWindow:
    now = time.time_ns()
    return TimeWindow(
        min_ns=now - int(max_age * 1e9) if max_age else 0,
        max_ns=now + int(max_future * 1e9) if max_future else 0,
    )


def decode_otlp(signal: str, body: bytes, encoding: str, max_age: float, max_future: float) -> Decoded:
    """Parse and flatten one OTLP request. Raises PermanentError for a body that cannot be parsed."""
    request = parse_request(signal, body, encoding)
    window = window_now(max_age, max_future)
    if signal == "traces":
        decoded = _decode_traces(request, body, encoding, window)  # type: ignore[arg-type]
    elif signal == "logs":
        logs, rejected = decode_logs(request, window)  # type: ignore[arg-type]
        fill_trace_ids(logs)  # OTLP records and Loki lines that name their trace only in the text
        decoded = Decoded(signal, len(logs), rejected, logs.to_arrow(), len(logs) + rejected.count)
    else:
        result = decode_metrics(request, window)  # type: ignore[arg-type]
        decoded = Decoded(signal, result.points, result.rejected, result, result.points + result.rejected.count)
    if encoding != PROTOBUF:  # forwarders send protobuf
        decoded.extra["protobuf"] = request.SerializeToString()
    return decoded


def effective_max_age(max_age: float, retention: float) -> float:
    """Data older than its retention would be dropped by the TTL right after it was acknowledged:
    refuse it instead. 0 means unbounded for both."""
    if not max_age:
        return retention
    return min(max_age, retention) if retention else max_age


def _decode_traces(request: ExportTraceServiceRequest, body: bytes, encoding: str, window: TimeWindow) -> Decoded:
    """Spans are checked in Python and flattened in C when it is built; else all in Python."""
    if c_flattener_available():
        accepted, rejected = check_traces(request, window)
        if rejected.count or encoding != PROTOBUF:
            body = request.SerializeToString()  # without the rejected spans
        table = flatten_traces_c(body)
        if table is not None:
            return Decoded("traces", accepted, rejected, table, accepted + rejected.count)
        spans, more = decode_traces(request, window)
        rejected.count += more.count
    else:
        spans, rejected = decode_traces(request, window)
    return Decoded("traces", len(spans), rejected, spans.to_arrow(), len(spans) + rejected.count)


class Decoder:
    def __init__(self, workers: int, max_age: dict[str, float], max_future: float) -> None:
        """max_age: per signal (traces, logs, metrics), seconds; 0 is unbounded."""
        self._max_age = max_age
        self._max_future = max_future
        self._executor: Executor
        if workers > 0:
            # spawn, not fork: the server process holds chDB and threads that must not be forked.
            self._executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        else:
            # A thread keeps the event loop answering (health checks, other requests) while decoding.
            self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode")

    async def decode(self, signal: str, body: bytes, encoding: str) -> Decoded:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor,
            decode_otlp,
            signal,
            body,
            encoding,
            self._max_age[signal],
            self._max_future,
        )

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Any other pure decoding work, on the same executor."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
