"""The state file: atomic round trip, and recognising our processes by pid and start time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from obs.state import ProcessState, StackState, is_alive, read_state, start_ticks, write_state


def test_round_trip_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "run" / "stack.json"
    proc = ProcessState("orders-1", "orders", "orders-1", 123, 456, 8001, "http://h/healthz", "healthy", restarts=2)
    state = StackState(os.getpid(), start_ticks(os.getpid()), "running", 1.5, str(tmp_path), {"x": "y"}, [proc])
    write_state(path, state)
    write_state(path, state)  # replacing works too
    assert read_state(path) == state
    assert os.listdir(path.parent) == ["stack.json"]


def test_missing_and_bad_files(tmp_path: Path) -> None:
    assert read_state(tmp_path / "none.json") is None
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="not a readable stack state"):
        read_state(bad)
    bad.write_text('{"unexpected": 1}')
    with pytest.raises(ValueError, match="not a stack state of this version"):
        read_state(bad)


def test_is_alive_checks_the_start_time() -> None:
    me = os.getpid()
    ticks = start_ticks(me)
    assert ticks is not None
    assert is_alive(me, ticks)
    assert is_alive(me, None)
    assert not is_alive(me, ticks + 1)  # the same pid, another process: not ours
    assert not is_alive(None, None)


def test_an_exited_process_is_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    ticks = start_ticks(proc.pid)
    proc.wait(timeout=30)
    assert not is_alive(proc.pid, ticks)
