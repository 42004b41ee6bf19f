"""Prometheus API parameters: times, durations and steps, selectors, limits, label names."""

from __future__ import annotations

import pytest

from collector.api.prom_params import (
    duration_ms,
    expression_selectors,
    label_name,
    parse_duration,
    parse_limit,
    parse_time,
    selector_matchers,
    time_ms,
)
from collector.api.prom_wire import ApiError
from collector.query.promql.storage import Matcher
from collector.store.promql_reads import MAX_MS, MIN_MS


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1435781451", 1435781451000),
        ("1435781451.781", 1435781451781),
        ("1435781451.7815", 1435781451782),  # rounded to the millisecond, as Prometheus does
        ("0", 0),
        ("-1.5", -1500),
        ("1e3", 1_000_000),
        ("2015-07-01T20:10:51.781Z", 1435781451781),
        ("2015-07-01T20:10:51Z", 1435781451000),
        ("2015-07-01T20:10:51.7819Z", 1435781451781),  # RFC 3339 is truncated to the millisecond
        ("2015-07-01T22:10:51+02:00", 1435781451000),
        ("2015-07-01T18:10:51.5-02:00", 1435781451500),
        ("-292273086-05-16T16:47:06Z", MIN_MS),
        ("292277025-08-18T07:12:54.999999999Z", MAX_MS),
    ],
)
def test_times(text: str, ms: int) -> None:
    assert time_ms(text) == ms


@pytest.mark.parametrize(
    "text", ["", "now", "2015-07-01", "2015-07-01T20:10:51", "2015-13-01T20:10:51Z", " 1", "1_000", "NaN", "Inf"]
)
def test_bad_times(text: str) -> None:
    assert time_ms(text) is None
    with pytest.raises(ApiError) as info:
        parse_time(text, "time")
    assert info.value.error_type == "bad_data"
    assert info.value.message == f'invalid parameter "time": cannot parse "{text}" to a valid timestamp'


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("15", 15_000),
        ("0.5", 500),
        ("1e1", 10_000),
        ("0", 0),
        ("5m", 300_000),
        ("1h30m", 5_400_000),
        ("250ms", 250),
        ("1d", 86_400_000),
        ("2w", 14 * 86_400_000),
        ("1y", 365 * 86_400_000),
        ("1m30s500ms", 90_500),
        ("-1", -1000),
    ],
)
def test_durations_and_steps(text: str, ms: int) -> None:
    assert duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "5 m", "5M", "1h1d", "m", "1.5m", "abc", "NaN", "1e30"])
def test_bad_durations(text: str) -> None:
    assert duration_ms(text) is None
    with pytest.raises(ApiError) as info:
        parse_duration(text, "step")
    assert info.value.message == f'invalid parameter "step": cannot parse "{text}" to a valid duration'


def test_limits() -> None:
    assert parse_limit(None) == 0
    assert parse_limit("") == 0
    assert parse_limit("10") == 10
    for bad in ("x", "-1", "1.5"):
        with pytest.raises(ApiError):
            parse_limit(bad)


def test_selectors() -> None:
    assert selector_matchers('up{job="a",x!="",y=~"b.*",z!~"c"}') == [
        Matcher("__name__", "=", "up"),
        Matcher("job", "=", "a"),
        Matcher("x", "!=", ""),
        Matcher("y", "=~", "b.*"),
        Matcher("z", "!~", "c"),
    ]
    assert selector_matchers('{__name__=~"a|b"}') == [Matcher("__name__", "=~", "a|b")]
    for bad in ('{x=""}', "up{", "rate(up[5m])", "up offset 5m", "1+1"):
        with pytest.raises(ApiError) as info:
            selector_matchers(bad)
        assert info.value.error_type == "bad_data" and 'invalid parameter "match[]"' in info.value.message


def test_expression_selectors() -> None:
    found = expression_selectors('sum(rate(a{x="1"}[5m])) / on() b + max_over_time(c[5m:1m])')
    assert found == [
        [Matcher("__name__", "=", "a"), Matcher("x", "=", "1")],
        [Matcher("__name__", "=", "b")],
        [Matcher("__name__", "=", "c")],
    ]
    assert expression_selectors("1+1") == []
    with pytest.raises(ApiError):
        expression_selectors("sum(")


def test_label_names() -> None:
    assert label_name("__name__") == "__name__"
    assert label_name("job_2") == "job_2"
    for bad in ("2x", "a-b", "", "é"):
        with pytest.raises(ApiError) as info:
            label_name(bad)
        assert info.value.message == f'invalid label name: "{bad}"'
