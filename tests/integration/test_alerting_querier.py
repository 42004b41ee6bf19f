"""HttpQuerier and RemoteWriteSender against the real collector and a real Prometheus 2.42.

Both servers get the same series through our remote write sender, then answer our instant queries alike:
vectors and scalars become Samples; a matrix, a string, a bad expression are permanent errors; an
unreachable server, a 503 and a 429 (from a real HTTP server on loopback) are retryable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from alerting.model import QueryError
from alerting.querier import HttpQuerier
from alerting.remote_write import RemoteWriteError, RemoteWriteSender
from tests.conftest import CollectorProcess, free_port
from tests.peers import prometheus

NOW = float(int(time.time()))
SERIES = [
    ({"__name__": "aq_load", "instance": i, "job": "aq"}, NOW - 30 + k, float(v + k))
    for i, v in (("a", 1), ("b", 10))
    for k in range(3)
]


@pytest.fixture(scope="module")
def servers(collector: CollectorProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    workdir = tmp_path_factory.mktemp("prom_querier")
    with prometheus("global:\n  scrape_interval: 1h\n", workdir) as prom:
        for base in (collector.url, prom):
            with RemoteWriteSender(f"{base}/api/v1/write") as sender:
                sender(SERIES)
        yield {"collector": collector.url, "prometheus": prom}


@pytest.mark.parametrize("server", ["collector", "prometheus"])
def test_vector_and_scalar(servers: dict[str, str], server: str) -> None:
    with HttpQuerier(servers[server], timeout_s=10) as query:
        _check_answers(query)


def _check_answers(query: HttpQuerier) -> None:
    got = sorted(((dict(s.labels), s.value) for s in query('aq_load{job="aq"}', NOW)), key=lambda x: x[0]["instance"])
    assert got == [
        ({"__name__": "aq_load", "instance": "a", "job": "aq"}, 3.0),
        ({"__name__": "aq_load", "instance": "b", "job": "aq"}, 12.0),
    ]
    assert [(dict(s.labels), s.value) for s in query('aq_load{job="aq"} > 5', NOW)] == [
        ({"__name__": "aq_load", "instance": "b", "job": "aq"}, 12.0)  # a filtering comparison keeps the name
    ]
    assert [(dict(s.labels), s.value) for s in query('sum(aq_load{job="aq"})', NOW - 29.5)] == [({}, 11.0)]
    assert [(dict(s.labels), s.value) for s in query("1 + 1", NOW)] == [({}, 2.0)]
    assert query('aq_load{job="aq"}', NOW - 3600) == []


@pytest.mark.parametrize("server", ["collector", "prometheus"])
def test_query_many_answers_as_one_query_each(servers: dict[str, str], server: str) -> None:
    """The collector answers through /api/obs/query_batch; Prometheus has none, so the querier falls back."""
    exprs = [
        'aq_load{job="aq"}',
        'aq_load{job="aq"} > 5',
        'sum(aq_load{job="aq"})',
        "1 + 1",
        "sum(aq_load",
        "aq_load[1m]",
    ]
    with HttpQuerier(servers[server], timeout_s=10) as query:
        many = query.query_many(exprs, NOW)
        assert len(many) == len(exprs)
        for expr, got in zip(exprs, many, strict=True):
            try:
                one: object = sorted((sorted(s.labels.items()), s.value) for s in query(expr, NOW))
            except QueryError as exc:
                assert isinstance(got, QueryError), (expr, got)
                assert got.retryable is exc.retryable is False
                continue
            assert not isinstance(got, QueryError), (expr, got)
            assert sorted((sorted(s.labels.items()), s.value) for s in got) == one
        assert (query._batch_url is None) is (server == "prometheus")


@pytest.mark.parametrize("server", ["collector", "prometheus"])
@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ('aq_load{job="aq"}[1m]', "returned a matrix"),
        ('"text"', "returned a string"),
        ("sum(aq_load", "HTTP 400"),
    ],
)
def test_permanent_errors(servers: dict[str, str], server: str, expr: str, message: str) -> None:
    with HttpQuerier(servers[server], timeout_s=10) as query, pytest.raises(QueryError, match=message) as info:
        query(expr, NOW)
    assert info.value.retryable is False


class _Refusing(BaseHTTPRequestHandler):
    status = 503

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"status":"error","errorType":"unavailable","error":"overloaded"}'
        self.send_response(int(self.path.strip("/").split("/")[0]))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def refusing_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("status", "retryable"), [(503, True), (500, True), (429, True), (422, False)])
def test_status_classification(refusing_server: str, status: int, retryable: bool) -> None:
    with HttpQuerier(f"{refusing_server}/{status}", timeout_s=5) as query, pytest.raises(QueryError) as info:
        query("up", NOW)
    assert "overloaded" in str(info.value)
    assert info.value.retryable is retryable
    sender = RemoteWriteSender(f"{refusing_server}/{status}/api/v1/write", timeout_s=5)
    with sender, pytest.raises(RemoteWriteError) as werr:
        sender([({"__name__": "m"}, NOW, 1.0)])
    assert werr.value.retryable is retryable


def test_unreachable_is_retryable(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with HttpQuerier(url, timeout_s=2) as query, pytest.raises(QueryError, match="unreachable") as info:
        query("up", NOW)
    assert info.value.retryable is True
    with RemoteWriteSender(f"{url}/api/v1/write", timeout_s=2) as sender, pytest.raises(RemoteWriteError) as werr:
        sender([({"__name__": "m"}, NOW, 1.0)])
    assert werr.value.retryable is True
