"""Runs the stack's processes: starts them stage by stage, waits for health, restarts crashes, stops them all.

Each child runs in a session (process group) of its own, so Ctrl-C in the terminal reaches only the
supervisor, which then stops the children in reverse start order: SIGTERM to the whole group, SIGKILL
after the grace period. Each child's stdout and stderr go to its log file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import httpx

from obs.restart_policy import RestartPolicy
from obs.stack_config import RestartConfig
from obs.stack_plan import ProcessSpec, Stage
from obs.state import ProcessState, StackState, start_ticks, write_state

HealthProbe = Callable[[str], bool]
_LIVE = ("starting", "healthy", "running")
TICK_SECONDS = 0.1
PROBE_EVERY_SECONDS = 0.25


def http_probe(url: str) -> bool:
    """True when the URL answers 200 within a second."""
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join("    | " + line for line in text.splitlines()[-lines:]) or "    | (empty log)"


@dataclass
class Child:
    """A supervised process and what the supervisor knows about it."""

    spec: ProcessSpec
    policy: RestartPolicy
    proc: subprocess.Popen[bytes] | None = None
    ticks: int | None = None
    # pending | starting | healthy | running (no health check) | backoff | failed | exited | stopped
    state: str = "pending"
    restarts: int = 0
    started_at: float | None = None  # Unix seconds
    started_mono: float = 0.0
    restart_at: float = 0.0
    last_probe: float = 0.0
    last_exit_code: int | None = None
    warned_unhealthy: bool = False

    @property
    def pid_text(self) -> str:
        return str(self.proc.pid) if self.proc is not None else "-"

    def snapshot(self) -> ProcessState:
        return ProcessState(
            name=self.spec.name,
            service=self.spec.service,
            instance_id=self.spec.instance_id,
            pid=self.proc.pid if self.proc is not None and self.proc.poll() is None else None,
            start_ticks=self.ticks,
            port=self.spec.port,
            health_url=self.spec.health_url,
            state=self.state,
            restarts=self.restarts,
            started_at=self.started_at,
            last_exit_code=self.last_exit_code,
            log_path=str(self.spec.log_path),
        )


class Supervisor:
    """Owns the children of one `obs up`. `run` returns the exit status; it always stops what it started."""

    def __init__(
        self,
        stages: list[Stage],
        *,
        restart: RestartConfig,
        health_timeout: float,
        stop_grace: float,
        state_file: Path,
        data_dir: Path,
        log_dir: Path,
        urls: dict[str, str],
        out: TextIO,
        probe: HealthProbe = http_probe,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stages = stages
        self._health_timeout = health_timeout
        self._stop_grace = stop_grace
        self._state_file = state_file
        self._log_dir = log_dir
        self._out = out
        self._probe = probe
        self._clock = clock
        self._children = {
            spec.name: Child(spec, RestartPolicy(restart, clock)) for stage in stages for spec in stage.processes
        }
        self._stop_requests = 0
        self._phase = "starting"
        self._state = StackState(
            supervisor_pid=os.getpid(),
            supervisor_start_ticks=start_ticks(os.getpid()),
            phase=self._phase,
            started_at=time.time(),
            data_dir=str(data_dir),
            urls=urls,
        )

    # -- signals -----------------------------------------------------------------------------------

    def request_stop(self, signum: int = signal.SIGTERM, frame: object = None) -> None:
        """Signal handler: the first request stops gracefully, a second one kills without waiting."""
        self._stop_requests += 1

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGHUP, self.request_stop)  # the terminal closed: stop, do not orphan

    # -- main --------------------------------------------------------------------------------------

    def run(self) -> int:
        try:
            ok = self._start_all()
            if ok and not self._stop_requests:
                self._phase = "running"
                self._save()
                self._print_ready()
                self._monitor()
            # Stopped on request (Ctrl-C, `obs down`), even during the start, is a clean exit.
            return 0 if ok or self._stop_requests else 1
        finally:
            self._phase = "stopping"
            self._save()
            self._stop_all()
            self._state_file.unlink(missing_ok=True)

    def _say(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    def _save(self) -> None:
        self._state.phase = self._phase
        self._state.processes = [c.snapshot() for c in self._children.values()]
        write_state(self._state_file, self._state)

    def _start_all(self) -> bool:
        total = len(self._stages)
        for n, stage in enumerate(self._stages, 1):
            self._say(f"[{n}/{total}] starting {stage.title}")
            children = [self._children[s.name] for s in stage.processes]
            for child in children:
                self._spawn(child)
            self._save()
            if not self._wait_healthy(children):
                return False
        return True

    def _wait_healthy(self, children: list[Child]) -> bool:
        """Tick until every child is healthy; False on a stop request, a give-up or a health timeout."""
        while True:
            if self._stop_requests:
                return False
            self._tick()
            if all(c.state in ("healthy", "running", "exited") for c in children):
                return True
            for c in children:
                if c.state == "failed":
                    return False
                if c.state == "starting" and self._clock() - c.started_mono > self._health_timeout:
                    self._say(f"  {c.spec.name} is not healthy after {self._health_timeout:g}s ({c.spec.health_url})")
                    self._say(f"  last lines of {c.spec.log_path}:\n{log_tail(c.spec.log_path)}")
                    return False
            time.sleep(TICK_SECONDS)

    def _print_ready(self) -> None:
        self._say("the stack is up:")
        for name, url in self._state.urls.items():
            self._say(f"  {name:<20} {url}")
        self._say(f"  {'logs':<20} {self._log_dir}")
        self._say("`obs status` shows the processes; stop with Ctrl-C or `obs down`")

    def _monitor(self) -> None:
        while not self._stop_requests:
            self._tick()
            time.sleep(TICK_SECONDS)

    # -- one step of supervision -------------------------------------------------------------------

    def _tick(self) -> None:
        changed = False
        now = self._clock()
        for child in self._children.values():
            if child.proc is not None and child.state in _LIVE and child.proc.poll() is not None:
                self._on_exit(child, child.proc.returncode)
                changed = True
            if child.state == "backoff" and now >= child.restart_at:
                child.restarts += 1
                self._spawn(child)
                changed = True
            if child.state == "starting" and now - child.last_probe >= PROBE_EVERY_SECONDS:
                child.last_probe = now
                if child.spec.health_url is None or self._probe(child.spec.health_url):
                    # Without a health check (loadgen) a process that has started counts as running.
                    child.state = "healthy" if child.spec.health_url else "running"
                    elapsed = now - child.started_mono
                    again = " again" if child.restarts else ""
                    where = f"  {child.spec.health_url}" if child.spec.health_url else ""
                    what = f"{child.state}{again} in {elapsed:.1f}s"
                    self._say(f"  {child.spec.name:<12} {what:<22} pid {child.pid_text}{where}")
                    changed = True
                elif (
                    self._phase == "running"
                    and not child.warned_unhealthy
                    and now - child.started_mono > self._health_timeout
                ):
                    child.warned_unhealthy = True
                    self._say(f"  {child.spec.name} is not healthy {self._health_timeout:g}s after its restart")
                    self._say(f"  last lines of {child.spec.log_path}:\n{log_tail(child.spec.log_path)}")
        if changed:
            self._save()

    def _on_exit(self, child: Child, code: int) -> None:
        child.last_exit_code = code
        name = child.spec.name
        if code == 0 and not child.spec.restart_on_success:
            child.state = "exited"
            self._say(f"  {name} finished (exit code 0)")
            return
        decision = child.policy.record_crash()
        window = child.policy.window
        if decision.give_up:
            child.state = "failed"
            self._say(
                f"  {name} {describe_exit(code)}; giving up: {decision.crashes_in_window} crashes in {window:g}s"
                f" (see {child.spec.log_path})"
            )
            self._say(log_tail(child.spec.log_path, 15))
            return
        child.state = "backoff"
        child.restart_at = self._clock() + decision.delay
        self._say(
            f"  {name} {describe_exit(code)}; restarting in {decision.delay:.1f}s"
            f" (crash {decision.crashes_in_window} in {window:g}s)"
        )

    def _spawn(self, child: Child) -> None:
        spec = child.spec
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with spec.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            log.write(f"--- obs up: starting {spec.name}: {' '.join(spec.argv)}\n".encode())
            log.flush()
            child.proc = subprocess.Popen(
                spec.argv,
                env=spec.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: signals reach its children too
            )
        child.ticks = start_ticks(child.proc.pid)
        child.state = "starting"
        child.started_at = time.time()
        child.started_mono = self._clock()
        child.last_probe = 0.0
        child.warned_unhealthy = False

    # -- stopping ----------------------------------------------------------------------------------

    def _stop_all(self) -> None:
        """Stop stage by stage in reverse start order: SIGTERM to each group, SIGKILL after the grace period."""
        if any(c.proc is not None for c in self._children.values()):
            self._say("stopping...")
        for stage in reversed(self._stages):
            children = [self._children[s.name] for s in stage.processes]
            running = [c for c in children if c.proc is not None and c.proc.poll() is None]
            for c in running:
                _signal_group(c, signal.SIGTERM)
            began = self._clock()
            deadline = began + self._stop_grace
            while any(c.proc is not None and c.proc.poll() is None for c in running):
                # A second Ctrl-C (or `obs down` twice) means: do not wait.
                if self._clock() >= deadline or self._stop_requests > 1:
                    break
                time.sleep(TICK_SECONDS)
            for c in children:
                if c.proc is None:
                    continue
                if c.proc.poll() is None:
                    self._say(f"  {c.spec.name} still runs after SIGTERM: SIGKILL")
                # The leader may be gone while others in its group live on: kill the group in every case.
                _signal_group(c, signal.SIGKILL)
                try:
                    code = c.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._say(f"  {c.spec.name} (pid {c.proc.pid}) did not exit after SIGKILL")
                    continue
                if c in running:
                    self._say(f"  {c.spec.name:<12} stopped ({describe_exit(code)}) after {self._clock() - began:.1f}s")
                if c.state not in ("failed", "exited"):
                    c.state = "stopped"
            # Grandchildren die with their group's SIGKILL but may take a moment: wait (bounded) until
            # no process of these groups is left, so `obs down` returning means everything is gone.
            group_deadline = self._clock() + 5.0
            while any(_group_alive(c) for c in children) and self._clock() < group_deadline:
                time.sleep(0.05)
            self._save()
        self._say("stopped.")


def _signal_group(child: Child, sig: signal.Signals) -> None:
    if child.proc is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.proc.pid, sig)


def _group_alive(child: Child) -> bool:
    if child.proc is None:
        return False
    try:
        os.killpg(child.proc.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
