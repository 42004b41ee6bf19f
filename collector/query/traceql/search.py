"""Trace search with a TraceQL filter: candidate traces from the store by a pushed-down necessary
condition, then the exact filter evaluated in Python over each whole candidate trace.

A trace matches when at least one of its spans matches (and its duration is within the bounds).
Candidates come newest first in pages, until `limit` traces matched or the inspection budget is spent;
root span, root service and trace duration are those of the whole trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from collector.query.traceql.ast import Expr
from collector.query.traceql.evaluate import SpanFacts, check, matches
from collector.query.traceql.pushdown import necessary_condition
from collector.store.readers import typed_value
from collector.store.trace_search import StoredSpan

PAGE = 500  # candidate traces read at a time
TRACE_BUDGET = 20_000  # candidate traces one search inspects at most


class TraceSource(Protocol):
    def candidate_trace_ids(
        self, condition: str, params: dict[str, Any], start_ns: int, end_ns: int, limit: int, offset: int = 0
    ) -> list[str]: ...

    def traces(self, trace_ids: list[str]) -> dict[str, list[StoredSpan]]: ...


@dataclass(frozen=True)
class TraceMatch:
    trace_id: str
    root_service: str
    root_name: str
    start_ns: int
    duration_ns: int
    matched: list[StoredSpan]  # the matching spans, by start time


@dataclass
class SearchRequest:
    filter: Expr
    start_ns: int = 0  # inclusive bounds on the start time of some matching span; 0 = unbounded
    end_ns: int = 0
    min_trace_duration_ns: int = 0
    max_trace_duration_ns: int = 0  # 0 = unbounded
    limit: int = 20


def facts(span: StoredSpan, root_service: str, root_name: str, trace_duration_ns: int) -> SpanFacts:
    return SpanFacts(
        name=span.name,
        status=span.status_code.lower(),
        kind=span.kind.lower(),
        duration_ns=span.duration_ns,
        root_service=root_service,
        root_name=root_name,
        trace_duration_ns=trace_duration_ns,
        span_attributes={k: typed_value(t, ty) for k, t, ty in span.attributes},
        resource_attributes={k: typed_value(t, ty) for k, t, ty in span.resource},
    )


def match_trace(spans: list[StoredSpan], req: SearchRequest) -> TraceMatch | None:
    """The trace's summary and matching spans, or None when it does not match."""
    start = min(s.start_ns for s in spans)
    duration = max(s.end_ns for s in spans) - start
    if duration < req.min_trace_duration_ns or (req.max_trace_duration_ns and duration > req.max_trace_duration_ns):
        return None
    roots = [s for s in spans if not s.parent_span_id]
    root = min(roots, key=lambda s: s.start_ns) if roots else None
    root_service, root_name = (root.service, root.name) if root else ("", "")
    hits = sorted(
        (s for s in spans if matches(req.filter, facts(s, root_service, root_name, duration))),
        key=lambda s: (s.start_ns, s.span_id),
    )
    return TraceMatch(spans[0].trace_id, root_service, root_name, start, duration, hits) if hits else None


def search(source: TraceSource, req: SearchRequest) -> tuple[list[TraceMatch], int]:
    """(matching traces, newest first, at most req.limit; number of candidate traces inspected)."""
    check(req.filter)
    cond = necessary_condition(req.filter)
    found: list[TraceMatch] = []
    inspected = 0
    while len(found) < req.limit and inspected < TRACE_BUDGET:
        ids = source.candidate_trace_ids(cond.sql, cond.params, req.start_ns, req.end_ns, PAGE, inspected)
        if not ids:
            break
        inspected += len(ids)
        spans = source.traces(ids)
        for trace_id in ids:
            if trace_id in spans:
                m = match_trace(spans[trace_id], req)
                if m is not None:
                    found.append(m)
        if len(ids) < PAGE:
            break
    found.sort(key=lambda t: (-t.start_ns, t.trace_id))
    return found[: req.limit], inspected
