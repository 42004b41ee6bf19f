"""Typed agent settings: the caller's arguments plus the OTEL_* / OBS_* environment, checked once at start.

`load_config` is the only place that reads the environment, and it runs when `agents.start()` or
`agents.instrument()` is called, never at import. An invalid value raises `AgentConfigError` naming
the variable (or argument) and the reason.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

HTTP_ENDPOINT = "http://127.0.0.1:4318"
GRPC_ENDPOINT = "http://127.0.0.1:4317"
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")


class AgentConfigError(ValueError):
    """The agent's settings are invalid; the message names the setting and the reason."""


class QueueConfig(BaseModel):
    """A bounded background export queue (OTEL_BSP_* for spans, OTEL_BLRP_* for logs)."""

    model_config = ConfigDict(frozen=True)

    max_queue_size: int = Field(default=2048, ge=1)
    schedule_delay_s: float = Field(default=1.0, gt=0)  # time between exports when the batch is not full
    max_export_batch_size: int = Field(default=512, ge=1)
    export_timeout_s: float = Field(default=5.0, gt=0)  # one export call, retries included

    @model_validator(mode="after")
    def _batch_fits(self) -> QueueConfig:
        # A batch larger than the queue could never fill; shrink it (OTEL_BSP_MAX_QUEUE_SIZE=100 alone is valid).
        if self.max_export_batch_size > self.max_queue_size:
            object.__setattr__(self, "max_export_batch_size", self.max_queue_size)
        return self


class AgentConfig(BaseModel):
    """Everything an agent needs, resolved from arguments and the environment."""

    model_config = ConfigDict(frozen=True)

    service: str = Field(min_length=1)
    version: str = "0.0.0"
    instance_id: str = Field(min_length=1)
    host: str = "127.0.0.1"  # the address other services reach this instance at (discovery registration)
    port: int | None = Field(default=None, ge=1, le=65535)
    metadata: dict[str, str] = Field(default_factory=dict)
    environment: str = "demo"
    host_name: str = ""
    resource_attributes: dict[str, str] = Field(default_factory=dict)  # OTEL_RESOURCE_ATTRIBUTES
    sdk_disabled: bool = False
    otlp_endpoint: str = HTTP_ENDPOINT  # base URL; /v1/traces and /v1/logs are appended for HTTP
    otlp_protocol: Literal["http/protobuf", "grpc"] = "http/protobuf"
    otlp_timeout_s: float = Field(default=5.0, gt=0)
    spans: QueueConfig = Field(default_factory=QueueConfig)
    logs: QueueConfig = Field(default_factory=QueueConfig)
    push_url: str = "http://127.0.0.1:9095"  # empty disables the pusher (points are counted as dropped)
    push_bucket: str = Field(default="demo", min_length=1)
    push_org: str = "observatory"
    push_token: str = "observatory"  # the collector accepts any token
    push_max_pending: int = Field(default=10_000, ge=1)  # points written but not yet acknowledged or dropped
    registry_url: str = "http://127.0.0.1:8761"  # empty disables discovery
    log_level: str = "INFO"
    shutdown_timeout_s: float = Field(default=3.0, gt=0)  # upper bound for each flush at shutdown

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("otlp_endpoint", "push_url", "registry_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} must start with http:// or https://")
        return value


# Environment variable -> AgentConfig field, for error messages that name what the user set.
_ENV_NAMES = {
    "service": "OTEL_SERVICE_NAME",
    "resource_attributes": "OTEL_RESOURCE_ATTRIBUTES",
    "sdk_disabled": "OTEL_SDK_DISABLED",
    "otlp_endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT",
    "otlp_protocol": "OTEL_EXPORTER_OTLP_PROTOCOL",
    "otlp_timeout_s": "OTEL_EXPORTER_OTLP_TIMEOUT",
    "push_url": "OBS_METRICS_PUSH_URL",
    "push_bucket": "OBS_METRICS_PUSH_BUCKET",
    "registry_url": "OBS_REGISTRY_URL",
    "environment": "OBS_DEPLOYMENT_ENVIRONMENT",
    "log_level": "OBS_LOG_LEVEL",
}
_QUEUE_ENV = {
    "max_queue_size": ("MAX_QUEUE_SIZE", 1.0),
    "schedule_delay_s": ("SCHEDULE_DELAY", 1e-3),  # the OTel variables are in milliseconds
    "max_export_batch_size": ("MAX_EXPORT_BATCH_SIZE", 1.0),
    "export_timeout_s": ("EXPORT_TIMEOUT", 1e-3),
}


