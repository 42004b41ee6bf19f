"""The alerting service as a real subprocess (`python -m alerting --config ...`), for integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.conftest import ROOT, ProcessControl, free_port, wait_ready


@dataclass
class AlertingProcess(ProcessControl):
    """An alerting service on a free port with its own state directory; restartable on the same state."""

    config_path: Path
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OBS_")}
        env["PYTHONPATH"] = str(ROOT)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "alerting", "--config", str(self.config_path)],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )
        if not wait_ready(self.proc, f"{self.url}/-/ready", timeout, "alerting", self.log):
            self.stop()
            raise RuntimeError(f"alerting not ready after {timeout}s:\n{self.log()}")

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def alerts(self) -> list[dict[str, Any]]:
        body = httpx.get(f"{self.url}/api/v1/alerts", timeout=5).json()
        assert body["status"] == "success", body
        return list(body["data"]["alerts"])

    def rules(self) -> list[dict[str, Any]]:
        body = httpx.get(f"{self.url}/api/v1/rules", timeout=5).json()
        assert body["status"] == "success", body
        return list(body["data"]["groups"])

    def wait_alerts(self, check: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll /api/v1/alerts until `check(alerts)` is true; returns those alerts."""
        deadline = time.monotonic() + timeout
        alerts: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            alerts = self.alerts()
            if check(alerts):
                return alerts
            time.sleep(0.1)
        raise AssertionError(f"alerts did not reach the expected state in {timeout}s: {alerts}\n{self.log()}")


def make_alerting(
    tmp_path: Path, collector_url: str, section: dict[str, Any], port: int | None = None
) -> AlertingProcess:
    """An alerting process (not started) evaluating through `collector_url`; `section` adds to `alerting:`."""
    port = port or free_port()
    data = {
        "port": port,
        "query_url": collector_url,
        "remote_write_url": f"{collector_url}/api/v1/write",
        "state_dir": str(tmp_path / "alerting-state"),
        "extension_files": [],
        **section,
    }
    path = tmp_path / "obs.yaml"
    path.write_text(yaml.safe_dump({"alerting": data}, sort_keys=False), encoding="utf-8")
    return AlertingProcess(path, port, tmp_path / "alerting.log")
