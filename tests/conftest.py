"""Shared fixtures: free ports, and a collector started as a real subprocess on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from hypothesis import settings

# Property tests explore new examples on every local run; CI replays a fixed derandomized sequence so that
# a landing is decided by the change, not by which examples the run happened to draw. A failure found
# locally is pinned with @example in the test that found it.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("OBS_TEST_HYPOTHESIS_PROFILE", "dev"))

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float, name: str, log: Callable[[], str]) -> bool:
    """Poll `url` until it answers 200 (True) or `timeout` passes (False); raises if `proc` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


class ProcessControl:
    """kill -9, a graceful stop and the log tail of a server subprocess (`proc`, writing to `log_path`)."""

    proc: subprocess.Popen[bytes] | None
    log_path: Path

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]


@dataclass
class CollectorProcess(ProcessControl):
    """A collector subprocess; `env` holds its settings so a test can restart it on the same data."""

    env: dict[str, str]
    data_dir: Path
    http_port: int
    otlp_http_port: int
    otlp_grpc_port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def otlp_url(self) -> str:
        return f"http://127.0.0.1:{self.otlp_http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.otlp_grpc_port}"

    def start(self, timeout: float = 60.0) -> None:
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "collector", "collector"], env=self.env, cwd=ROOT, stdout=log, stderr=log
            )
        if not wait_ready(self.proc, f"{self.url}/readyz", timeout, "collector", self.log):
            self.stop()
            raise RuntimeError(f"collector not ready after {timeout}s:\n{self.log()}")


def make_collector(tmp_path: Path, **settings: str) -> CollectorProcess:
    """A collector (not started) with its own data directory and free ports; settings are OBS_* vars."""
    data_dir = tmp_path / "data"
    ports = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBS_")}
    env.update(
        {
            "OBS_STORAGE__DATA_DIR": str(data_dir),
            "OBS_SERVER__HTTP_PORT": str(ports[0]),
            "OBS_SERVER__OTLP_HTTP_PORT": str(ports[1]),
            "OBS_SERVER__OTLP_GRPC_PORT": str(ports[2]),
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(settings)
    return CollectorProcess(env, data_dir, *ports, log_path=tmp_path / "collector.log")


# Accept any timestamp and keep everything: the shared examples date from 2018.
TIMELESS = {
    "OBS_LIMITS__MAX_AGE": "0",
    "OBS_STORAGE__RETENTION__TRACES": "0",
    "OBS_STORAGE__RETENTION__LOGS": "0",
    "OBS_STORAGE__RETENTION__METRICS": "0",
}


@pytest.fixture(scope="session")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    """One running collector shared by the tests that only add data with ids of their own."""
    c = make_collector(tmp_path_factory.mktemp("collector"), **TIMELESS)
    c.start()
    yield c
    c.stop()
