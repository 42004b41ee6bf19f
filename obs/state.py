"""The state file a running `obs up` keeps (`<data_dir>/run/stack.json`) for `obs status`, `obs down`, `obs fault`.

Written atomically (a temporary file in the same directory, then rename), so a reader sees the old or the
new state, never half of one. Processes are identified by pid plus their start time (from /proc), so a pid
reused by an unrelated process after a crash is not mistaken for ours.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_VERSION = 1


@dataclass
class ProcessState:
    """One supervised process as the supervisor last saw it."""

    name: str  # unique: "collector", "orders-1", ...
    service: str  # "collector", "discovery", "orders", ...
    instance_id: str
    pid: int | None
    start_ticks: int | None  # /proc/<pid>/stat starttime, to recognise the pid later
    port: int | None
    health_url: str | None
    state: str  # starting | healthy | running | backoff | failed | exited | stopped
    restarts: int = 0
    started_at: float | None = None  # Unix seconds of the current (re)start
    last_exit_code: int | None = None
    log_path: str = ""


@dataclass
class StackState:
    supervisor_pid: int
    supervisor_start_ticks: int | None
    phase: str  # starting | running | stopping
    started_at: float  # Unix seconds
    data_dir: str
    urls: dict[str, str] = field(default_factory=dict)
    processes: list[ProcessState] = field(default_factory=list)
    version: int = STATE_VERSION


def write_state(path: Path, state: StackState) -> None:
    """Replace the state file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_state(path: Path) -> StackState | None:
    """The state file, or None when there is none. Raises ValueError for a file that is not a stack state."""
    try:
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable stack state: {exc}") from None
    try:
        procs = [ProcessState(**p) for p in raw.pop("processes", [])]
        return StackState(**raw, processes=procs)
    except TypeError as exc:
        raise ValueError(f"{path}: not a stack state of this version: {exc}") from None


def remove_state(path: Path) -> None:
    path.unlink(missing_ok=True)


def start_ticks(pid: int) -> int | None:
    """The process' start time in clock ticks since boot (field 22 of /proc/<pid>/stat); None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after its closing one.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has exited; only its parent's wait is missing
        return None
    return int(fields[19])


def is_alive(pid: int | None, ticks: int | None) -> bool:
    """True when `pid` runs and is the process that was started at `ticks` (when known)."""
    if pid is None:
        return False
    now = start_ticks(pid)
    return now is not None and (ticks is None or now == ticks)
