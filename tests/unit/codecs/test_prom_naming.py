"""Prometheus names for OTLP metrics: the translator's table of cases, plus properties over any input."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.codecs.prom_naming import (
    LABEL_NAME_RE,
    METRIC_NAME_RE,
    MetricKind,
    family_name,
    format_label_float,
    label_name,
    metric_name,
    unit_name,
)

C, G, U, H, S = (
    MetricKind.COUNTER,
    MetricKind.GAUGE,
    MetricKind.UPDOWN_COUNTER,
    MetricKind.HISTOGRAM,
    MetricKind.SUMMARY,
)


@pytest.mark.parametrize(
    ("name", "unit", "kind", "expected"),
    [
        # escaping: invalid characters become "_", runs collapse, leading/trailing "_" go
        ("http.server.duration", "s", H, "http_server_duration_seconds"),
        ("system.network.io", "By", C, "system_network_io_bytes_total"),
        ("a..b--c", "", G, "a_b_c"),
        ("__a__b__", "", G, "a_b"),
        ("(lambda).function.executions(#)", "", G, "lambda_function_executions"),
        ("ns:sub.metric", "", G, "ns:sub_metric"),
        ("héllo", "", G, "h_llo"),
        ("2xx.responses", "", G, "_2xx_responses"),
        ("...", "", G, ""),
        ("", "s", C, ""),
        # unit words (the spec's table)
        ("t", "d", G, "t_days"),
        ("t", "h", G, "t_hours"),
        ("t", "min", G, "t_minutes"),
        ("t", "ms", H, "t_milliseconds"),
        ("t", "us", H, "t_microseconds"),
        ("t", "ns", H, "t_nanoseconds"),
        ("m", "KiBy", G, "m_kibibytes"),
        ("m", "MiBy", G, "m_mebibytes"),
        ("m", "GiBy", G, "m_gibibytes"),
        ("m", "TiBy", G, "m_tebibytes"),
        ("m", "KBy", G, "m_kilobytes"),
        ("m", "kBy", G, "m_kilobytes"),
        ("m", "MBy", G, "m_megabytes"),
        ("m", "GBy", G, "m_gigabytes"),
        ("m", "TBy", G, "m_terabytes"),
        ("d", "m", G, "d_meters"),
        ("p", "V", G, "p_volts"),
        ("i", "A", G, "i_amperes"),
        ("e", "J", C, "e_joules_total"),
        ("w", "W", G, "w_watts"),
        ("x", "g", G, "x_grams"),
        ("temp", "Cel", G, "temp_celsius"),
        ("cpu.freq", "Hz", G, "cpu_freq_hertz"),
        ("cpu.usage", "%", G, "cpu_usage_percent"),
        ("custom", "widgets", G, "custom_widgets"),
        ("custom", "wid@gets", G, "custom_wid_gets"),
        # "1": _ratio on OTLP gauges only
        ("memory.utilization", "1", G, "memory_utilization_ratio"),
        ("hit_ratio", "1", G, "hit_ratio"),
        ("ratio.of.hits", "1", G, "of_hits_ratio"),
        ("requests", "1", C, "requests_total"),
        ("queue.size", "1", U, "queue_size"),
        ("latency", "1", H, "latency"),
        # annotations in braces are no unit
        ("system.network.dropped", "{packets}", C, "system_network_dropped_total"),
        ("requests", "{request}/s", G, "requests_per_second"),
        ("rx", "By/{packet}", G, "rx_bytes"),
        # per units
        ("io", "By/s", G, "io_bytes_per_second"),
        ("rate", "1/s", G, "rate_per_second"),
        ("rate", "1/m", G, "rate_per_minute"),
        ("rate", "1/h", G, "rate_per_hour"),
        ("rate", "1/d", G, "rate_per_day"),
        ("rate", "1/w", G, "rate_per_week"),
        ("rate", "1/mo", G, "rate_per_month"),
        ("rate", "1/y", G, "rate_per_year"),
        ("rate", "foo/bar", G, "rate_foo_per_bar"),
        ("rate", "1/@", G, "rate"),
        # suffixes already present are not repeated
        ("latency_seconds", "s", H, "latency_seconds"),
        ("seconds_in_queue", "s", H, "seconds_in_queue"),
        ("bytes_per_second", "By/s", G, "bytes_per_second"),
        ("io_per_second", "By/s", G, "io_per_second_bytes"),
        # _total exactly once, at the end
        ("requests_total", "", C, "requests_total"),
        ("requests.total", "", C, "requests_total"),
        ("total.requests", "", C, "requests_total"),
        ("requests_total_total", "", C, "requests_total"),
        ("sent", "By", C, "sent_bytes_total"),
        ("requests_total", "", G, "requests_total"),
        ("rpc", "ms", S, "rpc_milliseconds"),
    ],
)
def test_metric_name(name: str, unit: str, kind: MetricKind, expected: str) -> None:
    assert metric_name(name, unit, kind) == expected


@pytest.mark.parametrize(
    ("name", "unit", "kind", "expected"),
    [
        ("my.counter", "1", C, "my_counter"),
        ("sent", "By", C, "sent_bytes"),
        ("total", "", C, "total"),
        ("http.server.duration", "s", H, "http_server_duration_seconds"),
        ("my.gauge", "1", G, "my_gauge_ratio"),
    ],
)
def test_family_name_drops_total(name: str, unit: str, kind: MetricKind, expected: str) -> None:
    assert family_name(name, unit, kind) == expected


@pytest.mark.parametrize(
    ("kind", "expected"),
    [(C, "counter"), (G, "gauge"), (U, "gauge"), (H, "histogram"), (S, "summary")],
)
def test_prometheus_type(kind: MetricKind, expected: str) -> None:
    assert kind.prometheus_type == expected


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("s", "seconds"),
        ("By/s", "bytes_per_second"),
        ("1", ""),
        ("", ""),
        ("{request}", ""),
        ("%", "percent"),
        ("  ms  ", "milliseconds"),
        ("custom@unit", "custom_unit"),
    ],
)
def test_unit_name(unit: str, expected: str) -> None:
    assert unit_name(unit) == expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("http.method", "http_method"),
        ("http.response.status_code", "http_response_status_code"),
        ("a..b", "a__b"),  # one "_" per invalid character, as the translator does for labels
        ("2xx", "key_2xx"),
        ("_private", "key_private"),
        ("__reserved__", "__reserved__"),
        ("a-b/c", "a_b_c"),
        ("é", "key_"),
        ("le", "le"),
        ("", ""),
        ("__", ""),
        ("...", ""),
    ],
)
def test_label_name(key: str, expected: str) -> None:
    assert label_name(key) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.005, "0.005"),
        (0.01, "0.01"),
        (0.1, "0.1"),
        (1.0, "1"),
        (2.5, "2.5"),
        (10.0, "10"),
        (1e6, "1000000"),
        (1e-5, "0.00001"),
        (0.0, "0"),
        (-0.0, "-0"),
        (-1.5, "-1.5"),
        (0.1 + 0.2, "0.30000000000000004"),
        (2**0.5, "1.4142135623730951"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
    ],
)
def test_format_label_float(value: float, expected: str) -> None:
    assert format_label_float(value) == expected


@given(st.text(), st.text(max_size=12), st.sampled_from(list(MetricKind)))
def test_metric_name_is_always_valid(name: str, unit: str, kind: MetricKind) -> None:
    out = metric_name(name, unit, kind)
    assert out == "" or METRIC_NAME_RE.fullmatch(out)
    assert "__" not in out.lstrip("_")
    if kind is MetricKind.COUNTER and out:
        assert out.endswith("_total") or out == "total"
        assert out.split("_").count("total") == 1


@given(st.text())
def test_label_name_is_always_valid(key: str) -> None:
    out = label_name(key)
    assert out == "" or LABEL_NAME_RE.fullmatch(out)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_format_label_float_reads_back(value: float) -> None:
    text = format_label_float(value)
    assert float(text) == value
    assert "e" not in text and "E" not in text
    assert not text.endswith(".0")