def parse_key_values(text: str, name: str) -> dict[str, str]:
    """`k=v,k=v` (OTEL_RESOURCE_ATTRIBUTES) into a dict; a pair without `=` is an error."""
    out: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise AgentConfigError(f"{name}: {item.strip()!r} is not key=value")
        out[key.strip()] = value.strip()
    return out


def _queue(env: Mapping[str, str], prefix: str, defaults: QueueConfig) -> dict[str, object]:
    out: dict[str, object] = defaults.model_dump()
    for field, (suffix, scale) in _QUEUE_ENV.items():
        name = f"{prefix}_{suffix}"
        raw = env.get(name, "").strip()
        if not raw:
            continue
        try:
            number = float(raw)
        except ValueError:
            raise AgentConfigError(f"{name}: {raw!r} is not a number") from None
        out[field] = int(number) if scale == 1.0 else number * scale
    return out


def load_config(
    service: str | None = None,
    version: str = "0.0.0",
    *,
    port: int | None = None,
    instance_id: str | None = None,
    host: str = "127.0.0.1",
    metadata: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: object,
) -> AgentConfig:
    """Build and check the config. Arguments win over the environment, except `OTEL_SERVICE_NAME`,
    which (as in every OTel SDK) names the service when set; `overrides` set any other field."""
    env = os.environ if environ is None else environ
    name = env.get("OTEL_SERVICE_NAME", "").strip() or (service or "")
    if not name:
        raise AgentConfigError("service: pass service=... or set OTEL_SERVICE_NAME")
    protocol = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip() or "http/protobuf"
    default_endpoint = GRPC_ENDPOINT if protocol == "grpc" else HTTP_ENDPOINT
    values: dict[str, object] = {
        "service": name,
        "version": version,
        "instance_id": instance_id or (f"{name}-{port}" if port else f"{name}-{os.getpid()}"),
        "host": host,
        "port": port,
        "metadata": dict(metadata or {}),
        "host_name": socket.gethostname(),
        "resource_attributes": parse_key_values(env.get("OTEL_RESOURCE_ATTRIBUTES", ""), "OTEL_RESOURCE_ATTRIBUTES"),
        "sdk_disabled": env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true",
        "otlp_endpoint": env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or default_endpoint,
        "otlp_protocol": protocol,
        "push_url": env.get("OBS_METRICS_PUSH_URL", "http://127.0.0.1:9095"),
        "push_bucket": env.get("OBS_METRICS_PUSH_BUCKET", "").strip() or "demo",
        "registry_url": env.get("OBS_REGISTRY_URL", "http://127.0.0.1:8761"),
        "environment": env.get("OBS_DEPLOYMENT_ENVIRONMENT", "").strip() or "demo",
        "log_level": env.get("OBS_LOG_LEVEL", "").strip() or "INFO",
        "spans": _queue(env, "OTEL_BSP", QueueConfig()),
        "logs": _queue(env, "OTEL_BLRP", QueueConfig()),
    }
    timeout = env.get("OTEL_EXPORTER_OTLP_TIMEOUT", "").strip()
    if timeout:
        values["otlp_timeout_s"] = timeout  # seconds, as the Python OTLP exporters read it
    values.update(overrides)
    try:
        return AgentConfig.model_validate(values)
    except ValidationError as exc:
        raise AgentConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        path = [str(p) for p in err["loc"]]
        field = path[0] if path else "config"
        where = _ENV_NAMES.get(field, field)
        if field in ("spans", "logs") and len(path) > 1:
            suffix = _QUEUE_ENV.get(path[1], (path[1], 1.0))[0]
            where = f"{'OTEL_BSP' if field == 'spans' else 'OTEL_BLRP'}_{suffix}"
        problems.append(f"{where}: {err['msg']} (got {err.get('input')!r})")
    return "invalid agent config: " + "; ".join(problems)
