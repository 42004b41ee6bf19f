"""Header rules for a reverse proxy: hop-by-hop headers stripped, X-Forwarded-* and X-Request-Id added."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

# RFC 9110 section 7.6.1, plus the pre-standard Keep-Alive and Proxy-Connection.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Set again by the HTTP client from the URL and body, or consumed here (the API key stays at the edge).
_NOT_FORWARDED = frozenset({"host", "content-length", "x-api-key", "authorization"})
# Added by the gateway's own server; passing the upstream's too would send them twice.
_NOT_RETURNED = frozenset({"date", "server"})
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")

Headers = list[tuple[str, str]]


def _connection_tokens(headers: Iterable[tuple[str, str]]) -> set[str]:
    """Header names a `Connection` header declares hop-by-hop."""
    tokens: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tokens


def request_id(headers: Iterable[tuple[str, str]]) -> str:
    """The client's X-Request-Id when it is a sane token, else a new one."""
    for name, value in headers:
        if name.lower() == "x-request-id" and _REQUEST_ID_RE.fullmatch(value):
            return value
    return uuid.uuid4().hex


def upstream_request_headers(
    headers: Headers, *, client_host: str | None, scheme: str, host: str | None, req_id: str
) -> Headers:
    """Headers to send upstream: end-to-end ones, X-Forwarded-For appended to, X-Forwarded-Proto/-Host set,
    and X-Request-Id."""
    drop = HOP_BY_HOP | _NOT_FORWARDED | _connection_tokens(headers)
    drop |= {"x-forwarded-proto", "x-forwarded-host", "x-request-id"}
    out: Headers = []
    forwarded_for: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower == "x-forwarded-for":
            forwarded_for.append(value)
        elif lower not in drop:
            out.append((name, value))
    if client_host:
        forwarded_for.append(client_host)
    if forwarded_for:
        out.append(("x-forwarded-for", ", ".join(forwarded_for)))
    out.append(("x-forwarded-proto", scheme))
    if host:
        out.append(("x-forwarded-host", host))
    out.append(("x-request-id", req_id))
    return out


def client_response_headers(headers: Headers) -> Headers:
    """Upstream response headers to pass back: everything but hop-by-hop ones and Date/Server."""
    drop = HOP_BY_HOP | _NOT_RETURNED | _connection_tokens(headers)
    return [(name, value) for name, value in headers if name.lower() not in drop]
