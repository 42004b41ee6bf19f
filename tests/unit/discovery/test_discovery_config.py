"""Discovery settings: defaults, YAML, command-line flags over the file, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from demo_common.units import parse_duration
from discovery.cli import main, parse_args, settings_from
from discovery.config import ConfigError, load_settings


def test_defaults() -> None:
    s = load_settings()
    assert (s.host, s.port, s.instance_id) == ("127.0.0.1", 8761, "discovery-1")
    assert (s.eviction_interval, s.default_lease_seconds, s.renewal_window) == (5.0, 30, 60.0)
    assert s.self_preservation.enabled and s.self_preservation.threshold == 0.85


@pytest.mark.parametrize(
    ("text", "seconds"), [("5s", 5.0), ("500ms", 0.5), ("1m30s", 90.0), ("2", 2.0), ("0.25", 0.25), (3, 3.0)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["5 s", "s", "", "1d", True, None])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_yaml_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "discovery.yaml"
    config.write_text("eviction_interval: 2s\nrenewal_window: 1m\nself_preservation:\n  threshold: 0.5\nport: 9000\n")
    s = settings_from(parse_args(["--config", str(config), "--port", "9100", "--no-self-preservation"]))
    assert (s.port, s.eviction_interval, s.renewal_window) == (9100, 2.0, 60.0)
    assert s.self_preservation.threshold == 0.5 and not s.self_preservation.enabled
    s = settings_from(parse_args(["--config", str(config), "--self-preservation-threshold", "0.9", "--data-dir", "x"]))
    assert s.port == 9000 and s.self_preservation.threshold == 0.9 and s.self_preservation.enabled


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("eviction_interval: soon\n", "eviction_interval"),
        ("self_preservation:\n  threshold: 2\n", "self_preservation.threshold"),
        ("default_lease_seconds: 0\n", "default_lease_seconds"),
        ("evicton_interval: 5s\n", "evicton_interval"),
        ("- a list\n", "mapping"),
        ("port: [\n", "invalid YAML"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "discovery.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_settings(config)


def test_cli_reports_a_bad_config_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "missing.yaml")]) == 2
    assert "configuration error" in capsys.readouterr().err
