"""The OTLP/JSON example payloads of opentelemetry-proto are accepted and read back exactly.

The expectations are read from the example files themselves (ids lower-cased: hex is case-insensitive).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import SHARED, CollectorProcess

EXAMPLES = SHARED / "otlp-examples"


def _value(v: dict[str, Any]) -> Any:
    ((kind, raw),) = v.items()
    if kind == "intValue":
        return int(raw)
    if kind == "arrayValue":
        return [_value(x) for x in raw.get("values", [])]
    if kind == "kvlistValue":
        return {kv["key"]: _value(kv["value"]) for kv in raw.get("values", [])}
    return raw


def _attrs(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {kv["key"]: _value(kv["value"]) for kv in items}


def _post(c: CollectorProcess, signal: str, name: str) -> dict[str, Any]:
    body = (EXAMPLES / name).read_bytes()
    r = httpx.post(f"{c.otlp_url}/v1/{signal}", content=body, headers={"content-type": "application/json"}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json() == {}
    return json.loads(body)


def test_trace_example(collector: CollectorProcess) -> None:
    doc = _post(collector, "traces", "trace.json")
    rs = doc["resourceSpans"][0]
    ss = rs["scopeSpans"][0]
    sent = ss["spans"][0]
    r = httpx.get(f"{collector.url}/api/obs/traces/{sent['traceId']}", timeout=10)
    assert r.status_code == 200, r.text
    [got] = r.json()["spans"]
    assert got["trace_id"] == sent["traceId"].lower()
    assert got["span_id"] == sent["spanId"].lower()
    assert got["parent_span_id"] == sent["parentSpanId"].lower()
    assert got["name"] == sent["name"]
    assert got["kind"] == "Server" and sent["kind"] == 2
    assert got["start_time_unix_nano"] == sent["startTimeUnixNano"]
    assert got["end_time_unix_nano"] == sent["endTimeUnixNano"]
    assert got["attributes"] == _attrs(sent["attributes"])
    assert got["resource"] == _attrs(rs["resource"]["attributes"])
    assert got["scope"] == {"name": ss["scope"]["name"], "version": ss["scope"]["version"]}
    services = httpx.get(f"{collector.url}/api/obs/services", timeout=10).json()["services"]
    assert {"name": "my.service", "operations": [sent["name"]], "span_count": 1} in services


@pytest.mark.parametrize("name", ["logs.json", "events.json"])
def test_log_examples(collector: CollectorProcess, name: str) -> None:
    doc = _post(collector, "logs", name)
    rl = doc["resourceLogs"][0]
    sent = rl["scopeLogs"][0]["logRecords"][0]
    params = {"service": "my.service", "start": sent["timeUnixNano"], "end": sent["timeUnixNano"]}
    if "traceId" in sent:
        params["trace_id"] = sent["traceId"]
    if "eventName" in sent:
        params["attr"] = "event.attribute:some event attribute"
    r = httpx.get(f"{collector.url}/api/obs/logs", params=params, timeout=10)
    assert r.status_code == 200, r.text
    [got] = r.json()["logs"]
    assert got["time_unix_nano"] == sent["timeUnixNano"]
    assert got["observed_time_unix_nano"] == sent["observedTimeUnixNano"]
    assert got["severity_number"] == sent["severityNumber"]
    assert got["severity_text"] == sent["severityText"]
    assert got["body"] == _value(sent["body"])
    assert got["attributes"] == _attrs(sent["attributes"])
    assert got["trace_id"] == sent.get("traceId", "").lower()
    assert got["span_id"] == sent.get("spanId", "").lower()
    assert got["event_name"] == sent.get("eventName", "")
    assert got["scope"]["attributes"] == _attrs(rl["scopeLogs"][0]["scope"]["attributes"])


def test_metrics_example(collector: CollectorProcess) -> None:
    doc = _post(collector, "metrics", "metrics.json")
    metrics = {m["name"]: m for m in doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]}

    def series(metric: str) -> list[dict[str, Any]]:
        r = httpx.get(
            f"{collector.url}/api/obs/metrics/series",
            params=[("metric", metric), ("label", "job:my.service")],
            timeout=10,
        )
        assert r.status_code == 200, r.text
        return r.json()["series"]

    ts_ms = int(metrics["my.counter"]["sum"]["dataPoints"][0]["timeUnixNano"]) // 1_000_000
    [counter] = series("my_counter_total")
    assert counter["labels"]["my_counter_attr"] == "some value"
    assert counter["samples"] == [[ts_ms, repr(float(metrics["my.counter"]["sum"]["dataPoints"][0]["asDouble"]))]]
    [gauge] = series("my_gauge_ratio")
    assert float(gauge["samples"][0][1]) == metrics["my.gauge"]["gauge"]["dataPoints"][0]["asDouble"]
    point = metrics["my.histogram"]["histogram"]["dataPoints"][0]
    buckets = {s["labels"]["le"]: float(s["samples"][0][1]) for s in series("my_histogram_bucket")}
    bounds = point["explicitBounds"]
    cumulative = 0
    for bound, count in zip([*bounds, "+Inf"], point["bucketCounts"], strict=True):
        cumulative += int(count)
        key = "+Inf" if bound == "+Inf" else f"{float(bound):g}"
        assert buckets[key] == cumulative
    [count] = series("my_histogram_count")
    assert float(count["samples"][0][1]) == int(point["count"])
    [total] = series("my_histogram_sum")
    assert float(total["samples"][0][1]) == point["sum"]
    assert series("my_exponential_histogram_count"), "exponential histogram converted to classic buckets"
