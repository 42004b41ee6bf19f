"""`obs status` and `obs down`: act on a running `obs up` through its state file."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

import httpx

from obs.state import ProcessState, StackState, is_alive, read_state, remove_state


def _probe(url: str | None) -> str:
    if url is None:
        return "-"
    try:
        code = httpx.get(url, timeout=1.0).status_code
    except httpx.HTTPError:
        return "down"
    return "ok" if code == 200 else f"http {code}"


def _uptime(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def status_rows(state: StackState, now: float | None = None) -> list[dict[str, Any]]:
    """One row per process with a live health probe (probes run in parallel, 1 s each at most)."""
    now = time.time() if now is None else now
    alive = [is_alive(p.pid, p.start_ticks) for p in state.processes]
    urls = [p.health_url if up else None for p, up in zip(state.processes, alive, strict=True)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        health = list(pool.map(_probe, urls))
    rows = []
    for p, up, h in zip(state.processes, alive, health, strict=True):
        row = asdict(p)
        row["pid"] = p.pid if up else None
        row["health"] = h
        row["uptime_s"] = round(now - p.started_at, 1) if up and p.started_at else None
        rows.append(row)
    return rows


def render_status(state: StackState, rows: list[dict[str, Any]], supervisor_alive: bool, out: TextIO) -> None:
    sup = f"pid {state.supervisor_pid}" + ("" if supervisor_alive else ", NOT RUNNING (stale state)")
    print(f"stack {state.phase} (supervisor {sup}), data in {state.data_dir}", file=out)
    header = f"{'NAME':<14}{'PID':>8}  {'PORT':>5}  {'HEALTH':<8}{'STATE':<9}{'RESTARTS':>8}  UPTIME"
    print(header, file=out)
    for r in rows:
        pid = str(r["pid"]) if r["pid"] else "-"
        port = str(r["port"]) if r["port"] else "-"
        uptime = _uptime(r["uptime_s"]) if r["uptime_s"] is not None else "-"
        print(
            f"{r['name']:<14}{pid:>8}  {port:>5}  {r['health']:<8}{r['state']:<9}{r['restarts']:>8}  {uptime}", file=out
        )
    if state.urls:
        print("", file=out)
        for name, url in state.urls.items():
            print(f"{name:<20} {url}", file=out)


def supervisor_alive(state: StackState) -> bool:
    return is_alive(state.supervisor_pid, state.supervisor_start_ticks)


def _kill_group(p: ProcessState, sig: signal.Signals) -> None:
    if p.pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(p.pid, sig)


def stop_stack(state_file: Path, timeout: float, out: TextIO) -> int:
    """Ask the supervisor to stop (SIGTERM) and wait, bounded, until it and every child are gone.

    A supervisor that is gone (killed) leaves its children behind: they are killed here directly.
    Returns 0 when nothing of the stack runs any more, 1 otherwise.
    """
    state = read_state(state_file)
    if state is None:
        print(f"the stack is not running (no {state_file})", file=out)
        return 0
    children = [p for p in state.processes if is_alive(p.pid, p.start_ticks)]
    if supervisor_alive(state):
        print(f"stopping the stack (supervisor pid {state.supervisor_pid})...", file=out, flush=True)
        os.kill(state.supervisor_pid, signal.SIGTERM)
    else:
        print(f"the supervisor (pid {state.supervisor_pid}) is gone; stopping what it left", file=out, flush=True)
        for p in children:
            _kill_group(p, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not supervisor_alive(state) and not any(is_alive(p.pid, p.start_ticks) for p in children):
            break
        time.sleep(0.1)
    survivors = [p for p in children if is_alive(p.pid, p.start_ticks)]
    for p in survivors:
        print(f"  {p.name} (pid {p.pid}) still runs after {timeout:g}s: SIGKILL", file=out)
        _kill_group(p, signal.SIGKILL)
    if supervisor_alive(state):
        print(f"the supervisor (pid {state.supervisor_pid}) still runs after {timeout:g}s", file=out)
        return 1
    remove_state(state_file)
    deadline = time.monotonic() + 5.0
    while any(is_alive(p.pid, p.start_ticks) for p in survivors) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p.name for p in survivors if is_alive(p.pid, p.start_ticks)]
    if left:
        print(f"still running: {', '.join(left)}", file=out)
        return 1
    print("stopped.", file=out)
    return 0
