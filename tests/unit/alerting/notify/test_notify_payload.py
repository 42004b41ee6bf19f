"""The wire payloads: webhook version 4 (every field, Go's time format, truncation) and v2 postable alerts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerting.model import fingerprint
from alerting.notify.payload import labels_string, postable_alert, webhook_message
from alerting.notify.timefmt import format_rfc3339, parse_rfc3339
from tests.unit.alerting.notify.sink import firing, resolved

T0 = 1_700_000_000.0


def test_webhook_message_fields() -> None:
    a = firing("HighErrors", T0, service="orders", severity="critical")
    b = resolved("HighErrors", T0 - 60, T0 + 30.5, service="payments", severity="critical")
    msg = webhook_message(
        receiver="team.ops",
        group_key='{}:{alertname="HighErrors"}',
        group_labels={"alertname": "HighErrors"},
        alerts=[a, b],
        external_url="http://obs:9094",
        max_alerts=1,
    )
    assert msg == {
        "receiver": "team\\.ops",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "HighErrors", "service": "orders", "severity": "critical"},
                "annotations": {"summary": "HighErrors fires"},
                "startsAt": "2023-11-14T22:13:20Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://obs.example/graph?alert=HighErrors",
                "fingerprint": fingerprint(a.labels),
            }
        ],
        "groupLabels": {"alertname": "HighErrors"},
        "commonLabels": {"alertname": "HighErrors", "severity": "critical"},  # computed before truncation
        "commonAnnotations": {"summary": "HighErrors fires"},
        "externalURL": "http://obs:9094",
        "version": "4",
        "groupKey": '{}:{alertname="HighErrors"}',
        "truncatedAlerts": 1,
    }


def test_resolved_only_message() -> None:
    msg = webhook_message(
        receiver="r", group_key="k", group_labels={}, alerts=[resolved("A", T0, T0 + 1.25)], external_url=""
    )
    assert msg["status"] == "resolved" and msg["truncatedAlerts"] == 0
    assert msg["alerts"][0]["endsAt"] == "2023-11-14T22:13:21.25Z"


def test_postable_alert_like_prometheus() -> None:
    a = firing("A", T0, service="x")
    assert postable_alert(a, T0 + 10, 60) == {
        "labels": {"alertname": "A", "service": "x"},
        "annotations": {"summary": "A fires"},
        "startsAt": format_rfc3339(T0),
        "endsAt": format_rfc3339(T0 + 10 + 240),
        "generatorURL": "http://obs.example/graph?alert=A",
    }
    assert postable_alert(resolved("A", T0, T0 + 5), T0 + 10, 60)["endsAt"] == format_rfc3339(T0 + 5)


@pytest.mark.parametrize(
    ("t", "text"),
    [
        (T0, "2023-11-14T22:13:20Z"),
        (T0 + 0.5, "2023-11-14T22:13:20.5Z"),
        (T0 + 0.000123, "2023-11-14T22:13:20.000123Z"),
    ],
)
def test_time_format_round_trip(t: float, text: str) -> None:
    assert format_rfc3339(t) == text
    assert parse_rfc3339(text) == pytest.approx(t, abs=1e-6)


def test_parse_go_nanoseconds_and_offsets() -> None:
    assert parse_rfc3339("2023-11-14T22:13:20.123456789Z") == pytest.approx(T0 + 0.123456, abs=1e-6)
    assert parse_rfc3339("2023-11-15T00:13:20+02:00") == T0
    with pytest.raises(ValueError, match="time zone"):
        parse_rfc3339("2023-11-14T22:13:20")


def test_labels_string() -> None:
    assert labels_string({"b": 'x"y', "a": "1"}) == '{a="1", b="x\\"y"}'


@given(st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False))
def test_time_round_trip_property(t: float) -> None:
    assert parse_rfc3339(format_rfc3339(t)) == pytest.approx(t, abs=1e-6)
