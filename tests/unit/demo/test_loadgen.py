"""Load generator: flags, mix, percentiles, error kinds, and the open-loop schedule against a small shop double."""

from __future__ import annotations

import asyncio
import math
import random

import httpx
import pytest
from loadgen.config import ConfigError, LoadConfig, parse_args, parse_mix
from loadgen.runner import LoadRun
from loadgen.scenarios import Shop
from loadgen.stats import SATURATED, LoadStats, Tally, error_kind, percentile, summary
from opentelemetry import trace


@pytest.mark.parametrize(
    ("text", "mix"),
    [
        ("browse=6,order=3,lookup=1", {"browse": 6.0, "order": 3.0, "lookup": 1.0}),
        ("order=1", {"browse": 0.0, "order": 1.0, "lookup": 0.0}),
        (" browse = 2 , lookup=0.5", {"browse": 2.0, "order": 0.0, "lookup": 0.5}),
    ],
)
def test_parse_mix(text: str, mix: dict[str, float]) -> None:
    assert parse_mix(text.replace(" = ", "=")) == mix


@pytest.mark.parametrize("text", ["browse", "buy=1", "order=x", "order=-1", "order=0", "order=nan"])
def test_bad_mix_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="--mix"):
        parse_mix(text)


def test_args_default_to_a_minute() -> None:
    config = parse_args(["--rate", "2"])
    assert (config.rate, config.duration_s, config.requests, config.gateway) == (
        2.0,
        60.0,
        None,
        "http://127.0.0.1:8080",
    )
    assert parse_args(["--requests", "5"]).duration_s is None


@pytest.mark.parametrize(
    "argv",
    [
        ["--rate", "0"],
        ["--requests", "0"],
        ["--duration", "5", "--requests", "5"],
        ["--gateway", "localhost:8080"],
        ["--concurrency", "0"],
    ],
)
def test_bad_args_exit_with_usage(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_args(argv)
    assert caught.value.code == 2


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, math.nan),
        ([1.0], 99, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
        ([float(i) for i in range(1, 101)], 95, 95.0),
        ([float(i) for i in range(1, 101)], 99, 99.0),
        ([float(i) for i in range(1, 101)], 100, 100.0),
    ],
)
def test_percentile(values: list[float], q: float, expected: float) -> None:
    result = percentile(values, q)
    assert (math.isnan(result) and math.isnan(expected)) or result == expected


@pytest.mark.parametrize(
    ("status", "exception", "kind"),
    [
        (200, None, None),
        (201, None, None),
        (402, None, "402"),
        (502, None, "502"),
        (None, httpx.ReadTimeout("slow"), "timeout"),
        (None, httpx.ConnectError("refused"), "connect"),
        (None, httpx.RemoteProtocolError("eof"), "RemoteProtocolError"),
    ],
)
def test_error_kind(status: int | None, exception: BaseException | None, kind: str | None) -> None:
    assert error_kind(status, exception) == kind


class ScriptedShop(Shop):
    """Answers each scenario with a fixed status after a fixed delay, or raises a transport error."""

    def __init__(self, delay_s: float, status: int = 200, error: httpx.HTTPError | None = None) -> None:
        self.delay_s, self.status, self.error = delay_s, status, error
        self.calls: list[str] = []

    async def run(self, scenario: str) -> httpx.Response:
        self.calls.append(scenario)
        await asyncio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        return httpx.Response(self.status)


def config(**overrides: object) -> LoadConfig:
    fields: dict[str, object] = dict(
        gateway="http://gw",
        api_key="k",
        rate=100.0,
        duration_s=None,
        requests=10,
        mix={"browse": 1.0, "order": 1.0, "lookup": 0.0},
        concurrency=8,
        timeout_s=5.0,
        progress_s=60.0,
        seed=1,
    )
    fields.update(overrides)
    return LoadConfig(**fields)  # type: ignore[arg-type]


def run(cfg: LoadConfig, shop: ScriptedShop) -> tuple[LoadStats, float, list[str]]:
    lines: list[str] = []
    load = LoadRun(cfg, shop, trace.get_tracer("test"), out=lines.append)
    elapsed = asyncio.run(load.run())
    return load.stats, elapsed, lines


def test_requests_follow_the_schedule_and_the_mix() -> None:
    shop = ScriptedShop(0.01)
    stats, elapsed, _ = run(config(), shop)
    assert (stats.sent, stats.total.ok, stats.total.done) == (10, 10, 10)
    assert set(shop.calls) <= {"browse", "order"}  # lookup weighs 0
    assert elapsed >= 9 / 100  # the 10th request is due 90 ms after the first
    rng = random.Random(1)  # the seed makes the sequence of scenarios repeatable
    assert shop.calls == [rng.choices(["browse", "order", "lookup"], [1, 1, 0])[0] for _ in range(10)]


def test_a_full_concurrency_counts_saturated_slots_instead_of_queueing() -> None:
    stats, _, _ = run(config(rate=50.0, requests=5, concurrency=1), ScriptedShop(0.5))
    assert stats.sent == 1
    assert stats.total.errors == {SATURATED: 4}


@pytest.mark.parametrize(
    ("shop", "kind"),
    [(ScriptedShop(0, status=502), "502"), (ScriptedShop(0, error=httpx.ConnectError("refused")), "connect")],
)
def test_errors_are_counted_by_kind(shop: ScriptedShop, kind: str) -> None:
    stats, elapsed, _ = run(config(requests=3), shop)
    assert stats.total.errors == {kind: 3}
    text = summary(stats, elapsed)
    assert "loadgen summary" in text and f"{kind}=3" in text and "100.0%" in text


def test_progress_lines_report_rate_and_latency() -> None:
    _, _, lines = run(config(rate=20.0, requests=10, progress_s=0.2), ScriptedShop(0.01))
    assert lines and all("rate=" in line and "p99=" in line for line in lines)


def test_summary_of_a_tally() -> None:
    stats = LoadStats()
    for latency in (0.010, 0.020, 0.030):
        stats.record("browse", latency, None)
    stats.record("order", 0.5, "402")
    stats.sent = 4
    text = summary(stats, 2.0)
    assert "done 4" in text and "achieved 2.00 req/s" in text
    assert "browse    done=3 ok=3 p50=20.0ms" in text
    assert "25.0% (402=1)" in text
    assert Tally().error_ratio == 0.0
