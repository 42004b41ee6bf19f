"""The `stack:` section of obs.yaml: defaults, overrides, errors naming the key, what the collector gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.config import ConfigError
from obs.stack_config import StackConfig, collector_env, split_config
from obs.stack_plan import build_stages, load_stack, missing_modules


def test_defaults_are_the_demo_ports() -> None:
    stack, rest = split_config({}, {}, "x")
    assert rest == {}
    assert stack.discovery.port == 8761
    assert stack.gateway.port == 8080
    assert {n: (s.base_port, s.instances) for n, s in stack.services.items()} == {
        "orders": (8001, 1),
        "inventory": (8002, 2),
        "payments": (8004, 2),
    }


def test_stack_is_removed_from_what_the_collector_sees() -> None:
    data = {"server": {"http_port": 1234}, "stack": {"gateway": {"port": 9999}}}
    stack, rest = split_config(data, {}, "obs.yaml")
    assert rest == {"server": {"http_port": 1234}}
    assert stack.gateway.port == 9999
    assert "stack" in data  # the caller's mapping is left as it was


def test_environment_overrides_the_file() -> None:
    env = {"OBS_STACK__SERVICES__ORDERS__INSTANCES": "3", "OBS_STACK__RESTART__WINDOW": "2m", "OBS_OTHER": "x"}
    stack, _ = split_config({"stack": {"services": {"orders": {"base_port": 9001}}}}, env, "obs.yaml")
    assert stack.services["orders"].instances == 3
    assert stack.services["orders"].base_port == 9001
    assert set(stack.services) == {"orders"}  # a services mapping replaces the default one
    assert stack.restart.window == 120.0


@pytest.mark.parametrize(
    ("data", "env", "message"),
    [
        ({"stack": {"gatway": {}}}, {}, "stack.gatway: unknown key"),
        ({"stack": {"gateway": {"port": 0}}}, {}, "stack.gateway.port: Input should be greater than or equal to 1"),
        ({}, {"OBS_STACK__GATEWAY__PORT": "x"}, "stack.gateway.port (from OBS_STACK__GATEWAY__PORT)"),
        ({"stack": {"gateway": {"port": 8001}}}, {}, "port 8001 is used by both gateway and orders-1"),
        ({"stack": {"services": {"Orders": {"base_port": 7000}}}}, {}, "must match"),
        ({"stack": {"restart": {"window": "soon"}}}, {}, "stack.restart.window: invalid duration"),
        ({"stack": [1]}, {}, "stack: must be a mapping"),
    ],
)
def test_errors_name_the_key(data: dict, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=r"^obs\.yaml: ") as info:
        split_config(data, env, "obs.yaml")
    assert message in str(info.value)


def test_collector_env_drops_stack_and_service_variables() -> None:
    env = {"OBS_STACK__GATEWAY__PORT": "1", "OBS_REGISTRY_URL": "x", "OBS_SERVER__HTTP_PORT": "2", "PATH": "/bin"}
    assert collector_env(env) == {"OBS_SERVER__HTTP_PORT": "2", "PATH": "/bin"}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "obs.yaml"
    path.write_text(text)
    return path


def test_load_stack_adds_the_discovery_scrape_job_and_uses_the_data_dir(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        f"storage: {{data_dir: {tmp_path / 'd'}}}\nstack:\n  discovery: {{port: 18761}}\n  scrape_interval: 5s\n",
    )
    loaded = load_stack(path, {})
    assert loaded.paths.state_file == tmp_path / "d" / "run" / "stack.json"
    assert loaded.paths.log_dir == tmp_path / "d" / "logs"
    job, alerting_job = loaded.collector.scrape.jobs
    assert job.job_name == "demo"
    assert job.scrape_interval == 5.0
    assert [sd.url for sd in job.http_sd_configs] == ["http://127.0.0.1:18761/sd/prometheus"]
    assert alerting_job.job_name == "alerting"
    assert [t.targets for t in alerting_job.static_configs] == [["127.0.0.1:9094"]]
    assert "stack" not in loaded.collector_data
    assert "alerting" not in loaded.collector_data


def test_load_stack_points_alerting_at_the_collector_and_the_collector_at_alerting(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        f"server: {{http_port: 19095}}\nstorage: {{data_dir: {tmp_path / 'd'}}}\n"
        "alerting: {port: 19094, rule_files: [rules/*.yml], extension_files: []}\n",
    )
    loaded = load_stack(path, {"OBS_ALERTING__EVALUATION_INTERVAL": "5s"})
    assert loaded.alerting is not None
    assert loaded.alerting.query_url == "http://127.0.0.1:19095"
    assert loaded.alerting.remote_write_url == "http://127.0.0.1:19095/api/v1/write"
    assert loaded.alerting.state_dir == tmp_path / "d" / "alerting"
    assert loaded.alerting.rule_files == (str(tmp_path / "rules/*.yml"),)
    assert loaded.alerting.evaluation_interval == 5.0
    assert loaded.collector.query.alerting_url == "http://127.0.0.1:19094"


def test_an_alerting_error_names_the_users_file_and_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "alerting: {evaluation_interval: often}\n")
    with pytest.raises(ConfigError, match=f"^{path}: alerting.evaluation_interval: invalid duration"):
        load_stack(path, {})


def test_alerting_can_be_left_out_of_the_stack(tmp_path: Path) -> None:
    path = _write(tmp_path, f"storage: {{data_dir: {tmp_path}}}\nstack: {{alerting: {{enabled: false}}}}\n")
    loaded = load_stack(path, {})
    assert loaded.alerting is None
    assert loaded.collector.query.alerting_url == ""
    assert [s.title for s in build_stages(loaded, {}, None)][:2] == ["collector", "discovery"]


def test_a_collector_error_names_the_users_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "server: {http_port: -1}\nstack: {}\n")
    with pytest.raises(ConfigError, match=f"^{path}: server.http_port"):
        load_stack(path, {})


def test_a_collector_variable_overrides_its_key(tmp_path: Path) -> None:
    path = _write(tmp_path, f"storage: {{data_dir: {tmp_path}}}\n")
    loaded = load_stack(path, {"OBS_SERVER__HTTP_PORT": "19095", "OBS_STACK__GATEWAY__PORT": "18080"})
    assert loaded.collector.server.http_port == 19095
    assert loaded.stack.gateway.port == 18080


def test_stages_start_in_order_with_the_contract_environment(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        f"server: {{http_port: 19095, otlp_http_port: 14318}}\nstorage: {{data_dir: {tmp_path}}}\n"
        "stack: {discovery: {port: 18761}, gateway: {port: 18080},"
        " services: {orders: {base_port: 18001}, inventory: {base_port: 18002, instances: 2}}}\n",
    )
    loaded = load_stack(path, {})
    stages = build_stages(loaded, {"PYTHONPATH": "/extra"}, load_rate=2.5)
    titles = ["collector", "alerting", "discovery", "services", "gateway", "load generator"]
    assert [s.title for s in stages] == titles
    stages.pop(1)  # alerting: checked below
    assert [p.name for p in stages[2].processes] == ["orders-1", "inventory-1", "inventory-2"]
    collector = stages[0].processes[0]
    assert collector.health_url == "http://127.0.0.1:19095/readyz"
    assert not any(k.startswith("OBS_STACK__") or k == "OBS_REGISTRY_URL" for k in collector.env)
    inv2 = stages[2].processes[2]
    assert inv2.port == 18003
    assert inv2.health_url == "http://127.0.0.1:18003/readyz"  # ready to serve, not only alive
    assert inv2.argv[1:] == [
        *("-m", "inventory", "--port", "18003", "--instance-id", "inventory-2"),
        *("--data-dir", str(tmp_path / "services")),  # shared: the instances of a service share its database
    ]
    assert inv2.env["OTEL_SERVICE_NAME"] == "inventory"
    assert inv2.env["OTEL_RESOURCE_ATTRIBUTES"] == "service.instance.id=inventory-2"
    assert inv2.env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:14318"
    assert inv2.env["OBS_METRICS_PUSH_URL"] == "http://127.0.0.1:19095"
    assert inv2.env["OBS_REGISTRY_URL"] == "http://127.0.0.1:18761"
    assert inv2.env["PYTHONPATH"].endswith(":/extra")
    assert inv2.env["PYTHONPATH"].split(":")[0].endswith("demo-services")
    loadgen = stages[4].processes[0]
    assert loadgen.argv[3:] == ["--gateway", "http://127.0.0.1:18080", "--api-key", "demo-key", "--rate", "2.5"]
    assert loadgen.health_url is None
    assert not loadgen.restart_on_success
    [alerting] = build_stages(loaded, {}, load_rate=None)[1].processes
    assert alerting.argv[1:] == ["-m", "alerting", "--config", str(tmp_path / "run" / "alerting.yaml")]
    assert alerting.health_url == "http://127.0.0.1:9094/-/ready"


def test_disabled_parts_are_left_out(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        f"storage: {{data_dir: {tmp_path}}}\n"
        "stack: {discovery: {enabled: false, port: 8761}, gateway: {enabled: false, port: 8080},"
        " services: {orders: {enabled: false, base_port: 8001}}, alerting: {enabled: false}}\n",
    )
    loaded = load_stack(path, {})
    assert loaded.collector.scrape.jobs == []  # nothing to discover targets from
    stages = build_stages(loaded, {}, load_rate=None)
    assert [s.title for s in stages] == ["collector"]
    with pytest.raises(ConfigError, match="--load needs the gateway"):
        build_stages(loaded, {}, load_rate=1.0)


def test_missing_modules_say_how_to_disable_them(tmp_path: Path) -> None:
    (tmp_path / "svc" / "orders").mkdir(parents=True)
    (tmp_path / "svc" / "orders" / "__main__.py").write_text("")
    stack = StackConfig(services_dir=tmp_path / "svc")
    path = _write(tmp_path, f"storage: {{data_dir: {tmp_path}}}\nstack: {{services_dir: {tmp_path / 'svc'}}}\n")
    stages = build_stages(load_stack(path, {}), {}, load_rate=None)
    missing = missing_modules(stages, stack)
    assert any(m.startswith("inventory ") and "stack.services.inventory.enabled: false" in m for m in missing)
    assert any(m.startswith("discovery ") and "stack.discovery.enabled: false" in m for m in missing)
    assert not any(m.startswith("orders ") for m in missing)
