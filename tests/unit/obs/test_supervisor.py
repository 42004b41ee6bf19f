"""The supervisor with small real child processes: backoff and giving up, health timeouts, stopping process groups."""

from __future__ import annotations

import io
import sys
import threading
import time
from pathlib import Path

import psutil

from obs.stack_config import RestartConfig
from obs.stack_plan import ProcessSpec, Stage
from obs.state import read_state
from obs.supervisor import Supervisor
from tests.conftest import free_port


def _spec(tmp_path: Path, name: str, code: str, health_url: str | None = None) -> ProcessSpec:
    return ProcessSpec(
        name=name,
        service=name,
        instance_id=name,
        argv=[sys.executable, "-c", code],
        env={},
        log_path=tmp_path / "logs" / f"{name}.log",
        health_url=health_url,
    )


def _supervisor(tmp_path: Path, stages: list[Stage], out: io.StringIO, **kw: float) -> Supervisor:
    restart = RestartConfig(backoff_initial=0.05, backoff_factor=2, backoff_max=1, max_restarts=2, window=60)
    return Supervisor(
        stages,
        restart=restart,
        health_timeout=kw.get("health_timeout", 10.0),
        stop_grace=kw.get("stop_grace", 5.0),
        state_file=tmp_path / "run" / "stack.json",
        data_dir=tmp_path,
        log_dir=tmp_path / "logs",
        urls={},
        out=out,
    )


def _stop_after(sup: Supervisor, seconds: float) -> threading.Timer:
    """A watchdog: no test waits forever on a supervisor that keeps running."""
    timer = threading.Timer(seconds, sup.request_stop)
    timer.daemon = True
    timer.start()
    return timer


def test_a_crash_during_start_is_restarted_with_backoff_then_given_up(tmp_path: Path) -> None:
    out = io.StringIO()
    url = f"http://127.0.0.1:{free_port()}/healthz"  # it dies before it could answer
    spec = _spec(tmp_path, "crasher", "import sys; print('boom'); sys.exit(3)", url)
    sup = _supervisor(tmp_path, [Stage("crasher", [spec])], out)
    watchdog = _stop_after(sup, 30)
    assert sup.run() == 1
    watchdog.cancel()
    text = out.getvalue()
    assert "crasher exited with code 3; restarting in 0.1s (crash 1 in 60s)" in text
    assert "crasher exited with code 3; restarting in 0.1s (crash 2 in 60s)" in text
    assert "crasher exited with code 3; giving up: 3 crashes in 60s" in text
    assert "    | boom" in text  # the tail of its log
    assert spec.log_path.read_text().count("--- obs up: starting crasher") == 3
    assert not (tmp_path / "run" / "stack.json").exists()


def test_after_the_start_a_given_up_process_stays_failed_and_the_rest_runs(tmp_path: Path) -> None:
    out = io.StringIO()
    steady = _spec(tmp_path, "steady", "import time; time.sleep(120)")
    flaky = _spec(tmp_path, "flaky", "import sys, time; time.sleep(0.3); sys.exit(4)")
    sup = _supervisor(tmp_path, [Stage("both", [steady, flaky])], out)
    watchdog = _stop_after(sup, 30)
    deadline = time.monotonic() + 30

    def until_given_up() -> None:
        while time.monotonic() < deadline and "giving up" not in out.getvalue():
            time.sleep(0.05)
        state = read_state(tmp_path / "run" / "stack.json")
        assert state is not None
        seen.update({p.name: (p.state, p.restarts) for p in state.processes})
        sup.request_stop()

    seen: dict[str, tuple[str, int]] = {}
    checker = threading.Thread(target=until_given_up)
    checker.start()
    assert sup.run() == 0
    checker.join(timeout=30)
    watchdog.cancel()
    assert "flaky exited with code 4; giving up: 3 crashes in 60s" in out.getvalue()
    assert seen == {"steady": ("running", 0), "flaky": ("failed", 2)}


def test_a_child_that_never_becomes_healthy_fails_the_start(tmp_path: Path) -> None:
    out = io.StringIO()
    url = f"http://127.0.0.1:{free_port()}/healthz"  # nobody listens
    spec = _spec(tmp_path, "mute", "import time; print('listening nowhere', flush=True); time.sleep(60)", url)
    sup = _supervisor(tmp_path, [Stage("mute", [spec])], out, health_timeout=1.0)
    watchdog = _stop_after(sup, 30)
    started = time.monotonic()
    assert sup.run() == 1
    assert time.monotonic() - started < 15
    watchdog.cancel()
    text = out.getvalue()
    assert f"mute is not healthy after 1s ({url})" in text
    assert "    | listening nowhere" in text
    assert "mute         stopped (killed by SIGTERM)" in text


GRANDPARENT = """
import pathlib, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)   # a child that ignores SIGTERM...
code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"
kid = subprocess.Popen([sys.executable, "-c", code])
pathlib.Path(sys.argv[1]).write_text(str(kid.pid))  # ...and has a child of its own
time.sleep(120)
"""


def test_stop_kills_the_whole_process_group_after_the_grace_period(tmp_path: Path) -> None:
    out = io.StringIO()
    pid_file = tmp_path / "grandchild.pid"
    spec = _spec(tmp_path, "stubborn", GRANDPARENT)
    spec = ProcessSpec(**{**spec.__dict__, "argv": [*spec.argv, str(pid_file)]})
    sup = _supervisor(tmp_path, [Stage("stubborn", [spec])], out, stop_grace=0.5)
    watchdog = _stop_after(sup, 60)
    seen: dict[str, int] = {}

    def stop_when_running() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not pid_file.exists():
            time.sleep(0.05)
        while time.monotonic() < deadline and not pid_file.read_text():
            time.sleep(0.05)
        state = read_state(tmp_path / "run" / "stack.json")
        assert state is not None and state.phase == "running"
        seen["child"] = state.processes[0].pid or 0
        seen["grandchild"] = int(pid_file.read_text())
        sup.request_stop()

    stopper = threading.Thread(target=stop_when_running)
    stopper.start()
    assert sup.run() == 0
    stopper.join(timeout=30)
    watchdog.cancel()
    text = out.getvalue()
    assert "stubborn     running in" in text
    assert "stubborn still runs after SIGTERM: SIGKILL" in text
    assert "stubborn     stopped (killed by SIGKILL)" in text
    for pid in seen.values():
        assert pid and (not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
