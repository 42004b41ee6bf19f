"""RuleEngine rounds over an in-memory series table: rule order, recording rules written back, health,
notifications after the state commit, stale markers, reload keeping state, restore, the API shapes, metrics."""

from __future__ import annotations

import itertools
import math
import struct
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry

from alerting.engine import RuleEngine
from alerting.model import AlertState, QueryError, Sample
from alerting.remote_write import STALE_NAN
from alerting.rules import AlertingRule, RecordingRule, RuleGroup
from alerting.schedule import offset_ns
from alerting.state_store import StateStore
from tests.unit.alerting.doubles import RecordingNotifier, SeriesTable, render

HIGH = AlertingRule(
    "High", "load > 5", for_s=2, labels={"team": "ops"}, annotations={"summary": "{{ $labels.instance }} high"}
)
DOUBLED = RecordingRule("load:doubled", "load", labels={"rule": "copy"})
DOUBLED_HIGH = AlertingRule("DoubledSeen", "load:doubled > 5")
GROUP = RuleGroup(name="g", file="/rules/a.yml", interval_s=1.0, rules=(DOUBLED, DOUBLED_HIGH, HIGH))


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        self.t += 0.001  # every reading advances: durations are positive without sleeping
        return self.t


def _engine(
    tmp_path: Path, table: SeriesTable, notifier: RecordingNotifier, groups: list[RuleGroup] | None = None
) -> tuple[RuleEngine, CollectorRegistry]:
    registry = CollectorRegistry()
    engine = RuleEngine(
        groups or [GROUP],
        table,
        notifier,
        StateStore(tmp_path / "state"),
        render=render,
        write_samples=table.write,
        external_url="http://am.example",
        clock=Clock(),
        registry=registry,
    )
    return engine, registry


def _series(table: SeriesTable, name: str) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
    return [(dict(k), v) for k, v in table.series.items() if dict(k)["__name__"] == name]


def test_recording_results_are_visible_to_later_rules_of_the_same_round(tmp_path: Path) -> None:
    table, notifier = SeriesTable(), RecordingNotifier()
    table.add({"__name__": "load", "instance": "a"}, 99.5, 7.0)
    engine, _ = _engine(tmp_path, table, notifier)
    engine.evaluate_group(GROUP, 100.0)
    assert _series(table, "load:doubled") == [
        ({"__name__": "load:doubled", "instance": "a", "rule": "copy"}, [(100.0, 7.0)])
    ]
    names = {(a.name, a.state) for a in notifier.last}
    assert ("DoubledSeen", AlertState.FIRING) in names  # it read the recording rule's output of this round
    assert ("High", AlertState.PENDING) not in names  # pending alerts are not sent
    alerts_series = _series(table, "ALERTS")
    assert {s[0]["alertname"]: s[0]["alertstate"] for s in alerts_series} == {
        "DoubledSeen": "firing",
        "High": "pending",
    }


def test_rounds_notify_firing_then_resolved(tmp_path: Path) -> None:
    table, notifier = SeriesTable(), RecordingNotifier()
    engine, registry = _engine(tmp_path, table, notifier)
    for t in range(100, 104):
        table.add({"__name__": "load", "instance": "a"}, t - 0.5, 7.0)
        engine.evaluate_group(GROUP, float(t))
    high = [a for a in notifier.last if a.name == "High"]
    assert [(a.state, a.active_at, a.fired_at) for a in high] == [(AlertState.FIRING, 100.0, 102.0)]
    table.add({"__name__": "load", "instance": "a"}, 103.5, 1.0)
    engine.evaluate_group(GROUP, 104.0)
    high = [a for a in notifier.last if a.name == "High"]
    assert [(a.state, a.resolved_at) for a in high] == [(AlertState.INACTIVE, 104.0)]
    # The ALERTS series of the resolved alert ends with a stale marker.
    ((_, points),) = [
        s for s in _series(table, "ALERTS") if s[0]["alertname"] == "High" and s[0]["alertstate"] == "firing"
    ]
    assert points[-1][0] == 104.0 and struct.pack("<d", points[-1][1]) == struct.pack("<d", STALE_NAN)
    assert registry.get_sample_value("prometheus_rule_evaluations_total", {"rule_group": GROUP.key}) == 15
    assert registry.get_sample_value("prometheus_rule_evaluation_failures_total", {"rule_group": GROUP.key}) == 0


def test_query_error_marks_rule_unhealthy_and_keeps_its_alerts(tmp_path: Path) -> None:
    table, notifier = SeriesTable(), RecordingNotifier()
    table.add({"__name__": "load", "instance": "a"}, 99.5, 7.0)
    engine, registry = _engine(tmp_path, table, notifier)
    assert {r["health"] for g in engine.rule_groups() for r in g["rules"]} == {"unknown"}
    engine.evaluate_group(GROUP, 100.0)
    table.fail = "collector down"
    engine.evaluate_group(GROUP, 101.0)
    (group,) = engine.rule_groups()
    assert [(r["health"], r.get("lastError")) for r in group["rules"]] == [("err", "collector down")] * 3
    assert [a["state"] for a in engine.alerts()] == ["firing", "pending"]
    assert registry.get_sample_value("prometheus_rule_evaluation_failures_total", {"rule_group": GROUP.key}) == 3
    table.fail = None
    engine.evaluate_group(GROUP, 102.0)
    assert {r["health"] for r in engine.rule_groups()[0]["rules"]} == {"ok"}
    assert "lastError" not in engine.rule_groups()[0]["rules"][0]


