"""Which rules of a group can have their queries sent together, without changing what any rule sees.

Prometheus evaluates a group's rules one after another, and a rule sees what the rules before it wrote in
the same round (a recording rule's series, or ALERTS). Querying a run of rules in one batch is the same
thing as long as no rule of the run reads a series an earlier rule of the run writes: the plan cuts the
group into such runs ("segments"); the engine writes each segment's output before querying the next.
The test is by name and conservative: a rule that merely mentions a recorded name starts a new segment.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from alerting.rules import AlertingRule, Rule

# What alerting rules write, besides recording rules' names (Prometheus' ALERTS and ALERTS_FOR_STATE).
ALERT_SERIES = ("ALERTS", "ALERTS_FOR_STATE")


def _mentions(expr: str, name: str) -> bool:
    # A metric name is [a-zA-Z_:][a-zA-Z0-9_:]*: not preceded or followed by one of those characters.
    return re.search(rf"(?<![A-Za-z0-9_:]){re.escape(name)}(?![A-Za-z0-9_:])", expr) is not None


def query_segments(rules: Sequence[Rule]) -> list[list[int]]:
    """Rule indexes in order, cut where a rule may read what an earlier rule of its segment writes."""
    segments: list[list[int]] = []
    current: list[int] = []
    written: set[str] = set()
    for i, rule in enumerate(rules):
        if current and any(_mentions(rule.expr, name) for name in written):
            segments.append(current)
            current, written = [], set()
        current.append(i)
        written.update(ALERT_SERIES if isinstance(rule, AlertingRule) else (rule.record,))
    if current:
        segments.append(current)
    return segments
