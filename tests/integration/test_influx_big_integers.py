"""Integers beyond 2**53 end to end: what influxdb-client (v2 API) writes as integer and unsigned
fields reads back exactly from /api/obs/metrics/series (not as the nearest double), also after a
kill -9 right after the acknowledgement, and reaches a real InfluxDB 1.6 exactly through the
forwarder (1.6 has no unsigned fields: the integer case there). PromQL keeps the doubles, as
Prometheus would."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from influxdb_client import InfluxDBClient, Point
from influxdb_client.client.write_api import SYNCHRONOUS

from tests.conftest import make_collector
from tests.peers import influxdb

# field -> values written one per millisecond; the exact ones are what a double rounds
INTEGERS = [2**63 - 1, -(2**63), -(2**63) + 1, 2**53 + 1, -(2**53) - 1, 2**53 - 1, 2**53, 1_234_567_890_123_456_789]
UNSIGNED = [2**64 - 1, 2**64 - 2, 2**63 + 1, 2**53 + 1, 2**53 + 2, 0]


def _points(host: str, now_ns: int) -> list[Point]:
    points = []
    for i in range(max(len(INTEGERS), len(UNSIGNED))):
        fields: dict[str, int] = {}
        if i < len(INTEGERS):
            fields["requests"] = INTEGERS[i]
        if i < len(UNSIGNED):
            fields["bytes_total"] = UNSIGNED[i]
        points.append(
            Point.from_dict(
                {"measurement": "io", "tags": {"host": host}, "fields": fields, "time": now_ns + i * 1_000_000},
                field_types={"bytes_total": "uint"},
            )
        )
    return points


def _series(url: str, metric: str, host: str) -> tuple[str, list[list[Any]]]:
    params = {"metric": metric, "label": f"host:{host}"}
    r = httpx.get(f"{url}/api/obs/metrics/series", params=params, timeout=10)
    assert r.status_code == 200, r.text
    [s] = r.json()["series"]
    return s["type"], s["samples"]


def test_influxdb_client_v2_reads_back_big_integers_and_unsigned_exactly(tmp_path: Path) -> None:
    c = make_collector(tmp_path)
    c.start()
    try:
        host = f"h-{uuid.uuid4().hex[:8]}"
        now_ns = time.time_ns() // 1_000_000 * 1_000_000
        ms = now_ns // 1_000_000
        with InfluxDBClient(url=c.url, token="t", org="o") as client:
            client.write_api(write_options=SYNCHRONOUS).write("big", record=_points(host, now_ns))
        c.kill9()  # acknowledged: the exact values are in the store, beside their samples
        c.start()
        expected_ints = ("integer", [[ms + i, v] for i, v in enumerate(INTEGERS)])
        expected_uints = ("unsigned", [[ms + i, v] for i, v in enumerate(UNSIGNED)])
        assert _series(c.url, "io_requests", host) == expected_ints
        assert _series(c.url, "io_bytes_total", host) == expected_uints

        # PromQL reads the doubles (Prometheus semantics): the nearest double of 2**64 - 1 is 2**64,
        # printed as Prometheus prints it (Go's shortest 'f' format).
        r = httpx.get(
            f"{c.url}/api/v1/query",
            params={"query": f'io_bytes_total{{host="{host}"}}', "time": f"{ms / 1000:.3f}"},
            timeout=10,
        )
        assert r.json()["data"]["result"][0]["value"][1] == "18446744073709552000"
    finally:
        c.stop()


def _wait(check: Callable[[], Any], seconds: float = 40) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.3)
    return check()


def test_big_integers_reach_influxdb_exactly(tmp_path: Path) -> None:
    with influxdb(tmp_path) as (influx_url, _):
        httpx.post(f"{influx_url}/query", params={"q": "CREATE DATABASE fwd"}, timeout=10).raise_for_status()
        c = make_collector(tmp_path, OBS_FORWARD__INFLUXDB=f'[{{url: "{influx_url}"}}]')
        c.start()
        try:
            host = f"h-{uuid.uuid4().hex[:8]}"
            now_ns = time.time_ns() // 1_000_000 * 1_000_000
            points = [
                Point("io").tag("host", host).field("requests", v).time(now_ns + i * 1_000_000)
                for i, v in enumerate(INTEGERS)
            ]
            with InfluxDBClient(url=c.url, token="t", org="o") as client:
                client.write_api(write_options=SYNCHRONOUS).write("fwd", record=points)

            def rows() -> list[list[Any]]:
                q = f'SELECT "requests" FROM "io" WHERE "host" = \'{host}\''
                r = httpx.get(f"{influx_url}/query", params={"db": "fwd", "q": q, "epoch": "ns"}, timeout=10)
                series = r.json()["results"][0].get("series", [])
                return series[0]["values"] if series else []

            got = _wait(lambda: len(rows()) == len(INTEGERS) and rows())
            assert got == [[now_ns + i * 1_000_000, v] for i, v in enumerate(INTEGERS)]
            ms = now_ns // 1_000_000
            assert _series(c.url, "io_requests", host) == ("integer", [[ms + i, v] for i, v in enumerate(INTEGERS)])
        finally:
            c.stop()
