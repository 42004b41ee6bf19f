"""Service graph: client and server spans paired into edges, counted as Tempo's service-graphs processor
counts them (metric and label names included), so Grafana's service map draws from our metrics.

A request between two services is a CLIENT span and the SERVER span whose parent it is (PRODUCER and
CONSUMER across a messaging system: `connection_type="messaging_system"`). Halves wait in an edge
store, keyed by (trace id, client span id), until the other half arrives or `wait` passes; the store
holds at most `max_items` halves (past it a new half is dropped and counted). A paired edge counts:

- `traces_service_graph_request_total` and `traces_service_graph_request_failed_total` (either span
  has status Error), labels `client`, `server`, `connection_type`, plus configured dimensions;
- `traces_service_graph_request_server_seconds` and `traces_service_graph_request_client_seconds`,
  histograms of the server and client span durations (Tempo's default buckets: 0.1 s doubling 8 times).

As in Tempo, a client span with `db.name` or `db.system` is a database call (`connection_type=
"database"`): it completes alone when it names its server (`peer.service`, `server.address`,
`network.peer.address[:network.peer.port]`, else `db.name`). When a half expires: a root server span
(no parent) gets the virtual client `user`; a client span carrying one of `peer_attributes` gets that
value as a virtual server (`connection_type="virtual_node"`); any other half counts in
`traces_service_graph_unpaired_spans_total`. Halves refused by a full store count in
`traces_service_graph_dropped_spans_total` (both by client, server and connection_type).

Pure state: callers pass the clock (monotonic seconds for the TTL, epoch ms for the samples).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collector.model import MetricBatch
from collector.pipeline.derived_series import CounterFamily, HistogramFamily, SpanRef
from collector.pipeline.span_metrics import attribute_column, dimension_label, end_times_ms

REQUEST_TOTAL = "traces_service_graph_request_total"
REQUEST_FAILED_TOTAL = "traces_service_graph_request_failed_total"
REQUEST_SERVER_SECONDS = "traces_service_graph_request_server_seconds"
REQUEST_CLIENT_SECONDS = "traces_service_graph_request_client_seconds"
UNPAIRED_SPANS_TOTAL = "traces_service_graph_unpaired_spans_total"
DROPPED_SPANS_TOTAL = "traces_service_graph_dropped_spans_total"
# Tempo: prometheus.ExponentialBuckets(0.1, 2, 8), 0.1 s to 12.8 s.
DEFAULT_BUCKETS = tuple(0.1 * 2**i for i in range(8))
DEFAULT_WAIT_S = 10.0
DEFAULT_MAX_ITEMS = 10_000
DEFAULT_PEER_ATTRIBUTES = ("peer.service", "db.name", "db.system")
EDGE_LABELS = ("client", "server", "connection_type")
USER = "user"  # the virtual client of a root server span
MESSAGING_SYSTEM, DATABASE, VIRTUAL_NODE = "messaging_system", "database", "virtual_node"

_CLIENT_KINDS = {"Client": "", "Producer": MESSAGING_SYSTEM}
_SERVER_KINDS = {"Server": "", "Consumer": MESSAGING_SYSTEM}
# Read from each client or server span: the database hints, then where a database call went.
_DB_HINTS = ("db.name", "db.system")
_DB_SERVER = ("peer.service", "server.address", "network.peer.address", "network.peer.port")
_COLUMNS = [
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "SpanAttributes",
    "Duration",
    "StatusCode",
]


class Edge:
    """One request between two services while its halves are being paired. Durations in seconds; the
    span fields name the latest half seen (the exemplar), its end time in ms."""

    __slots__ = (
        "client",
        "client_seconds",
        "connection_type",
        "dimensions",
        "end_ms",
        "expires_at",
        "failed",
        "peer_node",
        "root",
        "server",
        "server_seconds",
        "span_id",
        "trace_id",
    )

    def __init__(self, trace_id: str, expires_at: float, root: bool = False) -> None:
        self.trace_id = trace_id
        self.expires_at = expires_at
        self.root = root  # its server span has no parent
        self.connection_type = ""
        self.client = ""
        self.server = ""
        self.client_seconds = 0.0
        self.server_seconds = 0.0
        self.failed = False
        self.peer_node = ""
        self.dimensions: tuple[str, ...] = ()
        self.span_id = ""
        self.end_ms = 0


def _text_or_null(column: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)


def _first_text(columns: Sequence[pa.Array]) -> pa.Array:
    """Per row, the first non-empty text of `columns`, else ""."""
    if not columns:
        return pa.nulls(0, pa.string())
    return pc.fill_null(pc.coalesce(*(_text_or_null(c) for c in columns)), "")


class ServiceGraph:
    def __init__(
        self,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        dimensions: Sequence[str] = (),
        wait_s: float = DEFAULT_WAIT_S,
        max_items: int = DEFAULT_MAX_ITEMS,
        peer_attributes: Sequence[str] = DEFAULT_PEER_ATTRIBUTES,
    ) -> None:
        self.dimensions = tuple(dimensions)
        self.wait_s = wait_s
        self.max_items = max_items
        self.peer_attributes = tuple(peer_attributes)
        self.edges: OrderedDict[tuple[str, ...], Edge] = OrderedDict()  # oldest first: expiry pops the front
        labels = (*EDGE_LABELS, *(dimension_label(d, EDGE_LABELS) for d in self.dimensions))
        self.requests = CounterFamily(REQUEST_TOTAL, "Requests between two nodes", labels)
        self.failed = CounterFamily(REQUEST_FAILED_TOTAL, "Failed requests between two nodes", labels)
        self.server_seconds = HistogramFamily(
            REQUEST_SERVER_SECONDS, "Time for a request between two nodes as seen from the server", labels, buckets
        )
        self.client_seconds = HistogramFamily(
            REQUEST_CLIENT_SECONDS, "Time for a request between two nodes as seen from the client", labels, buckets
        )
        self.unpaired = CounterFamily(UNPAIRED_SPANS_TOTAL, "Spans whose other half never came", EDGE_LABELS)
        self.dropped = CounterFamily(DROPPED_SPANS_TOTAL, "Spans dropped because the edge store was full", EDGE_LABELS)

    # -- spans in ---------------------------------------------------------------------------------

    def observe(self, spans: pa.Table, now_s: float, now_ms: int) -> None:
        """Pair the client, server, producer and consumer spans of an otel_traces table.

        What can be is read in Arrow for the whole batch (kinds, the database and peer attributes); the
        loop over the remaining spans only looks up and fills edges."""
        kinds = pc.is_in(spans.column("SpanKind"), pa.array([*_CLIENT_KINDS, *_SERVER_KINDS]))
        wanted = pc.and_(kinds, pc.not_equal(spans.column("ServiceName"), ""))
        spans = spans.select(_COLUMNS).filter(wanted)  # events and links are not read: not filtered either
        if spans.num_rows == 0:
            return
        attr = {key: attribute_column(spans, key) for key in sorted({*_DB_HINTS, *_DB_SERVER})}
        is_db = pc.or_(pc.not_equal(attr["db.name"], ""), pc.not_equal(attr["db.system"], ""))
        address = attr["network.peer.address"]
        with_port = pc.if_else(
            pc.equal(attr["network.peer.port"], ""),
            address,
            pc.binary_join_element_wise(address, attr["network.peer.port"], ":"),
        )
        db_server = _first_text([attr["peer.service"], attr["server.address"], with_port, attr["db.name"]])
        span_attrs = spans.column("SpanAttributes")
        peer = _first_text([pc.map_lookup(span_attrs, pa.scalar(k), "first") for k in self.peer_attributes])
        if not self.peer_attributes:
            peer = pa.array([""] * spans.num_rows, pa.string())
        dims = [attribute_column(spans, d).to_pylist() for d in self.dimensions]
        dim_rows: list[tuple[str, ...]] = list(zip(*dims, strict=True)) if dims else [()] * spans.num_rows
        seconds = (spans.column("Duration").to_numpy().astype(np.float64) / 1e9).tolist()
        completed: list[Edge] = []
        for row in zip(
            spans.column("TraceId").to_pylist(),
            spans.column("SpanId").to_pylist(),
            spans.column("ParentSpanId").to_pylist(),
            spans.column("SpanKind").to_pylist(),
            spans.column("ServiceName").to_pylist(),
            seconds,
            pc.equal(spans.column("StatusCode"), "Error").to_pylist(),
            end_times_ms(spans).tolist(),
            is_db.to_pylist(),
            db_server.to_pylist(),
            peer.to_pylist(),
            dim_rows,
            strict=True,
        ):
            trace_id, span_id, parent, kind, service, duration, failed, end_ms, db, db_at, peer_node, dim = row
            client_side = kind in _CLIENT_KINDS
            if client_side:
                key: tuple[str, ...] = (trace_id, span_id)
            else:
                key = (trace_id, parent) if parent else (trace_id, "", span_id)
            edge = self.edges.get(key)
            if edge is None:
                if len(self.edges) >= self.max_items:
                    self.expire(now_s, now_ms)
                    if len(self.edges) >= self.max_items:
                        self.dropped.add((service, "", "") if client_side else ("", service, ""), 1.0, now_ms)
                        continue
                edge = self.edges[key] = Edge(trace_id, now_s + self.wait_s, not client_side and not parent)
            if client_side:
                edge.connection_type = _CLIENT_KINDS[kind]
                edge.client, edge.client_seconds = service, duration
                if peer_node:
                    edge.peer_node = peer_node
                if db:
                    edge.connection_type = DATABASE
                    edge.server_seconds = duration
                    if db_at:
                        edge.server = db_at
            else:
                edge.connection_type = _SERVER_KINDS[kind]
                edge.server, edge.server_seconds = service, duration
            edge.failed = edge.failed or failed
            if dim:
                edge.dimensions = tuple(new or old for new, old in zip(dim, edge.dimensions or dim, strict=True))
            edge.span_id, edge.end_ms = span_id, end_ms
            if edge.client and edge.server:
                del self.edges[key]
                completed.append(edge)
        self._count(completed, now_ms)

    # -- time passes ------------------------------------------------------------------------------

    def expire(self, now_s: float, now_ms: int) -> int:
        """Settle the halves whose wait is over (oldest first); returns how many were settled."""
        virtual: list[Edge] = []
        settled = 0
        while self.edges:
            key, edge = next(iter(self.edges.items()))
            if edge.expires_at > now_s:
                break
            del self.edges[key]
            settled += 1
            if not edge.client and edge.root:
                edge.client, edge.connection_type = USER, VIRTUAL_NODE
                virtual.append(edge)
            elif edge.client and not edge.server and edge.peer_node:
                edge.server, edge.connection_type = edge.peer_node, VIRTUAL_NODE
                virtual.append(edge)
            else:
                self.unpaired.add((edge.client, edge.server, edge.connection_type), 1.0, now_ms)
        self._count(virtual, now_ms)
        return settled

    def _count(self, edges: Sequence[Edge], now_ms: int) -> None:
        """Count completed edges, grouped by their label values (one update per series and bucket)."""
        groups: dict[tuple[str, ...], list[Edge]] = {}
        blank = ("",) * len(self.dimensions)
        for e in edges:
            groups.setdefault((e.client, e.server, e.connection_type, *(e.dimensions or blank)), []).append(e)
        for values, members in groups.items():
            last = members[-1]
            ref = SpanRef(last.trace_id, last.span_id, last.end_ms, 1.0)
            self.requests.add(values, float(len(members)), now_ms, ref)
            failed = sum(1 for e in members if e.failed)
            if failed:
                self.failed.add(values, float(failed), now_ms, ref)
            for family, seconds in (
                (self.server_seconds, [e.server_seconds for e in members]),
                (self.client_seconds, [e.client_seconds for e in members]),
            ):
                by_bucket: dict[int, tuple[float, float, int]] = {}
                for i, value in enumerate(seconds):
                    b = family.bucket_of(value)
                    n, total, _ = by_bucket.get(b, (0.0, 0.0, 0))
                    by_bucket[b] = (n + 1, total + value, i)
                for b, (n, total, i) in by_bucket.items():
                    e = members[i]
                    family.add(values, b, n, total, now_ms, SpanRef(e.trace_id, e.span_id, e.end_ms, seconds[i]))

    # -- samples out ------------------------------------------------------------------------------

    def collect(self, batch: MetricBatch, now_ms: int, stale_before_ms: int) -> None:
        for family in (self.requests, self.failed, self.server_seconds, self.client_seconds):
            family.collect(batch, now_ms, stale_before_ms)
        self.unpaired.collect(batch, now_ms, stale_before_ms)
        self.dropped.collect(batch, now_ms, stale_before_ms)
