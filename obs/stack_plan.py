"""What `obs up` runs: the collector's generated config and one ProcessSpec per process, in start stages.

Start order (ARCHITECTURE.md): the collector first (everything sends to it), then alerting (it queries the
collector), then discovery (services register with it), then the business services, then the gateway (it
resolves the services), then loadgen.
Environment per process follows demo-services/README.md.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alerting.config import AlertingConfigError, AlertingSettings, load_alerting_section
from collector.config import ALERTING_KEY, ConfigError, Settings, load_settings, read_yaml
from obs.stack_config import StackConfig, collector_env, split_config

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ProcessSpec:
    """How to run and check one process."""

    name: str  # unique, also the log file's name
    service: str
    instance_id: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    port: int | None = None
    health_url: str | None = None  # None: running counts as healthy
    restart_on_success: bool = True  # False: exit code 0 means done (loadgen with --duration)


@dataclass(frozen=True)
class Stage:
    """Processes started together; the next stage starts when all of these are healthy."""

    title: str
    processes: list[ProcessSpec] = field(default_factory=list)


@dataclass(frozen=True)
class StackPaths:
    data_dir: Path
    run_dir: Path
    log_dir: Path
    state_file: Path
    collector_config: Path
    alerting_config: Path


@dataclass(frozen=True)
class LoadedStack:
    """obs.yaml read and validated: the stack section, the collector's settings and its raw config, and the
    alerting service's settings and raw section (None when stack.alerting.enabled is false)."""

    stack: StackConfig
    collector: Settings
    collector_data: dict[str, Any]
    paths: StackPaths
    alerting: AlertingSettings | None = None
    alerting_data: dict[str, Any] = field(default_factory=dict)


def _validate_collector(data: dict[str, Any], env: Mapping[str, str], source: str) -> Settings:
    # load_settings reads a file; give it the file without `stack:` and name the user's file in errors.
    with tempfile.TemporaryDirectory(prefix="obs-config-") as tmp:
        path = Path(tmp) / "collector.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        try:
            return load_settings(path, env=env)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace(str(path), source)) from None


def _with_scrape_job(data: dict[str, Any], stack: StackConfig) -> dict[str, Any]:
    """The collector config plus a job scraping every instance discovery knows (unless one has that name)."""
    if not stack.discovery.enabled:
        return data
    scrape = dict(data.get("scrape") or {})
    jobs = list(scrape.get("jobs") or [])
    if any(isinstance(j, dict) and j.get("job_name") == stack.scrape_job for j in jobs):
        return data
    sd_url = f"http://127.0.0.1:{stack.discovery.port}/sd/prometheus"
    interval = f"{stack.scrape_interval}s"
    jobs.append(
        {
            "job_name": stack.scrape_job,
            "scrape_interval": interval,
            "scrape_timeout": f"{min(stack.scrape_interval, 10.0)}s",
            # The collector starts before discovery: refresh as often as it scrapes so targets come soon.
            "http_sd_configs": [{"url": sd_url, "refresh_interval": interval}],
        }
    )
    scrape["jobs"] = jobs
    return {**data, "scrape": scrape}


def load_stack(config_path: Path | None, env: Mapping[str, str]) -> LoadedStack:
    """Read obs.yaml (or defaults) with environment overrides. Raises ConfigError naming the key."""
    source = str(config_path) if config_path else "configuration"
    stack, rest = split_config(read_yaml(config_path), env, source)
    alerting_section = rest.pop(ALERTING_KEY, None) or {}
    if not isinstance(alerting_section, dict):
        raise ConfigError(f"{source}: {ALERTING_KEY}: must be a mapping of keys")
    rest = _with_scrape_job(rest, stack)
    settings = _validate_collector(rest, collector_env(env), source)
    data_dir = (stack.data_dir or settings.storage.data_dir).resolve()
    run_dir = data_dir / "run"
    paths = StackPaths(
        data_dir,
        run_dir,
        data_dir / "logs",
        run_dir / "stack.json",
        run_dir / "collector.yaml",
        run_dir / "alerting.yaml",
    )
    if not stack.alerting.enabled:
        return LoadedStack(stack, settings, rest, paths)
    base_dir = config_path.resolve().parent if config_path else Path.cwd()
    alerting_data = _alerting_defaults(alerting_section, settings, data_dir, base_dir)
    try:
        alerting = load_alerting_section(alerting_data, env, source, base_dir)
    except AlertingConfigError as exc:
        raise ConfigError(str(exc)) from None
    rest = _with_alerting(rest, alerting)
    settings = _validate_collector(rest, collector_env(env), source)
    return LoadedStack(stack, settings, rest, paths, alerting, alerting_data)


