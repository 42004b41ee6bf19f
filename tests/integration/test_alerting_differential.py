"""Differential test: our RuleEngine over the collector and a real Prometheus 2.42 agree at every evaluation.

One rule file (evaluation_interval 1s; alerting rules with `for`, `keep_firing_for`, a templated label,
several label sets, and an alert on a recording rule's output) is loaded by Prometheus; the same rules
are built as RuleGroups for our engine. A scripted timeline of `diff_load{instance=a|b|c}` is
remote-written into both up front, with timestamps still in the future, so that evaluations never race
the writes. While Prometheus evaluates, the test polls its /api/v1/rules (and /api/v1/alerts) and keeps,
per evaluation slot, the set of pending and firing alerts (name, labels, state, activeAt) from snapshots
seen twice in a row. Then our engine, querying the collector through HttpQuerier and writing recording
results and ALERTS back through remote write, evaluates exactly those slots, and its /api/v1/alerts set
must be the same at every one (values included, as the API writes them). Prometheus' activeAt values
are its evaluation timestamps, so they also pin our schedule offset to the nanosecond.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from alerting.engine import RuleEngine
from alerting.querier import HttpQuerier
from alerting.remote_write import RemoteWriteSender
from alerting.rules import AlertingRule, RecordingRule, RuleGroup
from alerting.schedule import eval_timestamp_ns, offset_ns
from alerting.state_store import StateStore
from tests.conftest import TIMELESS, CollectorProcess, make_collector
from tests.peers import prometheus
from tests.unit.alerting.doubles import RecordingNotifier, go_time_ns, render

S = 1_000_000_000
GROUP_NAME = "differential"
RULES_YAML = """groups:
  - name: differential
    rules:
      - alert: Instant
        expr: diff_load > 2
        labels:
          team: "{{ $labels.instance }}-team"
      - alert: Sustained
        expr: diff_load > 5
        for: 3s
      - alert: Sticky
        expr: diff_load > 8
        keep_firing_for: 4s
      - alert: SustainedSticky
        expr: diff_load > 5
        for: 2s
        keep_firing_for: 3s
        labels:
          severity: page
      - record: diff:load_doubled
        expr: diff_load * 2
      - alert: DoubledHigh
        expr: diff:load_doubled > 14
        for: 1s
