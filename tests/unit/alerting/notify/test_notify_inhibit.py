"""Inhibition with Alertmanager's rules: equal labels, only firing sources, no self-inhibition."""

from __future__ import annotations

import pytest

from alerting.notify.config import InhibitRuleConfig
from alerting.notify.inhibit import Inhibitor

CRITICAL_MUTES_WARNING = InhibitRuleConfig(
    source_matchers=('severity="critical"',), target_matchers=('severity="warning"',), equal=("service",)
)
DOWN_MUTES_ALL = InhibitRuleConfig(
    source_matchers=('alertname="ServiceDown"',), target_matchers=('service=~".+"',), equal=("service",)
)


@pytest.mark.parametrize(
    ("rule", "target", "firing", "muted"),
    [
        (
            CRITICAL_MUTES_WARNING,
            {"severity": "warning", "service": "a"},
            [{"severity": "critical", "service": "a"}],
            True,
        ),
        (
            CRITICAL_MUTES_WARNING,
            {"severity": "warning", "service": "a"},
            [{"severity": "critical", "service": "b"}],
            False,
        ),
        (CRITICAL_MUTES_WARNING, {"severity": "warning"}, [{"severity": "critical"}], True),  # both absent: equal
        (CRITICAL_MUTES_WARNING, {"severity": "warning", "service": "a"}, [{"severity": "critical"}], False),
        (
            CRITICAL_MUTES_WARNING,
            {"severity": "critical", "service": "a"},
            [{"severity": "critical", "service": "a"}],
            False,
        ),
        (CRITICAL_MUTES_WARNING, {"severity": "warning", "service": "a"}, [], False),
        # ServiceDown matches both sides: it is not inhibited by itself...
        (
            DOWN_MUTES_ALL,
            {"alertname": "ServiceDown", "service": "a"},
            [{"alertname": "ServiceDown", "service": "a"}],
            False,
        ),
        # ...but it mutes the other alerts of its service.
        (
            DOWN_MUTES_ALL,
            {"alertname": "HighLatency", "service": "a"},
            [{"alertname": "ServiceDown", "service": "a"}],
            True,
        ),
    ],
)
def test_inhibition(rule: InhibitRuleConfig, target: dict[str, str], firing: list[dict[str, str]], muted: bool) -> None:
    assert Inhibitor([rule]).mutes(target, firing) is muted