def test_write_failure_marks_rule_unhealthy(tmp_path: Path) -> None:
    table, notifier = SeriesTable(), RecordingNotifier()
    table.add({"__name__": "load", "instance": "a"}, 99.5, 7.0)
    engine, _ = _engine(tmp_path, table, notifier)

    def refuse(samples: object) -> None:
        raise ConnectionError("collector refused")

    engine.write_samples = refuse
    engine.evaluate_group(GROUP, 100.0)
    rules = engine.rule_groups()[0]["rules"]
    assert rules[0]["health"] == "err" and "collector refused" in rules[0]["lastError"]


def test_api_shapes(tmp_path: Path) -> None:
    table, notifier = SeriesTable(), RecordingNotifier()
    table.add({"__name__": "load", "instance": "a"}, 1699999999.75, 7.0)
    engine, _ = _engine(tmp_path, table, notifier)
    engine.evaluate_group(GROUP, 1700000000.25)
    (group,) = engine.rule_groups()
    assert list(group) == ["name", "file", "rules", "interval", "limit", "evaluationTime", "lastEvaluation"]
    assert (group["name"], group["file"], group["interval"], group["limit"]) == ("g", "/rules/a.yml", 1.0, 0)
    recording, _, high = group["rules"]
    assert list(recording) == ["name", "query", "labels", "health", "evaluationTime", "lastEvaluation", "type"]
    assert list(high) == [
        "state", "name", "query", "duration", "keepFiringFor", "labels", "annotations", "alerts", "health",
        "evaluationTime", "lastEvaluation", "type",
    ]  # fmt: skip
    assert (high["state"], high["duration"], high["type"]) == ("pending", 2.0, "alerting")
    assert high["alerts"] == [
        {
            "labels": {"alertname": "High", "instance": "a", "team": "ops"},
            "annotations": {"summary": "a high"},
            "state": "pending",
            "activeAt": "2023-11-14T22:13:20.25Z",
            "value": "7e+00",
        }
    ]
    assert [a["labels"]["alertname"] for a in engine.alerts()] == ["DoubledSeen", "High"]


def test_reload_keeps_state_of_rules_that_remain(tmp_path: Path) -> None:
    table, notifier = SeriesTable(), RecordingNotifier()
    engine, _ = _engine(tmp_path, table, notifier)
    for t in (100, 101, 102):
        table.add({"__name__": "load", "instance": "a"}, t - 0.5, 7.0)
        engine.evaluate_group(GROUP, float(t))
    changed = AlertingRule("High", "load > 6", for_s=2, labels={"team": "ops"})  # same name and labels
    new_group = RuleGroup(name="g", file="/rules/a.yml", interval_s=1.0, rules=(changed,))
    engine.reload([new_group])
    table.add({"__name__": "load", "instance": "a"}, 102.5, 7.0)
    engine.evaluate_group(new_group, 103.0)
    assert [(a.name, a.state, a.active_at) for a in notifier.last] == [("High", AlertState.FIRING, 100.0)]
    # The removed rules' series are marked stale on the group's next round.
    ((_, points),) = _series(table, "load:doubled")
    assert points[-1][0] == 103.0 and math.isnan(points[-1][1])
    relabelled = RuleGroup(
        name="g", file="/rules/a.yml", interval_s=1.0, rules=(AlertingRule("High", "load > 6", labels={"team": "x"}),)
    )
    engine.reload([relabelled])
    engine.evaluate_group(relabelled, 104.0)
    assert [(a.state, a.active_at) for a in notifier.last] == [(AlertState.FIRING, 104.0)]  # a new alert


def test_restart_restores_from_the_store(tmp_path: Path) -> None:
    table, notifier = SeriesTable(), RecordingNotifier()
    engine, _ = _engine(tmp_path, table, notifier)
    for t in (100, 101):
        table.add({"__name__": "load", "instance": "a"}, t - 0.5, 7.0)
        engine.evaluate_group(GROUP, float(t))
    engine.store.close()
    table.add({"__name__": "load", "instance": "a"}, 101.5, 7.0)
    again, _ = _engine(tmp_path, table, RecordingNotifier())
    assert [a["state"] for a in again.alerts()] == ["firing", "pending"]
    again.evaluate_group(GROUP, 102.0)
    high = [a for a in again.alerts() if a["labels"]["alertname"] == "High"]
    assert [(a["state"], a["activeAt"]) for a in high] == [("firing", "1970-01-01T00:01:40Z")]
    again.store.close()
    other = RuleGroup(name="other", file="/rules/a.yml", interval_s=1.0, rules=(HIGH,))
    third, _ = _engine(tmp_path, table, RecordingNotifier(), [other])
    assert third.alerts() == [] and third.store.group_keys() == []  # a group configured away is forgotten


