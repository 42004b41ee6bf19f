"""The rule engine: evaluates rule groups at their aligned slots, persists state, notifies, and reports.

Prometheus' rules.Group and rules.Manager in one small class. A round of a group (`evaluate_group`)
runs its rules in order at one timestamp; each rule's output (recording results, ALERTS and
ALERTS_FOR_STATE, stale markers for series it stopped producing) is written through `write_samples`
before a later rule that may read it runs, so later rules see it only through the store, as in
Prometheus. With a `query_many` seam, the queries of the rules that cannot see each other's output
(alerting.round_plan) go out together, and their output is written together: one round trip each way
per run of rules instead of one per rule. After the
round the group's state is committed to the StateStore, and only then is the notifier handed every
firing and resolved alert of the group (pending ones are not sent; dedup is the notifier's job).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from alerting.alert_rule import AlertingRuleState, RenderFunc, RuleEvalError
from alerting.model import Alert, AlertState, Notifier, QueryError, QueryFunc, QueryManyFunc, Sample, sorted_labels
from alerting.recording_rule import RecordingRuleState
from alerting.remote_write import STALE_NAN, RemoteSample
from alerting.round_plan import query_segments
from alerting.rule_metrics import RuleMetrics
from alerting.rules import AlertingRule, Rule, RuleGroup
from alerting.rules_api import api_alerts, group_json
from alerting.schedule import interval_ns, next_slot, offset_ns
from alerting.state_store import GroupSnapshot, RuleSnapshot, StateStore

log = logging.getLogger(__name__)

WriteSamples = Callable[[list[RemoteSample]], None]
SeriesKey = tuple[tuple[str, str], ...]
RuleState = AlertingRuleState | RecordingRuleState


def rule_keys(rules: Sequence[Rule]) -> list[str]:
    """Keys that match rules across reloads and restarts: name and labels, as Prometheus' CopyState does.

    Rules with the same name and labels are matched in order (the first with the first), hence the count.
    """
    seen: dict[str, int] = {}
    keys = []
    for rule in rules:
        name = rule.name if isinstance(rule, AlertingRule) else rule.record
        base = name + repr(sorted_labels(rule.labels))
        seen[base] = seen.get(base, 0) + 1
        keys.append(f"{base}#{seen[base]}")
    return keys


@dataclass
class GroupState:
    group: RuleGroup
    rules: list[RuleState]
    keys: list[str]
    previous_series: list[dict[SeriesKey, Mapping[str, str]]]  # per rule: what its last round wrote
    segments: list[list[int]] = field(default_factory=list)  # rules queried together (round_plan)
    stale_series: list[Mapping[str, str]] = field(default_factory=list)  # of removed rules, marked next round
    last_eval_ts: float = 0.0
    last_evaluation: float = 0.0
    evaluation_time: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


class RuleEngine:
    """Evaluates `groups` with `query`, keeps their state in `store`, notifies `notifier`.

    `render(text, labels, value, external_labels, external_url) -> str` expands label and annotation
    templates (alerting.template.render). `write_samples` receives each rule's output samples
    (labels with __name__, Unix seconds, value) and should raise if they were not written; None keeps
    them in memory only. `clock` is the wall clock (Unix seconds) for lastEvaluation, scheduling and
    the notifier's `now`.
    """

    def __init__(
        self,
        groups: Sequence[RuleGroup],
        query: QueryFunc,
        notifier: Notifier,
        store: StateStore,
        *,
        render: RenderFunc,
        write_samples: WriteSamples | None = None,
        external_labels: Mapping[str, str] | None = None,
        external_url: str = "",
        clock: Callable[[], float] = time.time,
        registry: CollectorRegistry | None = None,
        query_many: QueryManyFunc | None = None,
    ) -> None:
        self.query, self.notifier, self.store = query, notifier, store
        self.query_many = query_many
        self.render, self.write_samples = render, write_samples
        self.external_labels = dict(external_labels or {})
        self.external_url = external_url
        self.clock = clock
        self.metrics = RuleMetrics(registry if registry is not None else CollectorRegistry())
        self._lock = threading.Lock()  # guards self._groups and the running threads
        self._groups: dict[str, GroupState] = {}
        self._running: threading.Event | None = None
        for group in groups:
            if group.key in self._groups:
                raise ValueError(f"rule group {group.name!r} appears twice in {group.file!r}")
            state = self._new_state(group)
            self._restore(state)
            self._groups[group.key] = state
        for key in store.group_keys():
            if key not in self._groups:  # configured away while we were down: forgotten, as on reload
                store.delete_group(key)

    # -- building and restoring state ------------------------------------------------------------------

    def _new_state(self, group: RuleGroup) -> GroupState:
        rules: list[RuleState] = []
        for rule in group.rules:
            if isinstance(rule, AlertingRule):
                rules.append(AlertingRuleState(rule, group, self.render, self.external_labels, self.external_url))
            else:
                rules.append(RecordingRuleState(rule, group))
        key = group.key
        self.metrics.interval.labels(key).set(group.interval_s)
        self.metrics.rules.labels(key).set(len(rules))
        for counter in (self.metrics.evals, self.metrics.failures, self.metrics.missed, self.metrics.scheduled):
            counter.labels(key)  # present from the start at 0, as Prometheus registers them with the group
        segments = query_segments(group.rules)
        return GroupState(group, rules, rule_keys(group.rules), [{} for _ in rules], segments)

    def _restore(self, state: GroupState) -> None:
        snapshot = self.store.load_group(state.group.key)
        if snapshot is None:
            return
        state.last_eval_ts = snapshot.last_eval_ts
        state.last_evaluation, state.evaluation_time = snapshot.last_evaluation, snapshot.evaluation_time
        for key, rule in zip(state.keys, state.rules, strict=True):
            saved = snapshot.rules.get(key)
            if saved is not None and isinstance(rule, AlertingRuleState):
                rule.active = dict(saved.alerts)
                if rule.rule.flapping is not None:
                    rule.flapping = dict(saved.flapping)

    @staticmethod
    def _copy_state(new: GroupState, old: GroupState) -> None:
        """Prometheus' Group.CopyState: rules matched by name and labels keep their alerts and series."""
        new.last_eval_ts, new.last_evaluation, new.evaluation_time = (
            old.last_eval_ts,
            old.last_evaluation,
            old.evaluation_time,
        )
        by_key = dict(zip(old.keys, range(len(old.rules)), strict=True))
        matched = set()
        for i, (key, rule) in enumerate(zip(new.keys, new.rules, strict=True)):
            j = by_key.get(key)
            if j is None:
                continue
            matched.add(j)
            new.previous_series[i] = old.previous_series[j]
            previous = old.rules[j]
            if isinstance(rule, AlertingRuleState) and isinstance(previous, AlertingRuleState):
                rule.active = previous.active
                rule.flapping = previous.flapping if rule.rule.flapping is not None else {}
        new.stale_series = list(old.stale_series)
        for j, series in enumerate(old.previous_series):
            if j not in matched:
                new.stale_series.extend(series.values())

    # -- one round ---------------------------------------------------------------------------------------

    def evaluate_group(self, group: RuleGroup, at: float) -> None:
        """One round of `group` (by its key) at evaluation timestamp `at` (Unix seconds)."""
        state = self._groups.get(group.key)
        if state is None:
            raise KeyError(f"unknown rule group {group.key!r}")
        key = group.key
        start = self.clock()
        samples_total = 0
        if state.stale_series and self.write_samples is not None:
            try:
                self.write_samples([(labels, at, STALE_NAN) for labels in state.stale_series])
                state.stale_series = []
            except Exception as exc:  # retried next round
                log.warning("writing stale markers of group %s failed: %s", key, exc)
        for segment in state.segments:
            samples_total += self._evaluate_segment(state, segment, at)
        elapsed = self.clock() - start
        with state.lock:
            state.last_eval_ts, state.last_evaluation, state.evaluation_time = at, start, elapsed
        self.metrics.samples.labels(key).set(samples_total)
        self.metrics.group_duration.observe(elapsed)
        self.metrics.last_duration.labels(key).set(elapsed)
        self.metrics.last_eval.labels(key).set(start)
        try:
            self.store.save_group(key, self._snapshot(state))
        except Exception:  # alerts still go out: a stale store costs a duplicate notification, not a lost one
            log.exception("saving the state of group %s failed", key)
        self._notify(state)

    def _query_segment(self, state: GroupState, segment: list[int], at: float) -> list[Sequence[Sample] | QueryError]:
        """Every rule's query result (or its error) for one segment: one batch, or one query per rule."""
        at -= state.group.query_offset_s
        exprs = [state.rules[i].rule.expr for i in segment]
        if self.query_many is not None and len(exprs) > 1:
            try:
                return self.query_many(exprs, at)
            except QueryError as exc:
                return [exc] * len(exprs)
        results: list[Sequence[Sample] | QueryError] = []
        for expr in exprs:
            try:
                results.append(self.query(expr, at))
            except QueryError as exc:
                results.append(exc)
        return results

    def _evaluate_segment(self, state: GroupState, segment: list[int], at: float) -> int:
        """Queries, evaluates and writes one segment's rules; the number of series they returned."""
        key = state.group.key
        seg_start = self.clock()
        results = self._query_segment(state, segment, at)
        query_share = (self.clock() - seg_start) / len(segment)  # Prometheus times each rule with its query
        errors: dict[int, str] = {}
        outputs: dict[int, tuple[dict[SeriesKey, Mapping[str, str]], list[RemoteSample]]] = {}
        rule_time: dict[int, float] = {}
        for i, result in zip(segment, results, strict=True):
            rule = state.rules[i]
            rule_start = self.clock()
            self.metrics.evals.labels(key).inc()
            rule.status.last_evaluation = seg_start
            if isinstance(result, QueryError):
                errors[i] = str(result)
            else:
                with state.lock:
                    try:
                        out = rule.eval(result, at, state.group.limit)
                    except RuleEvalError as exc:
                        errors[i] = str(exc)
                        out = None
                if out is not None:
                    returned = {sorted_labels(labels): labels for labels, _, _ in out}
                    stale = [
                        (labels, at, STALE_NAN) for k, labels in state.previous_series[i].items() if k not in returned
                    ]
                    outputs[i] = (returned, [*out, *stale])
            rule_time[i] = self.clock() - rule_start + query_share
        to_write = [sample for _, samples in outputs.values() for sample in samples]
        if self.write_samples is not None and to_write:
            write_start = self.clock()
            try:
                self.write_samples(to_write)
            except Exception as exc:
                for i, (_, samples) in outputs.items():
                    if samples:
                        errors[i] = f"writing rule results failed: {exc}"
            write_share = (self.clock() - write_start) / len(outputs)
            for i in outputs:
                rule_time[i] += write_share
        total = 0
        for i in segment:
            rule = state.rules[i]
            if i in errors:
                rule.status.health, rule.status.last_error = "err", errors[i]
                self.metrics.failures.labels(key).inc()
                log.warning("rule %s of group %s failed: %s", state.keys[i], key, errors[i])
            else:
                state.previous_series[i] = outputs[i][0]
                rule.status.health, rule.status.last_error = "ok", ""
                total += len(state.previous_series[i])
            rule.status.evaluation_time = rule_time[i]
            self.metrics.eval_duration.observe(rule_time[i])
        return total

    def _snapshot(self, state: GroupState) -> GroupSnapshot:
        snapshot = GroupSnapshot(state.last_eval_ts, state.last_evaluation, state.evaluation_time)
        with state.lock:
            for key, rule in zip(state.keys, state.rules, strict=True):
                if isinstance(rule, AlertingRuleState):
                    snapshot.rules[key] = RuleSnapshot(dict(rule.active), dict(rule.flapping))
        return snapshot

    def _notify(self, state: GroupState) -> None:
        with state.lock:
            alerts: list[Alert] = [
                a
                for rule in state.rules
                if isinstance(rule, AlertingRuleState)
                for a in rule.alerts()
                if a.state != AlertState.PENDING
            ]
        try:
            self.notifier.notify(alerts, self.clock())
        except Exception:  # delivery and its retries are the notifier's; a failure must not stop evaluation
            log.exception("notifying the alerts of group %s failed", state.group.key)

    # -- running on schedule -----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Evaluates every group on its own thread at its slots until `stop` is set; returns after joining."""
        with self._lock:
            self._running = stop
            for state in self._groups.values():
                self._start(state)
        stop.wait()
        with self._lock:
            self._running = None
            states = list(self._groups.values())
        for state in states:
            self._halt(state)

    def _start(self, state: GroupState) -> None:
        state.stop = threading.Event()
        state.thread = threading.Thread(target=self._loop, args=(state,), name=f"rules {state.group.key}", daemon=True)
        state.thread.start()

    @staticmethod
    def _halt(state: GroupState) -> None:
        state.stop.set()
        if state.thread is not None and state.thread is not threading.current_thread():
            state.thread.join()
        state.thread = None

    def _loop(self, state: GroupState) -> None:
        """Prometheus' Group.run: first the slot after now, then every interval, skipping missed slots."""
        group, key = state.group, state.group.key
        interval = interval_ns(group.interval_s)
        offset = offset_ns(group.name, group.file, group.interval_s)
        now = round(self.clock() * 1e9)
        adj = now - offset
        ts = adj - adj % interval + offset + interval
        while not state.stop.wait(max(ts / 1e9 - self.clock(), 0.0)):
            self.metrics.scheduled.labels(key).inc()
            try:
                self.evaluate_group(group, ts / 1e9)
            except Exception:
                log.exception("evaluating group %s failed", key)
            next_ts = ts + interval
            now = round(self.clock() * 1e9)
            if now >= next_ts:
                # Woken late (a slow round): Prometheus' ticker then counts the slots that passed as missed.
                next_ts, missed = next_slot(ts, now, interval)
                if missed:
                    self.metrics.missed.labels(key).inc(missed)
                    self.metrics.scheduled.labels(key).inc(missed)
            ts = next_ts

    # -- reload --------------------------------------------------------------------------------------------

    def reload(self, groups: Sequence[RuleGroup]) -> None:
        """Replaces the groups; rules that still exist (same group key, name and labels) keep their state.

        An unchanged group keeps running untouched; a changed one is stopped, its state copied, restarted
        at its next slot; a removed one is stopped, its series marked stale and its stored state deleted.
        """
        wanted: dict[str, RuleGroup] = {}
        for group in groups:
            if group.key in wanted:
                raise ValueError(f"rule group {group.name!r} appears twice in {group.file!r}")
            wanted[group.key] = group
        with self._lock:
            old_states = self._groups
            new_states: dict[str, GroupState] = {}
            for key, group in wanted.items():
                old = old_states.get(key)
                if old is not None and old.group == group:
                    new_states[key] = old
                    continue
                new = self._new_state(group)
                if old is not None:
                    self._halt(old)
                    self._copy_state(new, old)
                else:
                    self._restore(new)
                new_states[key] = new
                if self._running is not None:
                    self._start(new)
            removed = [s for k, s in old_states.items() if k not in wanted]
            self._groups = new_states
        for state in removed:
            self._halt(state)
            self.metrics.forget(state.group.key)
            series = [labels for prev in state.previous_series for labels in prev.values()] + state.stale_series
            if series and self.write_samples is not None:
                try:
                    self.write_samples([(labels, self.clock(), STALE_NAN) for labels in series])
                except Exception as exc:
                    log.warning("writing stale markers of removed group %s failed: %s", state.group.key, exc)
            self.store.delete_group(state.group.key)

    # -- reporting -------------------------------------------------------------------------------------------

    def groups(self) -> list[RuleGroup]:
        with self._lock:
            return [s.group for s in self._groups.values()]

    def rule_groups(self) -> list[dict[str, Any]]:
        """`data.groups` of Prometheus' /api/v1/rules, sorted by file then name as Prometheus sorts them."""
        with self._lock:
            states = sorted(self._groups.values(), key=lambda s: (s.group.file, s.group.name))
        out = []
        for s in states:
            with s.lock:
                out.append(group_json(s.group, s.rules, s.evaluation_time, s.last_evaluation))
        return out

    def alerts(self) -> list[dict[str, Any]]:
        """`data.alerts` of Prometheus' /api/v1/alerts: every pending and firing alert."""
        with self._lock:
            states = sorted(self._groups.values(), key=lambda s: (s.group.file, s.group.name))
        out: list[dict[str, Any]] = []
        for s in states:
            with s.lock:
                for rule in s.rules:
                    if isinstance(rule, AlertingRuleState):
                        out.extend(api_alerts(rule))
        return out

    def active_alerts(self) -> list[Alert]:
        """Every alert the engine holds (pending, firing, resolved within retention), for other components."""
        with self._lock:
            states = list(self._groups.values())
        out: list[Alert] = []
        for s in states:
            with s.lock:
                for rule in s.rules:
                    if isinstance(rule, AlertingRuleState):
                        out.extend(rule.alerts())
        return out
