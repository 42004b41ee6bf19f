"""PromQL range queries, side by side: the collector, Prometheus 2.42 and VictoriaMetrics on the same data.

Data, generated at run time from a fixed seed: 1,000 series over the 24 h before a whole minute about
five minutes ago, plus 10 minutes before them, one sample every 15 s (5,800 per series, 5.8M in all).
The 10 extra minutes fill every 5m window of the 24 h query: at a series' very start Prometheus 2.x
extrapolates rate() differently from 3.x (which the collector follows), and that difference is not what
this compares. Samples sit 3 s off the 15 s grid so none falls on a window boundary (2.x includes a
sample exactly at a window's start, 3.x does not). The series:
- `http_requests_total`, counters: service (10 values) x instance (2) x route (5) x code (2) = 200 series,
  with fractional increments that vary every scrape and a counter reset in every 16th series;
- `http_request_duration_seconds_bucket`, a classic histogram: service (10) x instance (2) x route (4)
  x le (10 buckets, +Inf included) = 800 series, cumulative counts of about 20 gamma-distributed
  observations per scrape.

Loading, identically in content: the collector (its own data directory, chDB, `OBS_LIMITS__MAX_AGE=0`
and metrics retention 0 so day-old samples are accepted) and VictoriaMetrics (`-search.disableCache`)
get the same remote write 1.0 bodies; Prometheus gets the same samples as an OpenMetrics file backfilled
with `promtool tsdb create-blocks-from openmetrics` into its data directory before it starts (its head
refuses day-old samples over remote write). Each server is loaded and checked to see all 5.8M samples,
then left to settle (idle: merges and compactions after loading done). The collector's samples of the last
2 h are also in its head (collector/store/head.py, filled by the writes like any others): the 1 h queries
are answered from memory, the 24 h ones from chDB. Prometheus reads the backfilled samples from its blocks
(memory-mapped files; its head holds none of them). Then all three run side by side
and take turns answering (every round queries each once, in rotating order), so outside load on the
shared machine falls on all of them alike.

Queries, over HTTP (`/api/v1/query_range`, 60 s step, ending at the data's end): `sum by (service)
(rate(http_requests_total[5m]))` and `histogram_quantile(0.99, sum by (le)
(rate(http_request_duration_seconds_bucket[5m])))`, each over the last 1 h and over the 24 h. Per query
and server: one warm-up run not counted (the collector's label cache is warm after it, as Prometheus'
index is), then the median of 5 (client-side wall time, keep-alive connection, JSON read in full).
The warm-up answers are compared: the collector's must equal Prometheus' (same series and timestamps,
values within 1e-6 relative); VictoriaMetrics' are compared too and reported (MetricsQL's rate() does
not extrapolate to the window's edges as PromQL's does, so its values differ by design). Written to
bench/results/promql_range.json: per query the three medians (ms), `ratio_vs_prometheus` and
`ratio_vs_victoriametrics` (collector latency over theirs: lower is better).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import cramjam
import numpy as np
import numpy.typing as npt
import psutil

from bench.otlp_ingest import _cpu, _wait_ready, free_port

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
STEP_MS = 15_000
OFFSET_MS = 3_000  # whole seconds: OpenMetrics timestamps are seconds, and must give back the same ms
SPAN_MS = (24 * 60 + 10) * 60 * 1000
SAMPLES = SPAN_MS // STEP_MS
QUERY_STEP_S = 60
REL_TOL = 1e-6
BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]
QUERIES = {
    "sum_rate_1h": ("sum by (service) (rate(http_requests_total[5m]))", 3600),
    "sum_rate_24h": ("sum by (service) (rate(http_requests_total[5m]))", 86400),
    "quantile_1h": ("histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))", 3600),
    "quantile_24h": ("histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))", 86400),
}
F64 = npt.NDArray[np.float64]
Series = tuple[dict[str, str], F64]


def dataset(seed: int = 20261129) -> list[Series]:
    """The 1,000 series (labels with __name__, values per 15 s sample), the same for every server."""
    rng = np.random.default_rng(seed)
    out: list[Series] = []
    services = [f"svc-{i}" for i in range(10)]
    for service in services:
        for instance in ("10.0.0.1:8080", "10.0.0.2:8080"):
            for route in ("/api/orders", "/api/users", "/api/cart", "/login", "/health"):
                for code in ("200", "500"):
                    scale = 40 if code == "200" else 3
                    per_step = rng.integers(0, scale, SAMPLES) + np.round(rng.random(SAMPLES), 3)
                    counter = np.round(np.cumsum(per_step), 3)
                    if len(out) % 16 == 5:  # a restart in the middle of the day: the counter resets
                        counter[SAMPLES // 2 :] = np.round(counter[SAMPLES // 2 :] - counter[SAMPLES // 2 - 1], 3)
                    labels = {"__name__": "http_requests_total", "service": service, "instance": instance}
                    out.append(({**labels, "route": route, "code": code}, counter))
    limits = np.array([math.inf if b == "+Inf" else float(b) for b in BUCKETS])
    for service in services:
        for instance in ("10.0.0.1:8080", "10.0.0.2:8080"):
            for route in ("/api/orders", "/api/users", "/api/cart", "/login"):
                scale = rng.uniform(0.01, 0.2)
                # The probability of each bucket (its own slice, not cumulative), then counts per scrape.
                draws = np.sort(rng.gamma(2.0, scale, 20_000))
                cdf = np.searchsorted(draws, limits, side="right") / len(draws)
                pvals = np.diff(np.r_[0.0, cdf])
                pvals[-1] = max(0.0, 1.0 - pvals[:-1].sum())
                counts = rng.multinomial(rng.poisson(20, SAMPLES), pvals)  # (SAMPLES, buckets)
                cumulative = np.cumsum(np.cumsum(counts, axis=1), axis=0).astype(np.float64)
                for j, le in enumerate(BUCKETS):
                    labels = {"__name__": "http_request_duration_seconds_bucket", "service": service}
                    out.append(({**labels, "instance": instance, "route": route, "le": le}, cumulative[:, j]))
    return out


def sample_times(end_ms: int) -> npt.NDArray[np.int64]:
    return end_ms - SPAN_MS + OFFSET_MS + np.arange(SAMPLES, dtype=np.int64) * STEP_MS


# -- remote write bodies (protobuf written directly: 5.8M samples through message objects take long) ----


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _samples(values: F64, times: npt.NDArray[np.int64]) -> bytes:
    """Repeated `Sample samples = 2` of a TimeSeries: each {double value = 1; int64 timestamp = 2}."""
    assert times.min() >= 2**35 and times.max() < 2**42, "timestamps must be 6-byte varints"
    n = len(values)
    rec = np.empty((n, 18), dtype=np.uint8)
    rec[:, 0] = 0x12  # field 2, length-delimited
    rec[:, 1] = 16
    rec[:, 2] = 0x09  # value: field 1, 64-bit
    rec[:, 3:11] = values.astype("<f8").view(np.uint8).reshape(n, 8)
    rec[:, 11] = 0x10  # timestamp: field 2, varint
    for k in range(6):
        rec[:, 12 + k] = ((times >> (7 * k)) & 0x7F) | (0x80 if k < 5 else 0)
    return rec.tobytes()


def remote_write_bodies(series: list[Series], end_ms: int, hours_per_body: int = 1) -> list[bytes]:
    """Snappy-compressed WriteRequests, oldest first, each holding every series for `hours_per_body`."""
    times = sample_times(end_ms)
    per_body = hours_per_body * 3600_000 // STEP_MS
    label_parts = [
        b"".join(_field(1, _field(1, k.encode()) + _field(2, v.encode())) for k, v in sorted(labels.items()))
        for labels, _ in series
    ]
    bodies = []
    for lo in range(0, SAMPLES, per_body):
        hi = min(SAMPLES, lo + per_body)
        request = b"".join(
            _field(1, labels + _samples(values[lo:hi], times[lo:hi]))
            for labels, (_, values) in zip(label_parts, series, strict=True)
        )
        bodies.append(bytes(cramjam.snappy.compress_raw(request)))
    return bodies


def openmetrics(series: list[Series], end_ms: int, path: Path) -> None:
    """The same samples as an OpenMetrics file for promtool (timestamps in whole seconds)."""
    seconds = (sample_times(end_ms) // 1000).tolist()
    with path.open("w") as out:
        for labels, values in series:
            name = labels["__name__"]
            body = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
            prefix = f"{name}{{{body}}} "
            out.write("".join(f"{prefix}{v!r} {t}\n" for v, t in zip(values.tolist(), seconds, strict=True)))
        out.write("# EOF\n")


# -- servers ----------------------------------------------------------------------------------------


@contextmanager
def collector(workdir: Path) -> Iterator[tuple[str, int]]:
    """A collector for the run, accepting samples of any age (bench/line_protocol.collector(), plus limits)."""
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "OBS_STORAGE__DATA_DIR": str(workdir / "data"),
        "OBS_STORAGE__RETENTION__METRICS": "0",
        "OBS_LIMITS__MAX_AGE": "0",
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


class Client:
    """One keep-alive HTTP connection to a server."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)

    def get(self, path: str, params: dict[str, Any]) -> tuple[int, bytes]:
        self.conn.request("GET", f"{path}?{urlencode(params)}")
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        self.conn.request("POST", path, body, headers)
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def close(self) -> None:
        self.conn.close()


