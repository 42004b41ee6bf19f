"""Silences: create, match, update, expire, persistence, and Alertmanager's v2 JSON shapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerting.notify.matchers import parse_matchers
from alerting.notify.silences import (
    SilenceError,
    SilenceNotFound,
    Silences,
    SilenceState,
    silence_from_json,
)
from alerting.notify.timefmt import format_rfc3339


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


T0 = 1_700_000_000.0


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def silences(tmp_path: Path, clock: Clock) -> Silences:
    return Silences(tmp_path / "silences.db", clock)


def test_lifecycle_pending_active_expired(silences: Silences, clock: Clock) -> None:
    s = silences.create(parse_matchers('service="orders"'), T0 + 60, T0 + 600, "ops", "deploy")
    labels = {"alertname": "HighErrors", "service": "orders"}
    assert s.state(T0) is SilenceState.PENDING and silences.mutes(labels, T0) == []
    assert silences.mutes(labels, T0 + 60) == [s.id]
    assert silences.mutes({"service": "payments"}, T0 + 60) == []
    assert silences.mutes(labels, T0 + 600) == []  # endsAt is exclusive
    clock.t = T0 + 120
    expired = silences.expire(s.id)
    assert expired.state(clock.t) is SilenceState.EXPIRED and silences.mutes(labels, clock.t) == []
    with pytest.raises(SilenceError, match="already expired"):
        silences.expire(s.id)
    assert [x.id for x in silences.list(SilenceState.EXPIRED)] == [s.id]


def test_start_in_the_past_means_now(silences: Silences) -> None:
    s = silences.create(parse_matchers("a=b"), T0 - 3600, T0 + 60, "ops", "c")
    assert s.starts_at == T0 and s.state(T0) is SilenceState.ACTIVE


def test_update_in_place_or_replace(silences: Silences, clock: Clock) -> None:
    s = silences.create(parse_matchers("a=b"), T0, T0 + 600, "ops", "c")
    longer = silences.update(s.id, ends_at=T0 + 1200, comment="longer")
    assert (longer.id, longer.ends_at, longer.comment) == (s.id, T0 + 1200, "longer")
    other = silences.update(s.id, matchers=parse_matchers("a=c"))  # new matchers: old one expires, new id
    assert other.id != s.id and silences.get(s.id).state(clock.t) is SilenceState.EXPIRED
    assert [x.id for x in silences.list(SilenceState.ACTIVE)] == [other.id]
    with pytest.raises(SilenceNotFound):
        silences.update("nope", comment="x")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"startsAt": "x"}, "matchers: at least one matcher"),
        ({"matchers": [{"name": "a"}]}, r"matchers\[0\].value: required"),
        ({"matchers": [{"name": "a", "value": "(", "isRegex": True}]}, r"matchers\[0\]: invalid regex"),
        ({"matchers": [{"name": "a", "value": "b"}], "startsAt": "yesterday"}, "startsAt: invalid RFC 3339"),
        (
            {
                "matchers": [{"name": "a", "value": "b"}],
                "startsAt": "2024-01-01T00:00:00Z",
                "endsAt": "2024-01-01T01:00:00Z",
                "comment": "c",
            },
            "createdBy: required",
        ),
    ],
)
def test_json_errors_name_the_field(body: dict[str, object], message: str) -> None:
    with pytest.raises(SilenceError, match=message):
        silence_from_json(body)


@pytest.mark.parametrize(
    ("matchers", "message"),
    [
        ([{"name": "a", "value": ".*", "isRegex": True}], "must not match the empty string"),
        ([{"name": "a", "value": "b"}], None),
    ],
)
def test_validation(silences: Silences, matchers: list[dict[str, object]], message: str | None) -> None:
    spec = silence_from_json(
        {
            "matchers": matchers,
            "startsAt": format_rfc3339(T0),
            "endsAt": format_rfc3339(T0 + 60),
            "createdBy": "ops",
            "comment": "c",
        }
    )
    if message is None:
        assert silences.put(spec).state(T0) is SilenceState.ACTIVE
    else:
        with pytest.raises(SilenceError, match=message):
            silences.put(spec)


def test_ends_in_the_past_is_refused(silences: Silences) -> None:
    with pytest.raises(SilenceError, match="endsAt: must be in the future"):
        silences.create(parse_matchers("a=b"), T0 - 600, T0 - 60, "ops", "c")


def test_v2_json_round_trip_and_persistence(tmp_path: Path, clock: Clock) -> None:
    store = Silences(tmp_path / "s.db", clock)
    body = {
        "matchers": [
            {"name": "service", "value": "orders", "isRegex": False, "isEqual": True},
            {"name": "env", "value": "dev|test", "isRegex": True, "isEqual": False},
        ],
        "startsAt": format_rfc3339(T0),
        "endsAt": format_rfc3339(T0 + 3600),
        "createdBy": "ops",
        "comment": "maintenance",
    }
    s = store.put(silence_from_json(body))
    store.close()
    again = Silences(tmp_path / "s.db", clock)
    out = again.get(s.id).to_json(T0)
    assert {k: out[k] for k in body} == body
    assert out["id"] == s.id and out["status"] == {"state": "active"} and out["updatedAt"] == format_rfc3339(T0)
    assert again.mutes({"service": "orders", "env": "prod"}, T0) == [s.id]
    assert again.mutes({"service": "orders", "env": "dev"}, T0) == []


def test_expired_silences_are_dropped_after_retention(tmp_path: Path, clock: Clock) -> None:
    store = Silences(tmp_path / "s.db", clock, retention_s=3600)
    s = store.create(parse_matchers("a=b"), T0, T0 + 60, "ops", "c")
    clock.t = T0 + 60 + 3599
    assert [x.id for x in store.list()] == [s.id]
    clock.t = T0 + 60 + 3601
    assert store.list() == []
