"""Forwarding to real peers: line protocol into InfluxDB 1.6, remote write into VictoriaMetrics.

Each peer is stopped during the run: what the collector accepted meanwhile waits in its disk queue
and arrives once the peer is back, none lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import make_collector
from tests.peers import influxdb, victoria_metrics


def _wait(check: Callable[[], Any], seconds: float = 40) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.3)
    return check()


def _influx_rows(url: str, db: str, measurement: str) -> list[list[Any]]:
    r = httpx.get(f"{url}/query", params={"db": db, "q": f'SELECT * FROM "{measurement}"', "epoch": "ns"}, timeout=10)
    series = r.json()["results"][0].get("series", [])
    return series[0]["values"] if series else []


def test_line_protocol_reaches_influxdb_and_survives_its_outage(tmp_path: Path) -> None:
    with influxdb(tmp_path) as (influx_url, peer):
        httpx.post(f"{influx_url}/query", params={"q": "CREATE DATABASE fwd"}, timeout=10)
        c = make_collector(tmp_path, OBS_FORWARD__INFLUXDB=f'[{{url: "{influx_url}"}}]')
        c.start()
        try:
            now = time.time_ns()
            body = (
                f'cpu,host=a,region=eu\\ west idle=97.5,procs=12i,state="ok",up=true {now}\n'
                f"cpu,host=b idle=1e-3,procs=-3i {now + 1}\n"
                f"cpu,host=c idle=oops {now + 2}\n"
            )
            r = httpx.post(f"{c.url}/write", params={"db": "fwd"}, content=body, timeout=10)
            assert r.status_code == 400 and "partial write" in r.json()["error"]  # line 3 is bad
            rows = _wait(
                lambda: len(_influx_rows(influx_url, "fwd", "cpu")) == 2 and _influx_rows(influx_url, "fwd", "cpu")
            )
            assert rows == [
                [now, "a", 97.5, 12, "eu west", "ok", True],
                [now + 1, "b", 0.001, -3, None, None, None],
            ]

            peer.stop()  # InfluxDB down: writes are still accepted and queue up
            for i in range(20):
                r = httpx.post(
                    f"{c.url}/write",
                    params={"db": "fwd"},
                    content=f"mem,host=a used={i}i {now + i * 1_000_000}\n",
                    timeout=10,
                )
                assert r.status_code == 204, r.text
            # No timestamp: the time of receipt, which must reach InfluxDB too, not its later arrival time.
            r = httpx.post(f"{c.url}/write", params={"db": "fwd"}, content="disk,host=a free=5i\n", timeout=10)
            assert r.status_code == 204, r.text
            time.sleep(1.0)
            restarted_ns = time.time_ns()
            peer.start()
            rows = _wait(
                lambda: len(_influx_rows(influx_url, "fwd", "mem")) == 20 and _influx_rows(influx_url, "fwd", "mem")
            )
            assert [row[2] for row in rows] == list(range(20))
            disk = _wait(lambda: _influx_rows(influx_url, "fwd", "disk"))
            stored = httpx.get(
                f"{c.url}/api/obs/metrics/series", params={"metric": "disk_free", "label": "db:fwd"}, timeout=10
            ).json()["series"]
            assert len(disk) == 1 and disk[0][0] < restarted_ns
            assert [s[0] for s in stored[0]["samples"]] == [disk[0][0] // 1_000_000]
        finally:
            c.stop()


def test_samples_reach_victoria_metrics_through_remote_write(tmp_path: Path) -> None:
    with victoria_metrics(tmp_path) as (vm_url, peer):
        c = make_collector(tmp_path, OBS_FORWARD__REMOTE_WRITE=f'[{{url: "{vm_url}/api/v1/write"}}]')
        c.start()
        try:
            now_ms = int(time.time() * 1000)
            lines = "".join(f"fwd_temp,room=r{i} celsius={20 + i / 4} {now_ms + i}\n" for i in range(10))
            r = httpx.post(
                f"{c.url}/api/v2/write",
                params={"bucket": "home", "org": "o", "precision": "ms"},
                content=lines,
                timeout=10,
            )
            assert r.status_code == 204

            def exported() -> list[dict[str, Any]]:
                httpx.get(f"{vm_url}/internal/force_flush", timeout=10)
                r = httpx.get(f"{vm_url}/api/v1/export", params={"match[]": "fwd_temp_celsius"}, timeout=10)
                import json

                return [json.loads(line) for line in r.text.splitlines() if line]

            series = _wait(lambda: len(exported()) == 10 and exported())
            got = sorted((s["metric"]["room"], s["values"][0], s["timestamps"][0]) for s in series)
            assert got == sorted((f"r{i}", 20 + i / 4, now_ms + i) for i in range(10))
            assert all(s["metric"]["bucket"] == "home" for s in series)

            peer.stop()
            r = httpx.post(
                f"{c.url}/api/v2/write",
                params={"bucket": "home", "org": "o", "precision": "ms"},
                content=f"fwd_late,room=x v=1 {now_ms}\n",
                timeout=10,
            )
            assert r.status_code == 204
            peer.start()

            def late() -> str:
                httpx.get(f"{vm_url}/internal/force_flush", timeout=10)
                return httpx.get(f"{vm_url}/api/v1/export", params={"match[]": "fwd_late_v"}, timeout=10).text

            assert _wait(late)
        finally:
            c.stop()


def test_otlp_is_forwarded_to_another_otlp_endpoint(tmp_path: Path) -> None:
    import uuid

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    (tmp_path / "down").mkdir()
    (tmp_path / "up").mkdir()
    downstream = make_collector(tmp_path / "down")
    downstream.start()
    upstream = make_collector(tmp_path / "up", OBS_FORWARD__OTLP=f'[{{endpoint: "{downstream.otlp_url}"}}]')
    upstream.start()
    try:
        trace_id = uuid.uuid4().bytes
        req = ExportTraceServiceRequest()
        span = (
            req.resource_spans.add()
            .scope_spans.add()
            .spans.add(
                trace_id=trace_id,
                span_id=b"\x01" * 8,
                name="forwarded",
                start_time_unix_nano=time.time_ns(),
                end_time_unix_nano=time.time_ns() + 1000,
            )
        )
        assert span.name == "forwarded"
        r = httpx.post(
            f"{upstream.otlp_url}/v1/traces",
            content=req.SerializeToString(),
            headers={"content-type": "application/x-protobuf"},
            timeout=10,
        )
        assert r.status_code == 200

        def arrived() -> list[dict[str, Any]]:
            r = httpx.get(f"{downstream.url}/api/obs/traces/{trace_id.hex()}", timeout=10)
            return r.json()["spans"] if r.status_code == 200 else []

        spans = _wait(arrived)
        assert [s["name"] for s in spans] == ["forwarded"]
        metrics = httpx.get(f"{upstream.url}/metrics", timeout=10).text
        assert 'obs_forwarded_payloads_total{destination="otlp-0",outcome="sent"} 1.0' in metrics
    finally:
        upstream.stop()
        downstream.stop()
