"""Influx writes: the real influxdb-client (v2 API, batching and gzip) and the v1 API's partial writes."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from influxdb_client import InfluxDBClient, Point, WriteOptions

from tests.conftest import CollectorProcess, make_collector


def _series(c: CollectorProcess, metric: str, **labels: str) -> list[dict[str, Any]]:
    params = [("metric", metric)] + [("label", f"{k}:{v}") for k, v in labels.items()]
    r = httpx.get(f"{c.url}/api/obs/metrics/series", params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["series"]


def test_influxdb_client_v2_batched_gzip(collector: CollectorProcess) -> None:
    host = f"h-{uuid.uuid4().hex[:8]}"
    now_ns = time.time_ns() // 1_000_000 * 1_000_000  # the store keeps milliseconds
    points = [
        Point("cpu")
        .tag("host", host)
        .tag("core", str(i % 2))
        .field("usage_idle", 90.5 + i)
        .field("procs", i)
        .field("state", "running")
        .time(now_ns + i * 1_000_000)
        for i in range(300)
    ]
    points.append(Point("disk").tag("host", host).field("healthy", True).field("free", 2**40).time(now_ns))
    with (
        InfluxDBClient(url=collector.url, token="user:pass", org="acme", enable_gzip=True) as client,
        client.write_api(write_options=WriteOptions(batch_size=100, flush_interval=200)) as write_api,
    ):
        write_api.write(bucket="telemetry", record=points)
    idle = _series(collector, "cpu_usage_idle", host=host)
    assert {s["labels"]["core"] for s in idle} == {"0", "1"}
    assert all(s["labels"]["bucket"] == "telemetry" for s in idle)
    got = sorted((ts, float(v)) for s in idle for ts, v in s["samples"])
    assert got == [(now_ns // 1_000_000 + i, 90.5 + i) for i in range(300)]
    assert {s["type"] for s in idle} == {"float"}
    procs = _series(collector, "cpu_procs", host=host)
    assert {s["type"] for s in procs} == {"integer"}
    assert sorted(v for s in procs for _, v in s["samples"]) == list(range(300))  # JSON integers
    assert _series(collector, "cpu_state", host=host) == []  # string fields are not samples
    [healthy] = _series(collector, "disk_healthy", host=host)
    assert (healthy["type"], healthy["samples"]) == ("boolean", [[now_ns // 1_000_000, True]])
    [free] = _series(collector, "disk_free", host=host)
    assert (free["type"], free["samples"]) == ("integer", [[now_ns // 1_000_000, 2**40]])


def test_v1_partial_write_stores_the_good_lines(collector: CollectorProcess) -> None:
    host = f"h-{uuid.uuid4().hex[:8]}"
    body = (
        f"mem,host={host} used=1i 1700000000000\n"
        f"mem,host={host} used=oops 1700000001000\n"
        f"mem,host={host} used=3i 1700000002000\n"
    )
    r = httpx.post(f"{collector.url}/write", params={"db": "ops", "precision": "ms"}, content=body, timeout=10)
    assert r.status_code == 400
    assert r.json()["error"].startswith("partial write: unable to parse")
    assert r.json()["error"].endswith("dropped=1")
    assert r.headers["x-influxdb-version"]
    [series] = _series(collector, "mem_used", host=host, db="ops")
    assert series["samples"] == [[1700000000000, 1], [1700000002000, 3]]


def test_v2_rejects_a_batch_with_a_bad_line(collector: CollectorProcess) -> None:
    host = f"h-{uuid.uuid4().hex[:8]}"
    body = f"net,host={host} rx=1i\nnet,host={host} rx=\n"
    r = httpx.post(f"{collector.url}/api/v2/write", params={"bucket": "b", "org": "o"}, content=body, timeout=10)
    assert r.status_code == 400
    assert r.json()["code"] == "invalid" and r.headers["x-platform-error-code"] == "invalid"
    assert "line 2" in r.json()["message"]
    assert _series(collector, "net_rx", host=host) == []


def test_required_parameters_and_probes(collector: CollectorProcess) -> None:
    r = httpx.post(f"{collector.url}/write", content=b"m f=1", timeout=10)
    assert (r.status_code, r.json()) == (400, {"error": "database is required"})
    r = httpx.post(f"{collector.url}/api/v2/write", params={"org": "o"}, content=b"m f=1", timeout=10)
    assert r.status_code == 400 and r.json()["code"] == "invalid"
    r = httpx.get(f"{collector.url}/ping", timeout=10)
    assert r.status_code == 204 and r.headers["x-influxdb-version"]
    r = httpx.get(f"{collector.url}/health", timeout=10)
    assert r.json()["status"] == "pass"


def test_series_limits_answer_as_influxdb_partial_writes(tmp_path: Path) -> None:
    c = make_collector(
        tmp_path, OBS_LIMITS__MAX_SERIES_PER_METRIC="2", OBS_LIMITS__OUT_OF_ORDER_WINDOW="1s", OBS_LIMITS__MAX_AGE="0"
    )
    c.start()
    now = int(time.time() * 1000)
    try:
        body = f"temp,room=a v=1 {now}\ntemp,room=b v=2 {now}\ntemp,room=c v=3 {now}\n"
        r = httpx.post(
            f"{c.url}/api/v2/write", params={"bucket": "b", "org": "o", "precision": "ms"}, content=body, timeout=10
        )
        assert r.status_code == 422 and r.json()["code"] == "unprocessable entity"
        assert "per-metric series limit of 2 exceeded for metric 'temp_v'" in r.json()["message"]
        assert r.json()["message"].endswith("dropped=1")
        assert len(_series(c, "temp_v", bucket="b")) == 2
        # An older sample, beyond the 1 s out-of-order window: a v1 partial write.
        r = httpx.post(
            f"{c.url}/write",
            params={"db": "d", "precision": "ms"},
            content=f"hum,room=a v=1 {now}\nhum,room=a v=2 {now - 5000}\n",
            timeout=10,
        )
        assert r.status_code == 400 and "out of order sample" in r.json()["error"]
        [hum] = _series(c, "hum_v", db="d")
        assert hum["samples"] == [[now, "1.0"]]
        # Older than the retention (30 days by default): refused, not acknowledged and then lost.
        r = httpx.post(
            f"{c.url}/write",
            params={"db": "d", "precision": "ms"},
            content="old,room=a v=1 1700000000000\n",
            timeout=10,
        )
        assert r.status_code == 400 and "outside the accepted window" in r.json()["error"]
        metrics = httpx.get(f"{c.url}/metrics", timeout=10).text
        assert 'obs_refused_items_total{protocol="influx_v2",reason="series_limit",signal="metrics"} 1.0' in metrics
    finally:
        c.stop()