RW_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


def remote_write(url: str, bodies: list[bytes]) -> None:
    client = Client(url)
    try:
        for body in bodies:
            for _ in range(600):
                status, text = client.post("/api/v1/write", body, RW_HEADERS)
                if status not in (429, 503):
                    break
                time.sleep(0.5)
            if not 200 <= status < 300:
                raise RuntimeError(f"remote write to {url}: {status} {text[:300]!r}")
    finally:
        client.close()


def wait_all_visible(url: str, end_ms: int, expected: int, timeout_s: float = 300.0) -> None:
    """Until an instant query at the data's end counts every sample of the 24 h."""
    client = Client(url)
    query = f'sum(count_over_time({{__name__=~"http_request.*"}}[{SPAN_MS // 60_000}m]))'
    seen = None
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            status, body = client.get("/api/v1/query", {"query": query, "time": end_ms / 1000})
            if status == 200:
                result = json.loads(body)["data"]["result"]
                seen = int(float(result[0]["value"][1])) if result else 0
                if seen == expected:
                    return
            time.sleep(1.0)
    finally:
        client.close()
    raise RuntimeError(f"{url}: {seen} samples visible, expected {expected}")


def settle(pids: dict[str, int], timeout_s: float = 90.0) -> dict[str, float]:
    """Wait until every server is idle (under 10% of a core over a second: background merges and
    compactions after the load are done), so none pays for its own loading during the timed runs.
    Returns the seconds each took to settle."""
    procs = {name: psutil.Process(pid) for name, pid in pids.items()}
    waited: dict[str, float] = {}
    started = time.monotonic()
    while procs and time.monotonic() - started < timeout_s:
        before = {name: _cpu(p) for name, p in procs.items()}
        time.sleep(1.0)
        for name, p in list(procs.items()):
            if _cpu(p) - before[name] < 0.1:
                waited[name] = round(time.monotonic() - started, 1)
                del procs[name]
    return waited


