"""Line protocol ingest, side by side: the collector, InfluxDB 1.6 and VictoriaMetrics in one run.

Load: 1,000 series with 3 fields, batches of 5,000 lines, 2 client processes with keep-alive
connections; every line has a timestamp of its own (no repeats for any server to skip). Reported
per server: accepted lines/s (counted by the clients from 204 answers), server CPU seconds per
million lines, peak RSS; and the collector's throughput over each peer's (`ratio_vs_influxdb`,
`ratio_vs_victoriametrics`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil

from bench.otlp_ingest import _cpu, _rss, _wait_ready, free_port

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LINES_PER_BATCH = 5000
SERIES = 1000


def make_batches(client: int, clients: int, count: int, start_ns: int) -> list[bytes]:
    """`count` batches whose timestamps never repeat across batches or clients (1 ms apart per series)."""
    out = []
    for b in range(count):
        lines = []
        rounds = LINES_PER_BATCH // SERIES
        for r in range(rounds):
            ts = start_ns + ((b * rounds + r) * clients + client) * 1_000_000
            for s in range(SERIES):
                lines.append(
                    f"cpu,host=host{s % 100},core=c{s // 100} "
                    f"usage_user={(s * 7 + b) % 100}.5,usage_system={(s + r) % 50}.25,usage_idle={b % 90}i {ts}"
                )
        out.append(("\n".join(lines) + "\n").encode())
    return out


def client(
    url: str, path: str, batches: list[bytes], connections: int, start_at: float, deadline: float, out: Any
) -> None:
    import threading

    parts = urlsplit(url)
    accepted = [0] * connections
    refused = [0] * connections

    def run(k: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        i = k
        while time.time() < start_at:
            time.sleep(0.01)
        while time.time() < deadline and i < len(batches):
            conn.request("POST", path, batches[i], {"Content-Type": "text/plain; charset=utf-8"})
            resp = conn.getresponse()
            resp.read()
            if resp.status == 204 and time.time() <= deadline:
                accepted[k] += LINES_PER_BATCH
            elif resp.status != 204:
                refused[k] += 1
            i += connections
        conn.close()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((sum(accepted), sum(refused)))


def measure(
    name: str, url: str, path: str, pid: int, seconds: float, clients: int, connections: int, batches_per_client: int
) -> dict[str, Any]:
    start_ns = time.time_ns() - 3_600_000_000_000  # an hour ago: inside every server's accepted window
    per_client = [make_batches(c, clients, batches_per_client, start_ns) for c in range(clients)]
    server = psutil.Process(pid)
    queue: Any = mp.Queue()
    start_at = time.time() + 2.0
    deadline = start_at + seconds
    procs = [
        mp.Process(target=client, args=(url, path, per_client[c], connections, start_at, deadline, queue))
        for c in range(clients)
    ]
    for p in procs:
        p.start()
    time.sleep(max(0.0, start_at - time.time()))
    cpu0, peak = _cpu(server), 0
    while time.time() < deadline:
        peak = max(peak, _rss(server))
        time.sleep(0.1)
    cpu = _cpu(server) - cpu0
    totals = [queue.get(timeout=300) for _ in procs]
    for p in procs:
        p.join()
    lines = sum(a for a, _ in totals)
    return {
        "server": name,
        "lines_per_s": round(lines / seconds),
        "cpu_s_per_million_lines": round(cpu / (lines / 1e6), 2) if lines else None,
        "peak_rss_mb": round(peak / 2**20, 1),
        "refused_batches": sum(r for _, r in totals),
        "ran_out_of_batches": lines >= clients * batches_per_client * LINES_PER_BATCH,
    }


@contextmanager
def collector(workdir: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "OBS_STORAGE__DATA_DIR": str(workdir / "data"),
        "OBS_SERVER__HTTP_PORT": str(port),
        "OBS_SERVER__OTLP_PORTS": "false",
        "OBS_LOG_LEVEL": "warning",
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen([sys.executable, "-m", "collector", "collector"], env=env, cwd=ROOT)
    try:
        _wait_ready(port, proc)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--connections", type=int, default=2, help="keep-alive connections per client")
    parser.add_argument("--batches", type=int, default=500, help="pre-built batches per client")
    args = parser.parse_args()
    from tests.peers import influxdb, victoria_metrics

    results = []
    common = (args.seconds, args.clients, args.connections, args.batches)
    with tempfile.TemporaryDirectory(prefix="obs-bench-lp-") as tmp:
        work = Path(tmp)
        (work / "c").mkdir()
        with collector(work / "c") as (url, pid):
            results.append(measure("collector", url, "/write?db=bench", pid, *common))
        (work / "i").mkdir()
        with influxdb(work / "i") as (url, peer):
            http_post(f"{url}/query?q=CREATE+DATABASE+bench")
            results.append(measure("influxdb-1.6", url, "/write?db=bench", peer.proc.pid, *common))
        (work / "v").mkdir()
        with victoria_metrics(work / "v") as (url, peer):
            results.append(measure("victoriametrics", url, "/write?db=bench", peer.proc.pid, *common))
        shutil.rmtree(work, ignore_errors=True)
    by = {r["server"]: r for r in results}
    ours = by["collector"]["lines_per_s"]
    summary = {
        "ratio_vs_influxdb": round(ours / by["influxdb-1.6"]["lines_per_s"], 3),
        "ratio_vs_victoriametrics": round(ours / by["victoriametrics"]["lines_per_s"], 3),
        "collector_lines_per_s": ours,
        "influxdb_lines_per_s": by["influxdb-1.6"]["lines_per_s"],
        "victoriametrics_lines_per_s": by["victoriametrics"]["lines_per_s"],
        "servers": results,
        "lines_per_batch": LINES_PER_BATCH,
        "series": SERIES,
        "fields_per_line": 3,
        "clients": args.clients,
        "connections_per_client": args.connections,
        "measured_seconds": args.seconds,
        "command": "python -m bench.line_protocol " + " ".join(sys.argv[1:]),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "line_protocol.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


def http_post(url: str) -> None:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("POST", f"{parts.path}?{parts.query}")
    conn.getresponse().read()


if __name__ == "__main__":
    main()
