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
from dataclasses import dataclass, field

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


@dataclass
class Edge:
    """One request between two services while its halves are being paired. Durations in seconds."""

    trace_id: str
    expires_at: float
    root: bool = False  # its server span has no parent
    connection_type: str = ""
    client: str = ""
    server: str = ""
    client_seconds: float = 0.0
    server_seconds: float = 0.0
    failed: bool = False
    peer_node: str = ""
    dimensions: dict[str, str] = field(default_factory=dict)
    span: SpanRef | None = None  # the latest half seen, for the exemplar

    @property
    def complete(self) -> bool:
        return bool(self.client) and bool(self.server)


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
        """Pair the client, server, producer and consumer spans of an otel_traces table."""
        kinds = pc.is_in(spans.column("SpanKind"), pa.array([*_CLIENT_KINDS, *_SERVER_KINDS]))
        spans = spans.filter(kinds)
        if spans.num_rows == 0:
            return
        wanted = sorted({*_DB_HINTS, *_DB_SERVER, *self.dimensions})
        attrs = {key: attribute_column(spans, key).to_pylist() for key in wanted}
        span_only = {
            key: pc.fill_null(pc.map_lookup(spans.column("SpanAttributes"), pa.scalar(key), "first"), "").to_pylist()
            for key in self.peer_attributes
        }
        ends = end_times_ms(spans).tolist()
        columns = spans.select(
            ["TraceId", "SpanId", "ParentSpanId", "SpanKind", "ServiceName", "Duration", "StatusCode"]
        ).to_pylist()
        for i, row in enumerate(columns):
            service = row["ServiceName"]
            if not service:  # as Tempo: a resource without service.name is not a node
                continue
            seconds = row["Duration"] / 1e9
            ref = SpanRef(row["TraceId"], row["SpanId"], ends[i], seconds)
            dims = {d: attrs[d][i] for d in self.dimensions if attrs[d][i]}
            failed = row["StatusCode"] == "Error"
            kind = row["SpanKind"]
            if kind in _CLIENT_KINDS:
                key: tuple[str, ...] = (row["TraceId"], row["SpanId"])
                edge = self._edge(key, row["TraceId"], False, "client", service, now_s, now_ms)
                if edge is None:
                    continue
                edge.connection_type = _CLIENT_KINDS[kind]
                edge.client, edge.client_seconds = service, seconds
                peer = next((span_only[k][i] for k in self.peer_attributes if span_only[k][i]), "")
                edge.peer_node = peer or edge.peer_node
                if any(attrs[h][i] for h in _DB_HINTS):
                    edge.connection_type = DATABASE
                    edge.server_seconds = seconds
                    edge.server = _database_server(attrs, i) or edge.server
            else:
                parent = row["ParentSpanId"]
                key = (row["TraceId"], parent) if parent else (row["TraceId"], "", row["SpanId"])
                edge = self._edge(key, row["TraceId"], not parent, "server", service, now_s, now_ms)
                if edge is None:
                    continue
                edge.connection_type = _SERVER_KINDS[kind]
                edge.server, edge.server_seconds = service, seconds
            edge.failed = edge.failed or failed
            edge.dimensions.update(dims)
            edge.span = ref
            if edge.complete:
                del self.edges[key]
                self._count(edge, now_ms)

    def _edge(
        self, key: tuple[str, ...], trace_id: str, root: bool, side: str, service: str, now_s: float, now_ms: int
    ) -> Edge | None:
        """The waiting edge of `key`, or a new one; None when the store is full (the span is dropped)."""
        edge = self.edges.get(key)
        if edge is not None:
            return edge
        if len(self.edges) >= self.max_items:
            self.expire(now_s, now_ms)
            if len(self.edges) >= self.max_items:
                values = (service, "", "") if side == "client" else ("", service, "")
                self.dropped.add(values, 1.0, now_ms)
                return None
        edge = self.edges[key] = Edge(trace_id, now_s + self.wait_s, root)
        return edge

    # -- time passes ------------------------------------------------------------------------------

    def expire(self, now_s: float, now_ms: int) -> int:
        """Settle the halves whose wait is over (oldest first); returns how many were settled."""
        settled = 0
        while self.edges:
            key, edge = next(iter(self.edges.items()))
            if edge.expires_at > now_s:
                break
            del self.edges[key]
            settled += 1
            if not edge.client and edge.root:
                edge.client, edge.connection_type = USER, VIRTUAL_NODE
                self._count(edge, now_ms)
            elif edge.client and not edge.server and edge.peer_node:
                edge.server, edge.connection_type = edge.peer_node, VIRTUAL_NODE
                self._count(edge, now_ms)
            else:
                self.unpaired.add((edge.client, edge.server, edge.connection_type), 1.0, now_ms)
        return settled

    def _count(self, edge: Edge, now_ms: int) -> None:
        values = (
            edge.client,
            edge.server,
            edge.connection_type,
            *(edge.dimensions.get(d, "") for d in self.dimensions),
        )
        self.requests.add(values, 1.0, now_ms, edge.span)
        if edge.failed:
            self.failed.add(values, 1.0, now_ms, edge.span)
        server_ref = client_ref = edge.span
        if edge.span is not None:
            server_ref = SpanRef(edge.span.trace_id, edge.span.span_id, edge.span.end_ms, edge.server_seconds)
            client_ref = SpanRef(edge.span.trace_id, edge.span.span_id, edge.span.end_ms, edge.client_seconds)
        self.server_seconds.observe(values, edge.server_seconds, now_ms, server_ref)
        self.client_seconds.observe(values, edge.client_seconds, now_ms, client_ref)

    # -- samples out ------------------------------------------------------------------------------

    def collect(self, batch: MetricBatch, now_ms: int, stale_before_ms: int) -> None:
        for family in (self.requests, self.failed, self.server_seconds, self.client_seconds):
            family.collect(batch, now_ms, stale_before_ms)
        self.unpaired.collect(batch, now_ms, stale_before_ms)
        self.dropped.collect(batch, now_ms, stale_before_ms)


def _database_server(attrs: dict[str, list[str]], i: int) -> str:
    """Where a database call went, in Tempo's order of precedence; "" when the span does not say."""
    for key in ("peer.service", "server.address"):
        if attrs[key][i]:
            return attrs[key][i]
    host, port = attrs["network.peer.address"][i], attrs["network.peer.port"][i]
    if host:
        return f"{host}:{port}" if port else host
    return attrs["db.name"][i]
