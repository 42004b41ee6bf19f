"""Inhibition: a firing alert that matches a rule's source matchers mutes alerts matching its target matchers.

Alertmanager's rules: source and target must agree on every `equal` label (absent counts as empty); only
firing alerts inhibit; an alert matching both sides is never inhibited by an alert that also matches both
sides (so an alert does not inhibit itself, and two such alerts do not mute each other).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from alerting.notify.config import InhibitRuleConfig
from alerting.notify.matchers import Matcher, matches_all, parse_matchers


@dataclass(frozen=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]

    @classmethod
    def from_config(cls, config: InhibitRuleConfig) -> InhibitRule:
        return cls(
            source=tuple(m for t in config.source_matchers for m in parse_matchers(t)),
            target=tuple(m for t in config.target_matchers for m in parse_matchers(t)),
            equal=config.equal,
        )

    def inhibits(self, labels: Mapping[str, str], firing: Sequence[Mapping[str, str]]) -> bool:
        if not matches_all(self.target, labels):
            return False
        two_sided = matches_all(self.source, labels)
        for source in firing:
            if not matches_all(self.source, source):
                continue
            if any(source.get(n, "") != labels.get(n, "") for n in self.equal):
                continue
            if two_sided and matches_all(self.target, source):
                continue
            return True
        return False


class Inhibitor:
    def __init__(self, rules: Iterable[InhibitRuleConfig]) -> None:
        self.rules = tuple(InhibitRule.from_config(r) for r in rules)

    def mutes(self, labels: Mapping[str, str], firing: Sequence[Mapping[str, str]]) -> bool:
        """True when some rule lets one of the `firing` alerts' label sets inhibit `labels`."""
        return any(rule.inhibits(labels, firing) for rule in self.rules)
