"""A RuleEngine in a process of its own, driven round by round over stdin, for the kill -9 test.

Usage: python -m tests.unit.alerting.round_driver STATE_DIR. Each stdin line is a JSON object
{"at": <Unix seconds>, "load": {<instance>: <value>}}: the values are written as samples just before `at`,
the group is evaluated at `at`, and one JSON line goes to stdout with the alerts the notifier received
({"alertname", "instance", "state", "active_at", "fired_at", "resolved_at"}), after the state commit.
"""

from __future__ import annotations

import json
import sys

from alerting.engine import RuleEngine
from alerting.rules import AlertingRule, RuleGroup
from alerting.state_store import StateStore
from tests.unit.alerting.doubles import RecordingNotifier, SeriesTable, render

GROUP = RuleGroup(
    name="restart",
    file="/rules/restart.yml",
    interval_s=1.0,
    rules=(AlertingRule("High", "load > 5", for_s=2),),
)


def main() -> None:
    table, notifier = SeriesTable(), RecordingNotifier()
    engine = RuleEngine([GROUP], table, notifier, StateStore(sys.argv[1]), render=render, write_samples=table.write)
    for line in sys.stdin:
        command = json.loads(line)
        at = float(command["at"])
        for instance, value in command["load"].items():
            table.add({"__name__": "load", "instance": instance}, at - 0.5, float(value))
        engine.evaluate_group(GROUP, at)
        sent = [
            {
                "alertname": a.name,
                "instance": a.labels["instance"],
                "state": str(a.state),
                "active_at": a.active_at,
                "fired_at": a.fired_at,
                "resolved_at": a.resolved_at,
            }
            for a in notifier.last
        ]
        print(json.dumps(sorted(sent, key=lambda a: a["instance"])), flush=True)


if __name__ == "__main__":
    main()