def _alerting_defaults(section: dict[str, Any], collector: Settings, data_dir: Path, base_dir: Path) -> dict[str, Any]:
    """The user's `alerting:` section, pointed at this stack's collector and data directory unless it says
    otherwise; relative paths made absolute (the generated file lives in run/, not beside obs.yaml)."""
    urls = collector_urls(collector)
    data = dict(section)
    data.setdefault("query_url", urls["http"])
    data.setdefault("remote_write_url", f"{urls['http']}/api/v1/write")
    data.setdefault("state_dir", str(data_dir / "alerting"))
    for key in ("rule_files", "extension_files"):
        if isinstance(data.get(key), list):
            data[key] = [p if Path(str(p)).is_absolute() else str(base_dir / str(p)) for p in data[key]]
    if isinstance(data.get("state_dir"), str) and not Path(data["state_dir"]).is_absolute():
        data["state_dir"] = str(base_dir / data["state_dir"])
    return data


def _with_alerting(data: dict[str, Any], alerting: AlertingSettings) -> dict[str, Any]:
    """The collector config answering /api/v1/rules and /api/v1/alerts from the alerting service, and
    scraping its /metrics (rule evaluation and notification health), unless the user set either."""
    query = dict(data.get("query") or {})
    query.setdefault("alerting_url", f"http://{_loopback(alerting.host)}:{alerting.port}")
    scrape = dict(data.get("scrape") or {})
    jobs = list(scrape.get("jobs") or [])
    if not any(isinstance(j, dict) and j.get("job_name") == "alerting" for j in jobs):
        target = f"{_loopback(alerting.host)}:{alerting.port}"
        jobs.append({"job_name": "alerting", "scrape_interval": "15s", "static_configs": [{"targets": [target]}]})
    scrape["jobs"] = jobs
    return {**data, "query": query, "scrape": scrape}


def split_collector_config(config_path: Path, env: Mapping[str, str], out_dir: Path) -> Path:
    """A copy of obs.yaml without `stack:` for the collector alone (`obs collector`); validated first."""
    source = str(config_path)
    _, rest = split_config(read_yaml(config_path), env, source)
    _validate_collector(rest, collector_env(env), source)
    path = out_dir / "collector.yaml"
    path.write_text(yaml.safe_dump(rest, sort_keys=False), encoding="utf-8")
    return path


