"""Typed settings of the alerting service: the `alerting:` section of obs.yaml, checked once at startup.

Every key can be overridden by an environment variable named after its path with `__` between levels,
prefixed `OBS_ALERTING__`: `alerting.evaluation_interval` is `OBS_ALERTING__EVALUATION_INTERVAL`. The value
is read as YAML. The collector ignores this section (and these variables): the service reads them itself,
so that `alerting` never imports the collector (ARCHITECTURE.md: it reaches the collector over HTTP only).
Relative paths (rule files, state directory) are relative to the directory of obs.yaml, or to the working
directory without a file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alerting.notify.config import Duration, NotifyConfig

SECTION = "alerting"
_KEY_FIRST = re.compile(r"^[a-z_][a-z0-9_.]*: ")
ENV_PREFIX = "OBS_ALERTING__"
# The shipped rules of the demo: used when the configuration names none.
DEMO_RULES_DIR = Path(__file__).resolve().parent / "rules"


class AlertingConfigError(Exception):
    """The configuration cannot be used; the message names the key (and the variable it came from)."""


# Without receivers configured, notifications are written to the log: nothing is lost silently.
_DEFAULT_RECEIVERS = [{"name": "log", "log": True}]
_DEFAULT_ROUTE = {
    "receiver": "log",
    "group_by": ["alertname"],
    "group_wait": "30s",
    "group_interval": "5m",
    "repeat_interval": "0s",  # Kapacitor's stateChangesOnly: one notification per change, never repeated
}


def _default_notify() -> NotifyConfig:
    return NotifyConfig.model_validate({"receivers": _DEFAULT_RECEIVERS, "route": _DEFAULT_ROUTE})


def _with_notify_defaults(data: dict[str, Any]) -> None:
    """Fill what `notify:` leaves out from the defaults, so that setting one key (say the root route's
    group_wait, or OBS_ALERTING__NOTIFY__ROUTE__GROUP_WAIT) does not drop the rest."""
    notify = data.get("notify")
    if not isinstance(notify, dict):
        return
    notify = dict(notify)
    notify.setdefault("receivers", _DEFAULT_RECEIVERS)
    route = notify.get("route")
    if route is None:
        notify["route"] = _DEFAULT_ROUTE
    elif isinstance(route, dict):
        notify["route"] = {**_DEFAULT_ROUTE, **route}
    data["notify"] = notify


class AlertingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=9094, ge=1, le=65535)
    # Prometheus' rule_files: paths or glob patterns of Prometheus rule files (promtool checks them).
    rule_files: tuple[str, ...] = (str(DEMO_RULES_DIR / "demo.yml"),)
    # Our Kapacitor-like additions (levels, deadman, flapping, repeat interval), kept out of the rule
    # files so that promtool and Prometheus read those unchanged (alerting/README.md has the format).
    extension_files: tuple[str, ...] = (str(DEMO_RULES_DIR / "demo.obs.yml"),)
    # Prometheus' global.evaluation_interval: a group without `interval` is evaluated this often.
    evaluation_interval: Duration = Field(default=15.0, gt=0)
    # The collector's Prometheus API: rules are evaluated through /api/v1/query.
    query_url: str = "http://127.0.0.1:9095"
    query_timeout: Duration = Field(default=10.0, gt=0)
    # Recording-rule results and the ALERTS / ALERTS_FOR_STATE series go here by remote write; "" keeps
    # them in memory only (recording rules then feed nothing).
    remote_write_url: str = "http://127.0.0.1:9095/api/v1/write"
    # Alert state, silences and the notification log live here (SQLite files that survive kill -9).
    state_dir: Path = Path("data/alerting")
    # The URL people reach this service at: generatorURL and the payloads' externalURL are built from it.
    external_url: str = ""
    external_labels: dict[str, str] = Field(default_factory=dict)
    notify: NotifyConfig = Field(default_factory=_default_notify)

    @field_validator("query_url", "remote_write_url", "external_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError(f"{v!r} is not an http:// or https:// URL")
        return v.rstrip("/") if v else v

    @property
    def public_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return self.external_url or f"http://{host}:{self.port}"


def apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """OBS_ALERTING__A__B=v sets data['a']['b'] (value parsed as YAML); returns key path -> variable name.

    The same rule as collector.config.apply_env, written again on purpose: alerting depends on nothing of
    the collector's (ARCHITECTURE.md), and the two must read obs.yaml alike, which test_service_config pins.
    """
    origins: dict[str, str] = {}
    for name, raw in sorted(env.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if not all(path):
            raise AlertingConfigError(f"{name}: empty key segment (use __ between levels)")
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node[path[-1]] = value
        origins[".".join(path)] = name
    return origins


def _section(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AlertingConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise AlertingConfigError(f"{path}: not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise AlertingConfigError(f"{path}: the top level must be a mapping of keys")
    section = loaded.get(SECTION) or {}
    if not isinstance(section, dict):
        raise AlertingConfigError(f"{path}: {SECTION}: must be a mapping of keys")
    return dict(section)


def _resolve(settings: AlertingSettings, base: Path) -> AlertingSettings:
    def absolute(p: str) -> str:
        return p if Path(p).is_absolute() else str(base / p)

    return settings.model_copy(
        update={
            "rule_files": tuple(absolute(p) for p in settings.rule_files),
            "extension_files": tuple(absolute(p) for p in settings.extension_files),
            "state_dir": Path(absolute(str(settings.state_dir))),
        }
    )


def load_alerting_section(
    data: Mapping[str, Any], env: Mapping[str, str], source: str, base_dir: Path
) -> AlertingSettings:
    """Validate an `alerting:` section (a mapping as read from YAML) after OBS_ALERTING__* overrides.

    Relative paths are resolved against `base_dir`. Raises AlertingConfigError naming `source` and the key.
    """
    data = dict(data)
    origins = apply_env(data, env)
    _with_notify_defaults(data)
    try:
        settings = AlertingSettings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            rel = ".".join(str(p) for p in err["loc"])
            where = f" (from {origins[rel]})" if rel in origins else ""
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
            # A check across keys (a model validator) starts its message with the key it is about.
            sep = "." if err["type"] == "value_error" and _KEY_FIRST.match(msg) else ": "
            problems.append(f"{SECTION}.{rel}{where}{sep}{msg}")
        raise AlertingConfigError(f"{source}: " + "; ".join(problems)) from None
    return _resolve(settings, base_dir)


def load_alerting_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> AlertingSettings:
    """Read the `alerting:` section of obs.yaml (if any), apply OBS_ALERTING__* overrides, validate."""
    return load_alerting_section(
        _section(path),
        os.environ if env is None else env,
        str(path) if path else "configuration",
        path.resolve().parent if path else Path.cwd(),
    )
