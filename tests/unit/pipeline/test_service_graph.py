"""Service graph: spans recorded by the SDK, fed in batches in any order -> Tempo's edge series. The expected edges
are computed here from the span definitions (parent links and kinds), not by replaying an edge store."""

from __future__ import annotations

from collections import defaultdict

import pytest

from collector.model import MetricBatch
from collector.pipeline.service_graph import ServiceGraph
from tests.unit.pipeline.span_tables import SpanDef, spans, table

BUCKETS = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8]  # Tempo's default, written out
NOW_MS = 1_800_000_000_000
WAIT_S = 10.0
Edge = tuple[str, str, str]  # client, server, connection_type

CASES: dict[str, tuple[list[SpanDef], list[list[str]]]] = {
    "client then server, one batch each, gateway -> orders -> two backends": (
        [
            SpanDef("gw", "gateway", "POST /api/orders", "server", 90),
            SpanDef("gw-c", "gateway", "POST", "client", 80, parent="gw"),
            SpanDef("o", "orders", "POST /orders", "server", 70, parent="gw-c"),
            SpanDef("o-inv", "orders", "POST", "client", 20, parent="o"),
            SpanDef("inv", "inventory", "POST /reserve", "server", 15, parent="o-inv"),
            SpanDef("o-pay", "orders", "POST", "client", 30, parent="o", status="error"),
            SpanDef("pay", "payments", "POST /charges", "server", 25, parent="o-pay", status="error"),
            SpanDef("o-inv2", "orders", "POST", "client", 300, parent="o"),
            SpanDef("inv2", "inventory", "POST /release", "server", 250, parent="o-inv2"),
        ],
        [["gw", "gw-c", "o-inv", "o-pay", "o-inv2"], ["o", "inv", "pay", "inv2"]],
    ),
    "server half first, failure on the server side only": (
        [
            SpanDef("c", "web", "GET", "client", 500),
            SpanDef("s", "api", "GET /items", "server", 450, parent="c", status="error"),
            SpanDef("c2", "web", "GET", "client", 5),
            SpanDef("s2", "api", "GET /items", "server", 4, parent="c2", status="ok"),
        ],
        [["s", "s2"], ["c", "c2"]],
    ),
    "producer and consumer: a messaging system": (
        [
            SpanDef("p", "orders", "publish", "producer", 2),
            SpanDef("q", "mailer", "consume", "consumer", 40, parent="p"),
        ],
        [["q", "p"]],
    ),
    "a database call names its server; a bare one becomes a virtual node": (
        [
            SpanDef("s", "orders", "GET /orders", "server", 50),
            SpanDef(
                "db", "orders", "SELECT", "client", 3, parent="s", attributes={"db.system": "sqlite", "db.name": "main"}
            ),
            SpanDef(
                "db2",
                "orders",
                "SELECT",
                "client",
                4,
                parent="s",
                attributes={"db.system": "postgresql", "server.address": "pg1"},
            ),
            SpanDef("db3", "orders", "INSERT", "client", 5, parent="s", attributes={"db.system": "sqlite"}),
        ],
        [["s", "db", "db2", "db3"]],
    ),
    "unanswered clients: a peer.service is a virtual server, none is unpaired": (
        [
            SpanDef("s", "shop", "GET /", "server", 50),
            SpanDef("ext", "shop", "charge", "client", 30, parent="s", attributes={"peer.service": "stripe"}),
            SpanDef("lost", "shop", "GET", "client", 10, parent="s"),
        ],
        [["s", "ext", "lost"]],
    ),
    "internal spans are no edge; a server under an internal span is unpaired": (
        [
            SpanDef("s", "shop", "GET /", "server", 50),
            SpanDef("i", "shop", "work", "internal", 40, parent="s"),
            SpanDef("s2", "shop", "nested", "server", 30, parent="i"),
        ],
        [["s", "i", "s2"]],
    ),
}


def expected(defs: list[SpanDef]) -> tuple[dict[Edge, list[tuple[float, float, bool]]], dict[Edge, int]]:
    """Edges -> [(client seconds, server seconds, failed)] per request, and unpaired halves by labels."""
    by_key = {d.key: d for d in defs}
    children = defaultdict(list)
    for d in defs:
        if d.parent:
            children[d.parent].append(d)
    edges: dict[Edge, list[tuple[float, float, bool]]] = defaultdict(list)
    unpaired: dict[Edge, int] = defaultdict(int)
    for d in defs:
        seconds, failed = d.duration_ms / 1000, d.status == "error"
        if d.kind in ("server", "consumer"):
            parent = by_key.get(d.parent) if d.parent else None
            conn = "messaging_system" if d.kind == "consumer" else ""
            if parent is None:
                edges[("user", d.service, "virtual_node")].append((0.0, seconds, failed))
            elif parent.kind not in ("client", "producer"):
                unpaired[("", d.service, conn)] += 1
        elif d.kind in ("client", "producer"):
            answers = [c for c in children[d.key] if c.kind in ("server", "consumer")]
            conn = "messaging_system" if d.kind == "producer" else ""
            a = d.attributes
            if "db.name" in a or "db.system" in a:
                server = a.get("peer.service") or a.get("server.address") or a.get("db.name")
                if server:
                    edges[(d.service, server, "database")].append((seconds, seconds, failed))
                else:
                    edges[(d.service, a["db.system"], "virtual_node")].append((seconds, seconds, failed))
            elif answers:
                for c in answers:
                    edges[(d.service, c.service, conn)].append(
                        (seconds, c.duration_ms / 1000, failed or c.status == "error")
                    )
            elif "peer.service" in a:
                edges[(d.service, a["peer.service"], "virtual_node")].append((seconds, 0.0, failed))
            else:
                unpaired[(d.service, "", conn)] += 1
    return edges, unpaired


