"""Prometheus' /api/v1/rules and /api/v1/alerts data shapes, from the evaluator's rule states.

Field names and formats are Prometheus' (web/api/v1/api.go): times RFC 3339 in UTC with up to nine
fractional digits (Go's time.Time JSON; never evaluated is 0001-01-01T00:00:00Z), durations and
evaluation times in float seconds, alert values as strings in Go's strconv.FormatFloat(v, 'e', -1, 64).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from alerting.alert_rule import ActiveAlert, AlertingRuleState
from alerting.model import AlertState, sorted_labels
from alerting.recording_rule import RecordingRuleState
from alerting.rules import RuleGroup

ZERO_TIME = "0001-01-01T00:00:00Z"


def go_time(t: float) -> str:
    """Unix seconds as Go marshals a UTC time.Time: RFC 3339 with trailing fractional zeros trimmed."""
    if t <= 0:
        return ZERO_TIME
    micros = round(t * 1e6)  # floats hold about a microsecond at today's epoch; finer digits are noise
    seconds, frac = divmod(micros, 1_000_000)
    text = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        text += "." + f"{frac:06d}".rstrip("0")
    return text + "Z"


def go_float_e(v: float) -> str:
    """strconv.FormatFloat(v, 'e', -1, 64): the shortest digits that round-trip, as d.ddde±XX."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    sign, digits, exponent = Decimal(repr(v)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)) or "0"
    exp = exponent + len(text) - 1 if v != 0 else 0
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    if v == 0:
        mantissa = "0"
    return f"{'-' if sign else ''}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def alert_json(a: ActiveAlert) -> dict[str, Any]:
    out: dict[str, Any] = {
        "labels": dict(sorted_labels(a.labels)),
        "annotations": dict(sorted_labels(a.annotations)),
        "state": str(a.state),
        "activeAt": go_time(a.active_at),
    }
    if a.keep_firing_since is not None:
        out["keepFiringSince"] = go_time(a.keep_firing_since)
    out["value"] = go_float_e(a.value)
    return out


def api_alerts(rule: AlertingRuleState) -> list[dict[str, Any]]:
    """The rule's pending and firing alerts (Prometheus' ActiveAlerts: resolved ones are left out)."""
    current = [a for a in rule.active.values() if a.state != AlertState.INACTIVE]
    return [alert_json(a) for a in sorted(current, key=lambda a: sorted_labels(a.labels))]


def rule_json(rule: AlertingRuleState | RecordingRuleState) -> dict[str, Any]:
    s = rule.status
    if isinstance(rule, AlertingRuleState):
        r = rule.rule
        out: dict[str, Any] = {
            "state": str(rule.state),
            "name": r.name,
            "query": r.expr,
            "duration": r.for_s,
            "keepFiringFor": r.keep_firing_for_s,
            "labels": dict(sorted_labels(r.labels)),
            "annotations": dict(sorted_labels(r.annotations)),
            "alerts": api_alerts(rule),
            "health": s.health,
        }
    else:
        out = {"name": rule.rule.record, "query": rule.rule.expr}
        if rule.rule.labels:  # `labels,omitempty` for recording rules
            out["labels"] = dict(sorted_labels(rule.rule.labels))
        out["health"] = s.health
    if s.last_error:  # `lastError,omitempty`
        out["lastError"] = s.last_error
    out["evaluationTime"] = s.evaluation_time
    out["lastEvaluation"] = go_time(s.last_evaluation)
    out["type"] = "alerting" if isinstance(rule, AlertingRuleState) else "recording"
    return out


def group_json(
    group: RuleGroup,
    rules: Sequence[AlertingRuleState | RecordingRuleState],
    evaluation_time: float,
    last_evaluation: float,
) -> dict[str, Any]:
    return {
        "name": group.name,
        "file": group.file,
        "rules": [rule_json(r) for r in rules],
        "interval": group.interval_s,
        "limit": group.limit,
        "evaluationTime": evaluation_time,
        "lastEvaluation": go_time(last_evaluation),
    }
