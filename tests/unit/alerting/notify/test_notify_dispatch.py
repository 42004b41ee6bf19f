"""The Dispatcher, driven by an explicit clock: grouping and its timers, state changes only versus repeats,
levels, silences, inhibition, flapping holds, and the notification log across a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from alerting.notify.config import build_notify_config
from alerting.notify.dispatch import Dispatcher
from alerting.notify.matchers import parse_matchers
from tests.unit.alerting.notify.sink import RecordingIntegration, firing, resolved

T0 = 1_700_000_000.0


def make(
    tmp_path: Path, route: dict[str, Any] | None = None, *, send_resolved: bool = True, **extra: Any
) -> tuple[Dispatcher, RecordingIntegration, CollectorRegistry]:
    config = build_notify_config(
        {
            "receivers": [{"name": "ops"}],
            "route": {"receiver": "ops", "group_by": ["alertname"], **(route or {})},
            **extra,
        }
    )
    sink = RecordingIntegration(send_resolved=send_resolved)
    registry = CollectorRegistry()
    d = Dispatcher(config, tmp_path, registry, clock=lambda: T0, integrations={"ops": [sink]})
    return d, sink, registry


@pytest.fixture
def dispatcher(tmp_path: Path) -> Iterator[tuple[Dispatcher, RecordingIntegration, CollectorRegistry]]:
    d, sink, reg = make(tmp_path)
    yield d, sink, reg
    d.close()


def test_group_wait_then_group_interval(dispatcher: tuple[Dispatcher, RecordingIntegration, CollectorRegistry]) -> None:
    d, sink, _ = dispatcher
    a = firing("HighErrors", T0, service="orders")
    d.notify([a], T0)
    d.tick(T0 + 29)
    assert sink.sent == []  # group_wait is 30s
    d.tick(T0 + 30)
    assert sink.summary() == [[("HighErrors", "", "firing")]]
    assert sink.sent[0].group_key == '{}:{alertname="HighErrors"}'
    b = firing("HighErrors", T0 + 40, service="payments")
    d.notify([a, b], T0 + 40)
    d.tick(T0 + 100)
    assert len(sink.sent) == 1  # the next flush is group_interval (5m) after the first
    d.tick(T0 + 330)
    assert sink.summary()[1] == [("HighErrors", "", "firing"), ("HighErrors", "", "firing")]


def test_groups_are_separate(dispatcher: tuple[Dispatcher, RecordingIntegration, CollectorRegistry]) -> None:
    d, sink, _ = dispatcher
    d.notify([firing("A", T0), firing("B", T0)], T0)
    d.tick(T0 + 30)
    assert sorted(n.group_key for n in sink.sent) == ['{}:{alertname="A"}', '{}:{alertname="B"}']


@pytest.mark.parametrize(
    ("route", "rule_repeat", "expected_sends"),
    [
        ({}, None, 1),  # default: state changes only, never repeated
        ({"repeat_interval": "10m"}, None, 3),  # flushes at 30s, 5m30s, 10m30s...: repeats at 30s+10m and 30s+20m
        ({"repeat_interval": "10m"}, 0.0, 1),  # a rule's own 0 (state changes only) overrides its route
        ({}, 600.0, 3),  # a rule's repeat interval applies under a state-changes-only route
    ],
)
def test_state_changes_only_versus_repeat(
    tmp_path: Path, route: dict[str, Any], rule_repeat: float | None, expected_sends: int
) -> None:
    d, sink, _ = make(tmp_path, route)
    a = firing("A", T0, repeat=rule_repeat)
    for i in range(0, 22):  # 21 minutes of 1-minute evaluation rounds with a tick after each
        now = T0 + 60 * i
        d.notify([a], now)
        d.tick(now + 30)
    d.close()
    assert len(sink.sent) == expected_sends


def test_level_change_notifies(dispatcher: tuple[Dispatcher, RecordingIntegration, CollectorRegistry]) -> None:
    d, sink, _ = dispatcher
    d.notify([firing("Latency", T0, service="orders", severity="warning")], T0)
    d.tick(T0 + 30)
    d.notify([firing("Latency", T0, service="orders", severity="critical")], T0 + 60)
    d.tick(T0 + 330)
    d.tick(T0 + 630)
    assert sink.summary() == [[("Latency", "warning", "firing")], [("Latency", "critical", "firing")]]


@pytest.mark.parametrize(("send_resolved", "expected"), [(True, [("A", "", "resolved")]), (False, None)])
def test_resolved_sent_once(tmp_path: Path, send_resolved: bool, expected: list[tuple[str, str, str]] | None) -> None:
    d, sink, _ = make(tmp_path, send_resolved=send_resolved)
    d.notify([firing("A", T0)], T0)
    d.tick(T0 + 30)
    for i in range(1, 15):  # the evaluator passes the resolved alert again every round for 15 minutes
        d.notify([resolved("A", T0, T0 + 60)], T0 + 60 * i)
        d.tick(T0 + 60 * i + 30)
    d.close()
    assert sink.summary()[1:] == ([expected] if expected else [])


def test_nothing_for_a_group_already_notified(
    dispatcher: tuple[Dispatcher, RecordingIntegration, CollectorRegistry],
) -> None:
    d, sink, _ = dispatcher
    a, b = firing("A", T0, i="1"), firing("A", T0, i="2")
    d.notify([a, b], T0)
    d.tick(T0 + 30)
    d.notify([b], T0 + 60)  # one leaves without resolving (muted or gone): not news for the receiver
    d.tick(T0 + 330)
    assert len(sink.sent) == 1


def test_resolved_without_ever_firing_is_not_sent(
    dispatcher: tuple[Dispatcher, RecordingIntegration, CollectorRegistry],
) -> None:
    d, sink, _ = dispatcher
    d.notify([firing("A", T0)], T0)
    d.notify([resolved("A", T0, T0 + 10)], T0 + 10)  # fired and resolved within group_wait
    d.tick(T0 + 30)
    assert sink.sent == []


def test_silence_mutes_until_it_expires(
    dispatcher: tuple[Dispatcher, RecordingIntegration, CollectorRegistry],
) -> None:
    d, sink, reg = dispatcher
    sil = d.silences.create(parse_matchers('service="orders"'), T0, T0 + 3600, "ops", "deploy")
    d.notify([firing("A", T0, service="orders"), firing("B", T0, service="payments")], T0)
    d.tick(T0 + 30)
    assert [n.group_key for n in sink.sent] == ['{}:{alertname="B"}']
    assert reg.get_sample_value("alerting_alerts_muted", {"reason": "silenced"}) == 1
    assert d.mute_status({"service": "orders"}, T0 + 30).silenced_by == (sil.id,)
    d.silences.expire(sil.id)  # the clock says T0: it ends now
    d.tick(T0 + 330)
    assert [n.group_key for n in sink.sent][1:] == ['{}:{alertname="A"}']
    assert reg.get_sample_value("alerting_alerts_muted", {"reason": "silenced"}) == 0


def test_inhibition_mutes_targets_while_the_source_fires(tmp_path: Path) -> None:
    rule = {"source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"'], "equal": ["service"]}
    d, sink, reg = make(tmp_path, inhibit_rules=[rule])
    crit = firing("Down", T0, service="orders", severity="critical")
    warn = firing("Latency", T0, service="orders", severity="warning")
    other = firing("Latency", T0, service="payments", severity="warning")
    d.notify([crit, warn, other], T0)
    d.tick(T0 + 30)
    assert sorted(s[0] for s in sink.summary()) == [("Down", "critical", "firing"), ("Latency", "warning", "firing")]
    assert (
        sink.sent[[n.group_key for n in sink.sent].index('{}:{alertname="Latency"}')].alerts[0].labels["service"]
        == "payments"
    )
    assert reg.get_sample_value("alerting_alerts_muted", {"reason": "inhibited"}) == 1
    d.notify([resolved("Down", T0, T0 + 60, service="orders", severity="critical"), warn, other], T0 + 60)
    d.tick(T0 + 330)
    latest = {n.group_key: sorted(a.labels["service"] for a in n.alerts) for n in sink.sent[2:]}
    assert latest['{}:{alertname="Latency"}'] == ["orders", "payments"]  # no longer inhibited: now news
    d.close()


def test_flapping_alert_is_held_then_settles(
    dispatcher: tuple[Dispatcher, RecordingIntegration, CollectorRegistry], caplog: pytest.LogCaptureFixture
) -> None:
    d, sink, reg = dispatcher
    d.notify([firing("A", T0)], T0)
    d.tick(T0 + 30)
    assert len(sink.sent) == 1
    # It starts flapping: resolved, firing again at another level, resolved... none of it goes out.
    rounds = [
        resolved("A", T0, T0 + 60, flapping=True),
        firing("A", T0 + 120, flapping=True, severity="critical"),
        resolved("A", T0 + 120, T0 + 180, flapping=True),
    ]
    for i, a in enumerate(rounds, start=1):
        d.notify([a], T0 + 60 * i + 300 * i)
        d.tick(T0 + 60 * i + 300 * i + 1)
    assert len(sink.sent) == 1
    fp = sink.sent[0].alerts[0].identity  # no severity label: the fingerprint of the labels is the identity
    assert reg.get_sample_value("alerting_flapping_alerts", {"alertname": "A", "fingerprint": fp}) == 1
    assert "holding notifications for alert A" in caplog.text and "flapping" in caplog.text
    # It settles firing at the level last sent: nothing to say.
    d.notify([firing("A", T0 + 2000)], T0 + 2000)
    d.tick(T0 + 2300)
    assert len(sink.sent) == 1
    assert reg.get_sample_value("alerting_flapping_alerts", {"alertname": "A", "fingerprint": fp}) is None
    # Flapping again and settling resolved: the resolution goes out once.
    d.notify([firing("A", T0 + 2000, flapping=True)], T0 + 2400)
    d.tick(T0 + 2600)
    d.notify([resolved("A", T0 + 2000, T0 + 2700)], T0 + 2700)
    d.tick(T0 + 2900)
    d.notify([resolved("A", T0 + 2000, T0 + 2700)], T0 + 3000)
    d.tick(T0 + 3200)
    assert sink.summary() == [[("A", "", "firing")], [("A", "", "resolved")]]


def test_flapping_alert_never_sent_is_not_sent_until_it_settles(
    dispatcher: tuple[Dispatcher, RecordingIntegration, CollectorRegistry],
) -> None:
    d, sink, _ = dispatcher
    d.notify([firing("A", T0, flapping=True)], T0)
    d.tick(T0 + 30)
    assert sink.sent == []
    d.notify([firing("A", T0)], T0 + 60)
    d.tick(T0 + 330)
    assert sink.summary() == [[("A", "", "firing")]]


def test_history_survives_a_restart(tmp_path: Path) -> None:
    d, sink, _ = make(tmp_path)
    d.notify([firing("A", T0), firing("B", T0)], T0)
    d.tick(T0 + 30)
    assert len(sink.sent) == 2
    d.close()
    # A new Dispatcher on the same directory: still firing is not news; a resolution not yet sent is.
    d2, sink2, _ = make(tmp_path)
    d2.notify([firing("A", T0), resolved("B", T0, T0 + 100)], T0 + 600)
    d2.tick(T0 + 600)  # alerts older than group_wait: the new groups flush at once, as Alertmanager's do
    d2.tick(T0 + 1200)
    assert sink2.summary() == [[("B", "", "resolved")]]
    d2.close()


def test_silences_survive_a_restart(tmp_path: Path) -> None:
    d, _, _ = make(tmp_path)
    sil = d.silences.create(parse_matchers("alertname=A"), T0, T0 + 600, "ops", "c")
    d.close()
    d2, sink2, _ = make(tmp_path)
    d2.notify([firing("A", T0)], T0)
    d2.tick(T0 + 30)
    assert sink2.sent == [] and d2.silences.get(sil.id).comment == "c"
    d2.close()


def test_failed_delivery_is_retried_at_the_next_flush(tmp_path: Path) -> None:
    d, sink, _ = make(tmp_path)
    sink.fail = True
    d.notify([firing("A", T0)], T0)
    d.tick(T0 + 30)
    sink.fail = False
    d.tick(T0 + 330)
    assert sink.summary() == [[("A", "", "firing")]]
    d.close()


def test_pending_alerts_are_ignored_and_rule_groups_replace(
    dispatcher: tuple[Dispatcher, RecordingIntegration, CollectorRegistry],
) -> None:
    from dataclasses import replace

    from alerting.model import AlertState

    d, sink, _ = dispatcher
    pending = replace(firing("P", T0), state=AlertState.PENDING, fired_at=None)
    d.notify([pending, firing("A", T0)], T0)
    d.tick(T0 + 30)
    assert sink.summary() == [[("A", "", "firing")]]


def test_routes_send_to_their_receivers(tmp_path: Path) -> None:
    config = build_notify_config(
        {
            "receivers": [{"name": "default"}, {"name": "orders"}],
            "route": {
                "receiver": "default",
                "group_wait": "0s",
                "routes": [{"matchers": ['service="orders"'], "receiver": "orders", "continue": True}],
            },
        }
    )
    sinks = {"default": RecordingIntegration(), "orders": RecordingIntegration()}
    d = Dispatcher(config, tmp_path, CollectorRegistry(), integrations={k: [v] for k, v in sinks.items()})
    d.notify([firing("A", T0, service="orders"), firing("B", T0, service="payments")], T0)
    d.tick(T0)
    d.close()
    assert [n.receiver for n in sinks["orders"].sent] == ["orders"]
    assert [sorted(a.name for a in n.alerts) for n in sinks["default"].sent] == [["B"]]


def test_background_thread_ticks_until_stopped(tmp_path: Path) -> None:
    import time

    config = build_notify_config(
        {"receivers": [{"name": "ops"}], "route": {"receiver": "ops", "group_wait": "0s"}, "tick_interval": "20ms"}
    )
    sink = RecordingIntegration()
    d = Dispatcher(config, tmp_path, CollectorRegistry(), integrations={"ops": [sink]})
    d.start()
    try:
        now = time.time()
        d.notify([firing("A", now)], now)
        deadline = time.monotonic() + 10
        while not sink.sent and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        d.close()
    assert sink.summary() == [[("A", "", "firing")]]
    assert d._thread is None  # stopped and joined


def test_held_alert_keeps_what_was_last_sent_while_its_group_notifies(
    dispatcher: tuple[Dispatcher, RecordingIntegration, CollectorRegistry],
) -> None:
    d, sink, _ = dispatcher
    a = firing("A", T0, i="1")
    d.notify([a], T0)
    d.tick(T0 + 30)
    # While A flaps, B joins the group: B goes out without A, and A's last sent state is remembered...
    d.notify([firing("A", T0, flapping=True, i="1"), firing("A", T0 + 60, i="2")], T0 + 60)
    d.tick(T0 + 330)
    # ...so that when A settles still firing, nothing is sent again.
    d.notify([a, firing("A", T0 + 60, i="2")], T0 + 400)
    d.tick(T0 + 630)
    assert [[x.labels["i"] for x in n.alerts] for n in sink.sent] == [["1"], ["2"]]
