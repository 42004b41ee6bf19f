"""Logs and traces at 10 million each: ingest rates, then Loki/Jaeger queries beside full scans of the same tables.

Data, generated at run time (bench/logs_traces_data.py, fixed seed): 10M log lines over the 24 h before
a whole minute, from 10 services, four levels, bodies as services write them (access lines, JSON, logfmt,
error lines naming a trace id), a third with OTLP trace ids; and 10M spans in traces of 5-30 spans across
the services (gateway -> orders -> payments ...), lognormal durations (median 40 ms at the root). Both go
in over the real wire, OTLP/HTTP protobuf bodies of 5,000 items built with the opentelemetry-proto
classes, from 2 sender processes with 4 keep-alive connections each, into a collector started for the
run (its own data directory). Every sender builds its bodies before the clock starts; the rate is the
collector's own count of acknowledged items (obs_accepted_items_total) over the sending time. Loki push
(snappy protobuf as Promtail and Alloy send it, 5,000 lines a push, streams per service and level) is
measured the same way with 1M lines, under other service names so the queries' answers stay the same.

Queries, over HTTP after the collector is idle: trace by id (`/jaeger/api/traces/{id}`, 200 ids drawn
from what was sent, p50 and p99), Jaeger search by service and minDuration over the 24 h (limit 20),
`{service_name="orders"} |= "<literal>"` over the last 1 h and the 24 h (limit 1000, backward) for a
rare literal (one user's id) and a common one ("timeout", about 1 line in 60), and
`sum by (level) (count_over_time({service_name="orders"}[1m]))` over the 24 h at a 60 s step. One
warm-up, then the median of --runs.

The comparison (no Loki, Jaeger or Tempo can be installed here): after the collector stops, the bench
opens the same data directory with chDB in its own process and answers each query by a full scan of the
same table: every column compared through identity(), which hides it from primary-key, partition and
skip-index analysis (ClickHouse documents identity() for exactly this), plus use_skip_indexes=0 and
optimize_use_projections=0. Beside it, in the same process, the collector's own store read (LogSearch,
TraceSearch: the indexed SQL without HTTP or JSON). Reported per query: API ms, full-scan ms, ratio = full
scan / API, store ms, full scan / store, and whether the API's and the full scan's answers agree (trace
ids, span counts, entry timestamps, per-level window counts). PREWHERE stays on in the full scan: late
materialization is the engine's, not an index, so a scan still reads Body only where the service matches.
Written to bench/results/logs_traces.json. --scale 0.1 runs 1M + 1M in about three minutes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from bench.logs_traces_data import (
    COMMON_LITERAL,
    DAY_NS,
    logs_request,
    loki_push_body,
    needle,
    spans_request,
)
from bench.otlp_ingest import _cpu
from bench.promql_range import Client, collector, settle

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
FULL_LINES = 10_000_000
FULL_SPANS = 10_000_000
FULL_LOKI_LINES = 1_000_000
PER_REQUEST = 5_000
SENDERS = 2
CONNECTIONS = 4
TRACE_IDS = 200
SEED = 20261129
SERVICE = "orders"
MIN_DURATION = "100ms"  # about 1 orders span in 1,000 lasts longer
MIN_DURATION_NS = 100_000_000
HOUR_NS = 3600 * 10**9
PROTOBUF = {"Content-Type": "application/x-protobuf"}

# -- ingest -----------------------------------------------------------------------------------------


def _build(kind: str, chunk: int, chunks: int, end_ns: int) -> tuple[bytes, list[tuple[str, int]]]:
    if kind == "logs":
        return logs_request(SEED, chunk, chunks, PER_REQUEST, end_ns), []
    if kind == "loki":
        return loki_push_body(SEED, chunk, chunks, PER_REQUEST, end_ns), []
    body, ids = spans_request(SEED, chunk, chunks, PER_REQUEST, end_ns)
    return body, ids


def _sender(kind: str, url: str, mine: list[int], chunks: int, end_ns: int, ready: Any, go: Any, out: Any) -> None:
    """Build this sender's bodies, say so, wait for the start, then send them on CONNECTIONS connections."""
    path = {"logs": "/v1/logs", "spans": "/v1/traces", "loki": "/loki/api/v1/push"}[kind]
    bodies = []
    traces: list[tuple[str, int]] = []
    for chunk in mine:
        body, sample = _build(kind, chunk, chunks, end_ns)
        bodies.append(body)
        traces.extend(sample[:1])  # the first trace of every body, with its span count below
    ready.put(len(bodies))
    go.wait()
    failures: list[str] = []

    def send(part: list[bytes]) -> None:
        client = Client(url)
        try:
            for body in part:
                for _ in range(1200):
                    status, text = client.post(path, body, PROTOBUF)
                    if status not in (429, 503):
                        break
                    time.sleep(0.25)
                if not 200 <= status < 300:
                    failures.append(f"{status} {text[:200]!r}")
        finally:
            client.close()

    threads = [threading.Thread(target=send, args=(bodies[i::CONNECTIONS],)) for i in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((failures, traces))


def accepted(url: str, signal: str) -> float:
    client = Client(url)
    try:
        _, text = client.get("/metrics", {})
    finally:
        client.close()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.decode().splitlines()
        if line.startswith("obs_accepted_items_total{") and f'signal="{signal}"' in line
    )


