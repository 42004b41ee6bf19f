"""Prometheus remote write 1.0: a hand-written WriteRequest encoder and the sender that POSTs it.

The encoder is pure (samples in, snappy-compressed protobuf bytes out); the sender is the one place with
HTTP. Samples are (labels, timestamp in Unix seconds, value); `labels` include `__name__`. The wire format:

    WriteRequest { repeated TimeSeries timeseries = 1; }
    TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
    Label        { string name = 1; string value = 2; }
    Sample       { double value = 1; int64 timestamp = 2; }   // timestamp in milliseconds
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence

import cramjam
import httpx

RemoteSample = tuple[Mapping[str, str], float, float]  # (labels with __name__, Unix seconds, value)

# Prometheus' stale marker (value.StaleNaN): written for a series a rule stopped producing.
STALE_NAN = struct.unpack("<d", (0x7FF0000000000002).to_bytes(8, "little"))[0]

HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": "observatory-alerting",
}


class RemoteWriteError(Exception):
    """The receiver refused or could not be reached. `retryable`: 5xx, 429, timeouts, connection errors."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # int64 as protobuf varint: negatives take ten bytes (two's complement)
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _series(labels: Mapping[str, str], points: Sequence[tuple[int, float]]) -> bytes:
    body = bytearray()
    for name, text in sorted(labels.items()):  # receivers expect labels sorted by name
        body += _field(1, _field(1, name.encode()) + _field(2, text.encode()))
    for ts_ms, value in points:
        body += _field(2, b"\x09" + struct.pack("<d", value) + b"\x10" + _varint(ts_ms))
    return bytes(body)


def encode_write_request(samples: Iterable[RemoteSample]) -> bytes:
    """The uncompressed WriteRequest protobuf: one TimeSeries per label set, its samples in the given order."""
    by_series: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = {}
    for labels, at, value in samples:
        by_series.setdefault(tuple(sorted(labels.items())), []).append((round(at * 1000), value))
    return b"".join(_field(1, _series(dict(key), points)) for key, points in by_series.items())


def encode_body(samples: Iterable[RemoteSample]) -> bytes:
    """A remote write 1.0 request body: the WriteRequest in snappy block format."""
    return bytes(cramjam.snappy.compress_raw(encode_write_request(samples)))


class RemoteWriteSender:
    """POSTs samples to a remote write endpoint (e.g. the collector's `<base>/api/v1/write`).

    Callable as `write_samples` for RuleEngine. Raises RemoteWriteError; an empty list sends nothing.
    """

    def __init__(self, url: str, timeout_s: float = 10.0, client: httpx.Client | None = None) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._client = client or httpx.Client()
        self._owns_client = client is None

    def __call__(self, samples: Sequence[RemoteSample]) -> None:
        if not samples:
            return
        try:
            r = self._client.post(self.url, content=encode_body(samples), headers=HEADERS, timeout=self.timeout_s)
        except httpx.TimeoutException as exc:
            raise RemoteWriteError(f"remote write to {self.url} timed out: {exc}", retryable=True) from None
        except httpx.HTTPError as exc:
            raise RemoteWriteError(f"remote write to {self.url} failed: {exc}", retryable=True) from None
        if r.status_code // 100 == 2:
            return
        retryable = r.status_code >= 500 or r.status_code == 429
        raise RemoteWriteError(
            f"remote write to {self.url} answered {r.status_code}: {r.text[:500]}", retryable=retryable
        )

    def close(self) -> None:
        """Closes the HTTP client if this object created it (a client passed in stays the caller's)."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> RemoteWriteSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
