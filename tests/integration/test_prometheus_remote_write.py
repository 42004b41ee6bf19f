"""A real Prometheus (Debian package) remote-writes into the collector, and scrapes its /metrics."""

from __future__ import annotations

import time
from pathlib import Path

import cramjam
import httpx

from collector.codecs.remote_write import write_request_class
from tests.conftest import CollectorProcess
from tests.peers import prometheus


def _series(c: CollectorProcess, metric: str, **labels: str) -> list[dict]:  # type: ignore[type-arg]
    params = [("metric", metric)] + [("label", f"{k}:{v}") for k, v in labels.items()]
    return httpx.get(f"{c.url}/api/obs/metrics/series", params=params, timeout=10).json()["series"]


def test_prometheus_remote_writes_its_scrapes(collector: CollectorProcess, tmp_path: Path) -> None:
    config = f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: observatory
    static_configs: [{{targets: ["127.0.0.1:{collector.http_port}"]}}]
remote_write:
  - url: {collector.url}/api/v1/write
    queue_config: {{batch_send_deadline: 500ms, min_backoff: 100ms}}
"""
    with prometheus(config, tmp_path):
        deadline = time.monotonic() + 60
        up: list[dict] = []  # type: ignore[type-arg]
        while time.monotonic() < deadline and not up:
            up = _series(collector, "up", job="observatory")
            time.sleep(0.5)
    assert up, "no `up` sample arrived through remote write"
    [series] = up
    assert series["labels"]["instance"] == f"127.0.0.1:{collector.http_port}"
    assert all(v == "1.0" for _, v in series["samples"])  # Prometheus scraped the collector's /metrics
    # The collector's own metrics came back through Prometheus, e.g. its request counter.
    assert _series(collector, "obs_requests_total", job="observatory")


def test_remote_write_errors(collector: CollectorProcess) -> None:
    cls = write_request_class()
    req = cls()
    ts = req.timeseries.add()
    ts.labels.add(name="__name__", value="rw_test_metric")
    ts.labels.add(name="k", value="v")
    ts.samples.add(value=1.5, timestamp=1_700_000_000_000)
    bad = req.timeseries.add()
    bad.labels.add(name="k", value="no-name")
    bad.samples.add(value=2, timestamp=1_700_000_000_000)
    body = bytes(cramjam.snappy.compress_raw(req.SerializeToString()))
    headers = {"content-type": "application/x-protobuf", "content-encoding": "snappy"}
    r = httpx.post(f"{collector.url}/api/v1/write", content=body, headers=headers, timeout=10)
    assert r.status_code == 400 and "no __name__ label" in r.text
    [good] = _series(collector, "rw_test_metric", k="v")
    assert good["samples"] == [[1_700_000_000_000, "1.5"]]
    r = httpx.post(f"{collector.url}/api/v1/write", content=b"not snappy", headers=headers, timeout=10)
    assert r.status_code == 400 and "snappy" in r.text
    v2 = {**headers, "content-type": "application/x-protobuf;proto=io.prometheus.write.v2.Request"}
    assert httpx.post(f"{collector.url}/api/v1/write", content=body, headers=v2, timeout=10).status_code == 415
