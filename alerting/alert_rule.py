"""The state machine of one alerting rule: Prometheus' AlertingRule.Eval, plus graded levels and flapping.

Given the samples of the rule's expression at evaluation time `ts` (Unix seconds), it keeps one active
alert per label set: a new one is pending from `ts` (its activeAt) and fires once `ts - activeAt >= for`;
one whose sample disappears resolves (state inactive, resolvedAt = ts), unless it was firing and
`keep_firing_for` still holds it, and is kept for RESOLVED_RETENTION_S so that the resolution reaches
receivers; a pending one that disappears is dropped. It returns the ALERTS and ALERTS_FOR_STATE samples
Prometheus writes for pending and firing alerts.

Our additions: with `levels`, the first level whose condition holds on the value sets the `severity` label
and a value that meets none counts as absent; the alert is keyed by its identity (labels without
severity), so it keeps its activeAt and firedAt while it moves between levels. With `flapping`, each
evaluation adds the alert's level (or OK) to a Kapacitor history and the alert carries `flapping`.
"""

from __future__ import annotations

import math
import operator
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from alerting.flapping import OK, FlappingState
from alerting.model import LEVEL_LABEL, Alert, AlertState, Sample, fingerprint, identity
from alerting.remote_write import RemoteSample
from alerting.rules import AlertingRule, Level, RuleGroup

# How long a resolved alert stays in the active set, reported as inactive (Prometheus' resolvedRetention).
RESOLVED_RETENTION_S = 15 * 60.0

ALERT_METRIC = "ALERTS"
ALERT_FOR_STATE_METRIC = "ALERTS_FOR_STATE"
ALERT_STATE_LABEL = "alertstate"

# render(text, labels, value, external_labels, external_url) -> str (alerting.template.render)
RenderFunc = Callable[[str, Mapping[str, str], float, Mapping[str, str], str], str]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


class RuleEvalError(Exception):
    """An evaluation failed in a way Prometheus reports as the rule's lastError (duplicates, limit)."""


@dataclass
class RuleStatus:
    """What /api/v1/rules reports about a rule's last evaluation. Times in Unix seconds; 0: never."""

    health: str = "unknown"  # ok | err | unknown
    last_error: str = ""
    last_evaluation: float = 0.0  # wall clock when the evaluation started, as Prometheus reports it
    evaluation_time: float = 0.0  # seconds


@dataclass
class ActiveAlert:
    """One alert of a rule, mutable across evaluations. Times are Unix seconds."""

    labels: dict[str, str]
    annotations: dict[str, str]
    state: AlertState
    active_at: float
    value: float
    fired_at: float | None = None
    resolved_at: float | None = None
    keep_firing_since: float | None = None
    last_eval: float = 0.0
    level: str | None = None


def level_of(levels: Sequence[Level], value: float) -> str | None:
    """The first level whose condition holds on `value`, or None."""
    for level in levels:
        if _OPS[level.op](value, level.threshold):
            return level.name
    return None


def generator_url(external_url: str, expr: str) -> str:
    """Prometheus' link to the expression's graph (strutil.TableLinkForExpression under the external URL)."""
    return f"{external_url.rstrip('/')}/graph?g0.expr={urllib.parse.quote_plus(expr)}&g0.tab=1"


