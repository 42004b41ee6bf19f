"""Drops counted at the agent level: a full span queue shows in agent.stats() and in /metrics."""

from __future__ import annotations

import io
import time

from prometheus_client.parser import text_string_to_metric_families

import agents
from agents.exposition import encode_metrics
from tests.conftest import free_port


def test_full_span_queue_is_counted_and_exposed() -> None:
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",  # nothing listens
        "OTEL_BSP_MAX_QUEUE_SIZE": "3",
        "OTEL_BSP_SCHEDULE_DELAY": "60000",  # nothing leaves the queue before shutdown
        "OBS_REGISTRY_URL": "",
        "OBS_METRICS_PUSH_URL": "",
    }
    agent = agents.start("stats-test", environ=environ, console=io.StringIO(), shutdown_timeout_s=0.5)
    try:
        # A full batch (3) wakes the worker, which then sits in the exporter's retry backoff (>= 0.5 s)...
        for i in range(3):
            with agent.tracer.start_as_current_span(f"first-{i}"):
                pass
        deadline = time.monotonic() + 5
        while agent.stats()["spans_queued"] and time.monotonic() < deadline:
            time.sleep(0.005)
        # ...so of these ten, three fill the queue and seven are dropped.
        for i in range(10):
            with agent.tracer.start_as_current_span(f"work-{i}"):
                pass
        stats = agent.stats()
        assert stats["spans_dropped_queue_full"] == 7 and stats["spans_dropped"] == 7
        assert stats["spans_queued"] == 3
        body, _ = encode_metrics(agent.registry, "", "")
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(body.decode())
            for s in fam.samples
        }
        assert samples["agent_dropped_total", (("reason", "queue_full"), ("signal", "spans"))] == 7
        assert samples["agent_queue_size", (("signal", "spans"),)] == 3
        assert agent.push.write("orders", {"n": 1}) is False  # pusher disabled: counted, not queued
        assert agent.stats()["points_dropped"] == 1
    finally:
        started = time.monotonic()
        agent.shutdown()
        assert time.monotonic() - started < 3  # bounded although every export fails
    # What was still queued when the bounded flush gave up, or failed to export, is counted too.
    final = agent.stats()
    assert final["spans_dropped_export_failed"] + final["spans_dropped_shutdown"] == 6
    assert final["spans_exported"] == 0
