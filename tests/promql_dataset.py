"""The seeded PromQL dataset, written alike into a real Prometheus 2.42 and a collector, and answer comparison.

Shared by the tests that ask both servers the same thing (the differential test, promtool,
prometheus-api-client, Grafana's requests): `dataset()` is the series, `loaded_servers()` starts both
servers on loopback and remote-writes the dataset into each, `same_answer()` compares two API answers.

Samples sit 3.217 s off the 15 s grid and queries run 7 s after whole minutes, so no sample and no
subquery step falls on a window boundary: Prometheus 2.x includes a sample exactly at the start of a
range window and 3.x (whose semantics the engine follows) does not, and that difference is not what
these tests are about.
"""

from __future__ import annotations

import math
import signal
import struct
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cramjam
import httpx
import numpy as np

from collector.codecs.remote_write import write_request_class
from tests.conftest import make_collector
from tests.peers import prometheus_peer

STEP_MS = 15_000
OFFSET_MS = 3_217
SPAN_MS = 70 * 60_000
# Queries end about two minutes in the past, 7 s after a whole minute: subquery steps (multiples of their
# step) then never fall on a subquery's window start either.
END_MS = (int(time.time()) // 60 - 2) * 60_000 + 7_000
START_MS = END_MS - SPAN_MS
STALE_NAN = struct.unpack("<d", (0x7FF0000000000002).to_bytes(8, "little"))[0]

Labels = dict[str, str]


def dataset() -> list[tuple[Labels, list[tuple[int, float]]]]:
    """The series both servers receive: labels and (timestamp ms, value) samples, ascending."""
    rng = np.random.default_rng(20261129)
    times = [START_MS + OFFSET_MS + i * STEP_MS for i in range(SPAN_MS // STEP_MS)]
    n = len(times)
    out: list[tuple[Labels, list[tuple[int, float]]]] = []

    def add(labels: Labels, values: Any) -> None:
        out.append((labels, [(t, float(v)) for t, v in zip(times, values, strict=False)]))

    for job in ("api", "web"):
        for instance in ("i1", "i2"):
            base = {"job": job, "instance": instance}
            for code in ("200", "500"):
                for method in ("GET", "POST"):
                    # Fractional increments keep rates apart: Prometheus 2.42 breaks ties between equal
                    # values after an aggregation in Go map order, which no other server can reproduce.
                    per_step = rng.integers(0, 40 if code == "200" else 4, n) + np.round(rng.random(n), 3)
                    counter = np.round(np.cumsum(per_step), 3)
                    if (job, instance, code, method) == ("web", "i2", "200", "GET"):
                        counter[n // 2 :] -= counter[n // 2 - 1]  # a restart: the counter resets
                    add({"__name__": "http_requests_total", **base, "code": code, "method": method}, counter)
            observations = rng.gamma(2.0, 0.08, (n, 30))
            bounds = ["0.05", "0.1", "0.25", "0.5", "1", "+Inf"]
            for le in bounds:
                limit = math.inf if le == "+Inf" else float(le)
                add(
                    {"__name__": "http_request_duration_seconds_bucket", **base, "le": le},
                    np.cumsum((observations <= limit).sum(axis=1)),
                )
            add({"__name__": "http_request_duration_seconds_count", **base}, np.cumsum(np.full(n, 30)))
            add(
                {"__name__": "http_request_duration_seconds_sum", **base},
                np.round(np.cumsum(observations.sum(axis=1)), 6),
            )
            add({"__name__": "temperature_celsius", **base}, np.round(15 + np.cumsum(rng.normal(0, 0.5, n)), 3))
            up = np.ones(n)
            if (job, instance) == ("web", "i1"):
                up[n - 40 : n - 10] = 0  # down for a while, then back
            add({"__name__": "up", **base}, up)
            add({"__name__": "version_info", **base, "version": f"1.{len(out) % 3}"}, np.ones(n))
    add({"__name__": "ended_gauge", "job": "batch"}, np.arange(n - 80, dtype=float))  # ends 20 min early
    stale = [float(v) for v in rng.integers(0, 10, n - 40)] + [STALE_NAN]  # then a stale marker, 10 min early
    add({"__name__": "stale_gauge", "job": "batch"}, stale)
    return out


def exemplars(series: list[tuple[Labels, list[tuple[int, float]]]]) -> dict[int, list[tuple[int, float, Labels]]]:
    """Exemplars for some http_requests_total series (by index in `series`): (timestamp ms, value, labels),
    every tenth sample, with a trace id (and on one series a span id too)."""
    out: dict[int, list[tuple[int, float, Labels]]] = {}
    for i, (labels, samples) in enumerate(series):
        if labels["__name__"] == "http_requests_total" and labels["method"] == "GET" and labels["instance"] == "i1":
            out[i] = [
                (
                    t,
                    round(0.05 * k + 0.01 * i, 3),
                    {"trace_id": f"{i:04x}{k:028x}", **({"span_id": f"{k:016x}"} if labels["code"] == "500" else {})},
                )
                for k, (t, _) in enumerate(samples)
                if k % 10 == 0
            ]
    return out


def remote_write_body(series: list[tuple[Labels, list[tuple[int, float]]]], with_exemplars: bool = False) -> bytes:
    req = write_request_class()()
    attached = exemplars(series) if with_exemplars else {}
    for i, (labels, samples) in enumerate(series):
        ts = req.timeseries.add()
        for name, value in sorted(labels.items()):
            ts.labels.add(name=name, value=value)
        for t, v in samples:
            ts.samples.add(value=v, timestamp=t)
        for t, v, ex_labels in attached.get(i, []):
            ex = ts.exemplars.add(value=v, timestamp=t)
            for name, value in sorted(ex_labels.items()):
                ex.labels.add(name=name, value=value)
    return bytes(cramjam.snappy.compress_raw(req.SerializeToString()))


@contextmanager
def loaded_servers(
    workdir: Path, scrape_target: str | None = None, with_exemplars: bool = False
) -> Iterator[tuple[str, str]]:
    """A Prometheus and a collector on loopback holding the dataset; yields (prometheus URL, collector URL).

    With `scrape_target` (host:port), both also scrape that target every second as job `scraped`, so the
    answers that only scraping fills (metadata) can be compared too. With `with_exemplars`, the remote write
    carries `exemplars()` as well, and Prometheus runs with its exemplar storage on."""
    (workdir / "collector").mkdir()
    (workdir / "prometheus").mkdir()
    prom_config = "global:\n  scrape_interval: 15s\n"
    settings: dict[str, str] = {}
    scrape_config = ""
    if scrape_target is not None:
        job = (
            "- job_name: scraped\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            f"  static_configs: [{{targets: ['{scrape_target}']}}]\n"
        )
        scrape_config = prom_config + "scrape_configs:\n" + textwrap.indent(job, "  ")
        (workdir / "obs.yaml").write_text("scrape:\n  jobs:\n" + textwrap.indent(job, "    "))
        settings["OBS_CONFIG"] = str(workdir / "obs.yaml")
    body = remote_write_body(dataset(), with_exemplars)
    headers = {"content-type": "application/x-protobuf", "content-encoding": "snappy"}
    collector = make_collector(workdir / "collector", **settings)
    flags = ["--enable-feature=exemplar-storage"] if with_exemplars else []
    with prometheus_peer(prom_config, workdir / "prometheus", *flags) as (prom_url, peer):
        collector.start()
        try:
            for url in (prom_url, collector.url):
                r = httpx.post(f"{url}/api/v1/write", content=body, headers=headers, timeout=30)
                assert r.status_code in (200, 204), f"{url}: {r.status_code} {r.text}"
            if scrape_config:
                # Only now: a scrape moves Prometheus' head to the present, and the head refuses samples
                # more than an hour older than its newest as out of bounds (the dataset spans 70 minutes).
                (workdir / "prometheus" / "prometheus.yml").write_text(scrape_config)
                assert peer.proc is not None
                peer.proc.send_signal(signal.SIGHUP)
                _wait_for_target(prom_url)
            yield prom_url, collector.url
        finally:
            collector.stop()


def _wait_for_target(prom_url: str, seconds: float = 30) -> None:
    """Until Prometheus has scraped the `scraped` job once after its configuration was reloaded."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        targets = httpx.get(f"{prom_url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        if any(t["labels"].get("job") == "scraped" and t["health"] == "up" for t in targets):
            return
        time.sleep(0.2)
    raise AssertionError(f"Prometheus did not scrape the target within {seconds}s")


def _sample_close(a: Any, b: Any) -> bool:
    """Two sample values (strings) equal within 1e-9 relative, NaN equal to NaN."""
    try:
        x, y = float(a), float(b)
    except ValueError:  # a string result
        return bool(a == b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)


def _series_key(series: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(series.get("metric", {}).items()))


def differences(expected: Any, got: Any, path: str = "", ordered: bool = False) -> list[str]:
    """Where `got` differs from `expected` (Prometheus' answer), as JSON paths; [] when alike.

    Structure, keys, JSON types and strings must be equal; a [time, "value"] pair's value may differ by
    1e-9 relative (summation order). Lists of series ({"metric": ...}) are compared by label set unless
    `ordered`: Prometheus orders an instant vector by evaluation (Go map order after an aggregation)."""
    if isinstance(expected, dict) and isinstance(got, dict):
        out = [f"{path}: keys {sorted(got)} != {sorted(expected)}"] if set(expected) != set(got) else []
        for key in sorted(set(expected) & set(got)):
            out += differences(expected[key], got[key], f"{path}.{key}", ordered)
        return out
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return [f"{path}: {len(got)} items != {len(expected)}: {str(got)[:300]} vs {str(expected)[:300]}"]
        is_series = expected and all(isinstance(s, dict) and "metric" in s for s in expected + got)
        if is_series and not ordered:
            expected, got = sorted(expected, key=_series_key), sorted(got, key=_series_key)
        is_sample = len(expected) == 2 and isinstance(expected[0], int | float) and isinstance(expected[1], str)
        if is_sample and isinstance(got[0], int | float) and isinstance(got[1], str):
            # The time's JSON type too: Prometheus writes whole seconds as integers.
            if type(expected[0]) is not type(got[0]) or expected[0] != got[0] or not _sample_close(expected[1], got[1]):
                return [f"{path}: {got} != {expected}"]
            return []
        out = []
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            out += differences(e, g, f"{path}[{i}]", ordered)
        return out
    if type(expected) is not type(got) or expected != got:
        return [f"{path}: {got!r} != {expected!r}"]
    return []