@dataclass
class AlertingRuleState:
    """The active alerts (and flapping histories) of one alerting rule in one group."""

    rule: AlertingRule
    group: RuleGroup
    render: RenderFunc
    external_labels: Mapping[str, str] = field(default_factory=dict)
    external_url: str = ""
    active: dict[str, ActiveAlert] = field(default_factory=dict)
    flapping: dict[str, FlappingState] = field(default_factory=dict)
    status: RuleStatus = field(default_factory=RuleStatus)

    def _expand(self, text: str, labels: Mapping[str, str], value: float) -> str:
        try:
            return self.render(text, labels, value, self.external_labels, self.external_url)
        except Exception as exc:  # Prometheus puts the error in the text and keeps evaluating
            return f"<error expanding template: {exc}>"

    def _key(self, labels: Mapping[str, str]) -> str:
        # With levels the severity label moves; without, it is part of the label set like any other.
        return identity(labels) if self.rule.levels else fingerprint(labels)

    def eval(self, samples: Sequence[Sample], ts: float, limit: int = 0) -> list[RemoteSample]:
        """One evaluation at `ts` over the expression's `samples`; returns the ALERTS/ALERTS_FOR_STATE samples.

        Raises RuleEvalError for a duplicate label set (state untouched) or when more than `limit` alerts
        are pending or firing (then every alert of the rule is dropped, as Prometheus does).
        """
        rule_labels = {**self.group.labels, **self.rule.labels}
        fresh: dict[str, ActiveAlert] = {}
        for sample in samples:
            level = None
            if self.rule.levels:
                level = level_of(self.rule.levels, sample.value)
                if level is None:
                    continue  # meets no level: as if the expression had not returned it
            sample_labels = dict(sample.labels)
            labels = {k: v for k, v in sample_labels.items() if k != "__name__"}
            for name, text in rule_labels.items():
                expanded = self._expand(text, sample_labels, sample.value)
                if expanded:
                    labels[name] = expanded
                else:
                    labels.pop(name, None)  # an empty value removes the label, as labels.Builder.Set does
            if level is not None:
                labels[LEVEL_LABEL] = level
            labels["alertname"] = self.rule.name
            annotations = {
                name: self._expand(text, sample_labels, sample.value) for name, text in self.rule.annotations.items()
            }
            key = self._key(labels)
            if key in fresh:
                raise RuleEvalError("vector contains metrics with the same labelset after applying alert labels")
            fresh[key] = ActiveAlert(labels, annotations, AlertState.PENDING, ts, sample.value, level=level)

        for key, new in fresh.items():
            old = self.active.get(key)
            if old is not None and old.state != AlertState.INACTIVE:
                old.value, old.annotations = new.value, new.annotations
                old.labels, old.level = new.labels, new.level  # only the level label can differ
                continue
            self.active[key] = new

        out: list[RemoteSample] = []
        active_pending = 0
        for key, alert in list(self.active.items()):
            alert.last_eval = ts
            if key not in fresh:
                keep_firing = False
                if alert.state == AlertState.FIRING and self.rule.keep_firing_for_s > 0:
                    if alert.keep_firing_since is None:
                        alert.keep_firing_since = ts
                    keep_firing = ts - alert.keep_firing_since < self.rule.keep_firing_for_s
                if alert.state == AlertState.PENDING or (
                    alert.resolved_at is not None and ts - alert.resolved_at > RESOLVED_RETENTION_S
                ):
                    del self.active[key]
                if alert.state != AlertState.INACTIVE and not keep_firing:
                    alert.state = AlertState.INACTIVE
                    alert.resolved_at = ts
                if not keep_firing:
                    continue
            else:
                alert.keep_firing_since = None
            active_pending += 1
            if alert.state == AlertState.PENDING and ts - alert.active_at >= self.rule.for_s:
                alert.state = AlertState.FIRING
                alert.fired_at = ts
            out.extend(self._series(alert, ts))

        if limit > 0 and active_pending > limit:
            self.active = {}
            raise RuleEvalError(f"exceeded limit of {limit} with {active_pending} alerts")

        if self.rule.flapping is not None:
            spec = self.rule.flapping
            for key in set(self.flapping) | set(fresh):
                level_now = (fresh[key].level or "active") if key in fresh else OK
                history = self.flapping.setdefault(key, FlappingState.new(spec))
                history.add(level_now, spec)
                if history.settled and key not in self.active:
                    del self.flapping[key]
        return out

    def _series(self, alert: ActiveAlert, ts: float) -> list[RemoteSample]:
        """ALERTS{..., alertstate} 1 and ALERTS_FOR_STATE{...} = activeAt (whole seconds), at `ts`."""
        labels = {**self.rule.labels, **alert.labels, "alertname": self.rule.name}
        alerts = {**labels, "__name__": ALERT_METRIC, ALERT_STATE_LABEL: str(alert.state)}
        for_state = {**labels, "__name__": ALERT_FOR_STATE_METRIC}
        return [(alerts, ts, 1.0), (for_state, ts, float(math.floor(alert.active_at)))]

    def alerts(self) -> list[Alert]:
        """Every active alert (pending, firing, and resolved within retention), as the shared Alert."""
        url = generator_url(self.external_url, self.rule.expr)
        out = []
        for key, a in self.active.items():
            flap = self.flapping.get(key)
            out.append(
                Alert(
                    labels=dict(a.labels),
                    annotations=dict(a.annotations),
                    state=a.state,
                    active_at=a.active_at,
                    value=a.value,
                    fired_at=a.fired_at,
                    resolved_at=a.resolved_at,
                    last_eval=a.last_eval,
                    keep_firing_since=a.keep_firing_since,
                    flapping=flap.flapping if flap is not None else False,
                    generator_url=url,
                    rule_group=self.group.name,
                    repeat_interval_s=self.rule.repeat_interval_s,
                    identity=identity(a.labels),
                )
            )
        return out

    @property
    def state(self) -> AlertState:
        """The rule's state for the API: the most severe of its alerts (firing > pending > inactive)."""
        states = {a.state for a in self.active.values()}
        for s in (AlertState.FIRING, AlertState.PENDING):
            if s in states:
                return s
        return AlertState.INACTIVE
