"""One recording rule's evaluation: Prometheus' RecordingRule.Eval (rename, relabel, duplicate and limit checks)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from alerting.alert_rule import RuleEvalError, RuleStatus
from alerting.model import Sample, sorted_labels
from alerting.remote_write import RemoteSample
from alerting.rules import RecordingRule, RuleGroup


@dataclass
class RecordingRuleState:
    rule: RecordingRule
    group: RuleGroup
    status: RuleStatus = field(default_factory=RuleStatus)

    def eval(self, samples: Sequence[Sample], ts: float, limit: int = 0) -> list[RemoteSample]:
        """The samples to write at `ts`: each result renamed to the rule's `record`, with its labels set.

        Rule labels override the result's (an empty value removes the label); group labels apply beneath
        them. Raises RuleEvalError on a duplicate output series or more than `limit` series.
        """
        out: list[RemoteSample] = []
        seen: set[tuple[tuple[str, str], ...]] = set()
        extra = {**self.group.labels, **self.rule.labels}
        for sample in samples:
            labels = dict(sample.labels)
            labels["__name__"] = self.rule.record
            for name, value in extra.items():
                if value:
                    labels[name] = value
                else:
                    labels.pop(name, None)
            key = sorted_labels(labels)
            if key in seen:
                raise RuleEvalError("vector contains metrics with the same labelset after applying rule labels")
            seen.add(key)
            out.append((labels, ts, sample.value))
        if limit > 0 and len(out) > limit:
            raise RuleEvalError(f"exceeded limit of {limit} with {len(out)} series")
        return out
