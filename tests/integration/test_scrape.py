"""The scraper against real HTTP targets: static and HTTP SD jobs, honor_labels, up, stale markers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter, start_http_server

from tests.conftest import CollectorProcess, free_port, make_collector


class _SD(BaseHTTPRequestHandler):
    targets: list[dict[str, Any]] = []

    def do_GET(self) -> None:
        body = json.dumps(type(self).targets).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _series(c: CollectorProcess, metric: str, **labels: str) -> list[dict[str, Any]]:
    params = [("metric", metric)] + [("label", f"{k}:{v}") for k, v in labels.items()]
    return httpx.get(f"{c.url}/api/obs/metrics/series", params=params, timeout=10).json()["series"]


def _wait(check: Callable[[], bool], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.3)
    return False


def test_static_and_http_sd_jobs(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    requests = Counter("demo_requests", "Requests served.", ["job"], registry=registry)
    requests.labels("exported").inc(5)
    target_port = free_port()
    server, thread = start_http_server(target_port, addr="127.0.0.1", registry=registry)
    target = f"127.0.0.1:{target_port}"
    _SD.targets = [{"targets": [target], "labels": {"team": "a", "__meta_x": "dropped"}}]
    sd = ThreadingHTTPServer(("127.0.0.1", 0), _SD)
    threading.Thread(target=sd.serve_forever, daemon=True).start()
    config = tmp_path / "obs.yaml"
    config.write_text(f"""
scrape:
  jobs:
    - job_name: static
      scrape_interval: 1s
      scrape_timeout: 1s
      static_configs: [{{targets: ["{target}"], labels: {{env: test}}}}]
    - job_name: discovered
      scrape_interval: 1s
      scrape_timeout: 1s
      honor_labels: true
      http_sd_configs: [{{url: "http://127.0.0.1:{sd.server_address[1]}/sd", refresh_interval: 1s}}]
""")
    c = make_collector(tmp_path, OBS_CONFIG=str(config))
    c.start()
    try:
        assert _wait(lambda: bool(_series(c, "up", job="static")) and bool(_series(c, "up", job="discovered")))
        [up] = _series(c, "up", job="static")
        assert up["labels"] == {"__name__": "up", "job": "static", "instance": target, "env": "test"}
        assert float(up["samples"][0][1]) == 1.0
        # honor_labels false: the target's job wins, the scraped one is kept as exported_job.
        [static] = _series(c, "demo_requests_total", job="static")
        assert static["labels"]["exported_job"] == "exported" and static["labels"]["env"] == "test"
        assert float(static["samples"][-1][1]) == 5.0
        # honor_labels true: the scraped job wins; SD labels come along, __meta_ labels do not.
        [honored] = _series(c, "demo_requests_total", job="exported")
        assert honored["labels"]["team"] == "a" and "__meta_x" not in honored["labels"]
        assert _series(c, "scrape_samples_scraped", job="static")

        server.shutdown()  # the target dies: up 0 and a stale marker on its series
        server.server_close()
        thread.join(timeout=10)
        assert _wait(lambda: any(v == "0.0" for _, v in _series(c, "up", job="static")[0]["samples"]))
        assert _wait(lambda: _series(c, "demo_requests_total", job="static")[0]["samples"][-1][1] == "NaN")

        _SD.targets = []  # the target leaves discovery: its `up` series ends with a stale marker
        assert _wait(lambda: _series(c, "up", job="discovered")[0]["samples"][-1][1] == "NaN")
    finally:
        c.stop()
        sd.shutdown()
        sd.server_close()
        server.server_close()
