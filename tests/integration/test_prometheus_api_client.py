"""prometheus-api-client (Python) gets the same answers from the collector as from a real Prometheus 2.42.

Both servers hold the seeded dataset of tests/promql_dataset.py. Each call of `PrometheusConnect` is made
against both, with the client's GET (its default) and POST methods (POST sends the parameters in the URL
query with an empty body), and the returned Python values are compared: equal, but for sample values
within 1e-9 relative and the order of an instant vector's series (Prometheus' evaluation order).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect

from tests.promql_dataset import END_MS, START_MS, differences, loaded_servers

END = datetime.fromtimestamp(END_MS / 1000, UTC)
START = datetime.fromtimestamp(START_MS / 1000, UTC)
AT = {"time": str(END_MS / 1000)}

Call = Callable[[PrometheusConnect], Any]

CALLS: list[tuple[str, Call]] = [
    ("all_metrics", lambda p: p.all_metrics()),
    ("label_values", lambda p: p.get_label_values("job")),
    ("label_values_match", lambda p: p.get_label_values("code", params={"match[]": 'http_requests_total{job="web"}'})),
    ("label_names", lambda p: p.get_label_names()),
    ("label_names_match", lambda p: p.get_label_names(params={"match[]": "http_request_duration_seconds_bucket"})),
    ("series", lambda p: p.get_series(START, END, params={"match[]": ["up", 'version_info{job="web"}']})),
    ("custom_query_vector", lambda p: p.custom_query("sum by (job, code) (rate(http_requests_total[5m]))", AT)),
    ("custom_query_raw", lambda p: p.custom_query('temperature_celsius{instance="i2"}', AT)),
    (
        "custom_query_quantile",
        lambda p: p.custom_query(
            "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))", AT
        ),
    ),
    ("custom_query_scalar", lambda p: p.custom_query("scalar(sum(up))", AT)),
    ("custom_query_matrix", lambda p: p.custom_query('up{job="web"}[2m]', AT)),
    ("custom_query_empty", lambda p: p.custom_query("nonexistent_metric", AT)),
    (
        "custom_query_range",
        lambda p: p.custom_query_range(
            "sum by (job) (rate(http_requests_total[5m]))", END - timedelta(minutes=30), END, step="60"
        ),
    ),
    (
        "custom_query_range_duration_step",
        lambda p: p.custom_query_range("ended_gauge", END - timedelta(minutes=40), END, step="2m"),
    ),
    ("current_metric_value", lambda p: p.get_current_metric_value("up", params=AT)),
    # The client writes label matchers with single quotes: up{job='web'}.
    (
        "current_metric_value_labels",
        lambda p: p.get_current_metric_value("up", label_config={"job": "web", "instance": "i1"}, params=AT),
    ),
    (
        "metric_range_data",
        lambda p: p.get_metric_range_data(
            "temperature_celsius",
            label_config={"job": "web"},
            start_time=END - timedelta(minutes=10),
            end_time=END,
            chunk_size=timedelta(minutes=5),
        ),
    ),
]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with loaded_servers(tmp_path_factory.mktemp("api-client")) as urls:
        yield urls


def _clients(servers: tuple[str, str], method: str) -> tuple[PrometheusConnect, PrometheusConnect]:
    prom_url, collector_url = servers
    return (
        PrometheusConnect(prom_url, disable_ssl=True, method=method, timeout=60),
        PrometheusConnect(collector_url, disable_ssl=True, method=method, timeout=60),
    )


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(("name", "call"), CALLS, ids=[name for name, _ in CALLS])
def test_client_calls_answer_alike(servers: tuple[str, str], method: str, name: str, call: Call) -> None:
    prometheus, collector = _clients(servers, method)
    expected, got = call(prometheus), call(collector)
    assert expected or name.endswith("_empty"), "the call finds nothing on Prometheus: the case compares nothing"
    problems = differences(expected, got)
    assert not problems, "\n".join(problems)


def test_check_connection(servers: tuple[str, str]) -> None:
    prometheus, collector = _clients(servers, "GET")
    assert prometheus.check_prometheus_connection() is True
    assert collector.check_prometheus_connection() is True


def _error(call: Call, client: PrometheusConnect) -> tuple[int, str]:
    """(HTTP status, errorType) of a call the client rejects with PrometheusApiClientException."""
    with pytest.raises(PrometheusApiClientException) as caught:
        call(client)
    m = re.fullmatch(r"HTTP Status Code (\d+) \((b.*)\)", str(caught.value), re.DOTALL)
    assert m is not None, str(caught.value)
    return int(m[1]), json.loads(ast.literal_eval(m[2]))["errorType"]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.custom_query("sum(rate(http_requests_total[5m])"),
        lambda p: p.custom_query("http_requests_total + on(job) http_requests_total", AT),
        lambda p: p.custom_query_range("up", END - timedelta(hours=4), END, step="1"),
        lambda p: p.get_label_values("bad-name"),
        lambda p: p.get_series(START, END, params={"match[]": "up{"}),
    ],
    ids=["parse", "many-to-many", "too-many-points", "bad-label-name", "bad-match"],
)
def test_client_errors_alike(servers: tuple[str, str], method: str, call: Call) -> None:
    prometheus, collector = _clients(servers, method)
    assert _error(call, collector) == _error(call, prometheus)
