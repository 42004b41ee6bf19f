"""TraceQL search over stored spans: grouping into traces, root and trace duration, bounds and order.

The trace source is a real in-memory implementation of the TraceSource protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from collector.errors import PermanentError
from collector.query.traceql.parser import parse
from collector.query.traceql.search import SearchRequest, search
from collector.store.trace_search import StoredSpan

MS = 1_000_000


def span(
    trace: str, span_id: str, parent: str, name: str, service: str, start_ms: int, dur_ms: int, **kw: str
) -> StoredSpan:
    return StoredSpan(
        trace_id=trace * 32,
        span_id=span_id * 16,
        parent_span_id=parent * 16 if parent else "",
        trace_state="",
        name=name,
        kind=kw.get("kind", "Server"),
        service=service,
        start_ns=start_ms * MS,
        duration_ns=dur_ms * MS,
        resource=[("service.name", service, "")],
        scope_name="s",
        scope_version="",
        attributes=[("http.status_code", kw.get("code", "200"), "int")],
        status_code=kw.get("status", "Unset"),
        status_message="",
    )


SPANS = [
    span("a", "1", "", "GET /", "gateway", 1000, 500),
    span("a", "2", "1", "orders", "orders", 1100, 300, kind="Client", code="500", status="Error"),
    span("a", "3", "2", "db", "orders", 1150, 100, kind="Internal", status="Error"),
    span("b", "4", "", "GET /health", "gateway", 3000, 5),
    span("c", "5", "9", "orphan", "orders", 2000, 40),  # its root never arrived
]


@dataclass
class MemoryTraces:
    """The TraceSource protocol over a list of spans. It ignores the SQL condition: that condition is
    only necessary, so returning every trace in the range is a valid (widest) answer."""

    spans: list[StoredSpan]

    def candidate_trace_ids(
        self, condition: str, params: dict[str, Any], start_ns: int, end_ns: int, limit: int, offset: int = 0
    ) -> list[str]:
        newest: dict[str, int] = {}
        for s in self.spans:
            if (not start_ns or s.start_ns >= start_ns) and (not end_ns or s.start_ns <= end_ns):
                newest[s.trace_id] = max(newest.get(s.trace_id, 0), s.start_ns)
        return sorted(newest, key=lambda t: (-newest[t], t))[offset : offset + limit]

    def traces(self, trace_ids: list[str]) -> dict[str, list[StoredSpan]]:
        out: dict[str, list[StoredSpan]] = {}
        for s in sorted(self.spans, key=lambda s: s.start_ns):
            if s.trace_id in trace_ids:
                out.setdefault(s.trace_id, []).append(s)
        return out


SOURCE = MemoryTraces(SPANS)

CASES = [
    ("{}", {}, ["b", "c", "a"]),
    ("{ status = error }", {}, ["a"]),
    ('{ rootServiceName = "gateway" && resource.service.name = "orders" }', {}, ["a"]),
    ("{ traceDuration > 100ms }", {}, ["a"]),
    ("{ span.http.status_code >= 500 }", {}, ["a"]),
    ('{ rootName = "" }', {}, ["c"]),  # no root span stored: empty root name
    ("{}", {"min_trace_duration_ns": 40 * MS}, ["c", "a"]),
    ("{}", {"max_trace_duration_ns": 40 * MS}, ["b", "c"]),
    ("{}", {"limit": 1}, ["b"]),
    ("{}", {"start_ns": 1500 * MS, "end_ns": 2500 * MS}, ["c"]),
]


@pytest.mark.parametrize(("query", "bounds", "trace_order"), CASES)
def test_search(query: str, bounds: dict[str, int], trace_order: list[str]) -> None:
    found, inspected = search(SOURCE, SearchRequest(filter=parse(query), **bounds))
    assert [t.trace_id[0] for t in found] == trace_order
    assert inspected >= len(found)


def test_trace_summary_and_matched_spans() -> None:
    (t,) = search(SOURCE, SearchRequest(filter=parse("{ status = error }")))[0]
    assert (t.root_service, t.root_name, t.start_ns, t.duration_ns) == ("gateway", "GET /", 1000 * MS, 500 * MS)
    assert [s.span_id[0] for s in t.matched] == ["2", "3"]


def test_bad_regex_fails_before_reading() -> None:
    with pytest.raises(PermanentError):
        search(MemoryTraces([]), SearchRequest(filter=parse('{ name =~ "[" }')))


def test_pages_until_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import collector.query.traceql.search as module

    monkeypatch.setattr(module, "PAGE", 1)
    found, inspected = search(SOURCE, SearchRequest(filter=parse("{ status = error }"), limit=1))
    assert [t.trace_id[0] for t in found] == ["a"] and inspected == 3  # b and c were read first, newest first
