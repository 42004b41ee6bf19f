"""Business metrics pushed as Influx line protocol through influxdb-client's batching WriteApi.

`write()` never blocks: influxdb-client batches in its own scheduler thread (500 points or 1 s),
retries 429/503 honouring Retry-After with a bounded budget, and reports each batch to our callbacks,
which count delivered and dropped points. Points written while `max_pending` are still unacknowledged
are dropped at once (`queue_full`) so a dead collector cannot grow memory without bound.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write.point import Point
from influxdb_client.client.write_api import WriteApi, WriteOptions, WriteType
from influxdb_client.domain.write_precision import WritePrecision
from reactivex.scheduler import ThreadPoolScheduler

from agents.config import AgentConfig
from agents.stats import EXPORT_FAILED, QUEUE_FULL, SHUTDOWN, AgentStats

FieldValue = float | int | bool | str


def count_points(data: Any) -> int:
    """Points in a batch as influxdb-client hands it to a callback (line protocol, bytes or str)."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    if isinstance(data, str):
        return sum(1 for line in data.split("\n") if line.strip())
    return 1


class MetricsPusher:
    """`agent.push`: line-protocol points to `<push_url>/api/v2/write?org=...&bucket=...`."""

    def __init__(self, config: AgentConfig, stats: AgentStats) -> None:
        self._config = config
        self._stats = stats
        self._lock = threading.Lock()
        self._pending = 0
        self._closed = False
        self._client: InfluxDBClient | None = None
        self._write_api: WriteApi | None = None
        stats.watch_queue("points", lambda: self._pending)
        if not config.push_url or config.sdk_disabled:
            return
        self._client = InfluxDBClient(
            url=config.push_url, token=config.push_token, org=config.push_org, timeout=5_000, enable_gzip=False
        )
        options = WriteOptions(
            write_type=WriteType.batching,
            batch_size=500,
            flush_interval=1_000,
            retry_interval=500,
            max_retries=3,
            max_retry_delay=4_000,
            max_retry_time=10_000,
            exponential_base=2,
            max_close_wait=int(config.shutdown_timeout_s * 1000),
            # The default scheduler is one pool shared by every WriteOptions in the process.
            write_scheduler=ThreadPoolScheduler(max_workers=1),
        )
        self._write_api = self._client.write_api(
            write_options=options, success_callback=self._delivered, error_callback=self._failed
        )

    def _settle(self, n: int) -> int:
        """Take `n` points off the pending count; how many were still pending (the rest were already
        counted as dropped when `close` gave up on them, and must not be counted twice)."""
        with self._lock:
            settled = min(n, self._pending)
            self._pending -= settled
            return settled

    def _delivered(self, conf: tuple[str, str, str], data: Any) -> None:
        self._stats.exported("points", self._settle(count_points(data)))

    def _failed(self, conf: tuple[str, str, str], data: Any, exception: Exception) -> None:
        self._stats.dropped("points", EXPORT_FAILED, self._settle(count_points(data)))

    def write(
        self,
        measurement: str,
        fields: dict[str, FieldValue],
        tags: dict[str, str] | None = None,
        time_ns: int | None = None,
    ) -> bool:
        """Queue one point (timestamped now unless `time_ns` is given); False (and counted as dropped) when
        it cannot be queued. Never blocks on I/O."""
        if not fields:
            raise ValueError("a point needs at least one field")
        point = Point(measurement)
        for key, value in (tags or {}).items():
            point.tag(key, value)
        for key, field_value in fields.items():
            point.field(key, field_value)
        # The time of the event, not of the batch's arrival: a batch carries many points of one series,
        # which would all get the receiver's one clock reading (and overwrite or refuse each other).
        point.time(time.time_ns() if time_ns is None else time_ns, WritePrecision.NS)
        with self._lock:
            if self._write_api is None or self._closed:
                self._stats.dropped("points", SHUTDOWN if self._closed else EXPORT_FAILED)
                return False
            if self._pending >= self._config.push_max_pending:
                self._stats.dropped("points", QUEUE_FULL)
                return False
            self._pending += 1
        self._write_api.write(bucket=self._config.push_bucket, org=self._config.push_org, record=point)
        return True

    def flush(self) -> None:
        """Ask influxdb-client to send what it holds now (asynchronous)."""
        if self._write_api is not None:
            self._write_api.flush()

    def close(self) -> None:
        """Flush and stop, waiting at most the shutdown bound; points still pending are counted as dropped."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._write_api is not None:
            closer = threading.Thread(target=self._write_api.close, name="agent-push-close", daemon=True)
            closer.start()
            closer.join(self._config.shutdown_timeout_s + 0.5)
        if self._client is not None:
            self._client.close()
        with self._lock:
            left, self._pending = self._pending, 0
        self._stats.dropped("points", SHUTDOWN, left)
