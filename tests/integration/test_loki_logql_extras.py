"""The LogQL of issue 6 through a real collector's Loki API: lines sent with Loki push (JSON), queried as
Grafana queries them. Parsers (regexp, pattern, unpack, decolorize), line filters (or, ip(), (?i)),
unwrapped range aggregations with their errors, offset, absent_over_time, the extra vector aggregations,
binary operators and label_replace. Expected values are computed here from the lines sent."""

from __future__ import annotations

import json
import statistics
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import CollectorProcess

S = 1_000_000_000
N = 30


@dataclass
class Pushed:
    service: str
    t0: int
    lines: list[tuple[int, str, str]]  # (ts ns, kind stream label, line)

    def at(self, seconds: int) -> int:
        return self.t0 + seconds * S

    def window(self, kind: str, at: int, range_s: int, offset_s: int = 0) -> list[str]:
        end = at - offset_s * S
        return [line for ts, k, line in self.lines if k == kind and end - range_s * S < ts <= end]


def _line(i: int) -> tuple[str, str]:
    if i % 3 == 0:
        return "access", f'10.0.{i}.7 - - [29/Nov/2026] "GET /p{i % 2} HTTP/1.1" {(200, 500)[i % 2]} {i * 100}'
    if i % 3 == 1:
        return "json", json.dumps({"_entry": f"\x1b[32mdone\x1b[0m job {i}", "team": f"t{i % 2}", "n": i})
    return "logfmt", f"path=/p{i % 2} latency={i * 7}ms size={i}KiB"