def ingest(kind: str, url: str, pid: int, items: int, end_ns: int) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    """Send `items` (a multiple of PER_REQUEST) of `kind`; the collector-side acknowledged rate."""
    chunks = max(1, items // PER_REQUEST)
    signal = "traces" if kind == "spans" else "logs"
    ctx = mp.get_context("fork")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=_sender, args=(kind, url, list(range(i, chunks, SENDERS)), chunks, end_ns, ready, go, out))
        for i in range(SENDERS)
    ]
    built = time.monotonic()
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=1800)
    built_s = time.monotonic() - built
    before, cpu0 = accepted(url, signal), _cpu(psutil.Process(pid))
    t0 = time.monotonic()
    go.set()
    results = [out.get(timeout=3600) for _ in procs]
    elapsed = time.monotonic() - t0
    acked = accepted(url, signal) - before
    cpu = _cpu(psutil.Process(pid)) - cpu0
    for p in procs:
        p.join()
    failures = [f for fs, _ in results for f in fs]
    if failures:
        raise RuntimeError(f"{kind}: {len(failures)} requests failed, first: {failures[0]}")
    sample = [tid for _, traces in results for tid in traces]
    return {
        "items": chunks * PER_REQUEST,
        "acked": round(acked),
        "seconds": round(elapsed, 1),
        "per_s": round(acked / elapsed),
        "collector_cpu_s_per_million": round(cpu / (acked / 1e6), 2) if acked else None,
        "build_s": round(built_s, 1),
    }, sample


# -- API queries ------------------------------------------------------------------------------------


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """One warm-up (its answer kept), then the median of `runs` timings in ms."""
    answer = fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 2), answer


def _get_json(client: Client, path: str, params: dict[str, Any]) -> Any:
    status, body = client.get(path, params)
    if status != 200:
        raise RuntimeError(f"{path}: {status} {body[:300]!r}")
    return json.loads(body)


def log_queries(end_ns: int) -> dict[str, tuple[str, int]]:
    """name -> (LogQL, range in ns) for the stream queries."""
    rare = f'{{service_name="{SERVICE}"}} |= "{needle()}"'
    common = f'{{service_name="{SERVICE}"}} |= "{COMMON_LITERAL}"'
    return {
        "log_filter_rare_1h": (rare, HOUR_NS),
        "log_filter_rare_24h": (rare, DAY_NS),
        "log_filter_common_1h": (common, HOUR_NS),
        "log_filter_common_24h": (common, DAY_NS),
    }


METRIC_QUERY = f'sum by (level) (count_over_time({{service_name="{SERVICE}"}}[1m]))'


