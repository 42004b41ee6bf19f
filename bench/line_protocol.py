"""Line protocol ingest, side by side: the collector, InfluxDB 1.6 and VictoriaMetrics in one run.

Load: 1,000 series with 3 fields, batches of 5,000 lines, 2 client processes with keep-alive
connections; every line has a timestamp of its own (no repeats for any server to skip). Reported
per server: accepted lines/s (counted by the clients from 204 answers), server CPU seconds per
million lines, peak RSS; and the collector's throughput over each peer's (`ratio_vs_influxdb`,
`ratio_vs_victoriametrics`). With `--runs N` the three servers take turns N times and each one's
median run is reported (single runs vary a lot on a shared machine; every run is in `runs`).

`--stages` measures instead the collector's ingest stages in-process on the same load (CPU seconds
of this one thread, so one core): parse, map to samples, series limits, Arrow table; for the
columnar path the collector takes and for the Python reference path (parse_lines,
points_to_samples, the sample-by-sample limits, a per-row name column); and the chDB insert of what
they produced, `--per-insert` requests per insert as group commit makes them (wall time: chDB runs
threads of its own). Written to bench/results/line_protocol_stages.json.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pyarrow as pa

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
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            # Seen twice in ~20 runs here right after the load, not reproduced on purpose since:
            # keep the run's numbers, and the threads' stacks for whoever looks into it.
            dump = RESULTS / "line_protocol_collector_hang.txt"
            if shutil.which("gdb"):
                with dump.open("w") as out:
                    gdb = ["gdb", "-p", str(proc.pid), "-batch", "-ex", "thread apply all bt 30"]
                    subprocess.run(gdb, stdout=out, stderr=subprocess.STDOUT, timeout=120, check=False)
            print(f"collector {proc.pid} still running 60 s after SIGTERM: killed (stacks: {dump})", file=sys.stderr)
            proc.kill()
            proc.wait()


def _per_s(items: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """Items per CPU second of this process (one core: everything here runs on this thread)."""
    started = time.process_time()
    result = fn()
    return items / max(time.process_time() - started, 1e-9), result


def stages(batches: int, per_insert: int) -> dict[str, Any]:
    """Throughput of each ingest stage on one core, columnar path and Python reference path."""
    from collector.codecs.influx_metrics import SeriesMapper, columns_to_samples, points_to_samples
    from collector.codecs.line_protocol import parse_lines
    from collector.codecs.line_protocol_columns import LineScanner, c_scanner_available
    from collector.model import MetricBatch
    from collector.pipeline.series_limits import SeriesLimits
    from collector.store.chdb_engine import ChdbEngine
    from collector.store.schema import migrate, tune_merges
    from collector.store.writer import StoreWriter, _with_name_dictionary, _with_names

    bodies = make_batches(0, 1, batches, time.time_ns() - 3_600_000_000_000)
    lines = LINES_PER_BATCH * batches
    samples = lines * 3
    labels = {"db": "bench"}
    out: dict[str, Any] = {"c_scanner": c_scanner_available(), "lines": lines, "samples": samples}

    scanner, mapper = LineScanner(), SeriesMapper()
    columns_to_samples(scanner.parse(bodies[0])[0], labels, mapper)  # warm: the series are known
    parse_rate, parsed = _per_s(lines, lambda: [scanner.parse(b)[0] for b in bodies])
    map_rate, mapped = _per_s(samples, lambda: [columns_to_samples(c, labels, mapper).batch for c in parsed])
    limits = SeriesLimits(10**9, 2**62)

    def limit(batches_in: list[MetricBatch]) -> list[MetricBatch]:
        kept = []
        for batch in batches_in:
            outcome = limits.apply(batch)
            outcome.commit()
            kept.append(outcome.batch)
        return kept

    SeriesLimits(10**9, 2**62).apply(mapped[0])  # warm: pyarrow compute sets up its kernels on first use
    limit_rate, limited = _per_s(samples, lambda: limit(mapped))

    def arrow(group: list[MetricBatch], with_names: Callable[[pa.Table, dict[int, dict[str, str]]], pa.Table]) -> None:
        series: dict[int, dict[str, str]] = {}
        for b in group:
            series.update(b.series)
        with_names(pa.concat_tables([b.samples_table() for b in group]), series)

    groups = [limited[i : i + per_insert] for i in range(0, len(limited), per_insert)]
    arrow(groups[0], _with_name_dictionary)  # warm: pyarrow compute sets up its kernels on first use
    arrow_rate, _ = _per_s(samples, lambda: [arrow(g, _with_name_dictionary) for g in groups])
    out["columnar"] = {
        "parse_lines_per_s": round(parse_rate),
        "to_samples_per_s": round(map_rate),
        "limits_samples_per_s": round(limit_rate),
        "arrow_samples_per_s": round(arrow_rate),
    }

    parse_lines(bodies[0])
    ref_parse_rate, points = _per_s(lines, lambda: [parse_lines(b)[0] for b in bodies])
    ref_map_rate, ref_mapped = _per_s(samples, lambda: [points_to_samples(p, labels).batch for p in points])
    limits = SeriesLimits(10**9, 2**62)
    ref_limit_rate, ref_limited = _per_s(samples, lambda: limit(ref_mapped))
    ref_groups = [ref_limited[i : i + per_insert] for i in range(0, len(ref_limited), per_insert)]
    ref_arrow_rate, _ = _per_s(samples, lambda: [arrow(g, _with_names) for g in ref_groups])
    out["reference"] = {
        "parse_lines_per_s": round(ref_parse_rate),
        "to_samples_per_s": round(ref_map_rate),
        "limits_samples_per_s": round(ref_limit_rate),
        "arrow_samples_per_s": round(ref_arrow_rate),
    }

    # The insert, as group commit makes it: `per_insert` requests per insert. Wall time: chDB works
    # on threads of its own, and this process' CPU time would count them too.
    with tempfile.TemporaryDirectory(prefix="obs-bench-lp-stages-") as tmp:
        engine = ChdbEngine.shared(Path(tmp))
        engine.command("CREATE DATABASE IF NOT EXISTS bench")
        migrate(engine, "bench")
        tune_merges(engine, "bench")
        writer = StoreWriter(engine, "bench")
        writer.write_metrics(limited[:1])  # the series rows, once
        started, cpu = time.perf_counter(), time.process_time()
        for group in groups:
            writer.write_metrics(group)
        wall = time.perf_counter() - started
        out["insert"] = {
            "samples_per_insert": per_insert * LINES_PER_BATCH * 3,
            "samples_per_s_wall": round(samples / wall),
            "cpu_cores": round((time.process_time() - cpu) / wall, 2),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", action="store_true", help="per-stage throughput on one core, no servers")
    parser.add_argument("--stage-batches", type=int, default=40, help="5,000-line batches for --stages")
    parser.add_argument("--per-insert", type=int, default=8, help="batches per insert for --stages")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--connections", type=int, default=2, help="keep-alive connections per client")
    parser.add_argument("--batches", type=int, default=500, help="pre-built batches per client")
    parser.add_argument("--runs", type=int, default=1, help="rounds of all three servers; medians reported")
    args = parser.parse_args()
    if args.stages:
        report = stages(args.stage_batches, args.per_insert)
        report["command"] = "python -m bench.line_protocol " + " ".join(sys.argv[1:])
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "line_protocol_stages.json").write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps(report, indent=2))
        return
    from tests.peers import influxdb, victoria_metrics

    runs: list[list[dict[str, Any]]] = []
    common = (args.seconds, args.clients, args.connections, args.batches)
    for _ in range(args.runs):  # the servers in turn, run after run: a noisy neighbour hits all alike
        results = []
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
        runs.append(results)
    # Per server, the run with its median throughput.
    results = [sorted(column, key=lambda r: r["lines_per_s"])[len(column) // 2] for column in zip(*runs, strict=True)]
    by = {r["server"]: r for r in results}
    ours = by["collector"]["lines_per_s"]
    summary = {
        "ratio_vs_influxdb": round(ours / by["influxdb-1.6"]["lines_per_s"], 3),
        "ratio_vs_victoriametrics": round(ours / by["victoriametrics"]["lines_per_s"], 3),
        "collector_lines_per_s": ours,
        "influxdb_lines_per_s": by["influxdb-1.6"]["lines_per_s"],
        "victoriametrics_lines_per_s": by["victoriametrics"]["lines_per_s"],
        "servers": results,
        "runs": [{r["server"]: r["lines_per_s"] for r in run} for run in runs],
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
