"""The alerting rule state machine against Prometheus' AlertingRule.Eval: for, keep_firing_for, resolution,
retention, limit, duplicates, labels and templates, ALERTS series, graded levels and flapping."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from alerting.alert_rule import RESOLVED_RETENTION_S, AlertingRuleState, RuleEvalError, level_of
from alerting.model import LEVEL_LABEL, AlertState, Sample
from alerting.rules import AlertingRule, FlappingSpec, Level, RuleGroup
from tests.unit.alerting.doubles import render

GROUP = RuleGroup(name="g", file="rules.yml", interval_s=1.0, rules=())

# Timelines: each step is (ts, {instance: value or None (absent)}) and the expected
# {instance: (state, active_at)} of the rule's alerts after it; an instance left out has no alert.
Step = tuple[float, dict[str, float | None], dict[str, tuple[str, float]]]

TIMELINES: list[tuple[str, AlertingRule, list[Step]]] = [
    (
        "for 0 fires at once and resolves when absent",
        AlertingRule("A", "m > 1"),
        [
            (10, {"a": 2}, {"a": ("firing", 10)}),
            (11, {"a": None}, {"a": ("inactive", 10)}),
            (12, {"a": 3}, {"a": ("firing", 12)}),  # a resolved alert that comes back is a new one
        ],
    ),
    (
        "for 2s: pending, then firing once ts - activeAt >= for",
        AlertingRule("A", "m > 1", for_s=2),
        [
            (10, {"a": 2}, {"a": ("pending", 10)}),
            (11, {"a": 2}, {"a": ("pending", 10)}),
            (12, {"a": 2}, {"a": ("firing", 10)}),
            (13, {"a": None}, {"a": ("inactive", 10)}),
        ],
    ),
    (
        "a pending alert that disappears is dropped, and starts over",
        AlertingRule("A", "m > 1", for_s=5),
        [
            (10, {"a": 2, "b": 2}, {"a": ("pending", 10), "b": ("pending", 10)}),
            (11, {"a": None, "b": 2}, {"b": ("pending", 10)}),
            (12, {"a": 2, "b": 2}, {"a": ("pending", 12), "b": ("pending", 10)}),
        ],
    ),
    (
        "keep_firing_for holds a firing alert for that long after its expression stops",
        AlertingRule("A", "m > 1", keep_firing_for_s=2),
        [
            (10, {"a": 2}, {"a": ("firing", 10)}),
            (11, {"a": None}, {"a": ("firing", 10)}),
            (12, {"a": None}, {"a": ("firing", 10)}),
            (13, {"a": None}, {"a": ("inactive", 10)}),  # 13 - 11 is not < 2
        ],
    ),
    (
        "keep_firing_for restarts when the expression holds again",
        AlertingRule("A", "m > 1", keep_firing_for_s=2),
        [
            (10, {"a": 2}, {"a": ("firing", 10)}),
            (11, {"a": None}, {"a": ("firing", 10)}),
            (12, {"a": 2}, {"a": ("firing", 10)}),
            (13, {"a": None}, {"a": ("firing", 10)}),
            (14, {"a": None}, {"a": ("firing", 10)}),
            (15, {"a": None}, {"a": ("inactive", 10)}),
        ],
    ),
    (
        "keep_firing_for does not hold a pending alert",
        AlertingRule("A", "m > 1", for_s=3, keep_firing_for_s=5),
        [
            (10, {"a": 2}, {"a": ("pending", 10)}),
            (11, {"a": None}, {}),
        ],
    ),
    (
        "a resolved alert is kept for 15 minutes, then dropped",
        AlertingRule("A", "m > 1"),
        [
            (10, {"a": 2}, {"a": ("firing", 10)}),
            (11, {"a": None}, {"a": ("inactive", 10)}),
            (11 + RESOLVED_RETENTION_S, {"a": None}, {"a": ("inactive", 10)}),
            (12 + RESOLVED_RETENTION_S, {"a": None}, {}),
        ],
    ),
]


def _samples(values: Mapping[str, float | None]) -> list[Sample]:
    return [Sample({"__name__": "m", "instance": i}, v) for i, v in values.items() if v is not None]


@pytest.mark.parametrize(("rule", "steps"), [(r, s) for _, r, s in TIMELINES], ids=[t[0] for t in TIMELINES])
def test_state_timeline(rule: AlertingRule, steps: list[Step]) -> None:
    state = AlertingRuleState(rule, GROUP, render)
    for ts, values, expected in steps:
        state.eval(_samples(values), ts)
        got = {a.labels["instance"]: (str(a.state), a.active_at) for a in state.alerts()}
        assert got == expected, f"at {ts}"


def test_resolved_alert_carries_resolved_at_and_fired_at() -> None:
    state = AlertingRuleState(AlertingRule("A", "m > 1", for_s=1), GROUP, render)
    for ts, v in ((10, 2.0), (11, 2.0), (12, None)):
        state.eval(_samples({"a": v}), ts)
    (alert,) = state.alerts()
    assert (alert.state, alert.active_at, alert.fired_at, alert.resolved_at) == (AlertState.INACTIVE, 10, 11, 12)


def test_labels_annotations_and_alerts_series() -> None:
    rule = AlertingRule(
        "HighLoad",
        "m > 1",
        labels={"severity": "page", "team": "{{ $labels.instance }}-ops", "instance": "{{ $labels.instance }}"},
        annotations={"summary": "{{ $labels.instance }} at {{ $value }}"},
    )
    group = RuleGroup(name="g", file="f", interval_s=1, rules=(rule,), labels={"env": "prod", "team": "group"})
    state = AlertingRuleState(rule, group, render, external_url="http://alerts.example")
    out = state.eval([Sample({"__name__": "m", "instance": "a", "job": "j"}, 2.5)], 100.7)
    (alert,) = state.alerts()
    assert dict(alert.labels) == {
        "alertname": "HighLoad",
        "instance": "a",
        "job": "j",
        "severity": "page",
        "team": "a-ops",  # the rule's label wins over the group's
        "env": "prod",
    }
    assert dict(alert.annotations) == {"summary": "a at 2.5"}
    assert alert.generator_url == "http://alerts.example/graph?g0.expr=m+%3E+1&g0.tab=1"
    assert out == [
        ({**alert.labels, "__name__": "ALERTS", "alertstate": "firing"}, 100.7, 1.0),
        ({**alert.labels, "__name__": "ALERTS_FOR_STATE"}, 100.7, 100.0),  # activeAt in whole seconds
    ]


def test_empty_templated_label_removes_it() -> None:
    rule = AlertingRule("A", "m", labels={"job": "{{ $labels.nothing }}"})
    state = AlertingRuleState(rule, GROUP, render)
    state.eval([Sample({"__name__": "m", "job": "j"}, 1)], 10)
    assert "job" not in state.alerts()[0].labels


def test_duplicate_label_set_after_templating_is_an_error_and_keeps_state() -> None:
    rule = AlertingRule("A", "m", labels={"instance": "same"})
    state = AlertingRuleState(rule, GROUP, render)
    state.eval([Sample({"instance": "a"}, 1)], 10)
    with pytest.raises(RuleEvalError, match="same labelset after applying alert labels"):
        state.eval([Sample({"instance": "a"}, 1), Sample({"instance": "b"}, 1)], 11)
    assert [a.active_at for a in state.alerts()] == [10]


@pytest.mark.parametrize(
    ("limit", "n", "error"),
    [(0, 5, None), (3, 3, None), (3, 4, "exceeded limit of 3 with 4 alerts")],
)
def test_limit(limit: int, n: int, error: str | None) -> None:
    state = AlertingRuleState(AlertingRule("A", "m"), GROUP, render)
    samples = [Sample({"instance": str(i)}, 1) for i in range(n)]
    if error is None:
        state.eval(samples, 10, limit)
        assert len(state.alerts()) == n
    else:
        with pytest.raises(RuleEvalError, match=error):
            state.eval(samples, 10, limit)
        assert state.alerts() == []  # every alert of the rule is dropped


def test_limit_counts_only_pending_and_firing() -> None:
    state = AlertingRuleState(AlertingRule("A", "m"), GROUP, render)
    state.eval([Sample({"instance": str(i)}, 1) for i in range(3)], 10, limit=3)
    state.eval([Sample({"instance": "9"}, 1)], 11, limit=3)  # three resolved + one firing: within the limit
    assert sorted(str(a.state) for a in state.alerts()) == ["firing", "inactive", "inactive", "inactive"]


LEVELS = (Level("critical", ">", 8), Level("warning", ">", 5), Level("info", ">=", 3))


@pytest.mark.parametrize(
    ("value", "level"),
    [(9, "critical"), (8, "warning"), (5.5, "warning"), (5, "info"), (3, "info"), (2.9, None), (float("nan"), None)],
)
def test_level_of(value: float, level: str | None) -> None:
    assert level_of(LEVELS, value) == level


def test_levels_move_without_resolving() -> None:
    rule = AlertingRule("Load", "m", for_s=1, labels={LEVEL_LABEL: "ignored"}, levels=LEVELS)
    state = AlertingRuleState(rule, GROUP, render)
    seen = []
    for ts, value in ((10, 6.0), (11, 9.0), (12, 9.5), (13, 4.0), (14, 1.0), (15, 7.0)):
        state.eval([Sample({"instance": "a"}, value)], ts)
        seen.append([(a.labels.get(LEVEL_LABEL), str(a.state), a.active_at, a.fired_at) for a in state.alerts()])
    assert seen == [
        [("warning", "pending", 10, None)],
        [("critical", "firing", 10, 11)],
        [("critical", "firing", 10, 11)],
        [("info", "firing", 10, 11)],
        [("info", "inactive", 10, 11)],  # 1.0 meets no level: as if absent, so it resolves
        [("warning", "pending", 15, None)],
    ]
    identities = {a.identity for a in state.alerts()}
    assert len(identities) == 1


def test_flapping_is_flagged_and_settles() -> None:
    spec = FlappingSpec(low=0.25, high=0.5, history=6)
    state = AlertingRuleState(AlertingRule("A", "m", flapping=spec), GROUP, render)
    flags = []
    pattern = [2, None, 2, None, 2, None, 2, 2, 2, 2, 2, 2]
    for ts, value in enumerate(pattern):
        state.eval(_samples({"a": value}), float(ts))
        flags.append(state.alerts()[0].flapping)
    assert flags[0] is False
    assert True in flags[2:6]
    assert flags[-1] is False


def test_rule_state_is_the_most_severe_alert() -> None:
    state = AlertingRuleState(AlertingRule("A", "m", for_s=10), GROUP, render)
    assert state.state == AlertState.INACTIVE
    state.eval(_samples({"a": 1}), 1)
    assert state.state == AlertState.PENDING
