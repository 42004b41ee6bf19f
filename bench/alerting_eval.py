"""Alert rule evaluation, side by side: 1,000 rules over 10,000 series, the collector against Prometheus 2.42.

Data, generated at run time from a fixed seed: 100 metrics x 100 series (service x 10, instance x 10, or
service x 10 buckets for histograms), one sample every 15 s from 60 minutes before the start of the run
to 5 minutes after it (so every evaluation during the run sees full windows, as with live data; 2.6M
samples): 50 counters `bench_requests_<k>_total` (fractional increments that vary per scrape, a counter
reset in some series), 40 gauges `bench_gauge_<k>`, 10 classic histograms
`bench_latency_<k>_seconds_bucket`. Samples sit 3 s off the 15 s grid. Both servers get the same remote
write 1.0 bodies, oldest first (Prometheus through `--web.enable-remote-write-receiver`).

Rules: one rule file, 10 groups of 100 alerting rules, interval 15 s, `for: 1m`, the mix an alerting
setup has: per-series `rate(x[5m]) > t`, `sum by (service) (rate(x[5m])) > t`, error-ratio divisions,
gauge thresholds (by service and overall), `avg_over_time`/`max_over_time` over 10-15 m,
`histogram_quantile(q, sum by (service, le) (rate(x_bucket[5m]))) > t` and `absent(...)` deadman rules.
A group's 100 rules have 64 distinct left-hand sides: the others repeat one at another threshold, as
warning and critical levels do (the batch evaluates a shared sub-expression once).

Prometheus evaluates the file itself; each group's `evaluationTime` comes from its `/api/v1/rules`
(polled every 4 s: each value stays there for the 15 s until the group's next evaluation). The
collector answers the same expressions at the same timestamps (each group's latest `lastEvaluation` in
Prometheus) two ways, timed client-side over one keep-alive connection: (a) one `GET /api/v1/query` per
rule, (b) one `POST /api/obs/query_batch` per group; a round is the sum over the 10 groups, one after
another. They take turns: 16 s with Prometheus alone (a Prometheus round is the sum of the evaluation
times of the groups' evaluations that started and ended in that window, and its CPU over the window is
noted), then our batch round (with the collector's CPU), then, in the first `--single-runs` turns, our
single-query round, and (c) the alerting service's own RuleEngine over the same rule file at the same
timestamps: batched queries, the alert state machine, and ALERTS remote-written back, as it runs in
production (`ratio_engine_vs_prometheus`). Medians over the turns; one batch round before them, not counted, warms the
collector's label cache. The last answers are checked: every batch result must equal the single
query's body, and each is compared with Prometheus' `/api/v1/query` at the same time (same series,
values within 1e-6 relative).

`--distinct` adds `rule!="<group>_<index>"` to every selector of every rule: the same series, but no two
rules share a sub-expression, so the batch evaluates each rule's expression on its own, as Prometheus
does (bench/results/alerting_eval_distinct.json).

Written to bench/results/alerting_eval.json: per-round medians (ms) for Prometheus and both of ours,
and `ratio_batch_vs_prometheus`, `ratio_single_vs_prometheus` (ours over theirs: lower is better).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import re
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, closing
from datetime import datetime
from pathlib import Path
from typing import Any

import cramjam
import numpy as np
import numpy.typing as npt
import psutil

from bench.otlp_ingest import _cpu
from bench.promql_range import Client, _field, _samples, collector, remote_write, settle

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
STEP_MS = 15_000
OFFSET_MS = 3_000
HISTORY_MS = 3_600_000
FUTURE_MS = 300_000
GROUPS = 10
QUIET_S = 16.0  # one evaluation interval (15 s) and the longest group evaluation
POLL_S = 4.0
RULES_PER_GROUP = 100
REL_TOL = 1e-6
BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]
SERVICES = [f"svc-{i}" for i in range(10)]
INSTANCES = [f"i-{i}" for i in range(10)]
Series = tuple[dict[str, str], npt.NDArray[np.float64]]


def counter(k: int) -> str:
    return f"bench_requests_{k}_total"


def gauge(k: int) -> str:
    return f"bench_gauge_{k}"


def histogram(k: int) -> str:
    return f"bench_latency_{k}_seconds_bucket"


def dataset(samples: int, seed: int = 20261129) -> list[Series]:
    """The 10,000 series (labels with __name__, one value per 15 s sample), the same for both servers."""
    rng = np.random.default_rng(seed)
    out: list[Series] = []
    for k in range(50):
        for s, service in enumerate(SERVICES):
            for instance in INSTANCES:
                per_step = rng.integers(0, 10 + 3 * s, samples) + np.round(rng.random(samples), 3)
                values: npt.NDArray[np.float64] = np.round(np.cumsum(per_step), 3).astype(np.float64)
                if len(out) % 37 == 5:  # a restart: the counter resets
                    values[samples // 2 :] = np.round(values[samples // 2 :] - values[samples // 2 - 1], 3)
                out.append(({"__name__": counter(k), "service": service, "instance": instance}, values))
    for k in range(40):
        for service in SERVICES:
            for instance in INSTANCES:
                base = rng.uniform(10, 90)
                values = np.round(np.clip(base + rng.normal(0, 6, samples), 0, 100), 3).astype(np.float64)
                out.append(({"__name__": gauge(k), "service": service, "instance": instance}, values))
    limits = np.array([math.inf if b == "+Inf" else float(b) for b in BUCKETS])
    for k in range(10):
        for service in SERVICES:
            draws = np.sort(rng.gamma(2.0, rng.uniform(0.01, 0.3), 20_000))
            cdf = np.searchsorted(draws, limits, side="right") / len(draws)
            pvals = np.diff(np.r_[0.0, cdf])
            pvals[-1] = max(0.0, 1.0 - pvals[:-1].sum())
            counts = rng.multinomial(rng.poisson(20, samples), pvals)
            cumulative = np.cumsum(np.cumsum(counts, axis=1), axis=0).astype(np.float64)
            for j, le in enumerate(BUCKETS):
                out.append(({"__name__": histogram(k), "service": service, "le": le}, cumulative[:, j]))
    return out


_SELECTOR = re.compile(r"(bench_[a-z0-9_]+)(\{[^}]*\})?")


def distinct(expr: str, tag: str) -> str:
    """The expression with `rule!="<tag>"` added to each bench selector: the same series (no series has a
    `rule` label), a text no other rule shares, so no sub-expression is evaluated once for several rules."""

    def tagged(m: re.Match[str]) -> str:
        inner = (m.group(2) or "{}")[1:-1]
        return f'{m.group(1)}{{{inner + "," if inner else ""}rule!="{tag}"}}'

    return _SELECTOR.sub(tagged, expr)


def rules() -> list[list[str]]:
    """10 groups of 100 alerting expressions; group g watches counters 5g.., gauges 4g.., histogram g."""
    groups = []
    for g in range(GROUPS):
        c = [counter(5 * g + i) for i in range(5)]
        v = [gauge(4 * g + i) for i in range(4)]
        h = histogram(g)
        exprs = [
            f'rate({c[i]}{{service="{SERVICES[j]}"}}[5m]) > {0.3 + 0.1 * j:.1f}' for i in range(5) for j in range(5)
        ]
        exprs += [f"sum by (service) (rate({name}[5m])) > {t}" for name in c for t in (6, 9, 12, 15)]
        exprs += [
            f'sum by (service) (rate({name}{{instance=~"i-[0-2]"}}[5m])) / sum by (service) (rate({name}[5m])) > {t}'
            for name in c
            for t in (0.32, 0.4)
        ]
        exprs += [f"{name} > {t}" for name in v for t in (85, 95)]
        exprs += [f'{name}{{service="{SERVICES[j]}"}} > 80' for name in v for j in (g % 10, (g + 3) % 10)]
        exprs += [f"avg({name}) by (service) > 60" for name in v]
        exprs += [f"avg_over_time({name}[10m]) > {t}" for name in v for t in (75, 85)]
        exprs += [f"max_over_time({name}[15m]) > 99" for name in v[:2]]
        exprs += [
            f"histogram_quantile({q}, sum by (service, le) (rate({h}[5m]))) > {t}"
            for q in (0.9, 0.99)
            for t in (0.2, 0.4, 0.6, 0.8, 1.0)
        ]
        exprs += [f'absent({name}{{service="{SERVICES[g]}"}})' for name in v] + [f'absent(up{{job="bench-{g}"}})']
        assert len(exprs) == RULES_PER_GROUP, len(exprs)
        groups.append(exprs)
    return groups


def rule_file(groups: list[list[str]]) -> str:
    doc = {
        "groups": [
            {
                "name": f"bench-{g}",
                "interval": "15s",
                "rules": [
                    {"alert": f"Bench{g}_{i}", "expr": expr, "for": "1m", "labels": {"severity": "warning"}}
                    for i, expr in enumerate(exprs)
                ],
            }
            for g, exprs in enumerate(groups)
        ]
    }
    return json.dumps(doc, indent=1)  # JSON is YAML


def remote_write_bodies(series: list[Series], times: npt.NDArray[np.int64], per_body: int = 20) -> list[bytes]:
    """Snappy-compressed WriteRequests, oldest first, each holding every series for `per_body` samples."""
    label_parts = [
        b"".join(_field(1, _field(1, k.encode()) + _field(2, v.encode())) for k, v in sorted(labels.items()))
        for labels, _ in series
    ]
    bodies = []
    for lo in range(0, len(times), per_body):
        hi = min(len(times), lo + per_body)
        request = b"".join(
            _field(1, labels + _samples(values[lo:hi], times[lo:hi]))
            for labels, (_, values) in zip(label_parts, series, strict=True)
        )
        bodies.append(bytes(cramjam.snappy.compress_raw(request)))
    return bodies


def wait_visible(url: str, at_ms: int, expected: int, timeout_s: float = 300.0) -> None:
    """Until an instant query counts every series (each has a sample in the last 5 minutes at `at_ms`)."""
    client = Client(url)
    seen = None
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            status, body = client.get("/api/v1/query", {"query": 'count({__name__=~"bench_.*"})', "time": at_ms / 1000})
            if status == 200:
                result = json.loads(body)["data"]["result"]
                seen = int(float(result[0]["value"][1])) if result else 0
                if seen == expected:
                    return
            time.sleep(1.0)
    finally:
        client.close()
    raise RuntimeError(f"{url}: {seen} series visible, expected {expected}")


class Reconnecting(Client):
    """A keep-alive client that reconnects once when the server closed an idle connection (uvicorn does
    after 5 s, and rounds are 15 s apart)."""

    def get(self, path: str, params: dict[str, Any]) -> tuple[int, bytes]:
        try:
            return super().get(path, params)
        except (ConnectionError, http.client.HTTPException):
            self.conn.close()
            return super().get(path, params)

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        try:
            return super().post(path, body, headers)
        except (ConnectionError, http.client.HTTPException):
            self.conn.close()
            return super().post(path, body, headers)


class RulePoller:
    """Polls Prometheus' /api/v1/rules in a thread: per group, every (lastEvaluation, evaluationTime) seen."""

    def __init__(self, url: str) -> None:
        self.client = Reconnecting(url)
        self.evaluations: dict[str, dict[str, float]] = {}  # group -> lastEvaluation -> seconds
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            status, body = self.client.get("/api/v1/rules", {"type": "alert"})
            if status == 200:
                with self.lock:
                    for group in json.loads(body)["data"]["groups"]:
                        if not group["lastEvaluation"].startswith("0001"):
                            seen = self.evaluations.setdefault(group["name"], {})
                            seen[group["lastEvaluation"]] = float(group["evaluationTime"])
            self.stop.wait(POLL_S)

    def latest(self, after: float) -> dict[str, str] | None:
        """Each group's latest evaluation time (RFC 3339) if every group has one after `after` (Unix s)."""
        with self.lock:
            out = {}
            for g in range(GROUPS):
                times = [t for t in self.evaluations.get(f"bench-{g}", {}) if unix_s(t) > after]
                if not times:
                    return None
                out[f"bench-{g}"] = max(times, key=unix_s)
            return out

    def round_within(self, lo: float, hi: float) -> float | None:
        """The summed evaluation time (ms) of each group's first evaluation that started and ended in
        [lo, hi] (Unix s); None unless every group has one."""
        total = 0.0
        with self.lock:
            for g in range(GROUPS):
                inside = sorted(
                    (unix_s(t), s) for t, s in self.evaluations.get(f"bench-{g}", {}).items() if lo <= unix_s(t)
                )
                inside = [(t, s) for t, s in inside if t + s <= hi]
                if not inside:
                    return None
                total += inside[0][1]
        return total * 1000

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.client.close()


