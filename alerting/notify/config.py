"""Notification settings (receivers, route tree, inhibition, retries), typed and checked when loaded.

The service's config loader embeds this under `alerting.notify`; `build_notify_config` turns that mapping
into a frozen `NotifyConfig` or raises `NotifyConfigError` naming the key. Durations are seconds (floats);
in YAML they are Prometheus durations (`30s`, `5m`, `1h30m`, `500ms`) or plain numbers of seconds.
An empty mapping gives the default: one receiver, `log`, that writes a log line per notification.

    alerting:
      notify:
        external_url: http://localhost:9094
        receivers:
          - name: ops
            webhook_configs:
              - url: http://127.0.0.1:5001/hook
                send_resolved: true        # default
                max_alerts: 0              # 0: all
                timeout: 10s
                headers: {X-Team: ops}
                body_template: |           # optional Jinja2; default: the Alertmanager v4 JSON message
                  {"text": "[{{ status }}] {{ commonLabels.alertname }} ({{ alerts | length }})"}
            alertmanager_configs:
              - url: http://127.0.0.1:9093  # we POST /api/v2/alerts
                resend_delay: 1m
            log: true
        route:
          receiver: ops
          group_by: [alertname, service]   # ['...']: all labels
          group_wait: 30s
          group_interval: 5m
          repeat_interval: 0s              # 0: state changes only; > 0 repeats like Alertmanager
          routes:
            - matchers: ['severity="critical"', 'service=~"orders|payments"']
              receiver: ops
              continue: false
        inhibit_rules:
          - source_matchers: ['severity="critical"']
            target_matchers: ['severity="warning"']
            equal: [service]
        retry: {initial_backoff: 500ms, max_backoff: 30s, max_attempts: 5, max_elapsed: 2m}
        dead_letter: null                  # default: <state dir>/dead_letters.jsonl
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlsplit

import jinja2
import jinja2.meta
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from alerting.notify.matchers import MatcherError, parse_matchers

_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_UNIT_S = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)

# The names a webhook body template may use: the fields of the version-4 payload (see payload.py).
TEMPLATE_NAMES = frozenset(
    {
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    }
)
GROUP_BY_ALL = "..."


class NotifyConfigError(ValueError):
    """The notification config is invalid; the message names the key (`alerting.notify.route.group_wait`)."""


def parse_duration(value: object) -> float:
    """A Prometheus duration string or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as '30s' or '5m', got {value!r}")
    text = value.strip()
    if text == "0":
        return 0.0
    m = _DURATION.match(text)
    if not text or m is None or not any(m.groups()):
        raise ValueError(f"invalid duration {value!r} (expected e.g. '30s', '5m', '1h30m', '500ms')")
    return float(sum(int(g) * unit for g, unit in zip(m.groups(), _UNIT_S, strict=True) if g))


Duration = Annotated[float, BeforeValidator(parse_duration)]


def jinja_environment() -> jinja2.Environment:
    """The environment body templates compile and render in: strict about undefined names, no HTML escaping."""
    return jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an http(s) URL, got {url!r}")
    return url


def _check_matchers(values: tuple[str, ...]) -> tuple[str, ...]:
    for i, text in enumerate(values):
        try:
            parse_matchers(text)
        except MatcherError as e:
            raise ValueError(f"matcher {i}: {e}") from e
    return values


class WebhookConfig(_Frozen):
    url: str
    send_resolved: bool = True
    max_alerts: int = Field(default=0, ge=0)  # 0: no limit
    timeout: Duration = 10.0
    # Jinja2 text rendered with the version-4 payload's fields as variables; None: the JSON payload itself.
    body_template: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    _url = field_validator("url")(classmethod(lambda cls, v: _check_url(v)))

    @field_validator("body_template")
    @classmethod
    def _compiles(cls, text: str | None) -> str | None:
        if text is None:
            return None
        env = jinja_environment()
        try:
            ast = env.parse(text)
            env.from_string(text)
        except jinja2.TemplateSyntaxError as e:
            raise ValueError(f"template syntax error at line {e.lineno}: {e.message}") from e
        unknown = sorted(jinja2.meta.find_undeclared_variables(ast) - TEMPLATE_NAMES)
        if unknown:
            raise ValueError(
                f"template uses undefined name(s) {', '.join(unknown)}; available: {', '.join(sorted(TEMPLATE_NAMES))}"
            )
        return text