def current(batch: MetricBatch, name: str) -> dict[tuple[str, ...], float]:
    """Values at NOW_MS of one metric, by (client, server, connection_type[, le])."""
    out: dict[tuple[str, ...], float] = {}
    for fp, t, v in zip(batch.fingerprint, batch.timestamp_ms, batch.value, strict=True):
        labels = batch.series[fp]
        if t == NOW_MS and labels["__name__"] == name:
            key: tuple[str, ...] = (
                labels.get("client", ""),
                labels.get("server", ""),
                labels.get("connection_type", ""),
            )
            out[(*key, labels["le"]) if "le" in labels else key] = v
    return out


@pytest.mark.parametrize("defs, batches", list(CASES.values()), ids=list(CASES))
def test_edges_from_span_pairs(defs: list[SpanDef], batches: list[list[str]]) -> None:
    recorded = spans(defs)
    graph = ServiceGraph(BUCKETS, wait_s=WAIT_S)
    for i, keys in enumerate(batches):
        graph.observe(table([recorded[k] for k in keys]), float(i), NOW_MS - 5000)
    graph.expire(len(batches) + WAIT_S, NOW_MS - 1000)
    assert not graph.edges
    batch = MetricBatch()
    graph.collect(batch, NOW_MS, 0)

    edges, unpaired = expected(defs)
    assert current(batch, "traces_service_graph_request_total") == {e: len(r) for e, r in edges.items()}
    failed = {e: sum(1 for *_, f in r if f) for e, r in edges.items()}
    assert current(batch, "traces_service_graph_request_failed_total") == {e: n for e, n in failed.items() if n}
    for side, index in (("client", 0), ("server", 1)):
        name = f"traces_service_graph_request_{side}_seconds"
        sums = current(batch, name + "_sum")
        assert set(sums) == set(edges)
        buckets = current(batch, name + "_bucket")
        for e, requests in edges.items():
            seconds = [r[index] for r in requests]
            assert sums[e] == pytest.approx(sum(seconds), abs=1e-12)
            assert current(batch, name + "_count")[e] == len(seconds)
            for bound in BUCKETS:
                assert buckets[(*e, repr(bound))] == sum(1 for s in seconds if s <= bound)
            assert buckets[(*e, "+Inf")] == len(seconds)
    assert current(batch, "traces_service_graph_unpaired_spans_total") == unpaired
    assert current(batch, "traces_service_graph_dropped_spans_total") == {}


def test_halves_wait_until_their_ttl() -> None:
    recorded = spans([SpanDef("c", "web", "GET", "client", 5), SpanDef("s", "api", "GET", "server", 4, parent="c")])
    graph = ServiceGraph(BUCKETS, wait_s=WAIT_S)
    graph.observe(table([recorded["c"]]), 0.0, NOW_MS)
    assert graph.expire(WAIT_S - 0.5, NOW_MS) == 0  # still waiting
    graph.observe(table([recorded["s"]]), WAIT_S - 0.1, NOW_MS)
    assert not graph.edges
    batch = MetricBatch()
    graph.collect(batch, NOW_MS, 0)
    assert current(batch, "traces_service_graph_request_total") == {("web", "api", ""): 1.0}


def test_a_full_store_drops_new_halves_and_counts_them() -> None:
    defs = [SpanDef(f"c{i}", "web", "GET", "client", 5) for i in range(3)]
    recorded = spans(defs)
    graph = ServiceGraph(BUCKETS, wait_s=WAIT_S, max_items=2)
    graph.observe(table([recorded[d.key] for d in defs]), 0.0, NOW_MS)
    assert len(graph.edges) == 2
    graph.expire(WAIT_S + 1, NOW_MS)
    batch = MetricBatch()
    graph.collect(batch, NOW_MS, 0)
    assert current(batch, "traces_service_graph_dropped_spans_total") == {("web", "", ""): 1.0}
    assert current(batch, "traces_service_graph_unpaired_spans_total") == {("web", "", ""): 2.0}


def test_dimensions_label_the_edge() -> None:
    recorded = spans(
        [
            SpanDef("c", "web", "GET", "client", 5, resource={"deployment.environment": "prod"}),
            SpanDef("s", "api", "GET", "server", 4, parent="c", attributes={"http.route": "/items"}),
        ]
    )
    graph = ServiceGraph(BUCKETS, dimensions=["deployment.environment", "http.route"], wait_s=WAIT_S)
    graph.observe(table(list(recorded.values())), 0.0, NOW_MS)
    batch = MetricBatch()
    graph.collect(batch, NOW_MS, 0)
    [labels] = [s for s in batch.series.values() if s["__name__"] == "traces_service_graph_request_total"]
    assert labels == {
        "__name__": "traces_service_graph_request_total",
        "client": "web",
        "server": "api",
        "deployment_environment": "prod",
        "http_route": "/items",
    }
