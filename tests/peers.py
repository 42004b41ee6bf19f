"""Real peer servers from Debian packages, started by tests on loopback with data dirs of their own."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port


def require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} not installed: apt-get install {package} (CI installs it in .ci/run)")
    return path


@contextmanager
def prometheus(config: str, workdir: Path) -> Iterator[str]:
    """A Prometheus with `config` (YAML text) on a free loopback port; yields its base URL."""
    binary = require("prometheus", "prometheus")
    port = free_port()
    (workdir / "prometheus.yml").write_text(config)
    log = (workdir / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-remote-write-receiver",
        ],
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError((workdir / "prometheus.log").read_text()[-3000:])
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, ok: tuple[int, ...] = (200, 204)) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code in ok:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(log.read_text()[-3000:])
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready:\n{log.read_text()[-3000:]}")


class Peer:
    """A peer process that can be stopped and started again on the same port and data."""

    def __init__(self, argv: list[str], ready_url: str, log: Path) -> None:
        self.argv, self.ready_url, self.log = argv, ready_url, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=out)
        _wait_http(self.ready_url, self.proc, self.log)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@contextmanager
def prometheus_peer(config: str, workdir: Path, *flags: str) -> Iterator[tuple[str, Peer]]:
    """Like prometheus(), as a Peer (its process is there to measure, stop and start); yields (url, peer)."""
    binary = require("prometheus", "prometheus")
    port = free_port()
    (workdir / "prometheus.yml").write_text(config)
    url = f"http://127.0.0.1:{port}"
    argv = [
        binary,
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-remote-write-receiver",
        *flags,
    ]
    peer = Peer(argv, f"{url}/-/ready", workdir / "prometheus.log")
    peer.start()
    try:
        yield url, peer
    finally:
        peer.stop()


@contextmanager
def influxdb(workdir: Path) -> Iterator[tuple[str, Peer]]:
    """InfluxDB 1.x (Debian `influxdb`) on free loopback ports, data under workdir; yields (url, peer)."""
    binary = require("influxd", "influxdb")
    http_port, rpc_port = free_port(), free_port()
    config = workdir / "influxdb.conf"
    config.write_text(
        f"""reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{workdir / "meta"}"
[data]
  dir = "{workdir / "data"}"
  wal-dir = "{workdir / "wal"}"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
[monitor]
  store-enabled = false
"""
    )
    url = f"http://127.0.0.1:{http_port}"
    peer = Peer([binary, "run", "-config", str(config)], f"{url}/ping", workdir / "influxd.log")
    peer.start()
    try:
        yield url, peer
    finally:
        peer.stop()


@contextmanager
def victoria_metrics(workdir: Path, *flags: str) -> Iterator[tuple[str, Peer]]:
    """VictoriaMetrics (Debian `victoria-metrics`) on a free loopback port, with extra `flags`; yields (url, peer)."""
    binary = require("victoria-metrics", "victoria-metrics")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        binary,
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-storageDataPath={workdir / 'vm'}",
        "-search.latencyOffset=0s",
        *flags,
    ]
    peer = Peer(argv, f"{url}/health", workdir / "vm.log")
    peer.start()
    try:
        yield url, peer
    finally:
        peer.stop()


@contextmanager
def alertmanager(config: str, workdir: Path) -> Iterator[str]:
    """Alertmanager (Debian `prometheus-alertmanager`) with `config` (YAML text), clustering off; yields its URL."""
    binary = require("prometheus-alertmanager", "prometheus-alertmanager")
    port = free_port()
    (workdir / "alertmanager.yml").write_text(config)
    url = f"http://127.0.0.1:{port}"
    argv = [
        binary,
        f"--config.file={workdir / 'alertmanager.yml'}",
        f"--storage.path={workdir / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    peer = Peer(argv, f"{url}/-/ready", workdir / "alertmanager.log")
    peer.start()
    try:
        yield url
    finally:
        peer.stop()
