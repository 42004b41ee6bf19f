"""Forwarders: what the collector accepted, sent on to InfluxDB, a remote-write receiver or OTLP.

Each forwarder owns a DiskQueue (payloads survive a restart; when it is full the oldest are dropped
and counted) and one drain task that sends them in order with exponential backoff, honouring the
peer's Retry-After. A payload is removed from the queue only once the peer accepted it, or refused
it for good (a 4xx other than 429: resending would not help, and it is counted as failed).

Payloads carry their own routing in a one-line JSON header (database, precision, signal) followed
by the body, so the queue stays a queue of bytes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from collector.codecs.remote_write import encode_write_request
from collector.config import ForwardSettings
from collector.exporters.queue import DiskQueue
from collector.exporters.retry import Backoff, SendResult, drain
from collector.model import MetricBatch

RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


def pack(header: dict[str, str], body: bytes) -> bytes:
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + body


def unpack(payload: bytes) -> tuple[dict[str, str], bytes]:
    head, _, body = payload.partition(b"\n")
    return json.loads(head), body


def result_of(response: httpx.Response) -> SendResult:
    if response.is_success:
        return SendResult(ok=True, retry=False, retry_after=None, error="")
    retry_after = response.headers.get("retry-after")
    seconds = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None
    error = f"HTTP {response.status_code}: {response.text[:200]}"
    return SendResult(ok=False, retry=response.status_code in RETRYABLE, retry_after=seconds, error=error)


Send = Callable[[httpx.AsyncClient, dict[str, str], bytes], Awaitable[httpx.Response]]


@dataclass
class ForwarderStats:
    sent: int = 0
    failed: int = 0
    retries: int = 0


class Forwarder:
    """One destination: a queue, and a task that drains it through `send`."""

    def __init__(self, name: str, directory: Path, max_bytes: int, send: Send) -> None:
        self.name = name
        self.queue = DiskQueue(directory, max_bytes)
        self.stats = ForwarderStats()
        self._send = send
        self._client = httpx.AsyncClient(timeout=30)
        self._stop = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def submit(self, header: dict[str, str], body: bytes) -> None:
        """Queue a payload (from the event loop). One larger than the whole queue is counted as failed."""
        try:
            self.queue.put(pack(header, body))
        except ValueError:
            self.stats.failed += 1
            return
        self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            drain(self.queue, self._send_one, Backoff(), self._stop, self._count, wakeup=self._wakeup),
            name=f"forward-{self.name}",
        )

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self._client.aclose()
        self.queue.close()

    async def _send_one(self, payload: bytes) -> SendResult:
        header, body = unpack(payload)
        try:
            return result_of(await self._send(self._client, header, body))
        except httpx.HTTPError as exc:  # peer down or unreachable: keep the payload, try again
            return SendResult(ok=False, retry=True, retry_after=None, error=str(exc) or type(exc).__name__)

    def _count(self, result: SendResult) -> None:
        if result.ok:
            self.stats.sent += 1
        elif result.retry:
            self.stats.retries += 1
        else:
            self.stats.failed += 1


def influxdb_v1(url: str, username: str = "", password: str = "") -> Send:
    """Line protocol to InfluxDB's v1 /write, into the database named in the payload's header."""

    async def send(client: httpx.AsyncClient, header: dict[str, str], body: bytes) -> httpx.Response:
        # InfluxDB 1.x spells microseconds `u` (it refuses `us`) and nanoseconds `n` or `ns`.
        precision = {"us": "u"}.get(header.get("precision", "ns"), header.get("precision", "ns"))
        params = {"db": header["db"], "precision": precision}
        if header.get("rp"):
            params["rp"] = header["rp"]
        if username:
            return await client.post(f"{url.rstrip('/')}/write", params=params, content=body, auth=(username, password))
        return await client.post(f"{url.rstrip('/')}/write", params=params, content=body)

    return send


def remote_write(url: str) -> Send:
    """A snappy remote write 1.0 body to a Prometheus-compatible receiver."""

    async def send(client: httpx.AsyncClient, header: dict[str, str], body: bytes) -> httpx.Response:
        headers = {
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
            "User-Agent": "observatory-collector",
        }
        return await client.post(url, content=body, headers=headers)

    return send


def otlp_http(endpoint: str) -> Send:
    """An OTLP protobuf request to another OTLP/HTTP endpoint (`{endpoint}/v1/{signal}`)."""

    async def send(client: httpx.AsyncClient, header: dict[str, str], body: bytes) -> httpx.Response:
        return await client.post(
            f"{endpoint.rstrip('/')}/v1/{header['signal']}",
            content=body,
            headers={"Content-Type": "application/x-protobuf"},
        )

    return send


class Forwarding:
    """Every configured destination, by the kind of data it takes."""

    def __init__(self, settings: ForwardSettings, data_dir: Path) -> None:
        limit = settings.queue_max_bytes
        base = data_dir / "forward"
        self.influx = [
            Forwarder(f"influxdb-{i}", base / f"influxdb-{i}", limit, influxdb_v1(f.url, f.username, f.password))
            for i, f in enumerate(settings.influxdb)
        ]
        self.remote_write = [
            Forwarder(f"remote-write-{i}", base / f"remote-write-{i}", limit, remote_write(f.url))
            for i, f in enumerate(settings.remote_write)
        ]
        self.otlp = [
            Forwarder(f"otlp-{i}", base / f"otlp-{i}", limit, otlp_http(f.endpoint))
            for i, f in enumerate(settings.otlp)
        ]

    def stats(self) -> dict[str, tuple[ForwarderStats, int, int, int]]:
        """Per destination: counts, payloads queued, bytes queued, payloads dropped by the queue."""
        return {f.name: (f.stats, len(f.queue), f.queue.bytes, f.queue.dropped) for f in self.all}

    @property
    def all(self) -> list[Forwarder]:
        return [*self.influx, *self.remote_write, *self.otlp]

    def start(self) -> None:
        for forwarder in self.all:
            forwarder.start()

    async def close(self) -> None:
        await asyncio.gather(*(forwarder.close() for forwarder in self.all))

    def lines(self, db: str, rp: str, precision: str, body: bytes) -> None:
        for forwarder in self.influx:
            forwarder.submit({"db": db, "rp": rp, "precision": precision}, body)

    def samples(self, batch: MetricBatch) -> None:
        if self.remote_write and len(batch):
            body = encode_write_request(batch)
            for forwarder in self.remote_write:
                forwarder.submit({}, body)

    def otlp_request(self, signal: str, body: bytes) -> None:
        for forwarder in self.otlp:
            forwarder.submit({"signal": signal}, body)