class AlertmanagerConfig(_Frozen):
    url: str  # base URL; alerts go to <url>/api/v2/alerts
    timeout: Duration = 10.0
    # Prometheus' --rules.alert.resend-delay: an unchanged active alert is sent again after this long, with
    # endsAt = now + 4 x resend_delay so that Alertmanager resolves it if we stop sending.
    resend_delay: Duration = 60.0

    _url = field_validator("url")(classmethod(lambda cls, v: _check_url(v)))


class ReceiverConfig(_Frozen):
    name: str = Field(min_length=1)
    webhook_configs: tuple[WebhookConfig, ...] = ()
    alertmanager_configs: tuple[AlertmanagerConfig, ...] = ()
    log: bool = False


class RouteConfig(_Frozen):
    """A route; unset fields (None) are inherited from the parent, as in Alertmanager."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    receiver: str | None = None
    matchers: tuple[str, ...] = ()
    group_by: tuple[str, ...] | None = None  # ("...",): group by all labels
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None  # 0: state changes only (never repeat)
    continue_: bool = Field(default=False, alias="continue")
    routes: tuple[RouteConfig, ...] = ()

    _matchers = field_validator("matchers")(classmethod(lambda cls, v: _check_matchers(v)))

    @field_validator("group_by")
    @classmethod
    def _group_by_all_alone(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None and GROUP_BY_ALL in v and len(v) > 1:
            raise ValueError("'...' (group by all labels) must be the only entry of group_by")
        return v

    @field_validator("group_interval")
    @classmethod
    def _positive_interval(cls, v: float | None) -> float | None:
        if v is not None and v <= 0:
            raise ValueError("group_interval must be positive")
        return v


class InhibitRuleConfig(_Frozen):
    source_matchers: tuple[str, ...] = Field(min_length=1)
    target_matchers: tuple[str, ...] = Field(min_length=1)
    equal: tuple[str, ...] = ()

    _sources = field_validator("source_matchers")(classmethod(lambda cls, v: _check_matchers(v)))
    _targets = field_validator("target_matchers")(classmethod(lambda cls, v: _check_matchers(v)))


class RetryConfig(_Frozen):
    """Exponential backoff (x2 per attempt, +-50% jitter) capped at max_backoff, bounded by both limits."""

    initial_backoff: Duration = 0.5
    max_backoff: Duration = 30.0
    max_attempts: int = Field(default=5, ge=1)  # including the first
    max_elapsed: Duration = 120.0  # no new attempt starts after this long since the first


class NotifyConfig(_Frozen):
    external_url: str = ""  # the payloads' externalURL (our own UI/API base)
    receivers: tuple[ReceiverConfig, ...] = Field(min_length=1)
    route: RouteConfig
    inhibit_rules: tuple[InhibitRuleConfig, ...] = ()
    retry: RetryConfig = RetryConfig()
    dead_letter: str | None = None  # JSONL path; None: dead_letters.jsonl in the state directory
    tick_interval: Duration = 1.0  # how often the background thread flushes due groups

    @model_validator(mode="after")
    def _references(self) -> NotifyConfig:
        names = [r.name for r in self.receivers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"receivers: duplicate name(s) {', '.join(dupes)}")
        if self.route.receiver is None:
            raise ValueError("route.receiver: the root route needs a receiver")
        if self.route.matchers:
            raise ValueError("route.matchers: the root route matches every alert and must not have matchers")
        if self.route.continue_:
            raise ValueError("route.continue: the root route cannot have continue")

        def walk(route: RouteConfig, path: str) -> None:
            if route.receiver is not None and route.receiver not in names:
                raise ValueError(f"{path}.receiver: no receiver named {route.receiver!r}")
            for i, child in enumerate(route.routes):
                walk(child, f"{path}.routes.{i}")

        walk(self.route, "route")
        return self


def build_notify_config(data: Mapping[str, Any], prefix: str = "alerting.notify") -> NotifyConfig:
    """Validate a mapping (as read from YAML) into a NotifyConfig; errors name the key under `prefix`."""
    if not data:
        return NotifyConfig(receivers=(ReceiverConfig(name="log", log=True),), route=RouteConfig(receiver="log"))
    try:
        return NotifyConfig.model_validate(dict(data))
    except ValidationError as e:
        lines = []
        for err in e.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if err["loc"]:
                lines.append(f"{'.'.join(str(p) for p in (prefix, *err['loc']))}: {msg}")
            else:  # cross-field checks (model validators) start their message with the key they are about
                lines.append(f"{prefix}.{msg}")
        raise NotifyConfigError("; ".join(lines)) from None