def measure(urls: dict[str, str], end_ms: int, runs: int) -> dict[str, dict[str, Any]]:
    """Per server and query: the median of `runs` timed runs after one warm-up, and the warm-up's answer.

    The servers take turns (every round queries each once, the order rotating), so load from outside
    the benchmark (the machine is shared) lands on all of them alike."""
    clients = {server: Client(url) for server, url in urls.items()}
    out: dict[str, dict[str, Any]] = {server: {} for server in urls}
    order = list(urls)
    try:
        for name, (query, span_s) in QUERIES.items():
            params = {"query": query, "start": end_ms / 1000 - span_s, "end": end_ms / 1000, "step": QUERY_STEP_S}
            times: dict[str, list[float]] = {server: [] for server in urls}
            for run in range(runs + 1):
                for server in order[run % len(order) :] + order[: run % len(order)]:
                    started = time.perf_counter()
                    status, body = clients[server].get("/api/v1/query_range", params)
                    elapsed = time.perf_counter() - started
                    if status != 200:
                        raise RuntimeError(f"{server} {name}: {status} {body[:300]!r}")
                    if run:
                        times[server].append(elapsed * 1000)
                    else:
                        out[server][name] = {"answer": json.loads(body)["data"]["result"]}
            for server, runs_ms in times.items():
                out[server][name]["median_ms"] = round(statistics.median(runs_ms), 2)
                out[server][name]["runs_ms"] = [round(t, 2) for t in runs_ms]
    finally:
        for client in clients.values():
            client.close()
    return out