def unix_s(rfc3339: str) -> float:
    """Unix seconds of Go's RFC 3339 with nanoseconds ("2026-11-29T14:10:00.123456789Z"), to the ms."""
    head, _, frac = rfc3339.rstrip("Z").partition(".")
    whole = datetime.fromisoformat(head + "+00:00").timestamp()
    return round(whole + float("0." + (frac or "0")), 3)


def our_round(client: Client, groups: list[list[str]], at: dict[str, str], how: str) -> tuple[float, list[Any]]:
    """Every group at its Prometheus evaluation time, one way; (summed ms, the answers per group)."""
    total = 0.0
    answers: list[Any] = []
    for g, exprs in enumerate(groups):
        when = unix_s(at[f"bench-{g}"])
        if how == "batch":
            body = json.dumps({"time": when, "queries": exprs}).encode()
            started = time.perf_counter()
            status, text = client.post("/api/obs/query_batch", body, {"Content-Type": "application/json"})
            total += time.perf_counter() - started
            if status != 200:
                raise RuntimeError(f"query_batch: {status} {text[:300]!r}")
            answers.append(text)
        else:
            texts = []
            for expr in exprs:
                started = time.perf_counter()
                status, text = client.get("/api/v1/query", {"query": expr, "time": when})
                total += time.perf_counter() - started
                texts.append(text)
            answers.append(texts)
    return total * 1000, answers


