"""The collector's in-memory head of recent samples, as a process: answers equal to the store's, acknowledged
samples still there after a kill -9 (the head is loaded back from the store), and its size on /metrics.

Line protocol writes go in through the real HTTP API; the same data directory is then served by a
collector with the head switched off (`OBS_STORAGE__HEAD_WINDOW=0`), whose answers come from the store.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import make_collector

QUERIES = [
    "sum by (host) (rate(cpu_busy[5m]))",
    'cpu_busy{host=~"h[12]"}',
    "max_over_time(cpu_busy[10m])",
    "count(cpu_busy)",
]


def _write(url: str, now_s: int) -> None:
    # 3 hosts x 40 minutes, one point every 15 s, ending now: all within the head's 2 h window.
    lines = [
        f"cpu,host=h{h} busy={(k * 7 + h) % 23 + k / 10} {(now_s - 2400 + k * 15) * 10**9}"
        for h in range(3)
        for k in range(161)
    ]
    r = httpx.post(f"{url}/write", params={"db": "test"}, content="\n".join(lines), timeout=30)
    assert r.status_code == 204, r.text


def _range(url: str, query: str, start: int, end: int) -> Any:
    r = httpx.get(
        f"{url}/api/v1/query_range", params={"query": query, "start": start, "end": end, "step": 30}, timeout=30
    )
    body = r.json()
    assert body["status"] == "success", body
    return sorted((tuple(sorted(s["metric"].items())), s["values"]) for s in body["data"]["result"])


def _head_samples(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    line = next(x for x in text.splitlines() if x.startswith("obs_head_samples "))
    return float(line.split()[1])


def test_head_answers_as_the_store_and_survives_kill_9(tmp_path: Path) -> None:
    now_s = int(time.time())
    (tmp_path / "with-head").mkdir()
    (tmp_path / "store-only").mkdir()
    c = make_collector(tmp_path / "with-head")
    c.start()
    try:
        _write(c.url, now_s)
        assert _head_samples(c.url) == 3 * 161
        start, end = now_s - 2100, now_s
        from_head = {q: _range(c.url, q, start, end) for q in QUERIES}
        assert all(from_head.values())
        c.kill9()
        c.start()  # the head is loaded back from the store before the collector is ready
        assert _head_samples(c.url) == 3 * 161
        assert {q: _range(c.url, q, start, end) for q in QUERIES} == from_head
    finally:
        c.stop()

    store_only = make_collector(tmp_path / "store-only", OBS_STORAGE__HEAD_WINDOW="0")
    store_only.env["OBS_STORAGE__DATA_DIR"] = c.env["OBS_STORAGE__DATA_DIR"]
    store_only.start()
    try:
        assert "obs_head_samples " not in httpx.get(f"{store_only.url}/metrics", timeout=10).text
        assert {q: _range(store_only.url, q, start, end) for q in QUERIES} == from_head
    finally:
        store_only.stop()