def _loopback(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def collector_urls(settings: Settings) -> dict[str, str]:
    s = settings.server
    host = _loopback(s.host)
    http = f"http://{host}:{s.http_port}"
    return {
        "http": http,
        "otlp_http": f"http://{host}:{s.otlp_http_port}" if s.otlp_ports else http,
        "otlp_grpc": f"{host}:{s.otlp_grpc_port}" if s.otlp_ports else "",
    }


def _python_path(stack: StackConfig, env: Mapping[str, str]) -> str:
    services_dir = stack.services_dir or REPO_ROOT / "demo-services"
    parts = [str(services_dir.resolve()), str(REPO_ROOT)]
    if env.get("PYTHONPATH"):
        parts.append(env["PYTHONPATH"])
    return ":".join(parts)


def build_stages(loaded: LoadedStack, env: Mapping[str, str], load_rate: float | None) -> list[Stage]:
    """The processes of the stack in start order. `load_rate` None: no load generator."""
    stack, paths = loaded.stack, loaded.paths
    urls = collector_urls(loaded.collector)
    py = sys.executable
    base_env = collector_env(env)
    base_env["PYTHONPATH"] = _python_path(stack, env)
    registry = f"http://127.0.0.1:{stack.discovery.port}" if stack.discovery.enabled else ""

    def service_env(service: str, instance_id: str) -> dict[str, str]:
        e = dict(base_env)
        attrs = f"service.instance.id={instance_id}"
        if env.get("OTEL_RESOURCE_ATTRIBUTES"):
            attrs = f"{env['OTEL_RESOURCE_ATTRIBUTES']},{attrs}"
        e.update(
            {
                "OTEL_SERVICE_NAME": service,
                "OTEL_RESOURCE_ATTRIBUTES": attrs,
                "OTEL_EXPORTER_OTLP_ENDPOINT": urls["otlp_http"],
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OBS_METRICS_PUSH_URL": urls["http"],
                "OBS_REGISTRY_URL": registry,
            }
        )
        e.setdefault("OBS_DEPLOYMENT_ENVIRONMENT", "demo")
        return e

    def log(name: str) -> Path:
        return paths.log_dir / f"{name}.log"

    stages: list[Stage] = []
    collector = ProcessSpec(
        name="collector",
        service="collector",
        instance_id="collector",
        argv=[py, "-m", "collector", "--config", str(paths.collector_config), "collector"],
        env=dict(base_env),
        log_path=log("collector"),
        port=loaded.collector.server.http_port,
        health_url=f"{urls['http']}/readyz",
    )
    stages.append(Stage("collector", [collector]))
    if loaded.alerting is not None:
        port = loaded.alerting.port
        alerting = ProcessSpec(
            name="alerting",
            service="alerting",
            instance_id="alerting",
            argv=[py, "-m", "alerting", "--config", str(paths.alerting_config)],
            env=dict(base_env),
            log_path=log("alerting"),
            port=port,
            health_url=f"http://{_loopback(loaded.alerting.host)}:{port}/-/ready",
        )
        stages.append(Stage("alerting", [alerting]))

    def singleton(name: str, port: int) -> ProcessSpec:
        """discovery or the gateway: one process, `python -m <name>`, alive once /healthz answers."""
        return ProcessSpec(
            name=name,
            service=name,
            instance_id=name,
            argv=[py, "-m", name, "--port", str(port)],
            env=service_env(name, name),
            log_path=log(name),
            port=port,
            health_url=f"http://127.0.0.1:{port}/healthz",
        )

    if stack.discovery.enabled:
        stages.append(Stage("discovery", [singleton("discovery", stack.discovery.port)]))
    services: list[ProcessSpec] = []
    for name, svc in stack.services.items():
        if not svc.enabled:
            continue
        for i in range(svc.instances):
            instance_id, port = f"{name}-{i + 1}", svc.base_port + i
            services.append(
                ProcessSpec(
                    name=instance_id,
                    service=name,
                    instance_id=instance_id,
                    argv=[
                        *(py, "-m", svc.module or name, "--port", str(port), "--instance-id", instance_id),
                        # One directory for all: the instances of a service share its database (<service>.sqlite).
                        *("--data-dir", str(paths.data_dir / "services")),
                    ],
                    env=service_env(name, instance_id),
                    log_path=log(instance_id),
                    port=port,
                    health_url=f"http://127.0.0.1:{port}{svc.ready_path}",
                )
            )
    if services:
        stages.append(Stage("services", services))
    if stack.gateway.enabled:
        stages.append(Stage("gateway", [singleton("gateway", stack.gateway.port)]))
    if load_rate is not None:
        if not stack.gateway.enabled:
            raise ConfigError("--load needs the gateway (stack.gateway.enabled is false)")
        argv = [py, "-m", "loadgen", "--gateway", f"http://127.0.0.1:{stack.gateway.port}"]
        argv += ["--api-key", stack.load.api_key, "--rate", f"{load_rate:g}"]
        spec = ProcessSpec(
            name="loadgen",
            service="loadgen",
            instance_id="loadgen",
            argv=argv,
            env=service_env("loadgen", "loadgen"),
            log_path=log("loadgen"),
            restart_on_success=False,
        )
        stages.append(Stage("load generator", [spec]))
    return stages


def missing_modules(stages: list[Stage], stack: StackConfig) -> list[str]:
    """Demo-service packages the stages would run that have no __main__.py yet (with the key to disable them)."""
    services_dir = (stack.services_dir or REPO_ROOT / "demo-services").resolve()
    missing = []
    for stage in stages:
        for spec in stage.processes:
            if spec.service in ("collector", "alerting"):  # part of this repository, not demo-services
                continue
            module = spec.argv[2]
            if not (services_dir / module.replace(".", "/") / "__main__.py").exists():
                if spec.service == "loadgen":
                    how = "run without --load"
                elif spec.service in stack.services:
                    how = f"disable with stack.services.{spec.service}.enabled: false"
                else:
                    how = f"disable with stack.{spec.service}.enabled: false"
                missing.append(f"{module} (no {services_dir / module}/__main__.py; {how})")
    return sorted(set(missing))


def write_collector_config(loaded: LoadedStack) -> None:
    """run/collector.yaml and run/alerting.yaml, the files the two processes are started with."""
    loaded.paths.run_dir.mkdir(parents=True, exist_ok=True)
    text = "# Generated by `obs up` from obs.yaml (without `stack:` and `alerting:`, plus the scrape jobs).\n"
    text += yaml.safe_dump(loaded.collector_data, sort_keys=False)
    loaded.paths.collector_config.write_text(text, encoding="utf-8")
    if loaded.alerting is not None:
        text = "# Generated by `obs up` from obs.yaml's `alerting:` section, pointed at this stack's collector.\n"
        text += yaml.safe_dump({ALERTING_KEY: loaded.alerting_data}, sort_keys=False)
        loaded.paths.alerting_config.write_text(text, encoding="utf-8")
