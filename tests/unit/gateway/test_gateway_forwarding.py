"""Proxy header rules: hop-by-hop stripped (also those named in Connection), X-Forwarded-* and X-Request-Id."""

from __future__ import annotations

import pytest
from gateway.forwarding import client_response_headers, request_id, upstream_request_headers


def test_upstream_request_headers() -> None:
    incoming = [
        ("Host", "shop.example:8080"),
        ("Connection", "keep-alive, X-Secret-Hop"),
        ("Keep-Alive", "timeout=5"),
        ("X-Secret-Hop", "1"),
        ("Transfer-Encoding", "chunked"),
        ("TE", "trailers"),
        ("Upgrade", "h2c"),
        ("Proxy-Authorization", "Basic x"),
        ("X-API-Key", "demo-key"),
        ("Authorization", "Bearer demo-key"),
        ("Content-Length", "3"),
        ("Content-Type", "application/json"),
        ("X-Forwarded-For", "10.0.0.1"),
        ("X-Forwarded-Proto", "https"),
        ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ("Accept", "application/json"),
    ]
    out = upstream_request_headers(
        incoming, client_host="192.0.2.7", scheme="http", host="shop.example:8080", req_id="req-1"
    )
    assert out == [
        ("Content-Type", "application/json"),
        ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ("Accept", "application/json"),
        ("x-forwarded-for", "10.0.0.1, 192.0.2.7"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "shop.example:8080"),
        ("x-request-id", "req-1"),
    ]


def test_client_response_headers() -> None:
    upstream = [
        ("content-type", "application/json"),
        ("content-length", "12"),
        ("connection", "close, x-hop"),
        ("x-hop", "1"),
        ("transfer-encoding", "chunked"),
        ("date", "Sun, 29 Nov 2026 11:00:00 GMT"),
        ("server", "uvicorn"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
    ]
    assert client_response_headers(upstream) == [
        ("content-type", "application/json"),
        ("content-length", "12"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
    ]


@pytest.mark.parametrize(
    ("given", "kept"),
    [("abc-123", True), ("a" * 128, True), ("a" * 129, False), ("has space", False), ("", False), (None, False)],
)
def test_request_id(given: str | None, kept: bool) -> None:
    headers = [("X-Request-Id", given)] if given is not None else []
    rid = request_id(headers)
    assert (rid == given) is kept
    assert len(rid) <= 128 and " " not in rid
