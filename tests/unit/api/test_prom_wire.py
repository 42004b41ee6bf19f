"""The Prometheus API envelope, error statuses and value formatting."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from collector.api.prom_wire import (
    STATUS,
    error,
    format_time,
    format_value,
    format_values,
    query_success,
    result_json,
    success,
)
from collector.query.promql.values import QueryResult, Sample, SeriesResult


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (0.5, "0.5"),
        (-2.0, "-2"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e21, "1000000000000000000000"),
        (1e-7, "0.0000001"),
        (123456789.125, "123456789.125"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (0.0, "0"),
        (-0.0, "-0"),
    ],
)
def test_values_as_go_formats_them(value: float, text: str) -> None:
    assert format_value(value) == text


def test_times_are_seconds_with_milliseconds() -> None:
    assert format_time(1435781451781) == 1435781451.781
    assert format_time(1435781451000) == 1435781451
    assert json.dumps(format_time(1435781451000)) == "1435781451"
    assert format_time(5) == 0.005


@pytest.mark.parametrize(
    ("error_type", "status"),
    [
        ("bad_data", 400),
        ("execution", 422),
        ("canceled", 499),
        ("timeout", 503),
        ("internal", 500),
        ("not_found", 404),
        ("not_acceptable", 406),
        ("unavailable", 503),
        ("something_else", 500),
    ],
)
def test_error_envelope_and_status(error_type: str, status: int) -> None:
    r = error(error_type, "what went wrong")
    assert r.status_code == status
    assert json.loads(bytes(r.body)) == {"status": "error", "errorType": error_type, "error": "what went wrong"}
    assert ("retry-after" in r.headers) == (error_type == "unavailable")
    assert STATUS.get(error_type, 500) == status


def test_success_envelope() -> None:
    assert json.loads(bytes(success([]).body)) == {"status": "success", "data": []}
    body = json.loads(bytes(success({"a": 1}, ["careful"], ["fyi"]).body))
    assert body == {"status": "success", "data": {"a": 1}, "warnings": ["careful"], "infos": ["fyi"]}


def test_many_values_format_as_one_by_one() -> None:
    values = [1.0, 0.5, -0.0, 1e21, 1e-7, 1.5e-7, math.nan, math.inf, -math.inf, 0.1 + 0.2, 1e16, 10.0, 1.05, 2.5e-300]
    assert format_values(np.array(values)) == [format_value(v) for v in values]
    assert format_values(np.array(values))[:4] == ["1", "0.5", "-0", "1000000000000000000000"]
    assert format_values([]) == []


def result_data(result: QueryResult) -> object:
    return json.loads(result_json(result))


def test_result_shapes() -> None:
    matrix = QueryResult(
        "matrix",
        matrix=[SeriesResult({"job": "a"}, np.array([1000, 2500], dtype=np.int64), np.array([1.0, math.nan]))],
    )
    assert result_data(matrix) == {
        "resultType": "matrix",
        "result": [{"metric": {"job": "a"}, "values": [[1, "1"], [2.5, "NaN"]]}],
    }
    vector = QueryResult("vector", vector=[Sample({}, 1000, 2.0)])
    assert result_data(vector) == {"resultType": "vector", "result": [{"metric": {}, "value": [1, "2"]}]}
    assert result_data(QueryResult("scalar", scalar=(1500, 2.0))) == {"resultType": "scalar", "result": [1.5, "2"]}
    assert result_data(QueryResult("string", string=(1000, "x"))) == {"resultType": "string", "result": [1, "x"]}
    assert result_data(QueryResult("vector")) == {"resultType": "vector", "result": []}
    assert result_data(QueryResult("matrix")) == {"resultType": "matrix", "result": []}
    assert result_data(QueryResult("string", string=(1000, 'a "quoted"\nline'))) == {
        "resultType": "string",
        "result": [1, 'a "quoted"\nline'],
    }
    same_grid = np.array([1000, 2000], dtype=np.int64)
    two = QueryResult(
        "matrix",
        matrix=[
            SeriesResult({"i": "1"}, same_grid, np.array([1.0, 2.0])),
            SeriesResult({"i": "2"}, same_grid, np.array([3.0, 4.0])),
            SeriesResult({"i": "3"}, np.array([1500], dtype=np.int64), np.array([5.0])),
        ],
    )
    assert [s["values"] for s in result_data(two)["result"]] == [  # type: ignore[index]
        [[1, "1"], [2, "2"]],
        [[1, "3"], [2, "4"]],
        [[1.5, "5"]],
    ]


def test_query_envelope_carries_warnings_and_infos() -> None:
    r = query_success(QueryResult("scalar", scalar=(1000, 1.0), warnings=["w"], infos=["i"]))
    assert json.loads(bytes(r.body)) == {
        "status": "success",
        "data": {"resultType": "scalar", "result": [1, "1"]},
        "warnings": ["w"],
        "infos": ["i"],
    }
    assert r.headers["content-type"] == "application/json"
