"""Loki's parameter parsing (times, steps, limits, direction) and answer shapes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from collector.api.loki_wire import (
    BadRequest,
    default_step_ns,
    metric_response,
    parse_direction,
    parse_duration_or_seconds,
    parse_limit,
    parse_time,
    streams_response,
)
from collector.query.logql.engine import MetricResult, StreamsResult
from collector.query.promql.values import QueryResult, Sample, SeriesResult

S = 1_000_000_000


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1700000000", 1_700_000_000 * S),  # at most 10 digits: seconds
        ("1700000000123456789", 1_700_000_000_123_456_789),  # nanoseconds, as Grafana sends
        ("1700000000.5", 1_700_000_000 * S + 500_000_000),
        ("2023-11-14T22:13:20Z", 1_700_000_000 * S),
        ("2023-11-14T22:13:20.25+00:00", 1_700_000_000 * S + 250_000_000),
        ("", 42),
    ],
)
def test_parse_time(text: str, ns: int) -> None:
    assert parse_time(text, 42, "start") == ns


def test_parse_time_refuses_garbage() -> None:
    with pytest.raises(BadRequest, match="start"):
        parse_time("yesterday", 0, "start")


@pytest.mark.parametrize(
    ("text", "ns"),
    # Grafana sends Go's Duration.String(): "1m0s", "1h0m0s", "1.5s", "100ms"
    [
        ("15", 15 * S),
        ("0.5", S // 2),
        ("1m", 60 * S),
        ("1h30m", 5400 * S),
        ("1m0s", 60 * S),
        ("1h0m0s", 3600 * S),
        ("100ms", S // 10),
    ],
)
def test_step(text: str, ns: int) -> None:
    assert parse_duration_or_seconds(text, "step") == ns


def test_defaults_and_refusals() -> None:
    assert default_step_ns(0, 3600 * S) == 14 * S  # 3600 / 250 = 14.4, floored
    assert default_step_ns(0, 10 * S) == S
    assert parse_limit("") == 100
    assert parse_direction("") is True
    assert parse_direction("FORWARD") is False
    assert parse_limit("5000") == 5000
    for bad in (
        lambda: parse_limit("0"),
        lambda: parse_limit("x"),
        lambda: parse_limit("5001"),
        lambda: parse_direction("up"),
    ):
        with pytest.raises(BadRequest):
            bad()


def test_streams_shape() -> None:
    result = StreamsResult([({"app": "x"}, [(1_700_000_000_000_000_001, "b"), (1_700_000_000_000_000_000, "a")])], 5, 9)
    body = json.loads(streams_response(result, 0.01).body)
    assert body["status"] == "success"
    assert body["data"]["resultType"] == "streams"
    assert body["data"]["result"] == [
        {"stream": {"app": "x"}, "values": [["1700000000000000001", "b"], ["1700000000000000000", "a"]]}
    ]
    summary = body["data"]["stats"]["summary"]
    assert (summary["totalLinesProcessed"], summary["totalBytesProcessed"], summary["totalEntriesReturned"]) == (
        5,
        9,
        2,
    )


def test_matrix_and_vector_shapes() -> None:
    matrix = QueryResult(
        "matrix", matrix=[SeriesResult({"level": "info"}, np.array([1000, 2500]), np.array([3.0, 0.5]))]
    )
    body = json.loads(metric_response(MetricResult(matrix), 0.01).body)
    assert body["data"]["resultType"] == "matrix"
    assert body["data"]["result"] == [{"metric": {"level": "info"}, "values": [[1, "3"], [2.5, "0.5"]]}]
    assert "summary" in body["data"]["stats"]
    vector = QueryResult("vector", vector=[Sample({}, 5000, 2.0)])
    body = json.loads(metric_response(MetricResult(vector), 0.01).body)
    assert body["data"]["result"] == [{"metric": {}, "value": [5, "2"]}]
