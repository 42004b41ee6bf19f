"""Settings: YAML plus OBS_* overrides, validated with messages that name the key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.config import ConfigError, load_settings, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("1h30m", 5400), ("7d", 604800), ("500ms", 0.5), (15, 15), ("0", 0), (2.5, 2.5)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "abc", "5 s", "1h-3m", True, -1])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"), [("20MiB", 20 * 1024 * 1024), ("512KB", 512_000), (100, 100), ("1 GiB", 2**30)]
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


def test_defaults_without_file() -> None:
    s = load_settings(None, env={})
    assert s.server.http_port == 9095 and s.server.otlp_grpc_port == 4317 and s.server.otlp_http_port == 4318
    assert s.storage.url == "" and s.limits.max_body_bytes == 20 * 1024 * 1024


def test_yaml_and_env_overrides(tmp_path: Path) -> None:
    path = tmp_path / "obs.yaml"
    path.write_text("storage:\n  retention:\n    traces: 3d\nlimits:\n  max_body_bytes: 1MiB\n")
    s = load_settings(path, env={"OBS_STORAGE__RETENTION__LOGS": "12h", "OBS_SERVER__HTTP_PORT": "9999"})
    assert s.storage.retention.traces == 3 * 86400
    assert s.storage.retention.logs == 12 * 3600
    assert s.limits.max_body_bytes == 1024 * 1024
    assert s.server.http_port == 9999


@pytest.mark.parametrize(
    ("yaml_text", "env", "message"),
    [
        ("storage:\n  retention:\n    traces: forever\n", {}, "storage.retention.traces: invalid duration 'forever'"),
        ("server:\n  http_prot: 1\n", {}, "server.http_prot: unknown key"),
        ("", {"OBS_SERVER__HTTP_PORT": "70000"}, "server.http_port (from OBS_SERVER__HTTP_PORT): Input should be less"),
        (
            "",
            {"OBS_LIMITS__MAX_BODY_BYTES": "huge"},
            "limits.max_body_bytes (from OBS_LIMITS__MAX_BODY_BYTES): invalid size",
        ),
        ("storage:\n  database: 'a-b'\n", {}, "storage: database 'a-b' must be a plain identifier"),
        ("- a\n", {}, "the top level must be a mapping"),
        ("a: [", {}, "not valid YAML"),
        ("", {"OBS_STORAGE____URL": "x"}, "empty key segment"),
        (
            "scrape:\n  jobs: [{job_name: a, scrape_interval: 5s, scrape_timeout: 10s}]\n",
            {},
            "scrape.jobs.0: scrape_timeout must not be longer than scrape_interval",
        ),
        ("scrape:\n  jobs: [{job_name: a}, {job_name: a}]\n", {}, "scrape: job_name 'a' is used twice"),
        ("scrape:\n  jobs: [{job_name: a, metrics_path: metrics}]\n", {}, "metrics_path 'metrics' must start with /"),
        (
            "metrics_generator:\n  span_metrics:\n    histogram_buckets: [0.1, 0.1]\n",
            {},
            "metrics_generator.span_metrics: histogram_buckets must be in increasing order",
        ),
        (
            "metrics_generator:\n  service_graphs:\n    histogram_buckets: []\n",
            {},
            "metrics_generator.service_graphs: histogram_buckets must not be empty",
        ),
        (
            "metrics_generator:\n  span_metrics:\n    dimensions: [http.method, http_method]\n",
            {},
            "would both be the label 'http_method'",
        ),
        ("", {"OBS_METRICS_GENERATOR__SERVICE_GRAPHS__WAIT": "0"}, "metrics_generator.service_graphs.wait (from"),
        ("", {"OBS_METRICS_GENERATOR__COLLECTION_INTERVAL": "soon"}, "metrics_generator.collection_interval (from"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, yaml_text: str, env: dict[str, str], message: str) -> None:
    path = tmp_path / "obs.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        load_settings(path, env=env)
    assert message in str(err.value)


def test_cli_stops_on_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from collector.cli import main

    path = tmp_path / "obs.yaml"
    path.write_text("limits:\n  retry_after: soon\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(path), "check-config"])
    assert exit_info.value.code == 2
    assert "limits.retry_after: invalid duration 'soon'" in capsys.readouterr().err


def test_example_file_lists_the_defaults() -> None:
    from tests.conftest import ROOT

    assert load_settings(ROOT / "obs.example.yaml", env={}) == load_settings(None, env={})


def test_the_stack_section_is_left_to_obs_up(tmp_path: Path) -> None:
    """obs.yaml's `stack:` is `obs up`'s (obs/stack_config.py): the collector reads the same file past it."""
    path = tmp_path / "obs.yaml"
    path.write_text("stack:\n  gateway: {port: 9999}\nserver:\n  http_port: 9100\n")
    settings = load_settings(path, env={"OBS_STACK__ORDERS__INSTANCES": "3"})
    assert settings.server.http_port == 9100