class _Discard:
    """The bench's notifier: notifications are not what is measured (alerting.model.Notifier)."""

    def notify(self, alerts: Any, now: float) -> None:
        pass


def engine_rounds(url: str, rules_path: Path, state_dir: Path) -> Any:
    """Our real RuleEngine (batched queries, ALERTS remote-written back) over the collector at `url`.

    Returns (engine, groups, closer). The groups are the same rule file Prometheus loads.
    """
    from alerting.engine import RuleEngine
    from alerting.querier import HttpQuerier
    from alerting.remote_write import RemoteWriteSender
    from alerting.rulefile import load_rule_files
    from alerting.state_store import StateStore
    from alerting.template import render

    groups = load_rule_files([rules_path], 15.0)
    querier = HttpQuerier(url, timeout_s=60)
    writer = RemoteWriteSender(f"{url}/api/v1/write")
    store = StateStore(state_dir)
    engine = RuleEngine(
        groups, querier, _Discard(), store, render=render, write_samples=writer, query_many=querier.query_many
    )

    def close() -> None:
        querier.close()
        writer.close()
        store.close()

    return engine, groups, close


def engine_round(engine: Any, groups: Any, at: dict[str, str]) -> tuple[float, int]:
    """Every group evaluated by the engine at its Prometheus evaluation time; (summed ms, unhealthy rules)."""
    total = 0.0
    for group in groups:
        started = time.perf_counter()
        engine.evaluate_group(group, unix_s(at[group.name]))
        total += time.perf_counter() - started
    unhealthy = sum(r["health"] != "ok" for g in engine.rule_groups() for r in g["rules"])
    return total * 1000, unhealthy


