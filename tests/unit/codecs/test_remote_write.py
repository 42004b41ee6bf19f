"""Remote write 1.0 decoding: series, samples, exemplars, metadata, stale markers, refusals, limits."""

from __future__ import annotations

import math
import struct

import cramjam
import pytest

from collector.codecs.remote_write import decode_write_request, decompress_snappy, write_request_class
from collector.errors import PermanentError

STALE = struct.unpack("<d", (0x7FF0000000000002).to_bytes(8, "little"))[0]


def _request() -> bytes:
    req = write_request_class()()
    ts = req.timeseries.add()
    for name, value in (("__name__", "http_requests_total"), ("code", "200"), ("job", "api")):
        ts.labels.add(name=name, value=value)
    ts.samples.add(value=1.0, timestamp=1000)
    ts.samples.add(value=STALE, timestamp=2000)
    ex = ts.exemplars.add(value=1.0, timestamp=1000)
    ex.labels.add(name="trace_id", value="ab" * 16)
    ex.labels.add(name="user", value="u1")
    dup = req.timeseries.add()
    dup.labels.add(name="__name__", value="x")
    dup.labels.add(name="a", value="1")
    dup.labels.add(name="a", value="2")
    dup.samples.add(value=1, timestamp=1)
    meta = req.metadata.add(type=1, metric_family_name="http_requests", help="Requests.", unit="")
    assert meta.type == 1
    return req.SerializeToString()


def test_decode() -> None:
    batch, rejected, accepted = decode_write_request(_request())
    assert accepted == 2
    assert rejected.count == 1 and "label 'a' appears twice" in rejected.messages[0]
    [labels] = batch.series.values()
    assert labels == {"__name__": "http_requests_total", "code": "200", "job": "api"}
    assert batch.timestamp_ms == [1000, 2000]
    assert batch.value[0] == 1.0 and math.isnan(batch.value[1])
    assert struct.pack("<d", batch.value[1]) == struct.pack("<d", STALE)  # the marker's bits survive
    assert batch.ex_trace_id == ["ab" * 16] and batch.ex_labels.keys == ["user"]
    assert batch.metadata["http_requests"].type == "counter"


def test_snappy_limits() -> None:
    body = bytes(cramjam.snappy.compress_raw(b"\0" * 100_000))
    assert decompress_snappy(body, 100_000) == b"\0" * 100_000
    with pytest.raises(PermanentError) as err:
        decompress_snappy(body, 99_999)
    assert err.value.status == 413
    with pytest.raises(PermanentError) as err:
        decompress_snappy(b"\x05garbage", 1000)
    assert err.value.status == 400


def test_malformed_protobuf() -> None:
    with pytest.raises(PermanentError) as err:
        decode_write_request(b"\x0a\xff\xff\xff")
    assert "malformed remote write protobuf" in err.value.message


def test_encode_round_trips() -> None:
    from collector.codecs.remote_write import encode_write_request
    from collector.model import MetricBatch, MetricMetadata

    batch = MetricBatch()
    batch.add_sample({"__name__": "m", "b": "2", "a": "1"}, 2000, 2.0)
    batch.add_sample({"__name__": "m", "b": "2", "a": "1"}, 1000, STALE)
    batch.metadata["m"] = MetricMetadata("m", "gauge", "help", "seconds")
    body = encode_write_request(batch)
    decoded, rejected, accepted = decode_write_request(decompress_snappy(body, 10**6))
    assert accepted == 2 and rejected.count == 0
    assert list(decoded.series.values()) == [{"__name__": "m", "a": "1", "b": "2"}]
    assert decoded.timestamp_ms == [1000, 2000]
    assert struct.pack("<d", decoded.value[0]) == struct.pack("<d", STALE)
    assert decoded.metadata["m"] == MetricMetadata("m", "gauge", "help", "seconds")