@pytest.fixture(scope="module")
def pushed(collector: CollectorProcess) -> Pushed:
    service = f"logql-extra-{uuid.uuid4().hex[:8]}"
    t0 = (time.time_ns() // S - 300) * S
    lines = [(t0 + i * S, *_line(i)) for i in range(N)]
    streams: dict[str, list[list[str]]] = {}
    for ts, kind, line in lines:
        streams.setdefault(kind, []).append([str(ts), line])
    doc = {"streams": [{"stream": {"service_name": service, "kind": k}, "values": v} for k, v in streams.items()]}
    r = httpx.post(f"{collector.url}/loki/api/v1/push", json=doc, timeout=30)
    assert r.status_code == 204, r.text
    return Pushed(service, t0, lines)


def _query(c: CollectorProcess, p: Pushed, query: str, at_s: int = N) -> httpx.Response:
    text = query.replace("SVC", p.service)
    return httpx.get(f"{c.url}/loki/api/v1/query", params={"query": text, "time": str(p.at(at_s))}, timeout=30)


def _vector(c: CollectorProcess, p: Pushed, query: str, at_s: int = N) -> dict[tuple[tuple[str, str], ...], float]:
    r = _query(c, p, query, at_s)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["resultType"] == "vector"
    return {tuple(sorted(s["metric"].items())): float(s["value"][1]) for s in data["result"]}


def _streams(c: CollectorProcess, p: Pushed, query: str) -> list[tuple[int, str, dict[str, str]]]:
    params = {
        "query": query.replace("SVC", p.service),
        "start": str(p.t0),
        "end": str(p.at(N + 1)),
        "limit": "1000",
        "direction": "forward",
    }
    r = httpx.get(f"{c.url}/loki/api/v1/query_range", params=params, timeout=30)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["resultType"] == "streams"
    return sorted((int(ts), line, s["stream"]) for s in data["result"] for ts, line in s["values"])


def _labels(kind: str, p: Pushed, **extra: str) -> dict[str, str]:
    return {"service_name": p.service, "kind": kind, **extra}


def test_pattern_and_regexp(collector: CollectorProcess, pushed: Pushed) -> None:
    got = _streams(
        collector,
        pushed,
        '{service_name="SVC", kind="access"} | pattern `<ip> - - [<_>] "<method> <path> <_>" <status> <size>`'
        ' | status >= 500 | regexp "^(?P<net>\\\\d+\\\\.\\\\d+)\\\\."',
    )
    want = []
    for ts, kind, line in pushed.lines:
        if kind != "access":
            continue
        ip, rest = line.split(" - - ")
        method, path = rest.split('"')[1].split()[:2]
        status, size = rest.split('" ')[1].split()
        if int(status) >= 500:
            fields = {"ip": ip, "method": method, "path": path, "status": status, "size": size}
            want.append((ts, line, _labels(kind, pushed, **fields, net=".".join(ip.split(".")[:2]))))
    assert want
    assert got == want


def test_unpack_and_decolorize(collector: CollectorProcess, pushed: Pushed) -> None:
    got = _streams(collector, pushed, '{service_name="SVC", kind="json"} | unpack | decolorize | team="t1"')
    want = []
    for ts, kind, line in pushed.lines:
        doc = json.loads(line) if kind == "json" else {}
        if doc.get("team") == "t1":
            entry = doc["_entry"].replace("\x1b[32m", "").replace("\x1b[0m", "")
            want.append((ts, entry, _labels(kind, pushed, team="t1")))
    assert want
    assert got == want


@pytest.mark.parametrize(
    ("filters", "keep"),
    [
        ('|= "/p1 " or "job 4"', lambda line: "/p1 " in line or "job 4" in line),
        ('!= "/p1" or "job"', lambda line: "/p1" not in line and "job" not in line),
        ('|= ip("10.0.0.0/16")', lambda line: line.split(".")[0] == "10" and line.split(".")[1] == "0"),
        ('|= ip("10.0.3.0-10.0.12.255")', lambda line: line.startswith("10.0.") and 3 <= int(line.split(".")[2]) <= 12),
        ('|~ "(?i)GET /P1"', lambda line: "get /p1" in line.lower()),
        ("|~ `latency=\\d{3}ms`", lambda line: any(f"latency={n}ms" in line for n in range(100, 1000))),
    ],
)
def test_line_filters(collector: CollectorProcess, pushed: Pushed, filters: str, keep: Any) -> None:
    got = [line for _ts, line, _labels in _streams(collector, pushed, '{service_name="SVC"} ' + filters)]
    want = [line for _ts, _kind, line in pushed.lines if keep(line)]
    assert want
    assert got == want


def _latencies(p: Pushed, at_s: int, range_s: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for line in p.window("logfmt", p.at(at_s), range_s):
        fields = dict(pair.split("=") for pair in line.split())
        out.setdefault(fields["path"], []).append(int(fields["latency"][:-2]) / 1000)
    return out


def test_unwrapped_range_aggregations(collector: CollectorProcess, pushed: Pushed) -> None:
    sel = '{service_name="SVC", kind="logfmt"} | logfmt'
    lat = _latencies(pushed, N, 20)
    got = _vector(collector, pushed, f"quantile_over_time(0.5, {sel} | unwrap duration(latency) [20s]) by (path)")
    assert got == pytest.approx({(("path", p),): statistics.median(v) for p, v in lat.items()})
    got = _vector(collector, pushed, f"sum by (path) (sum_over_time({sel} | unwrap bytes(size) [20s]))")
    sizes: dict[str, float] = {}
    for line in pushed.window("logfmt", pushed.at(N), 20):
        fields = dict(pair.split("=") for pair in line.split())
        sizes[fields["path"]] = sizes.get(fields["path"], 0) + int(fields["size"][:-3]) * 1024
    assert got == {(("path", p),): v for p, v in sizes.items()}
    lat_earlier = _latencies(pushed, N - 10, 20)
    got = _vector(collector, pushed, f"max_over_time({sel} | unwrap duration(latency) [20s] offset 10s) by (path)")
    assert got == pytest.approx({(("path", p),): max(v) for p, v in lat_earlier.items()})


def test_sample_extraction_errors(collector: CollectorProcess, pushed: Pushed) -> None:
    sel = '{service_name="SVC", kind="logfmt"} | logfmt'
    r = _query(collector, pushed, f"sum(sum_over_time({sel} | unwrap latency [20s]))")
    assert r.status_code == 400
    assert "pipeline error: 'SampleExtractionErr'" in r.text
    assert _vector(collector, pushed, f'sum(sum_over_time({sel} | unwrap latency | __error__="" [20s]))') == {}


def test_metric_operators(collector: CollectorProcess, pushed: Pushed) -> None:
    counts = {k: float(len(pushed.window(k, pushed.at(N), 15))) for k in ("access", "json", "logfmt")}
    by_kind = 'sum by (kind) (count_over_time({service_name="SVC"}[15s]))'
    assert _vector(collector, pushed, f"{by_kind} / 2 > bool 2") == {
        (("kind", k),): float(n / 2 > 2) for k, n in counts.items()
    }
    r = _query(collector, pushed, f"sort_desc(bottomk(2, {by_kind}))")
    order = [float(s["value"][1]) for s in r.json()["data"]["result"]]
    assert order == sorted(sorted(counts.values())[:2], reverse=True)
    got = _vector(collector, pushed, f'label_replace({by_kind}, "short", "$1", "kind", "(.).*") unless {by_kind} < 0')
    assert got == {(("kind", k), ("short", k[0])): n for k, n in counts.items()}
    stats = _vector(collector, pushed, f"stddev({by_kind})")
    assert stats == {(): pytest.approx(statistics.pstdev(counts.values()))}
    absent = _vector(collector, pushed, 'absent_over_time({service_name="SVC", kind="none"}[15s])')
    assert absent == {(("kind", "none"), ("service_name", pushed.service)): 1.0}


def test_templates_with_functions(collector: CollectorProcess, pushed: Pushed) -> None:
    got = _streams(
        collector,
        pushed,
        '{service_name="SVC", kind="logfmt"} | logfmt | label_format slow=`{{ if gt (.latency | duration) 0.1 }}'
        'yes{{ else }}no{{ end }}` | line_format `{{ .path | trimPrefix "/" | upper }} {{ .size | bytes }}`'
        " | keep slow",
    )
    want = []
    for ts, kind, line in pushed.lines:
        if kind != "logfmt":
            continue
        fields = dict(pair.split("=") for pair in line.split())
        slow = "yes" if int(fields["latency"][:-2]) / 1000 > 0.1 else "no"
        text = f"{fields['path'][1:].upper()} {int(fields['size'][:-3]) * 1024}"
        want.append((ts, text, {"slow": slow}))
    assert {labels["slow"] for _ts, _line, labels in want} == {"yes", "no"}
    assert got == want


def test_vector_matching_offset_and_ip_labels(collector: CollectorProcess, pushed: Pushed) -> None:
    access = '{service_name="SVC", kind="access"} | pattern `<_> [<_>] "<_>" <status> <_>` | keep kind, status'
    per_status = f"sum by (kind, status) (count_over_time({access} [20s]))"
    per_kind = 'sum by (kind) (count_over_time({service_name="SVC"}[20s]))'
    lines = pushed.window("access", pushed.at(N), 20)
    total = float(len(lines))
    statuses: dict[str, float] = {}
    for line in lines:
        status = line.split('" ')[1].split()[0]
        statuses[status] = statuses.get(status, 0) + 1
    got = _vector(collector, pushed, f"{per_status} / on (kind) group_left {per_kind}")
    assert got == pytest.approx({(("kind", "access"), ("status", s)): n / total for s, n in statuses.items()})
    # an offset on a sum the store counts itself
    shifted = _vector(collector, pushed, 'sum(count_over_time({service_name="SVC"}[10s] offset 15s))')
    assert shifted == {
        (): float(sum(len(pushed.window(k, pushed.at(N), 10, 15)) for k in ("access", "json", "logfmt")))
    }
    inside = _streams(
        collector,
        pushed,
        '{service_name="SVC", kind="access"} | pattern "<addr> <_>" | addr = ip("10.0.0.0-10.0.9.255") | keep kind',
    )
    want = [line for _ts, k, line in pushed.lines if k == "access" and int(line.split(".")[2]) <= 9]
    assert want
    assert [line for _ts, line, _labels in inside] == want