def compare(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> dict[str, Any]:
    """Same series and timestamps, and the largest relative difference of the values."""

    def index(result: list[dict[str, Any]]) -> dict[tuple[tuple[str, str], ...], dict[float, float]]:
        return {tuple(sorted(s["metric"].items())): {float(t): float(v) for t, v in s["values"]} for s in result}

    a, b = index(ours), index(theirs)
    worst = 0.0
    same_points = a.keys() == b.keys() and all(a[k].keys() == b[k].keys() for k in a)
    for key in a.keys() & b.keys():
        for t in a[key].keys() & b[key].keys():
            x, y = a[key][t], b[key][t]
            if math.isnan(x) and math.isnan(y):
                continue
            if x != y:
                worst = max(worst, abs(x - y) / max(abs(x), abs(y)) if math.isfinite(x - y) else math.inf)
    points = sum(len(v) for v in a.values())
    return {"same_series_and_timestamps": same_points, "max_rel_diff": worst, "points": points}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per query, after one warm-up")
    parser.add_argument("--only", default="", help="comma-separated servers (collector,prometheus,victoriametrics)")
    parser.add_argument("--keep", default="", help="a directory to keep the servers' data in (for profiling)")
    args = parser.parse_args()
    from tests.peers import prometheus_peer, victoria_metrics

    end_ms = (int(time.time()) // 60 - 5) * 60_000
    only = set(filter(None, args.only.split(","))) or {"collector", "prometheus", "victoriametrics"}
    print(f"generating 1,000 series x {SAMPLES:,} samples...", flush=True)
    series = dataset()
    expected = len(series) * SAMPLES
    bodies = remote_write_bodies(series, end_ms)
    load_s: dict[str, float] = {}
    urls: dict[str, str] = {}
    pids: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="obs-bench-promql-") as tmp, ExitStack() as servers:
        work = Path(args.keep) if args.keep else Path(tmp)
        for sub in ("c", "v", "p"):
            (work / sub).mkdir(parents=True, exist_ok=True)
        if "collector" in only:
            url, pids["collector"] = servers.enter_context(collector(work / "c"))
            started = time.monotonic()
            remote_write(url, bodies)
            wait_all_visible(url, end_ms, expected)
            load_s["collector"] = time.monotonic() - started
            urls["collector"] = url
            print(f"collector loaded in {load_s['collector']:.1f} s", flush=True)
        if "victoriametrics" in only:
            url, peer = servers.enter_context(victoria_metrics(work / "v", "-search.disableCache"))
            assert peer.proc is not None
            pids["victoriametrics"] = peer.proc.pid
            started = time.monotonic()
            remote_write(url, bodies)
            Client(url).get("/internal/force_flush", {})
            wait_all_visible(url, end_ms, expected)
            load_s["victoriametrics"] = time.monotonic() - started
            urls["victoriametrics"] = url
            print(f"victoriametrics loaded in {load_s['victoriametrics']:.1f} s", flush=True)
        if "prometheus" in only:
            started = time.monotonic()
            openmetrics(series, end_ms, work / "p" / "data.om")
            # 24 h blocks: what a Prometheus that has compacted the day reads (fewest blocks; its best case).
            subprocess.run(
                [
                    "promtool", "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=24h",
                    str(work / "p" / "data.om"), str(work / "p" / "tsdb"),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            (work / "p" / "data.om").unlink()
            url, peer = servers.enter_context(prometheus_peer("global: {scrape_interval: 1h}\n", work / "p"))
            assert peer.proc is not None
            pids["prometheus"] = peer.proc.pid
            wait_all_visible(url, end_ms, expected)
            load_s["prometheus"] = time.monotonic() - started
            urls["prometheus"] = url
            print(f"prometheus loaded in {load_s['prometheus']:.1f} s", flush=True)
        settled_s = settle(pids)
        print(f"settled after {settled_s} s", flush=True)
        results = measure(urls, end_ms, args.runs)
    summary = summarize(results, load_s, args.runs)
    summary["settled_s"] = settled_s
    if only == {"collector", "prometheus", "victoriametrics"}:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "promql_range.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


def summarize(results: dict[str, dict[str, Any]], load_s: dict[str, float], runs: int) -> dict[str, Any]:
    queries: dict[str, Any] = {}
    for name, (query, span_s) in QUERIES.items():
        entry: dict[str, Any] = {"query": query, "range_s": span_s, "step_s": QUERY_STEP_S}
        for server, per_query in results.items():
            entry[f"{server}_ms"] = per_query[name]["median_ms"]
            entry[f"{server}_runs_ms"] = per_query[name]["runs_ms"]
        ours = entry.get("collector_ms")
        for peer in ("prometheus", "victoriametrics"):
            if ours is not None and f"{peer}_ms" in entry:
                entry[f"ratio_vs_{peer}"] = round(ours / entry[f"{peer}_ms"], 3)
        if "prometheus" in results:
            reference = results["prometheus"][name]["answer"]
            for server in ("collector", "victoriametrics"):
                if server in results:
                    check = compare(results[server][name]["answer"], reference)
                    check["agrees"] = check["same_series_and_timestamps"] and check["max_rel_diff"] <= REL_TOL
                    entry[f"{server}_vs_prometheus"] = check
        queries[name] = entry
    flat = {f"{name}_{key}": q[key] for name, q in queries.items() for key in ("ratio_vs_prometheus",) if key in q}
    return {
        **flat,
        "queries": queries,
        "series": 1000,
        "samples": 1000 * SAMPLES,
        "note": "VictoriaMetrics' rate() does not extrapolate to the window edges (MetricsQL), so its values "
        "differ from PromQL's by design; the collector's must agree with Prometheus'",
        "load_s": {k: round(v, 1) for k, v in load_s.items()},
        "runs": runs,
        "command": "python -m bench.promql_range " + " ".join(sys.argv[1:]),
    }


if __name__ == "__main__":
    main()
