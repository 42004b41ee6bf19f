"""Alert state that survives restarts: every group's active alerts and flapping histories in SQLite.

One file, `<state_dir>/alerts.db`, in WAL mode with synchronous=FULL, so that a round acknowledged by
`save_group` survives kill -9 and power loss. Each evaluation round replaces its group's rows in one
transaction, committed before the round's notifications go out: after a restart the evaluator resumes
from the last committed round, so a firing alert stays firing, a pending one keeps its activeAt (its
`for` timer keeps counting) and one that stopped matching while we were down resolves at the first round.

Rows are keyed by (group key, rule key, alert key); the rule key is the rule's name and labels (as
Prometheus matches rules across reloads), the alert key its label-set fingerprint (identity with levels).
A row without a state holds only a flapping history whose alert is gone. Times are Unix seconds.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path

from alerting.alert_rule import ActiveAlert
from alerting.flapping import FlappingState
from alerting.model import AlertState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rule_groups (
    group_key TEXT PRIMARY KEY,
    last_eval_ts REAL NOT NULL,          -- the evaluation timestamp (slot) of the last committed round
    last_evaluation REAL NOT NULL,       -- wall clock when that round started
    evaluation_time REAL NOT NULL        -- seconds it took
);
CREATE TABLE IF NOT EXISTS alerts (
    group_key TEXT NOT NULL,
    rule_key TEXT NOT NULL,
    alert_key TEXT NOT NULL,
    state TEXT,                          -- pending | firing | inactive; NULL: flapping history only
    labels TEXT NOT NULL,                -- JSON object
    annotations TEXT NOT NULL,           -- JSON object
    active_at REAL,
    fired_at REAL,
    resolved_at REAL,
    keep_firing_since REAL,
    last_eval REAL,
    level TEXT,
    value TEXT,                          -- repr of the float: NaN and infinities survive
    flapping_history TEXT,               -- JSON list of levels, oldest first; NULL without flapping detection
    flapping INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (group_key, rule_key, alert_key)
);
"""


@dataclass
class RuleSnapshot:
    """One rule's persisted state: active alerts and flapping histories, both by alert key."""

    alerts: dict[str, ActiveAlert] = field(default_factory=dict)
    flapping: dict[str, FlappingState] = field(default_factory=dict)


@dataclass
class GroupSnapshot:
    last_eval_ts: float = 0.0
    last_evaluation: float = 0.0
    evaluation_time: float = 0.0
    rules: dict[str, RuleSnapshot] = field(default_factory=dict)


class StateStore:
    """SQLite-backed alert state under `state_dir` (created if missing). Safe to share between threads."""

    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / "alerts.db"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def save_group(self, group_key: str, snapshot: GroupSnapshot) -> None:
        """Replaces the group's state in one transaction; durable when this returns."""
        rows: list[tuple[object, ...]] = []
        for rule_key, rule in snapshot.rules.items():
            for alert_key in sorted(set(rule.alerts) | set(rule.flapping)):
                a, f = rule.alerts.get(alert_key), rule.flapping.get(alert_key)
                history = json.dumps(f.history) if f is not None else None
                flapping = int(f.flapping) if f is not None else 0
                if a is None:
                    rows.append((group_key, rule_key, alert_key, None, "{}", "{}", *[None] * 7, history, flapping))
                    continue
                rows.append(
                    (
                        group_key,
                        rule_key,
                        alert_key,
                        str(a.state),
                        json.dumps(a.labels, sort_keys=True),
                        json.dumps(a.annotations, sort_keys=True),
                        a.active_at,
                        a.fired_at,
                        a.resolved_at,
                        a.keep_firing_since,
                        a.last_eval,
                        a.level,
                        repr(a.value),
                        history,
                        flapping,
                    )
                )
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM alerts WHERE group_key = ?", (group_key,))
                self._db.executemany("INSERT INTO alerts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
                self._db.execute(
                    "INSERT OR REPLACE INTO rule_groups VALUES (?,?,?,?)",
                    (group_key, snapshot.last_eval_ts, snapshot.last_evaluation, snapshot.evaluation_time),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def load_group(self, group_key: str) -> GroupSnapshot | None:
        """The group's last committed state, or None if it was never saved."""
        with self._lock:
            head = self._db.execute(
                "SELECT last_eval_ts, last_evaluation, evaluation_time FROM rule_groups WHERE group_key = ?",
                (group_key,),
            ).fetchone()
            if head is None:
                return None
            rows = self._db.execute(
                "SELECT rule_key, alert_key, state, labels, annotations, active_at, fired_at, resolved_at, "
                "keep_firing_since, last_eval, level, value, flapping_history, flapping "
                "FROM alerts WHERE group_key = ?",
                (group_key,),
            ).fetchall()
        snapshot = GroupSnapshot(*head)
        for rule_key, alert_key, state, labels, notes, *times, level, value, history, flapping in rows:
            rule = snapshot.rules.setdefault(rule_key, RuleSnapshot())
            if history is not None:
                rule.flapping[alert_key] = FlappingState(json.loads(history), bool(flapping))
            if state is None:
                continue
            active_at, fired_at, resolved_at, keep_firing_since, last_eval = times
            rule.alerts[alert_key] = ActiveAlert(
                labels=json.loads(labels),
                annotations=json.loads(notes),
                state=AlertState(state),
                active_at=active_at,
                value=float(value),
                fired_at=fired_at,
                resolved_at=resolved_at,
                keep_firing_since=keep_firing_since,
                last_eval=last_eval or 0.0,
                level=level,
            )
        return snapshot

    def group_keys(self) -> list[str]:
        with self._lock:
            return [k for (k,) in self._db.execute("SELECT group_key FROM rule_groups ORDER BY group_key")]

    def delete_group(self, group_key: str) -> None:
        """Forgets a group that is no longer configured."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM alerts WHERE group_key = ?", (group_key,))
            self._db.execute("DELETE FROM rule_groups WHERE group_key = ?", (group_key,))
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()
