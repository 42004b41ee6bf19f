"""The SQLite alert state: round trips, and a RuleEngine process killed with SIGKILL between rounds
that resumes with firing alerts still firing, pending timers kept, and missed resolutions delivered."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from alerting.alert_rule import ActiveAlert
from alerting.flapping import FlappingState
from alerting.model import AlertState
from alerting.state_store import GroupSnapshot, RuleSnapshot, StateStore
from tests.conftest import ROOT


def test_round_trip_and_replace(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    firing = ActiveAlert(
        labels={"alertname": "A", "instance": "x", "severity": "critical"},
        annotations={"summary": "s"},
        state=AlertState.FIRING,
        active_at=100.5,
        value=float("nan"),
        fired_at=102.5,
        keep_firing_since=104.5,
        last_eval=105.5,
        level="critical",
    )
    resolved = ActiveAlert({"alertname": "A"}, {}, AlertState.INACTIVE, 90.0, float("inf"), 91.0, 95.0)
    snapshot = GroupSnapshot(
        105.5,
        106.0,
        0.25,
        {
            "A#1": RuleSnapshot(
                {"k1": firing, "k2": resolved},
                {"k1": FlappingState(["ok", "critical"], True), "k3": FlappingState(["critical", "ok"])},
            )
        },
    )
    store.save_group("f;g", snapshot)
    store.close()
    loaded = StateStore(tmp_path).load_group("f;g")
    assert loaded is not None
    got_firing = loaded.rules["A#1"].alerts["k1"]
    assert got_firing.value != got_firing.value  # NaN survives
    got_firing.value = firing.value
    assert got_firing == firing
    assert loaded.rules["A#1"].alerts["k2"] == resolved
    assert loaded.rules["A#1"].flapping == snapshot.rules["A#1"].flapping
    assert (loaded.last_eval_ts, loaded.last_evaluation, loaded.evaluation_time) == (105.5, 106.0, 0.25)

    again = StateStore(tmp_path)
    again.save_group("f;g", GroupSnapshot(106.5, 107.0, 0.1, {"A#1": RuleSnapshot()}))
    reloaded = again.load_group("f;g")
    assert reloaded is not None and reloaded.rules == {}
    assert again.group_keys() == ["f;g"]
    again.delete_group("f;g")
    assert again.load_group("f;g") is None


def test_sqlite_settings(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    assert store._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert store._db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL


class Driver:
    def __init__(self, state_dir: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.unit.alerting.round_driver", str(state_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env=env,
            text=True,
        )

    def round(self, at: float, load: dict[str, float]) -> list[dict[str, Any]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"at": at, "load": load}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the driver exited"
        result: list[dict[str, Any]] = json.loads(line)
        return result

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


def _brief(alerts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(a["instance"], a["state"], a["active_at"], a["fired_at"], a["resolved_at"]) for a in alerts]


def test_kill9_between_rounds_keeps_firing_pending_and_delivers_missed_resolution(tmp_path: Path) -> None:
    first = Driver(tmp_path / "state")
    first.round(100, {"a": 7, "b": 7})
    first.round(101, {"a": 7, "b": 7, "c": 7})
    sent = first.round(102, {"a": 7, "b": 7, "c": 7})
    assert _brief(sent) == [("a", "firing", 100, 102, None), ("b", "firing", 100, 102, None)]  # c is pending
    first.kill9()

    second = Driver(tmp_path / "state")
    try:
        # While we were down: b stopped matching; a still matches; c kept matching.
        sent = second.round(103, {"a": 7, "c": 7})
    finally:
        second.close()
    assert _brief(sent) == [
        ("a", "firing", 100, 102, None),  # still firing since 102: not pending again, not re-fired
        ("b", "inactive", 100, 102, 103),  # its resolution reaches the notifier
        ("c", "firing", 101, 103, None),  # its `for` timer counted from 101, across the restart
    ]
