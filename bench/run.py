"""Runs every benchmark, then writes bench/RESULTS.md: one table of the latest results/*.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# module -> (result file, the keys shown in the table)
BENCHMARKS = {
    "bench.otlp_ingest": (
        "otlp_ingest.json",
        [
            "acked_spans_per_s",
            "limit_spans_per_s",
            "ratio",
            "c_path_limit_spans_per_s",
            "collector_cpu_s_per_million_spans",
            "collector_peak_rss_mb",
        ],
    ),
    "bench.line_protocol": (
        "line_protocol.json",
        [
            "collector_lines_per_s",
            "influxdb_lines_per_s",
            "victoriametrics_lines_per_s",
            "ratio_vs_influxdb",
            "ratio_vs_victoriametrics",
        ],
    ),
    "bench.remote_write": (
        "remote_write.json",
        [
            "collector_samples_per_s",
            "victoriametrics_samples_per_s",
            "prometheus_samples_per_s",
            "ratio_vs_victoriametrics",
            "ratio_vs_prometheus",
        ],
    ),
    "bench.promql_range": (
        "promql_range.json",
        [
            "sum_rate_1h_ratio_vs_prometheus",
            "sum_rate_24h_ratio_vs_prometheus",
            "quantile_1h_ratio_vs_prometheus",
            "quantile_24h_ratio_vs_prometheus",
        ],
    ),
    "bench.scrape_cost": (
        "scrape_cost.json",
        ["collector_cpu_s_per_million_samples", "prometheus_cpu_s_per_million_samples", "ratio_cpu_vs_prometheus"],
    ),
    "bench.alerting_eval": (
        "alerting_eval.json",
        [
            "prometheus_round_ms",
            "collector_engine_round_ms",
            "collector_batch_round_ms",
            "collector_single_round_ms",
            "ratio_engine_vs_prometheus",
            "ratio_batch_vs_prometheus",
            "ratio_single_vs_prometheus",
        ],
    ),
    "bench.logs_traces": (
        "logs_traces.json",
        [
            "log_lines",
            "spans",
            "otlp_log_lines_per_s",
            "loki_push_lines_per_s",
            "otlp_spans_per_s",
            "trace_by_id_p50_ms",
            "trace_by_id_p99_ms",
            "trace_by_id_p50_under_50ms",
            "log_filter_24h_under_1s",
            "all_agree",
        ],
    ),
}
# Arguments of `make bench`; `python -m bench.run --full` drops them (10M log lines and spans take ~15 min).
REDUCED = {"bench.logs_traces": ["--scale", "0.1"]}


def write_table() -> str:
    lines = ["# Benchmark results", "", "Written by `make bench` (bench/run.py) from `bench/results/*.json`.", ""]
    for module, (name, keys) in BENCHMARKS.items():
        path = BENCH / "results" / name
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        lines += [f"## {module.split('.')[-1]}", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {key} | {data.get(key)} |" for key in keys]
        lines += ["", f"Run: `{data.get('command', 'python -m ' + module)}`", ""]
        runs = data.get("runs")
        if isinstance(runs, list) and all(isinstance(r, dict) and "acked_spans_per_s" in r for r in runs):
            lines += ["Runs: " + ", ".join(str(r["acked_spans_per_s"]) for r in runs), ""]
        queries = data.get("queries", {})
        if queries and all("full_scan_ms" in q for q in queries.values()):  # API beside a full scan
            lines += [
                "| query | API ms | full scan ms | ratio | store ms | full scan / store | agrees | answer |",
                "| --- | --- | --- | --- | --- | --- | --- | --- |",
            ]
            for name, q in queries.items():
                cells = [
                    q[k] for k in ("api_ms", "full_scan_ms", "ratio", "store_ms", "ratio_vs_store", "agrees", "answer")
                ]
                lines.append(f"| {name} | " + " | ".join(str(c) for c in cells) + " |")
            lines.append("")
        elif queries:  # per query: each server's median and the ratios
            lines += ["| query | collector ms | prometheus ms | victoriametrics ms | vs prometheus | vs vm |"]
            lines += ["| --- | --- | --- | --- | --- | --- |"]
            for name, q in data["queries"].items():
                cells = [q.get(k) for k in ("collector_ms", "prometheus_ms", "victoriametrics_ms")]
                cells += [q.get("ratio_vs_prometheus"), q.get("ratio_vs_victoriametrics")]
                lines.append(f"| {name} | " + " | ".join(str(c) for c in cells) + " |")
            lines.append("")
    table = "\n".join(lines)
    (BENCH / "RESULTS.md").write_text(table)
    return table


def main() -> int:
    full = "--full" in sys.argv[1:]
    for module in BENCHMARKS:
        print(f"== {module}", flush=True)
        extra = [] if full else REDUCED.get(module, [])
        code = subprocess.call([sys.executable, "-m", module, *extra], cwd=BENCH.parent)
        if code:
            return code
    print(write_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
