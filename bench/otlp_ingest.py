"""OTLP/HTTP ingest throughput against the collector, beside the single-core decode limit.

Load: requests of 1,000 spans with 10 attributes each (OTLP/HTTP protobuf), sent by 2 client
processes over keep-alive connections, against a collector started for the run with its own data
directory. Reported: acknowledged spans/s, collector CPU seconds per million spans (its worker
processes included), peak RSS.

Limit, measured in the same run: spans/s one core parses with python protobuf and flattens into
column lists (the collector's own codec), with no store and no HTTP. ratio = acked / limit.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing as mp
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SPANS_PER_REQUEST = 1000
ATTRIBUTES = 10


def make_request(rng: random.Random) -> bytes:
    """One export request: 10 traces of 100 spans, 10 attributes per span, realistic value types."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    for key, value in (("service.name", "bench-svc"), ("service.instance.id", "i-1"), ("host.name", "bench")):
        rs.resource.attributes.add(key=key, value=AnyValue(string_value=value))
    ss = rs.scope_spans.add()
    ss.scope.name = "bench"
    now = time.time_ns()
    for t in range(SPANS_PER_REQUEST // 100):
        trace_id = rng.randbytes(16)
        for i in range(100):
            start = now + t * 1_000_000 + i * 1000
            span = ss.spans.add(
                trace_id=trace_id,
                span_id=rng.randbytes(8),
                parent_span_id=rng.randbytes(8) if i else b"",
                name=f"GET /api/v1/resource/{i % 20}",
                kind=2 if i == 0 else 3,
                start_time_unix_nano=start,
                end_time_unix_nano=start + rng.randint(10_000, 50_000_000),
            )
            attrs = span.attributes
            attrs.add(key="http.method", value=AnyValue(string_value="GET"))
            attrs.add(key="http.route", value=AnyValue(string_value=f"/api/v1/resource/{i % 20}"))
            attrs.add(key="http.status_code", value=AnyValue(int_value=200 if i % 50 else 500))
            attrs.add(key="http.url", value=AnyValue(string_value=f"http://svc:8080/api/v1/resource/{i}?q={t}"))
            attrs.add(key="net.peer.name", value=AnyValue(string_value="inventory"))
            attrs.add(key="net.peer.port", value=AnyValue(int_value=8002))
            attrs.add(key="user.id", value=AnyValue(string_value=f"user-{rng.randint(1, 10_000)}"))
            attrs.add(key="retry", value=AnyValue(bool_value=False))
            attrs.add(key="db.rows", value=AnyValue(int_value=rng.randint(0, 100)))
            attrs.add(key="sample.ratio", value=AnyValue(double_value=0.25))
            assert len(attrs) == ATTRIBUTES
            if i % 50 == 0:
                span.status.code = 2
    return req.SerializeToString()


def measure_limit(bodies: list[bytes], seconds: float) -> tuple[float, float, float | None]:
    """Spans/s on one core, no store: (python protobuf parse + flatten into column lists, parse only,
    the collector's own path: parse, check, C flattener into Arrow; None when it is not built)."""
    from collector.codecs.otlp_traces import check_traces, decode_traces, flatten_traces_c
    from collector.codecs.otlp_values import TimeWindow

    window = TimeWindow()

    def rate(fn: Any) -> float:
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            for body in bodies[:20]:
                fn(body)
                done += SPANS_PER_REQUEST
        return done / (time.perf_counter() - started)

    def parse(body: bytes) -> ExportTraceServiceRequest:
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        return req

    def c_path(body: bytes) -> None:
        check_traces(parse(body), window)
        flatten_traces_c(body)

    c_rate = rate(c_path) if flatten_traces_c(bodies[0]) is not None else None
    return rate(lambda b: decode_traces(parse(b), window)), rate(parse), c_rate


def client(port: int, bodies: list[bytes], deadline: float, connections: int, out: Any) -> None:
    """One client process: `connections` keep-alive connections sending until the deadline."""
    acked = [0] * connections
    refused = [0] * connections

    def run(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        i = k
        while time.time() < deadline:
            conn.request("POST", "/v1/traces", bodies[i % len(bodies)], {"Content-Type": "application/x-protobuf"})
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                acked[k] += SPANS_PER_REQUEST
            else:
                refused[k] += 1
                time.sleep(float(resp.getheader("Retry-After", "1")))
            i += connections
        conn.close()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((sum(acked), sum(refused)))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(
    seconds: float,
    warmup: float,
    clients: int,
    connections: int,
    decode_workers: int,
    extra_env: dict[str, str],
    runs: int,
) -> dict[str, Any]:
    """Median of `runs` collector runs (each on a fresh data directory), beside the one-core limits."""
    rng = random.Random(7)
    bodies = [make_request(rng) for _ in range(60)]
    limit, parse_only, c_limit = measure_limit(bodies, 3.0)
    each = [
        run_collector(bodies, seconds, warmup, clients, connections, decode_workers, extra_env) for _ in range(runs)
    ]
    acked = statistics.median(r["acked_spans_per_s"] for r in each)
    return {
        "acked_spans_per_s": round(acked),
        "limit_spans_per_s": round(limit),
        "ratio": round(acked / limit, 3),
        "parse_only_spans_per_s": round(parse_only),
        "c_path_limit_spans_per_s": round(c_limit) if c_limit else None,
        "collector_cpu_s_per_million_spans": statistics.median(r["cpu_s_per_million_spans"] for r in each),
        "collector_peak_rss_mb": max(r["peak_rss_mb"] for r in each),
        "runs": each,
        "measured_seconds_per_run": seconds,
        "clients": clients,
        "connections_per_client": connections,
        "spans_per_request": SPANS_PER_REQUEST,
        "attributes_per_span": ATTRIBUTES,
        "decode_workers": decode_workers,
        "cpus": os.cpu_count(),
    }


def run_collector(
    bodies: list[bytes],
    seconds: float,
    warmup: float,
    clients: int,
    connections: int,
    decode_workers: int,
    extra_env: dict[str, str],
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="obs-bench-"))
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OBS_")},
        "OBS_STORAGE__DATA_DIR": str(workdir / "data"),
        "OBS_SERVER__HTTP_PORT": str(port),
        "OBS_SERVER__OTLP_PORTS": "false",
        "OBS_WRITE__DECODE_WORKERS": str(decode_workers),
        "OBS_LOG_LEVEL": "warning",
        "PYTHONPATH": str(ROOT),
        **extra_env,
    }
    proc = subprocess.Popen([sys.executable, "-m", "collector", "collector"], env=env, cwd=ROOT)
    try:
        _wait_ready(port, proc)
        collector = psutil.Process(proc.pid)
        queue: Any = mp.Queue()
        start_at = time.time() + 1.0
        deadline = start_at + warmup + seconds
        procs = [
            mp.Process(target=client, args=(port, bodies[i::clients], deadline, connections, queue))
            for i in range(clients)
        ]
        for p in procs:
            p.start()
        time.sleep(max(0.0, start_at + warmup - time.time()))
        cpu0 = _cpu(collector)
        acked0 = _accepted(port)
        t0 = time.time()
        peak = 0
        while time.time() < deadline:
            peak = max(peak, _rss(collector))
            time.sleep(0.1)
        elapsed = time.time() - t0
        acked = _accepted(port) - acked0
        cpu = _cpu(collector) - cpu0
        totals = [queue.get(timeout=120) for _ in procs]
        for p in procs:
            p.join()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "acked_spans_per_s": round(acked / elapsed),
        "cpu_s_per_million_spans": round(cpu / (acked / 1e6), 2) if acked else None,
        "peak_rss_mb": round(peak / 2**20, 1),
        "refused_requests": sum(r for _, r in totals),
    }


