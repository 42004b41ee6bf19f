"""The line-protocol pusher: bounded pending points, drops counted, bounded close with nothing listening."""

from __future__ import annotations

import time

import pytest

from agents.config import load_config
from agents.push import MetricsPusher, count_points
from agents.stats import AgentStats
from tests.conftest import free_port


@pytest.mark.parametrize(
    ("data", "n"),
    [(b"m f=1 1\nm f=2 2", 2), ("m f=1\n\n", 1), (b"", 0), ('a,t=x f=1i\nb g=true\nc h="s"\n', 3)],
)
def test_count_points(data: bytes | str, n: int) -> None:
    assert count_points(data) == n


def test_pending_points_are_bounded_and_drops_counted() -> None:
    config = load_config(
        "shop",
        environ={"OBS_METRICS_PUSH_URL": f"http://127.0.0.1:{free_port()}"},  # nothing listens
        push_max_pending=2,
        shutdown_timeout_s=0.5,
    )
    stats = AgentStats()
    pusher = MetricsPusher(config, stats)
    started = time.monotonic()
    accepted = [pusher.write("orders", {"amount": 9.5, "paid": True}, tags={"region": "eu"}) for _ in range(5)]
    assert time.monotonic() - started < 0.5  # write never waits for the network
    assert accepted == [True, True, False, False, False]
    assert stats.snapshot()["points_dropped_queue_full"] == 3
    assert stats.snapshot()["points_queued"] == 2
    started = time.monotonic()
    pusher.close()
    assert time.monotonic() - started < 3
    snap = stats.snapshot()
    assert snap["points_dropped"] == 5 and snap["points_exported"] == 0 and snap["points_queued"] == 0
    assert pusher.write("orders", {"amount": 1}) is False
    assert stats.snapshot()["points_dropped_shutdown"] >= 1
    time.sleep(1.5)  # influxdb-client may still report the abandoned batch: it must not be counted twice
    assert stats.snapshot()["points_dropped"] == 6


def test_a_point_needs_a_field() -> None:
    pusher = MetricsPusher(load_config("shop", environ={"OBS_METRICS_PUSH_URL": ""}), AgentStats())
    with pytest.raises(ValueError, match="field"):
        pusher.write("orders", {})
