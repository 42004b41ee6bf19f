"""The `stack:` section of obs.yaml: what `obs up` runs (services, instance counts, ports, load, restarts).

The collector's Settings forbid unknown keys, so `stack:` is read here and removed before the rest of the
file reaches the collector (`split_config`); `OBS_STACK__...` variables override it the way `OBS_...`
variables override the collector's keys, and are never passed to the collector.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from collector.config import STACK_ENV_PREFIX, ConfigError, Duration, apply_env

_NAME_RE = re.compile(r"[a-z][a-z0-9_]*")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceConfig(_Section):
    """A business service: `instances` processes on ports base_port, base_port+1, ..."""

    enabled: bool = True
    instances: int = Field(default=1, ge=1, le=20)
    base_port: int = Field(ge=1, le=65535)
    # The Python module run as `python -m <module>`; empty means the service's name.
    module: str = ""
    # What `obs up` waits for: the demo services answer 200 there once they can serve (orders: once it
    # has found inventory and payments in discovery), 503 before.
    ready_path: str = Field(default="/readyz", pattern=r"^/")


class SingletonConfig(_Section):
    """discovery or gateway: one process on one port."""

    enabled: bool = True
    port: int = Field(ge=1, le=65535)


class ToggleConfig(_Section):
    """A part of the stack configured elsewhere (alerting: its own `alerting:` section) that `obs up` may skip."""

    enabled: bool = True


class LoadConfig(_Section):
    """The load generator, started only with `obs up --load [RATE]`."""

    rate: float = Field(default=5.0, gt=0)  # requests per second
    api_key: str = "demo-key"


class RestartConfig(_Section):
    """Exponential backoff for crashed processes; past max_restarts crashes within window, give up."""

    backoff_initial: Duration = 0.5
    backoff_factor: float = Field(default=2.0, ge=1.0)
    backoff_max: Duration = 30.0
    max_restarts: int = Field(default=5, ge=0)
    window: Duration = 300.0


def _default_services() -> dict[str, ServiceConfig]:
    return {
        "orders": ServiceConfig(instances=1, base_port=8001),
        "inventory": ServiceConfig(instances=2, base_port=8002),
        "payments": ServiceConfig(instances=2, base_port=8004),
    }


class StackConfig(_Section):
    """Everything `obs up` needs besides the collector's own settings."""

    # Where run/stack.json, logs/ and the services' data go; empty: the collector's storage.data_dir.
    data_dir: Path | None = None
    # The folder holding the demo services' packages (put on PYTHONPATH); empty: <repo>/demo-services.
    services_dir: Path | None = None
    discovery: SingletonConfig = SingletonConfig(port=8761)
    gateway: SingletonConfig = SingletonConfig(port=8080)
    # The alerting service (port and rules under `alerting:`), started right after the collector.
    alerting: ToggleConfig = ToggleConfig()
    # Started in parallel after discovery and before the gateway, in this order in displays.
    services: dict[str, ServiceConfig] = Field(default_factory=_default_services)
    load: LoadConfig = LoadConfig()
    restart: RestartConfig = RestartConfig()
    # How long one process may take to answer its health check at startup.
    health_timeout: Duration = 60.0
    # Between SIGTERM and SIGKILL when stopping.
    stop_grace: Duration = 10.0
    # The collector's scrape job over discovery's /sd/prometheus.
    scrape_job: str = "demo"
    scrape_interval: Duration = 15.0

    @model_validator(mode="after")
    def _check(self) -> StackConfig:
        for name in self.services:
            if not _NAME_RE.fullmatch(name):
                raise ValueError(f"service name {name!r} must match [a-z][a-z0-9_]*")
            if name in ("collector", "discovery", "gateway", "loadgen"):
                raise ValueError(f"service name {name!r} is reserved")
        ports: dict[int, str] = {}
        claims = [(self.discovery.port, "discovery"), (self.gateway.port, "gateway")]
        for name, svc in self.services.items():
            claims += [(svc.base_port + i, f"{name}-{i + 1}") for i in range(svc.instances)]
        for port, who in claims:
            if port in ports:
                raise ValueError(f"port {port} is used by both {ports[port]} and {who}")
            if port > 65535:
                raise ValueError(f"{who} would need port {port}, past 65535")
            ports[port] = who
        return self


def _apply_stack_env(stack: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """OBS_STACK__A__B=v sets stack['a']['b'] (value parsed as YAML); returns key path -> variable name."""
    return {f"stack.{key}": name for key, name in apply_env(stack, env, STACK_ENV_PREFIX).items()}


def split_config(data: dict[str, Any], env: Mapping[str, str], source: str) -> tuple[StackConfig, dict[str, Any]]:
    """(the validated stack section, the rest of the file for the collector). Raises ConfigError."""
    rest = dict(data)
    stack = rest.pop("stack", None) or {}
    if not isinstance(stack, dict):
        raise ConfigError(f"{source}: stack: must be a mapping of keys")
    stack = dict(stack)
    origins = _apply_stack_env(stack, env)
    try:
        return StackConfig.model_validate(stack), rest
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(["stack", *(str(p) for p in err["loc"])])
            where = f" (from {origins[key]})" if key in origins else ""
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
            problems.append(f"{key}{where}: {msg}")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None


# The demo services' variables (demo-services/README.md) that the collector would read as unknown keys.
_SERVICE_ONLY_VARS = frozenset(
    {"OBS_METRICS_PUSH_URL", "OBS_METRICS_PUSH_BUCKET", "OBS_REGISTRY_URL", "OBS_DEPLOYMENT_ENVIRONMENT"}
)


def collector_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment for the collector: without the stack's and the services' variables (unknown keys to it)."""
    return {k: v for k, v in env.items() if not k.startswith(STACK_ENV_PREFIX) and k not in _SERVICE_ONLY_VARS}