"""
RULES = (
    AlertingRule("Instant", "diff_load > 2", labels={"team": "{{ $labels.instance }}-team"}),
    AlertingRule("Sustained", "diff_load > 5", for_s=3),
    AlertingRule("Sticky", "diff_load > 8", keep_firing_for_s=4),
    AlertingRule("SustainedSticky", "diff_load > 5", for_s=2, keep_firing_for_s=3, labels={"severity": "page"}),
    RecordingRule("diff:load_doubled", "diff_load * 2"),
    AlertingRule("DoubledHigh", "diff:load_doubled > 14", for_s=1),
)
# One value per second from T0; after the last one each series stays at 0 (within the 5 m lookback).
TIMELINE = {
    "a": [0, 0, 3, 3, 6, 6, 6, 6, 6, 6, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "b": [6, 6, 6, 6, 6, 9, 9, 0, 0, 0, 0, 9, 0, 0, 0, 0, 6, 6, 6, 6, 0, 0],
    "c": [3, 9, 3, 9, 3, 9, 0, 9, 9, 9, 9, 9, 9, 9, 9, 9, 0, 0, 0, 0, 0, 0],
}
LEAD_S = 3  # the timeline starts this long after the writes, so Prometheus evaluates it as it unfolds
TAIL_S = 3  # and the test watches this long past its end

AlertKey = tuple[str, tuple[tuple[str, str], ...], str, int, str]  # (alertname, labels, state, activeAt s, value)


@pytest.fixture(scope="module")
def own_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    """A collector of its own: our engine writes ALERTS into it, which other tests should not see."""
    c = make_collector(tmp_path_factory.mktemp("alerting_diff_collector"), **TIMELESS)
    c.start()
    yield c
    c.stop()


def _snapshot(rules_data: dict[str, Any], offset: int) -> tuple[int, frozenset[AlertKey]] | None:
    """(slot, pending and firing alerts) of a consistent /api/v1/rules answer, else None."""
    (group,) = [g for g in rules_data["groups"] if g["name"] == GROUP_NAME]
    if group["lastEvaluation"].startswith("0001-"):
        return None  # not evaluated yet: Go's zero time
    slot = eval_timestamp_ns(go_time_ns(group["lastEvaluation"]), S, offset)
    if any(eval_timestamp_ns(go_time_ns(r["lastEvaluation"]), S, offset) != slot for r in group["rules"]):
        return None  # a round is under way
    alerts: set[AlertKey] = set()
    for rule in group["rules"]:
        for a in rule.get("alerts", []):
            active_ns = go_time_ns(a["activeAt"])
            assert (active_ns - offset) % S == 0, f"activeAt {a['activeAt']} is not on our slot grid"
            alerts.add((rule["name"], tuple(sorted(a["labels"].items())), a["state"], active_ns // S, a["value"]))
    return slot, frozenset(alerts)


def _missed_iterations(metrics: str, group_key: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(f'prometheus_rule_group_iterations_missed_total{{rule_group="{group_key}"}}'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no prometheus_rule_group_iterations_missed_total for {group_key} in Prometheus' metrics")


def _keys(alerts: list[dict[str, Any]]) -> frozenset[AlertKey]:
    """/api/v1/alerts entries as comparable keys; activeAt in whole seconds (both sit on the same grid)."""
    return frozenset(
        (
            a["labels"]["alertname"],
            tuple(sorted(a["labels"].items())),
            a["state"],
            go_time_ns(a["activeAt"]) // S,
            a["value"],  # a string in Go's %e form on both sides
        )
        for a in alerts
    )


def test_alert_sets_equal_prometheus_at_every_evaluation(own_collector: CollectorProcess, tmp_path: Path) -> None:
    rules_file = tmp_path / "rules" / "differential.yml"
    rules_file.parent.mkdir()
    (tmp_path / "prom").mkdir()
    rules_file.write_text(RULES_YAML)
    group = RuleGroup(name=GROUP_NAME, file=str(rules_file), interval_s=1.0, rules=RULES)
    offset = offset_ns(group.name, group.file, group.interval_s)
    config = f"global:\n  scrape_interval: 1h\n  evaluation_interval: 1s\nrule_files:\n  - {rules_file}\n"

    observed: dict[int, frozenset[AlertKey]] = {}
    with prometheus(config, tmp_path / "prom") as prom, httpx.Client(timeout=5) as http:
        t0 = int(time.time()) + LEAD_S
        samples = [
            ({"__name__": "diff_load", "instance": instance}, float(t0 + k), float(v))
            for instance, values in TIMELINE.items()
            for k, v in enumerate(values)
        ]
        for base in (prom, own_collector.url):
            with RemoteWriteSender(f"{base}/api/v1/write") as sender:
                sender(samples)
        end_ns = (t0 + len(TIMELINE["a"]) + TAIL_S) * S
        previous: tuple[int, frozenset[AlertKey]] | None = None
        deadline = time.monotonic() + LEAD_S + len(TIMELINE["a"]) + TAIL_S + 20
        while time.monotonic() < deadline:
            first = _snapshot(http.get(f"{prom}/api/v1/rules").json()["data"], offset)
            listed = http.get(f"{prom}/api/v1/alerts").json()["data"]["alerts"]
            second = _snapshot(http.get(f"{prom}/api/v1/rules").json()["data"], offset)
            if first is not None and first == second and first == previous:
                assert _keys(listed) == first[1], "/api/v1/alerts disagrees with /api/v1/rules"
                observed[first[0]] = first[1]
                if first[0] >= end_ns:
                    break
            previous = second
            time.sleep(0.1)
        missed = _missed_iterations(http.get(f"{prom}/metrics").text, group.key)
    # We evaluate every slot; a slot Prometheus skipped (it was too slow) would shift keep_firing_for.
    assert missed == 0, f"Prometheus missed {missed} evaluations (machine overloaded): nothing to compare with"
    slots = sorted(observed)
    assert slots and slots[0] < t0 * S <= end_ns <= slots[-1], "Prometheus was not watched over the whole timeline"
    assert slots[-1] - slots[0] < 120 * S, f"implausible evaluation slots {slots[0]}..{slots[-1]}"
    assert len(slots) >= len(TIMELINE["a"]), "too few consistent snapshots of Prometheus"
    assert any(observed[s] for s in slots), "the timeline raised no alert in Prometheus"

    notifier = RecordingNotifier()
    with (
        HttpQuerier(own_collector.url, timeout_s=10) as query,
        RemoteWriteSender(f"{own_collector.url}/api/v1/write") as sender,
    ):
        engine = RuleEngine(
            [group], query, notifier, StateStore(tmp_path / "state"), render=render, write_samples=sender
        )
        mismatches = []
        for slot in range(slots[0], slots[-1] + S, S):
            engine.evaluate_group(group, slot / S)
            health = {
                r["name"]: r.get("lastError", "") for r in engine.rule_groups()[0]["rules"] if r["health"] != "ok"
            }
            assert not health, f"rules failed at {slot}: {health}"
            if slot not in observed:
                continue
            ours = _keys(engine.alerts())
            if ours != observed[slot]:
                mismatches.append((slot / S - t0, sorted(ours - observed[slot]), sorted(observed[slot] - ours)))
    assert not mismatches, "at t0+s: (only ours, only Prometheus'):\n" + "\n".join(map(str, mismatches))