def test_run_evaluates_at_the_groups_slots(tmp_path: Path) -> None:
    table, notifier = SeriesTable(), RecordingNotifier()
    group = RuleGroup(name="fast", file="/rules/b.yml", interval_s=0.05, rules=(AlertingRule("Always", "up"),))
    table.add({"__name__": "up"}, 0.0, 1.0)
    registry = CollectorRegistry()
    engine = RuleEngine(
        [group], table, notifier, StateStore(tmp_path / "s"), render=render, registry=registry,
        write_samples=None,
    )  # fmt: skip
    table.series.clear()
    stop = threading.Event()
    runner = threading.Thread(target=engine.run, args=(stop,))
    runner.start()
    try:
        done = threading.Event()
        for _ in range(200):
            if len(table.queries) >= 3:
                done.set()
                break
            stop.wait(0.05)
    finally:
        stop.set()
        runner.join(timeout=10)
    assert done.is_set() and not runner.is_alive()
    offset = offset_ns(group.name, group.file, group.interval_s)
    for _, at in table.queries:
        phase = (round(at * 1e9) - offset) % 50_000_000
        assert min(phase, 50_000_000 - phase) < 2000  # nanoseconds: a float holds ~200 ns at today's epoch
    iterations = registry.get_sample_value("prometheus_rule_group_iterations_total", {"rule_group": group.key})
    assert iterations is not None and iterations >= 3


class SlowTable(SeriesTable):
    """A query that takes longer than the group's interval: rounds overrun their slots."""

    def __call__(self, expr: str, at: float) -> list[Sample]:
        threading.Event().wait(0.13)
        return list(super().__call__(expr, at))


def test_overrunning_rounds_skip_slots_and_count_them_missed(tmp_path: Path) -> None:
    table, notifier = SlowTable(), RecordingNotifier()
    group = RuleGroup(name="slow", file="/rules/c.yml", interval_s=0.05, rules=(AlertingRule("Always", "up"),))
    registry = CollectorRegistry()
    engine = RuleEngine([group], table, notifier, StateStore(tmp_path / "s"), render=render, registry=registry)
    stop = threading.Event()
    runner = threading.Thread(target=engine.run, args=(stop,))
    runner.start()
    try:
        for _ in range(200):
            if len(table.queries) >= 3:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        runner.join(timeout=10)
    key = {"rule_group": group.key}
    missed = registry.get_sample_value("prometheus_rule_group_iterations_missed_total", key)
    scheduled = registry.get_sample_value("prometheus_rule_group_iterations_total", key)
    # Each round takes at least 0.13 s = 2.6 intervals, so at least one slot passes unevaluated per round.
    assert missed is not None and missed >= len(table.queries) - 1 >= 2
    assert scheduled == len(table.queries) + missed
    slots = [at for _, at in table.queries]
    assert all(round((b - a) / 0.05) >= 2 for a, b in itertools.pairwise(slots))


class BatchingTable(SeriesTable):
    """A SeriesTable that also answers many expressions at once (model.QueryManyFunc), and counts batches."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.writes = 0

    def query_many(self, exprs: list[str], at: float) -> list[object]:
        self.batches.append(list(exprs))
        out: list[object] = []
        for expr in exprs:
            try:
                out.append(self(expr, at))
            except QueryError as exc:
                out.append(exc)
        return out

    def write(self, samples: Sequence[tuple[Mapping[str, str], float, float]]) -> None:
        self.writes += 1
        super().write(samples)


def test_batched_rounds_equal_rule_by_rule_rounds_in_fewer_round_trips(tmp_path: Path) -> None:
    plain, batched = SeriesTable(), BatchingTable()
    for table in (plain, batched):
        table.add({"__name__": "load", "instance": "a"}, 99.5, 7.0)
        table.add({"__name__": "load", "instance": "b"}, 99.5, 3.0)
    group = RuleGroup(name="g", file="/rules/a.yml", interval_s=1.0, rules=(HIGH, DOUBLED, DOUBLED_HIGH, HIGH))
    engines = []
    for name, table in (("plain", plain), ("batched", batched)):
        engine = RuleEngine(
            [group],
            table,
            RecordingNotifier(),
            StateStore(tmp_path / name),
            render=render,
            write_samples=table.write,
            clock=Clock(),
            query_many=table.query_many if isinstance(table, BatchingTable) else None,
        )
        engines.append(engine)
        for at in (100.0, 101.0, 102.0, 103.0):
            engine.evaluate_group(group, at)
    assert plain.series == batched.series  # same recording results, ALERTS and stale markers
    assert [a["labels"] | {"state": a["state"]} for a in engines[0].alerts()] == [
        a["labels"] | {"state": a["state"]} for a in engines[1].alerts()
    ]
    # DoubledSeen reads load:doubled, written earlier in the round: two runs per round, two batches and
    # two writes instead of four queries and four writes.
    assert batched.batches[:2] == [["load > 5", "load"], ["load:doubled > 5", "load > 5"]]
    assert len(batched.batches) == 8 and batched.writes <= 8
