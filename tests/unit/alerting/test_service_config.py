"""The alerting service's settings: defaults, the example file, overrides and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerting.config import AlertingConfigError, load_alerting_settings

ROOT = Path(__file__).resolve().parents[3]


def test_the_example_file_lists_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # relative paths resolve against obs.yaml's folder, or the working directory
    assert load_alerting_settings(ROOT / "obs.example.yaml", env={}) == load_alerting_settings(None, env={})


def test_defaults_evaluate_the_demo_rules_through_the_local_collector() -> None:
    s = load_alerting_settings(None, env={})
    assert s.port == 9094
    assert [Path(p).name for p in s.rule_files] == ["demo.yml"]
    assert s.query_url == "http://127.0.0.1:9095"
    assert s.public_url == "http://127.0.0.1:9094"
    assert [r.name for r in s.notify.receivers] == ["log"]


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "obs.yaml"
    path.write_text("alerting: {rule_files: [rules/*.yml], state_dir: state}\n")
    s = load_alerting_settings(path, env={})
    assert s.rule_files == (str(tmp_path / "rules/*.yml"),)
    assert s.state_dir == tmp_path / "state"


def test_an_environment_variable_overrides_a_key_and_is_named_in_errors(tmp_path: Path) -> None:
    assert load_alerting_settings(None, env={"OBS_ALERTING__NOTIFY__ROUTE__RECEIVER": "log"}).port == 9094
    s = load_alerting_settings(None, env={"OBS_ALERTING__EXTERNAL_LABELS__REGION": "eu", "OBS_ALERTING__PORT": "9999"})
    assert s.external_labels == {"region": "eu"} and s.port == 9999
    with pytest.raises(AlertingConfigError, match=r"alerting.port \(from OBS_ALERTING__PORT\): Input should be"):
        load_alerting_settings(None, env={"OBS_ALERTING__PORT": "many"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alerting: {evaluation_interval: soon}", "alerting.evaluation_interval: invalid duration"),
        ("alerting: {query_url: collector:9095}", "alerting.query_url: 'collector:9095' is not an http"),
        ("alerting: {rules: []}", "alerting.rules: unknown key"),
        ("alerting: {notify: {receivers: [], route: {receiver: x}}}", "alerting.notify.receivers"),
        ("alerting: {notify: {route: {receiver: team}}}", "alerting.notify.route.receiver: no receiver named"),
        ("alerting: [1]", "alerting: must be a mapping"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "obs.yaml"
    path.write_text(text + "\n")
    with pytest.raises(AlertingConfigError, match=f"^{path}: {message}"):
        load_alerting_settings(path, env={})
