"""Scrape cost, side by side: CPU seconds per million scraped samples, the collector and Prometheus 2.42.

Both scrape the same 50 targets of 200 series each (text format 0.0.4, values changing on every
scrape), every second, for the same time, one after the other. Samples scraped are counted from what
each one stored: the `up` samples written in the window (one per scrape) times 200. Reported: CPU
seconds per million samples for each, peak RSS, and `ratio_cpu_vs_prometheus` (the collector's CPU per
sample over Prometheus'; lower is better, 1.0 is parity).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.otlp_ingest import _cpu, _rss

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGETS = 50
SERIES = 200  # per target: 20 families of 10 series


def exposition(target: int, scrape: int) -> bytes:
    """200 series in text format 0.0.4: 10 counters and 10 gauges, 10 label values each."""
    lines = []
    for f in range(20):
        kind = "counter" if f < 10 else "gauge"
        name = f"app_requests_{f}_total" if kind == "counter" else f"app_queue_depth_{f}"
        lines.append(f"# HELP {name} A {kind} of the benchmark target.")
        lines.append(f"# TYPE {name} {kind}")
        for s in range(SERIES // 20):
            value = scrape * (s + 1) + target if kind == "counter" else (scrape * 7 + s * 13 + f) % 97
            lines.append(f'{name}{{path="/api/v{s}",method="GET",code="200"}} {value}')
    return ("\n".join(lines) + "\n").encode()


@contextmanager
def targets(count: int) -> Iterator[list[str]]:
    """`count` HTTP targets on loopback in this process; each scrape sees new values."""
    servers = []
    for t in range(count):
        scrapes = itertools.count()

        class Handler(BaseHTTPRequestHandler):
            target, counter = t, scrapes

            def do_GET(self) -> None:
                body = exposition(self.target, next(self.counter))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    try:
        yield [f"127.0.0.1:{s.server_address[1]}" for s in servers]
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


def _window(pid: int, seconds: float) -> tuple[float, int, float, float]:
    """CPU seconds and peak RSS of `pid` over `seconds`, with the window's bounds (unix seconds)."""
    server = psutil.Process(pid)
    start = time.time()
    cpu0, peak = _cpu(server), 0
    while time.time() < start + seconds:
        peak = max(peak, _rss(server))
        time.sleep(0.2)
    return _cpu(server) - cpu0, peak, start, time.time()


def measure_collector(addrs: list[str], work: Path, warmup: float, seconds: float) -> dict[str, Any]:
    from tests.conftest import make_collector

    config = work / "obs.yaml"
    config.write_text(
        "scrape:\n  jobs:\n    - job_name: bench\n      scrape_interval: 1s\n      scrape_timeout: 1s\n"
        f"      static_configs: [{{targets: {json.dumps(addrs)}}}]\n"
    )
    c = make_collector(work, OBS_CONFIG=str(config), OBS_LOG_LEVEL="warning", OBS_LIMITS__MAX_AGE="0")
    c.start()
    try:
        time.sleep(warmup)
        assert c.proc is not None
        cpu, peak, start, end = _window(c.proc.pid, seconds)
        series = httpx.get(f"{c.url}/api/obs/metrics/series", params={"metric": "up"}, timeout=30).json()["series"]
        scrapes = sum(1 for s in series for t, v in s["samples"] if start * 1000 <= t <= end * 1000 and float(v) == 1)
    finally:
        c.stop()
    return _result("collector", cpu, peak, scrapes)


def measure_prometheus(addrs: list[str], work: Path, warmup: float, seconds: float) -> dict[str, Any]:
    from tests.peers import prometheus_peer

    config = (
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
        f"scrape_configs:\n  - job_name: bench\n    static_configs: [{{targets: {json.dumps(addrs)}}}]\n"
    )
    with prometheus_peer(config, work) as (url, peer):
        assert peer.proc is not None
        time.sleep(warmup)
        cpu, peak, start, end = _window(peer.proc.pid, seconds)
        r = httpx.get(
            f"{url}/api/v1/query",
            params={"query": f"sum(count_over_time(up[{int(end - start)}s]))", "time": str(end)},
            timeout=30,
        ).json()
        scrapes = int(float(r["data"]["result"][0]["value"][1])) if r["data"]["result"] else 0
    return _result("prometheus-2", cpu, peak, scrapes)


def _result(name: str, cpu: float, peak: int, scrapes: int) -> dict[str, Any]:
    samples = scrapes * SERIES
    return {
        "server": name,
        "scrapes": scrapes,
        "samples": samples,
        "cpu_s": round(cpu, 2),
        "cpu_s_per_million_samples": round(cpu / (samples / 1e6), 2) if samples else None,
        "peak_rss_mb": round(peak / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="obs-bench-scrape-") as tmp, targets(TARGETS) as addrs:
        work = Path(tmp)
        (work / "c").mkdir()
        (work / "p").mkdir()
        results = [
            measure_collector(addrs, work / "c", args.warmup, args.seconds),
            measure_prometheus(addrs, work / "p", args.warmup, args.seconds),
        ]
    ours, theirs = results[0]["cpu_s_per_million_samples"], results[1]["cpu_s_per_million_samples"]
    summary = {
        "collector_cpu_s_per_million_samples": ours,
        "prometheus_cpu_s_per_million_samples": theirs,
        "ratio_cpu_vs_prometheus": round(ours / theirs, 2) if ours and theirs else None,
        "servers": results,
        "targets": TARGETS,
        "series_per_target": SERIES,
        "scrape_interval_s": 1,
        "measured_seconds": args.seconds,
        "command": "python -m bench.scrape_cost " + " ".join(sys.argv[1:]),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scrape_cost.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