def api_answers(url: str, end_ns: int, traces: list[tuple[str, int]], runs: int) -> dict[str, Any]:
    client = Client(url)
    out: dict[str, Any] = {}
    try:
        # Trace by id: each id once (a user opens a trace once), a few first to warm the connection.
        for tid, _ in traces[:5]:
            _get_json(client, f"/jaeger/api/traces/{tid}", {})
        times, counts = [], []
        for tid, _ in traces:
            t0 = time.perf_counter()
            data = _get_json(client, f"/jaeger/api/traces/{tid}", {})
            times.append((time.perf_counter() - t0) * 1000)
            counts.append(len(data["data"][0]["spans"]) if data["data"] else 0)
        times.sort()
        out["trace_by_id"] = {
            "p50_ms": round(statistics.median(times), 2),
            "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
            "span_counts": counts,
        }

        start_us, end_us = (end_ns - DAY_NS) // 1000, end_ns // 1000
        params = {"service": SERVICE, "minDuration": MIN_DURATION, "start": start_us, "end": end_us, "limit": 20}

        def search() -> tuple[list[str], int]:
            data = _get_json(client, "/jaeger/api/traces", params)["data"]
            return sorted(t["traceID"] for t in data), sum(len(t["spans"]) for t in data)

        ms, answer = timed(search, runs)
        out["jaeger_search"] = {"ms": ms, "answer": answer}

        for name, (query, range_ns) in log_queries(end_ns).items():
            lp = {"query": query, "start": end_ns - range_ns, "end": end_ns, "limit": 1000, "direction": "backward"}

            def lines(lp: dict[str, Any] = lp) -> list[int]:
                result = _get_json(client, "/loki/api/v1/query_range", lp)["data"]["result"]
                return sorted((int(v[0]) for s in result for v in s["values"]), reverse=True)

            ms, answer = timed(lines, runs)
            out[name] = {"ms": ms, "answer": answer}

        start_s = (end_ns - DAY_NS) // 10**9
        mp_ = {"query": METRIC_QUERY, "start": start_s, "end": end_ns // 10**9, "step": 60}

        def metric() -> dict[str, dict[int, int]]:
            result = _get_json(client, "/loki/api/v1/query_range", mp_)["data"]["result"]
            return {
                s["metric"].get("level", ""): {round((float(t) - start_s) / 60): int(v) for t, v in s["values"]}
                for s in result
            }

        ms, answer = timed(metric, runs)
        out["count_by_level_24h"] = {"ms": ms, "answer": answer}
    finally:
        client.close()
    return out


# -- full scans in the same engine -----------------------------------------------------------------

NO_INDEX = " SETTINGS use_skip_indexes = 0, optimize_use_projections = 0"


def scan_answers(data_dir: Path, end_ns: int, traces: list[tuple[str, int]], runs: int) -> dict[str, Any]:
    """The same answers by full scans, in this process (the collector has stopped: one chDB path per process),
    each beside the collector's own store read in this process (`store_ms`: the indexed SQL without HTTP)."""
    from collector.query.logql.ast import LineFilter, Matcher
    from collector.query.logql.storage import Selection
    from collector.store.chdb_engine import ChdbEngine
    from collector.store.log_search import LEVEL_SQL, LogSearch
    from collector.store.trace_search import _COLUMNS, SpanFilter, TraceSearch

    engine = ChdbEngine(data_dir)
    db = "observatory"
    logs, spans = LogSearch(engine, db), TraceSearch(engine, db)
    out: dict[str, Any] = {}

    def trace(tid: str) -> int:
        sql = f"SELECT {_COLUMNS} FROM {db}.otel_traces WHERE identity(TraceId) = {{id:String}}" + NO_INDEX
        return engine.query(sql, {"id": tid}).num_rows

    # A full scan per id costs about the same for every id: the median of a few stands for them all.
    picks = traces[: max(3, runs)]
    times, counts = [], {}
    for tid, _ in picks:
        t0 = time.perf_counter()
        counts[tid] = trace(tid)
        times.append((time.perf_counter() - t0) * 1000)
    store_times = []
    for tid, _ in traces:
        t0 = time.perf_counter()
        spans.trace(tid)
        store_times.append((time.perf_counter() - t0) * 1000)
    out["trace_by_id"] = {
        "ms": round(statistics.median(times), 2),
        "store_ms": round(statistics.median(store_times), 2),
        "span_counts": counts,
    }

    def search() -> tuple[list[str], int]:
        ids = (
            engine.query(
                f"SELECT TraceId, max(Timestamp) AS t FROM {db}.otel_traces WHERE identity(ServiceName) = {{s:String}} "
                "AND identity(Duration) >= {d:UInt64} AND identity(Timestamp) >= fromUnixTimestamp64Nano({lo:Int64}) "
                "AND identity(Timestamp) <= fromUnixTimestamp64Nano({hi:Int64}) GROUP BY TraceId ORDER BY t DESC "
                "LIMIT 20" + NO_INDEX,
                {"s": SERVICE, "d": MIN_DURATION_NS, "lo": end_ns - DAY_NS, "hi": end_ns},
            )
            .column("TraceId")
            .to_pylist()
        )
        rows = engine.query(
            f"SELECT {_COLUMNS} FROM {db}.otel_traces WHERE identity(TraceId) IN {{ids:Array(String)}}" + NO_INDEX,
            {"ids": ids},
        ).num_rows
        return sorted(ids), rows

    def store_search() -> None:
        f = SpanFilter(service=SERVICE, min_duration_ns=MIN_DURATION_NS, start_ns=end_ns - DAY_NS, end_ns=end_ns)
        spans.traces(spans.find_trace_ids(f))

    ms, answer = timed(search, runs)
    out["jaeger_search"] = {"ms": ms, "store_ms": timed(store_search, runs)[0], "answer": answer}

    service = (Matcher("service_name", "=", SERVICE),)
    for name, (query, range_ns) in log_queries(end_ns).items():
        literal = query.split('|= "', 1)[1].rstrip('"')

        def lines(literal: str = literal, range_ns: int = range_ns) -> list[int]:
            table = engine.query(
                f"SELECT toUnixTimestamp64Nano(Timestamp) AS Ns, ServiceName, {LEVEL_SQL} AS Level, "
                f"ResourceAttributes, LogAttributes, TraceId, SpanId, Body FROM {db}.otel_logs "
                "WHERE identity(ServiceName) = {s:String} AND position(Body, {f:String}) > 0 "
                "AND identity(Timestamp) >= fromUnixTimestamp64Nano({lo:Int64}) "
                "AND identity(Timestamp) < fromUnixTimestamp64Nano({hi:Int64}) "
                "ORDER BY Timestamp DESC LIMIT 1000" + NO_INDEX,
                {"s": SERVICE, "f": literal, "lo": end_ns - range_ns, "hi": end_ns},
            )
            return sorted(table.column("Ns").to_pylist(), reverse=True)

        selection = Selection(service, end_ns - range_ns, end_ns, (LineFilter("|=", literal),), 1000, True)

        def store_lines(selection: Selection = selection) -> None:
            logs.entries(selection)

        ms, answer = timed(lines, runs)
        out[name] = {"ms": ms, "store_ms": timed(store_lines, runs)[0], "answer": answer}

    start_ns = (end_ns - DAY_NS) // 10**9 * 10**9
    steps = DAY_NS // (60 * 10**9) + 1

    def metric() -> dict[str, dict[int, int]]:
        # Window k is (start + (k-1) step, start + k step]: an entry falls in k = ceil((t - start) / step).
        rows = engine.query(
            f"SELECT {LEVEL_SQL} AS level, intDiv(toUnixTimestamp64Nano(Timestamp) - {{lo:Int64}} + {{st:Int64}} - 1, "
            f"{{st:Int64}}) AS k, count() AS n FROM {db}.otel_logs WHERE identity(ServiceName) = {{s:String}} "
            "AND identity(Timestamp) > fromUnixTimestamp64Nano({lo:Int64} - {st:Int64}) "
            "AND identity(Timestamp) <= fromUnixTimestamp64Nano({hi:Int64}) GROUP BY level, k" + NO_INDEX,
            {"s": SERVICE, "lo": start_ns, "st": 60 * 10**9, "hi": start_ns + (steps - 1) * 60 * 10**9},
        ).to_pylist()
        answer: dict[str, dict[int, int]] = {}
        for r in rows:
            answer.setdefault(r["level"], {})[int(r["k"])] = int(r["n"])
        return answer

    minute = 60 * 10**9
    whole = Selection(service, start_ns - minute, start_ns + (steps - 1) * minute + 1)

    def store_metric() -> None:
        logs.window_totals(whole, ["level"], start_ns, minute, steps, minute)

    ms, answer = timed(metric, runs)
    out["count_by_level_24h"] = {"ms": ms, "store_ms": timed(store_metric, runs)[0], "answer": answer}
    return out


# -- the run ---------------------------------------------------------------------------------------


def summarize(
    api: dict[str, Any], scan: dict[str, Any], traces: list[tuple[str, int]], ingests: dict[str, Any]
) -> dict[str, Any]:
    sizes = dict(traces)
    by_id = api["trace_by_id"]
    trace_agrees = by_id["span_counts"] == [n for _, n in traces] and all(
        sizes[tid] == n for tid, n in scan["trace_by_id"]["span_counts"].items()
    )
    queries: dict[str, Any] = {
        "trace_by_id": {
            "api_ms": by_id["p50_ms"],
            "full_scan_ms": scan["trace_by_id"]["ms"],
            "ratio": round(scan["trace_by_id"]["ms"] / by_id["p50_ms"], 1),
            "store_ms": scan["trace_by_id"]["store_ms"],
            "ratio_vs_store": round(scan["trace_by_id"]["ms"] / scan["trace_by_id"]["store_ms"], 1),
            "agrees": trace_agrees,
            "answer": f"{sum(by_id['span_counts'])} spans in {len(traces)} traces",
        }
    }
    for name in ["jaeger_search", *log_queries(0), "count_by_level_24h"]:
        ours, theirs = api[name], scan[name]
        answer = ours["answer"]
        if name == "jaeger_search":
            summary = f"{len(answer[0])} traces, {answer[1]} spans"
        elif name == "count_by_level_24h":
            summary = ", ".join(f"{lvl}={sum(ks.values())}" for lvl, ks in sorted(answer.items()))
        else:
            summary = f"{len(answer)} lines"
        queries[name] = {
            "api_ms": ours["ms"],
            "full_scan_ms": theirs["ms"],
            "ratio": round(theirs["ms"] / ours["ms"], 1),
            "store_ms": theirs["store_ms"],
            "ratio_vs_store": round(theirs["ms"] / theirs["store_ms"], 1),
            "agrees": json.dumps(answer, sort_keys=True) == json.dumps(theirs["answer"], sort_keys=True),
            "answer": summary,
        }
    return {
        "otlp_log_lines_per_s": ingests["logs"]["per_s"],
        "loki_push_lines_per_s": ingests["loki"]["per_s"],
        "otlp_spans_per_s": ingests["spans"]["per_s"],
        "trace_by_id_p50_ms": by_id["p50_ms"],
        "trace_by_id_p99_ms": by_id["p99_ms"],
        "log_filter_24h_ms": queries["log_filter_common_24h"]["api_ms"],
        "trace_by_id_p50_under_50ms": by_id["p50_ms"] < 50,
        "log_filter_24h_under_1s": max(queries[q]["api_ms"] for q in ("log_filter_rare_24h", "log_filter_common_24h"))
        < 1000,
        "all_agree": all(q["agrees"] for q in queries.values()),
        "queries": queries,
        "ingest": ingests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 10M log lines + 10M spans (+1M Loki push)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per query after one warm-up (median)")
    parser.add_argument("--workdir", type=Path, default=None, help="data directory parent (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the data directory (to look at it afterwards)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="obs-bench-lt-", dir=args.workdir))
    lines, spans = round(FULL_LINES * args.scale), round(FULL_SPANS * args.scale)
    loki_lines = round(FULL_LOKI_LINES * args.scale)
    end_ns = (time.time_ns() // 60_000_000_000 - 1) * 60_000_000_000  # a whole minute, a minute ago
    started = time.monotonic()
    try:
        ingests: dict[str, Any] = {}
        with collector(workdir) as (url, pid):
            ingests["logs"], _ = ingest("logs", url, pid, lines, end_ns)
            print(f"OTLP logs: {ingests['logs']}", flush=True)
            ingests["spans"], sample = ingest("spans", url, pid, spans, end_ns)
            print(f"OTLP spans: {ingests['spans']}", flush=True)
            rng = random.Random(SEED)
            traces = rng.sample(sample, min(TRACE_IDS, len(sample)))
            settled = settle({"collector": pid}, timeout_s=180.0)
            print(f"settled: {settled}", flush=True)
            api = api_answers(url, end_ns, traces, args.runs)
            print("API queries done", flush=True)
            # After the queries: the pushed lines go to other services, so they change no answer.
            ingests["loki"], _ = ingest("loki", url, pid, loki_lines, end_ns)
            print(f"Loki push: {ingests['loki']}", flush=True)
        scan = scan_answers(workdir / "data", end_ns, traces, max(3, args.runs // 2 + 1))
    finally:
        if args.keep:
            print(f"data kept in {workdir / 'data'}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    result = summarize(api, scan, traces, ingests)
    result.update(
        {
            "log_lines": lines,
            "spans": spans,
            "loki_push_lines": loki_lines,
            "runs": args.runs,
            "cpus": os.cpu_count(),
            "total_s": round(time.monotonic() - started),
            "command": "python -m bench.logs_traces " + " ".join(sys.argv[1:]),
        }
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "logs_traces.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "ingest"}, indent=2))


if __name__ == "__main__":
    main()
