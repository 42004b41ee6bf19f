"""The deadman expressions extension files generate mean the same on the collector's PromQL engine (which the
evaluator queries) as on Prometheus' (tests/integration/test_alerting_promtool.py runs this scenario through
promtool): series seen within the lookback but silent for the interval, per series, per group, or whole."""

from __future__ import annotations

import pytest

from alerting.rule_extensions import deadman_expr
from collector.query.promql.engine import Engine
from collector.query.promql.memory_reader import MemoryReader

MIN = 60_000  # ms


@pytest.fixture(scope="module")
def engine() -> Engine:
    reader = MemoryReader()
    # one sample a minute: a/x until 40m, b/x and a/y until 10m (as the promtool scenario)
    for host, path, last_min in (("a", "x", 40), ("b", "x", 10), ("a", "y", 10)):
        minutes = range(last_min + 1)
        reader.add(
            {"__name__": "pushed_total", "host": host, "path": path},
            [m * MIN for m in minutes],
            [float(m + 1) for m in minutes],
        )
    return Engine(reader)


# last_over_time keeps the metric name, as Prometheus' does (alert labels drop it; templates see it)
NAME = {"__name__": "pushed_total"}
AX, BX, AY = {**NAME, "host": "a", "path": "x"}, {**NAME, "host": "b", "path": "x"}, {**NAME, "host": "a", "path": "y"}


@pytest.mark.parametrize(
    ("by", "at_min", "expected"),
    [
        (None, 12, []),
        (None, 16, [(AY, 11.0), (BX, 11.0)]),  # the value is the last one seen
        (["host"], 16, [({"host": "b"}, 1.0)]),  # host a still pushes a/x
        ([], 16, []),
        (None, 46, [(AX, 41.0)]),  # b/x and a/y: silent longer than the lookback, no longer watched
        (["host"], 46, [({"host": "a"}, 1.0)]),
        ([], 46, [({}, 1.0)]),
        ([], 71, []),
    ],
)
def test_deadman_on_the_collector_engine(
    engine: Engine, by: list[str] | None, at_min: int, expected: list[tuple[dict[str, str], float]]
) -> None:
    expr = deadman_expr("pushed_total", 5 * MIN, 30 * MIN, by)
    got = sorted((sorted(s.labels.items()), s.value) for s in engine.instant(expr, at_min * MIN).vector)
    assert got == sorted((sorted(labels.items()), value) for labels, value in expected)