def check(
    prometheus: Client, groups: list[list[str]], at: dict[str, str], batch: list[bytes], single: list[list[bytes]]
) -> dict[str, Any]:
    """Batch results against single queries (exact) and against Prometheus' answers (same series, values)."""
    same_as_single = agrees = 0
    worst = 0.0
    disagreeing: list[str] = []
    for g, exprs in enumerate(groups):
        results = json.loads(batch[g])["data"]["results"]
        when = unix_s(at[f"bench-{g}"])
        for expr, ours, alone in zip(exprs, results, single[g], strict=True):
            same_as_single += ours == json.loads(alone)
            _, text = prometheus.get("/api/v1/query", {"query": expr, "time": when})
            theirs = json.loads(text)
            ok, diff = _agree(ours, theirs)
            agrees += ok
            worst = max(worst, diff)
            if not ok and len(disagreeing) < 5:
                disagreeing.append(expr)
    total = sum(len(e) for e in groups)
    return {
        "rules": total,
        "batch_equals_single": same_as_single,
        "agrees_with_prometheus": agrees,
        "max_rel_diff": worst,
        "disagreeing_examples": disagreeing,
    }


def _agree(ours: dict[str, Any], theirs: dict[str, Any]) -> tuple[bool, float]:
    if ours.get("status") != "success" or theirs.get("status") != "success":
        return ours.get("status") == theirs.get("status"), 0.0

    def index(doc: dict[str, Any]) -> dict[tuple[tuple[str, str], ...], float]:
        return {tuple(sorted(s["metric"].items())): float(s["value"][1]) for s in doc["data"]["result"]}

    a, b = index(ours), index(theirs)
    if a.keys() != b.keys():
        return False, 0.0
    worst = 0.0
    for key, x in a.items():
        y = b[key]
        if x != y and not (math.isnan(x) and math.isnan(y)):
            worst = max(worst, abs(x - y) / max(abs(x), abs(y)))
    return worst <= REL_TOL, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed rounds (batch and Prometheus), after a warm-up")
    parser.add_argument("--single-runs", type=int, default=3, help="timed rounds of one query per rule")
    parser.add_argument(
        "--distinct",
        action="store_true",
        help="make every rule's selectors distinct (no shared sub-expressions); to alerting_eval_distinct.json",
    )
    args = parser.parse_args()
    from tests.peers import prometheus_peer

    start_ms = int(time.time()) // 15 * 15 * 1000
    times = start_ms - HISTORY_MS + OFFSET_MS + np.arange((HISTORY_MS + FUTURE_MS) // STEP_MS, dtype=np.int64) * STEP_MS
    print(f"generating 10,000 series x {len(times)} samples...", flush=True)
    series = dataset(len(times))
    groups = rules()
    if args.distinct:
        groups = [[distinct(e, f"{g}_{i}") for i, e in enumerate(exprs)] for g, exprs in enumerate(groups)]
    bodies = remote_write_bodies(series, times)
    load_s: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="obs-bench-alerting-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        for sub in ("c", "p"):
            (work / sub).mkdir()
        (work / "p" / "rules.yml").write_text(rule_file(groups))
        config = (
            f"global: {{scrape_interval: 1h, evaluation_interval: 15s}}\nrule_files: ['{work / 'p' / 'rules.yml'}']\n"
        )
        prom_url, peer = stack.enter_context(prometheus_peer(config, work / "p"))
        assert peer.proc is not None
        ours_url, ours_pid = stack.enter_context(collector(work / "c"))
        prom_proc, ours_proc = psutil.Process(peer.proc.pid), psutil.Process(ours_pid)
        for name, url in (("prometheus", prom_url), ("collector", ours_url)):
            started = time.monotonic()
            remote_write(url, bodies)
            wait_visible(url, start_ms, len(series))
            load_s[name] = round(time.monotonic() - started, 1)
            print(f"{name} loaded in {load_s[name]} s", flush=True)
        settled = settle({"collector": ours_pid, "prometheus": peer.proc.pid}, timeout_s=30)
        print(f"settled after {settled} s", flush=True)
        poller = stack.enter_context(closing(RulePoller(prom_url)))
        ours = Reconnecting(ours_url)
        prometheus = Reconnecting(prom_url)
        # Turns: one evaluation interval with Prometheus alone (every group evaluates once in it; its
        # evaluation times and CPU are taken from that window only), then our batch round and, in the
        # first `single_runs` turns, our single-query round. Ours are at the timestamps of Prometheus'
        # latest evaluation of each group before the turns; one batch round first, not counted, warms
        # the collector's label cache as Prometheus' index is warm.
        at = _wait_round(poller, time.time() - 20)
        our_round(ours, groups, at, "batch")
        engine, engine_groups, close_engine = engine_rounds(ours_url, work / "p" / "rules.yml", work / "state")
        stack.callback(close_engine)
        engine_round(engine, engine_groups, at)  # warm, as the batch round above
        engine_ms: list[float] = []
        unhealthy: list[int] = []
        prom_rounds: list[float] = []
        prom_cpu: list[float] = []
        batch_ms: list[float] = []
        batch_cpu: list[float] = []
        single_ms: list[float] = []
        answers: dict[str, list[Any]] = {}
        for turn in range(args.runs):
            lo, cpu = time.time(), _cpu(prom_proc)
            time.sleep(QUIET_S)
            hi = time.time()
            prom_cpu.append(round((_cpu(prom_proc) - cpu) * 1000, 1))
            time.sleep(POLL_S + 0.5)  # until the poller has seen the window's last evaluation
            summed = poller.round_within(lo, hi)
            if summed is not None:
                prom_rounds.append(round(summed, 2))
            cpu = _cpu(ours_proc)
            elapsed, answers["batch"] = our_round(ours, groups, at, "batch")
            batch_cpu.append(round((_cpu(ours_proc) - cpu) * 1000, 1))
            batch_ms.append(round(elapsed, 2))
            elapsed, bad = engine_round(engine, engine_groups, at)
            engine_ms.append(round(elapsed, 2))
            unhealthy.append(bad)
            if turn < args.single_runs:
                elapsed, answers["single"] = our_round(ours, groups, at, "single")
                single_ms.append(round(elapsed, 2))
            print(f"turn {turn}: prometheus {prom_rounds[-1:]} ms, batch {batch_ms[-1]} ms, "
                  f"engine {engine_ms[-1]} ms, single {single_ms[-1:]} ms", flush=True)  # fmt: skip
        if "single" not in answers:
            answers["single"] = our_round(ours, groups, at, "single")[1]
        checked = check(prometheus, groups, at, answers["batch"], answers["single"])
        print(f"answers checked: {checked}", flush=True)
        ours.close()
        prometheus.close()
    summary = summarize(prom_rounds, batch_ms, single_ms, checked, load_s)
    # The alerting service's own round: RuleEngine with the batch seam, rule state, ALERTS written back.
    summary["collector_engine_round_ms"] = statistics.median(engine_ms)
    summary["ratio_engine_vs_prometheus"] = round(statistics.median(engine_ms) / summary["prometheus_round_ms"], 3)
    summary["collector_engine_rounds_ms"] = engine_ms
    summary["engine_unhealthy_rules"] = unhealthy
    summary["prometheus_cpu_ms_per_window"] = prom_cpu
    summary["collector_cpu_ms_per_batch_round"] = batch_cpu
    summary["prometheus_cpu_ms_per_window_median"] = statistics.median(prom_cpu)
    summary["collector_cpu_ms_per_batch_round_median"] = statistics.median(batch_cpu)
    RESULTS.mkdir(parents=True, exist_ok=True)
    summary["distinct_rules"] = args.distinct
    name = "alerting_eval_distinct.json" if args.distinct else "alerting_eval.json"
    (RESULTS / name).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


def _wait_round(poller: RulePoller, after: float, timeout_s: float = 60.0) -> dict[str, str]:
    """Every group's newest evaluation once each has one after `after` (Unix s)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        at = poller.latest(after)
        if at is not None:
            return at
        time.sleep(0.2)
    raise RuntimeError("Prometheus did not evaluate every group in time")


def summarize(
    prom_rounds: list[float],
    batch_ms: list[float],
    single_ms: list[float],
    checked: dict[str, Any],
    load_s: dict[str, float],
) -> dict[str, Any]:
    prom = statistics.median(prom_rounds)
    batch = statistics.median(batch_ms)
    single = statistics.median(single_ms)
    return {
        "prometheus_round_ms": round(prom, 2),
        "collector_batch_round_ms": round(batch, 2),
        "collector_single_round_ms": round(single, 2),
        "ratio_batch_vs_prometheus": round(batch / prom, 3),
        "ratio_single_vs_prometheus": round(single / prom, 3),
        "prometheus_rounds_ms": prom_rounds,
        "collector_batch_rounds_ms": batch_ms,
        "collector_single_rounds_ms": single_ms,
        "check": checked,
        "rules": GROUPS * RULES_PER_GROUP,
        "groups": GROUPS,
        "series": 10_000,
        "load_s": load_s,
        "note": "Prometheus: the sum of its groups' evaluationTime per round (its own evaluation, alert state "
        "included), in windows where it ran alone; collector: client-side wall time of the HTTP requests per "
        "round, groups one after another. CPU: Prometheus' whole process over a 16 s window (one round plus "
        "its other work), the collector's over one batch round",
        "command": "python -m bench.alerting_eval " + " ".join(sys.argv[1:]),
    }


if __name__ == "__main__":
    main()
