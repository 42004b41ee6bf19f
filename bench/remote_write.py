"""Remote write 1.0 ingest, side by side: the collector, VictoriaMetrics and Prometheus 2.42 in one run.

Load: requests of 1,000 series with 10 samples each (10,000 samples, snappy-compressed protobuf),
2 client processes with 2 keep-alive connections each. Every connection owns its series, and its
timestamps only move forward, so no server has out-of-order samples to refuse (Prometheus' TSDB
refuses them outright). Reported per server: accepted samples/s (counted by the clients from 2xx
answers), server CPU seconds per million samples, peak RSS; and the collector's throughput over each
peer's (`ratio_vs_victoriametrics`, `ratio_vs_prometheus`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cramjam
import psutil

from bench.line_protocol import collector
from bench.otlp_ingest import _cpu, _rss

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SERIES_PER_REQUEST = 1000
SAMPLES_PER_SERIES = 10
METRICS = 10  # metric names the series are spread over (each well under the per-metric series limit)
HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": "observatory-bench",
}


def make_bodies(owner: int, count: int, start_ms: int) -> list[bytes]:
    """`count` request bodies for one connection: its own 1,000 series, timestamps 10 ms apart, forward only."""
    from collector.codecs.remote_write import _classes

    classes = _classes()
    request = classes["WriteRequest"]()
    for s in range(SERIES_PER_REQUEST):
        series = request.timeseries.add()
        labels = {
            "__name__": f"bench_metric_{s % METRICS}",
            "instance": f"host-{owner}-{s // METRICS % 10}",
            "job": "bench",
            "series": str(s),
        }
        for name, value in sorted(labels.items()):
            series.labels.add(name=name, value=value)
        for _ in range(SAMPLES_PER_SERIES):
            series.samples.add(value=0.0, timestamp=0)
    bodies = []
    for r in range(count):
        for s, series in enumerate(request.timeseries):
            for j, sample in enumerate(series.samples):
                sample.timestamp = start_ms + (r * SAMPLES_PER_SERIES + j) * 10
                sample.value = float((s * 7 + r * 3 + j) % 1000)
        bodies.append(bytes(cramjam.snappy.compress_raw(request.SerializeToString())))
    return bodies


def client(url: str, bodies: list[list[bytes]], start_at: float, deadline: float, out: Any) -> None:
    parts = urlsplit(url)
    accepted = [0] * len(bodies)
    refused = [0] * len(bodies)
    finished = [0.0] * len(bodies)  # when each connection's last counted answer came
    errors: list[str] = []

    def run(k: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        while time.time() < start_at:
            time.sleep(0.01)
        for body in bodies[k]:  # in order: each connection's timestamps only move forward
            if time.time() >= deadline:
                break
            conn.request("POST", parts.path, body, HEADERS)
            resp = conn.getresponse()
            text = resp.read()
            now = time.time()
            if 200 <= resp.status < 300:
                if now <= deadline:
                    accepted[k] += SERIES_PER_REQUEST * SAMPLES_PER_SERIES
                    finished[k] = now
            else:
                refused[k] += 1
                if len(errors) < 3:
                    errors.append(f"{resp.status}: {text[:200]!r}")
        conn.close()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((sum(accepted), sum(refused), errors, max(finished) - start_at))


def measure(name: str, url: str, pid: int, seconds: float, bodies: list[list[list[bytes]]]) -> dict[str, Any]:
    server = psutil.Process(pid)
    queue: Any = mp.Queue()
    start_at = time.time() + 3.0
    deadline = start_at + seconds
    procs = [mp.Process(target=client, args=(url, per_client, start_at, deadline, queue)) for per_client in bodies]
    for p in procs:
        p.start()
    time.sleep(max(0.0, start_at - time.time()))
    cpu0, peak = _cpu(server), 0
    while time.time() < deadline and any(p.is_alive() for p in procs):
        peak = max(peak, _rss(server))
        time.sleep(0.1)
    cpu = _cpu(server) - cpu0
    totals = [queue.get(timeout=300) for _ in procs]
    for p in procs:
        p.join()
    samples = sum(t[0] for t in totals)
    # A fast peer may send every pre-built request before the deadline: its rate is over the time it took.
    elapsed = min(seconds, max(t[3] for t in totals))
    available = sum(len(conn) for per_client in bodies for conn in per_client) * SERIES_PER_REQUEST
    return {
        "server": name,
        "samples_per_s": round(samples / elapsed),
        "elapsed_s": round(elapsed, 2),
        "cpu_s_per_million_samples": round(cpu / (samples / 1e6), 2) if samples else None,
        "peak_rss_mb": round(peak / 2**20, 1),
        "refused_requests": sum(t[1] for t in totals),
        "errors": [e for t in totals for e in t[2]][:3],
        "ran_out_of_requests": samples >= available * SAMPLES_PER_SERIES,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--connections", type=int, default=2, help="keep-alive connections per client")
    parser.add_argument("--requests", type=int, default=300, help="pre-built requests per connection")
    args = parser.parse_args()
    from tests.peers import prometheus_peer, victoria_metrics

    start_ms = int(time.time() * 1000) - 20 * 60 * 1000  # recent enough for Prometheus' head block
    owners = [[c * args.connections + k for k in range(args.connections)] for c in range(args.clients)]
    print(f"building {args.clients * args.connections * args.requests} requests...", flush=True)
    bodies = [[make_bodies(o, args.requests, start_ms) for o in per_client] for per_client in owners]
    results = []
    with tempfile.TemporaryDirectory(prefix="obs-bench-rw-") as tmp:
        work = Path(tmp)
        for sub in ("c", "v", "p"):
            (work / sub).mkdir()
        with collector(work / "c") as (url, pid):
            results.append(measure("collector", f"{url}/api/v1/write", pid, args.seconds, bodies))
        with victoria_metrics(work / "v") as (url, peer):
            assert peer.proc is not None
            results.append(measure("victoriametrics", f"{url}/api/v1/write", peer.proc.pid, args.seconds, bodies))
        with prometheus_peer("global: {scrape_interval: 1m}\n", work / "p") as (url, peer):
            assert peer.proc is not None
            results.append(measure("prometheus-2", f"{url}/api/v1/write", peer.proc.pid, args.seconds, bodies))
    by = {r["server"]: r for r in results}
    ours = by["collector"]["samples_per_s"]
    summary = {
        "ratio_vs_victoriametrics": round(ours / by["victoriametrics"]["samples_per_s"], 3),
        "ratio_vs_prometheus": round(ours / by["prometheus-2"]["samples_per_s"], 3),
        "collector_samples_per_s": ours,
        "victoriametrics_samples_per_s": by["victoriametrics"]["samples_per_s"],
        "prometheus_samples_per_s": by["prometheus-2"]["samples_per_s"],
        "servers": results,
        "series_per_request": SERIES_PER_REQUEST,
        "samples_per_series": SAMPLES_PER_SERIES,
        "clients": args.clients,
        "connections_per_client": args.connections,
        "measured_seconds": args.seconds,
        "command": "python -m bench.remote_write " + " ".join(sys.argv[1:]),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "remote_write.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