def _wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError("collector exited during startup")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("collector not ready")


def _accepted(port: int) -> float:
    """Spans the collector has acknowledged, from its own /metrics."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("obs_accepted_items_total{") and 'signal="traces"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def _tree(p: psutil.Process) -> list[psutil.Process]:
    return [p, *p.children(recursive=True)]


def _cpu(p: psutil.Process) -> float:
    total = 0.0
    for q in _tree(p):
        try:
            t = q.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _rss(p: psutil.Process) -> int:
    total = 0
    for q in _tree(p):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += q.memory_info().rss
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections per client process")
    parser.add_argument("--runs", type=int, default=3, help="collector runs; the median is reported")
    parser.add_argument("--decode-workers", type=int, default=None, help="collector write.decode_workers")
    parser.add_argument("--set", action="append", default=[], metavar="OBS_KEY=VALUE", help="collector setting")
    args = parser.parse_args()
    workers = args.decode_workers
    if workers is None:
        from collector.config import WriteSettings

        workers = WriteSettings().decode_workers
    extra = dict(item.split("=", 1) for item in args.set)
    result = run(args.seconds, args.warmup, args.clients, args.connections, workers, extra, args.runs)
    result["settings"] = extra
    result["command"] = "python -m bench.otlp_ingest " + " ".join(sys.argv[1:])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "otlp_ingest.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
