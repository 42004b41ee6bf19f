"""Prometheus durations: parse and format as model.ParseDuration and Duration.String()."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerting.durations import DurationError, format_duration, format_duration_ms, parse_duration, parse_duration_ms

MS = 1
S = 1000 * MS
M = 60 * S
H = 60 * M
D = 24 * H
W = 7 * D
Y = 365 * D


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("0", 0),
        ("0s", 0),
        ("5m", 5 * M),
        ("1h30m", H + 30 * M),
        ("90s", 90 * S),
        ("1500ms", 1500),
        ("2w", 2 * W),
        ("1y", Y),
        ("1y2w3d4h5m6s7ms", Y + 2 * W + 3 * D + 4 * H + 5 * M + 6 * S + 7),
        ("007s", 7 * S),
        ("0d0h", 0),
    ],
)
def test_parse(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms
    assert parse_duration(text) == ms / 1000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration string"),
        ("5", 'not a valid duration string: "5"'),
        ("1.5m", 'not a valid duration string: "1.5m"'),
        ("5m1h", 'not a valid duration string: "5m1h"'),  # largest unit first
        ("1h1h", 'not a valid duration string: "1h1h"'),  # each unit once
        ("-5m", 'not a valid duration string: "-5m"'),
        ("5 m", 'not a valid duration string: "5 m"'),
        ("1us", 'not a valid duration string: "1us"'),
        ("5M", 'not a valid duration string: "5M"'),
        ("300y", "duration out of range"),  # beyond int64 nanoseconds (~292 years)
    ],
)
def test_parse_refuses(text: str, message: str) -> None:
    with pytest.raises(DurationError) as err:
        parse_duration_ms(text)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0s"),
        (90 * S, "1m30s"),
        (H + 30 * M, "1h30m"),
        (1500, "1s500ms"),
        (2 * W, "2w"),
        (90 * D, "90d"),  # weeks only when they divide exactly: 90d, not 12w6d
        (Y, "1y"),
        (Y + D, "366d"),  # likewise years
        (D + 1, "1d1ms"),
        (14 * D, "2w"),
    ],
)
def test_format(ms: int, text: str) -> None:
    assert format_duration_ms(ms) == text


def test_format_seconds_round_to_the_millisecond() -> None:
    assert format_duration(0.0015) == "2ms"
    assert format_duration(300.0) == "5m"


def test_format_refuses_negative() -> None:
    with pytest.raises(DurationError):
        format_duration_ms(-1)


@given(st.integers(min_value=0, max_value=290 * Y))
def test_round_trip(ms: int) -> None:
    assert parse_duration_ms(format_duration_ms(ms)) == ms
