"""Typed collector settings: obs.yaml plus OBS_* environment overrides, checked once at startup.

Every key can be overridden by an environment variable named after its path, upper-cased, with `__`
between levels: `storage.retention.traces` is `OBS_STORAGE__RETENTION__TRACES`. The value is read as
YAML, so `OBS_LIMITS__MAX_BODY_BYTES=1MiB` and `OBS_STORAGE__URL=` both do what they look like.
Nothing here runs at import time: `load_settings` is called by the composition root.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w|y)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
    "y": 365 * 86400.0,
}
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_duration(value: object) -> float:
    """Seconds from a number (seconds) or a Prometheus-style duration such as `1h30m` or `500ms`."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 30s or 7d, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 30s or 7d, got {value!r}")
    text = value.strip()
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    for match in _DURATION_RE.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {value!r}: use a number with a unit, e.g. 30s, 5m, 7d")
    return total


def parse_size(value: object) -> int:
    """Bytes from an integer or a size such as `20MiB`."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as 20MiB, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    if isinstance(value, str):
        match = _SIZE_RE.fullmatch(value.strip())
        if match:
            return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])
    raise ValueError(f"invalid size {value!r}: use bytes or a unit, e.g. 20MiB, 512KB")


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetentionSettings(_Section):
    """How long each signal is kept (ClickHouse TTL); 0 keeps data forever."""

    traces: Duration = 7 * 86400.0
    logs: Duration = 7 * 86400.0
    metrics: Duration = 30 * 86400.0


DEFAULT_HEAD_WINDOW = 7200.0


class StorageSettings(_Section):
    # Empty: chDB in-process with its files under data_dir. Set: a ClickHouse server, e.g.
    # http://user:pass@host:8123/, reached with clickhouse-connect.
    url: str = ""
    data_dir: Path = Path("./data")
    database: str = "observatory"
    retention: RetentionSettings = RetentionSettings()
    # Fault injection for tests and capacity drills: every insert waits this long first.
    insert_delay: Duration = 0.0
    # Recent metric samples kept in memory for PromQL (store/head.py), as Prometheus keeps its head
    # block: reads within this window skip the store. Unset: 2h with chDB; off (0) with a ClickHouse
    # server, which other collectors may write into (one collector's head would not see their samples).
    head_window: Duration | None = None
    # The head's memory bound, 16 bytes a sample: past it the head keeps the newest samples only.
    head_max_samples: int = Field(default=10_000_000, gt=0)

    @property
    def effective_head_window(self) -> float:
        if self.head_window is not None:
            return self.head_window
        return 0.0 if self.url else DEFAULT_HEAD_WINDOW

    @model_validator(mode="after")
    def _check_database(self) -> StorageSettings:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.database):
            raise ValueError(f"database {self.database!r} must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*)")
        return self


class LimitSettings(_Section):
    # Request bodies are limited after decompression (a gzip bomb is cut off while inflating).
    max_body_bytes: Size = 20 * 1024 * 1024
    # gRPC messages; 4 MiB is the gRPC default clients expect.
    max_grpc_message_bytes: Size = 4 * 1024 * 1024
    # Decoded data waiting for or inside an insert; past it requests get 429/UNAVAILABLE.
    max_inflight_bytes: Size = 256 * 1024 * 1024
    # Seconds a throttled client is told to wait (Retry-After).
    retry_after: Duration = 1.0
    # Items with timestamps older than now - max_age or newer than now + max_future are rejected;
    # 0 turns either check off.
    max_age: Duration = 7 * 86400.0
    max_future: Duration = 3600.0
    # Metric samples (pipeline/series_limits.py): series per metric name, and how far behind a
    # series' newest sample one may be (0: in order only, as Prometheus by default).
    max_series_per_metric: int = Field(default=100_000, gt=0)
    out_of_order_window: Duration = 600.0


class WriteSettings(_Section):
    # Group commit: requests that arrive while an insert runs are coalesced into the next one.
    max_batch_rows: int = Field(default=200_000, gt=0)
    # At most one insert per table this often (a request waits up to this long for its insert):
    # each insert is a part ClickHouse merges later, so fewer, larger inserts save much CPU.
    min_insert_interval: Duration = 0.0
    # How long an insert may wait for requests that are being decoded to join it, only while there are
    # such requests (PostgreSQL's commit_delay with commit_siblings): a lone request is never delayed.
    group_wait: Duration = Field(default=0.02, ge=0, le=1)
    # Worker processes that decode OTLP protobuf beside the server process; 0 decodes in-process.
    decode_workers: int = Field(default=0, ge=0, le=64)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    http_port: int = Field(default=9095, ge=0, le=65535)
    otlp_http_port: int = Field(default=4318, ge=0, le=65535)
    otlp_grpc_port: int = Field(default=4317, ge=0, le=65535)
    # Set to false to not open the separate OTLP ports (the main port serves /v1/* as well).
    otlp_ports: bool = True


class StaticTargets(_Section):
    targets: list[str]
    labels: dict[str, str] = {}


class HttpSdConfig(_Section):
    """Prometheus HTTP service discovery: a URL answering [{"targets": [...], "labels": {...}}]."""

    url: str
    refresh_interval: Duration = 60.0


# Prometheus' rules for relabelling (model/relabel): a label name, and a target_label or labelmap
# replacement that may hold $1, ${1} or $name references. Go's \w is ASCII, hence re.ASCII.
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*", re.ASCII)
_RELABEL_TARGET_RE = re.compile(r"(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+", re.ASCII)
# Go allows flags such as (?i) anywhere; Python only at the very start, so a leading group is hoisted
# out of the anchoring group (where Go's flags would apply to the whole regex all the same).
_LEADING_FLAGS_RE = re.compile(r"\(\?([imsU]+)\)")


def compile_relabel_regex(regex: str) -> re.Pattern[str]:
    """A relabel regex anchored at both ends, as Prometheus does (`^(?:regex)$`). Raises ValueError.

    Use the pattern with `fullmatch`: Python's `$` would also match before a trailing newline, Go's does not.
    re.ASCII makes \\d, \\w, \\s and \\b ASCII-only, as they are in Go's RE2.
    """
    flags = ""
    body = regex
    m = _LEADING_FLAGS_RE.match(regex)
    if m is not None:
        if "U" in m.group(1):
            raise ValueError(f"regex {regex!r}: the ungreedy flag U is not supported")
        flags, body = f"(?{m.group(1)})", regex[m.end() :]
    try:
        re.compile(regex, re.ASCII)  # alone first, so an error's position is in the user's text
        return re.compile(f"{flags}(?:{body})", re.ASCII)
    except re.error as exc:
        where = "" if exc.pos is None else f" at position {exc.pos}"
        raise ValueError(f"regex {regex!r} does not compile: {exc.msg}{where}") from None


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


RelabelAction = Literal["replace", "keep", "drop", "labelmap", "labeldrop", "labelkeep"]


class RelabelConfig(_Section):
    """One Prometheus relabel rule, with Prometheus' names, defaults and load-time checks."""

    source_labels: list[str] = []
    separator: str = ";"
    regex: str = "(.*)"
    target_label: str = ""
    replacement: str = "$1"
    action: Annotated[RelabelAction, BeforeValidator(_lower)] = "replace"
    _pattern: re.Pattern[str] = PrivateAttr()

    @model_validator(mode="after")
    def _check(self) -> RelabelConfig:
        self._pattern = compile_relabel_regex(self.regex)
        if self.action == "replace":
            if not self.target_label:
                raise ValueError("relabel action replace needs a target_label")
            if not (_LABEL_NAME_RE.fullmatch(self.target_label) or _RELABEL_TARGET_RE.fullmatch(self.target_label)):
                raise ValueError(
                    f"target_label {self.target_label!r} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, "
                    "optionally with $1, ${1} or $name references)"
                )
        if self.action == "labelmap" and not _RELABEL_TARGET_RE.fullmatch(self.replacement):
            raise ValueError(
                f"replacement {self.replacement!r} for labelmap must be a label name, optionally with $1 or ${{1}}"
            )
        if self.action in ("labeldrop", "labelkeep") and (
            self.source_labels or self.target_label or self.separator != ";" or self.replacement != "$1"
        ):
            raise ValueError(f"relabel action {self.action} takes only regex (it matches label names)")
        return self

    @property
    def pattern(self) -> re.Pattern[str]:
        """The regex, compiled once at load time; match it with `fullmatch`."""
        return self._pattern


class ScrapeJob(_Section):
    """One scrape job, with Prometheus' names and defaults."""

    job_name: str
    scrape_interval: Duration = 15.0
    scrape_timeout: Duration = 10.0
    metrics_path: str = "/metrics"
    scheme: str = "http"
    honor_labels: bool = False
    static_configs: list[StaticTargets] = []
    http_sd_configs: list[HttpSdConfig] = []
    # Applied in order to each target's labels before scraping, then to each scraped series.
    relabel_configs: list[RelabelConfig] = []
    metric_relabel_configs: list[RelabelConfig] = []

    @model_validator(mode="after")
    def _check(self) -> ScrapeJob:
        if self.scheme not in ("http", "https"):
            raise ValueError(f"scheme {self.scheme!r} must be http or https")
        if not self.scrape_interval:
            raise ValueError("scrape_interval must be more than 0")
        if self.scrape_timeout > self.scrape_interval:
            raise ValueError("scrape_timeout must not be longer than scrape_interval")
        if not self.metrics_path.startswith("/"):
            raise ValueError(f"metrics_path {self.metrics_path!r} must start with /")
        return self


class ScrapeSettings(_Section):
    jobs: list[ScrapeJob] = []
    # Scrapes running at once across all targets.
    max_concurrent: int = Field(default=32, gt=0)

    @model_validator(mode="after")
    def _unique(self) -> ScrapeSettings:
        names = [job.job_name for job in self.jobs]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"job_name {sorted(dup)[0]!r} is used twice")
        return self


class InfluxForward(_Section):
    """Send accepted line protocol on to an InfluxDB 1.x /write (same database name as written)."""

    url: str
    username: str = ""
    password: str = ""


class RemoteWriteForward(_Section):
    """Send accepted metric samples on as remote write 1.0 (Prometheus, VictoriaMetrics, Mimir...)."""

    url: str


class OtlpForward(_Section):
    """Send accepted OTLP requests on to another OTLP/HTTP endpoint (`{endpoint}/v1/{signal}`)."""

    endpoint: str


class ForwardSettings(_Section):
    influxdb: list[InfluxForward] = []
    remote_write: list[RemoteWriteForward] = []
    otlp: list[OtlpForward] = []
    # Per destination; past it the oldest payloads are dropped and counted.
    queue_max_bytes: Size = 256 * 1024 * 1024


class QuerySettings(_Section):
    """PromQL limits, with Prometheus' defaults (--query.timeout, --query.max-samples, ...)."""

    timeout: Duration = Field(default=120.0, gt=0)
    max_samples: int = Field(default=50_000_000, gt=0)
    max_concurrency: int = Field(default=20, gt=0)
    lookback_delta: Duration = Field(default=300.0, gt=0)
    # The alerting service's base URL: /api/v1/rules and /api/v1/alerts are answered from it, so Grafana's
    # Prometheus datasource shows its rules and alerts. Empty: both answer empty lists, as a Prometheus
    # without rules does.
    alerting_url: str = ""


def _check_buckets(buckets: list[float]) -> None:
    if not buckets:
        raise ValueError("histogram_buckets must not be empty")
    if any(not math.isfinite(b) or b <= 0 for b in buckets):
        raise ValueError("histogram_buckets must be positive, finite seconds (+Inf is always added)")
    if any(a >= b for a, b in itertools.pairwise(buckets)):
        raise ValueError("histogram_buckets must be in increasing order, without repeats")


def _check_attributes(names: list[str], what: str, labels: bool = False) -> None:
    """Attribute names: none empty or repeated; with `labels`, none that become the same label name."""
    if any(not n.strip() for n in names):
        raise ValueError(f"{what}: an attribute name cannot be empty")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{what}: {dup[0]!r} is listed twice")
    if labels:
        seen: dict[str, str] = {}
        for n in names:
            label = re.sub(r"[^a-zA-Z0-9_]", "_", n)
            if label in seen:
                raise ValueError(f"{what}: {seen[label]!r} and {n!r} would both be the label {label!r}")
            seen[label] = n


class SpanMetricsSettings(_Section):
    """traces_spanmetrics_calls_total and traces_spanmetrics_latency, as Tempo's span-metrics processor."""

    enabled: bool = True
    # Upper bounds in seconds (Tempo's default: 2 ms doubling 14 times, to 16.384 s).
    histogram_buckets: list[float] = [0.002 * 2**i for i in range(14)]
    # Resource or span attributes (resource first) that become extra labels, e.g. http.method -> http_method.
    dimensions: list[str] = []

    @model_validator(mode="after")
    def _check(self) -> SpanMetricsSettings:
        _check_buckets(self.histogram_buckets)
        _check_attributes(self.dimensions, "dimensions", labels=True)
        return self


class ServiceGraphSettings(_Section):
    """traces_service_graph_* edges between services, as Tempo's service-graphs processor."""

    enabled: bool = True
    # Upper bounds in seconds (Tempo's default: 0.1 s doubling 8 times, to 12.8 s).
    histogram_buckets: list[float] = [0.1 * 2**i for i in range(8)]
    dimensions: list[str] = []
    # How long half of an edge waits for the other (the edge store's TTL), and how many halves may wait.
    wait: Duration = Field(default=10.0, gt=0)
    max_items: int = Field(default=10_000, gt=0)
    # Span attributes naming the server of a client span that no server span answers (a virtual node).
    peer_attributes: list[str] = ["peer.service", "db.name", "db.system"]

    @model_validator(mode="after")
    def _check(self) -> ServiceGraphSettings:
        _check_buckets(self.histogram_buckets)
        _check_attributes(self.dimensions, "dimensions", labels=True)
        _check_attributes(self.peer_attributes, "peer_attributes")
        return self


class MetricsGeneratorSettings(_Section):
    """Metrics derived from received spans, under Tempo's metrics-generator names (pipeline/metrics_generator.py)."""

    # Every live series' cumulative value is written this often (Tempo's registry.collection_interval).
    collection_interval: Duration = Field(default=15.0, gt=0)
    # A series no span updated for this long is no longer written (Tempo's registry.stale_duration).
    stale_duration: Duration = Field(default=900.0, gt=0)
    span_metrics: SpanMetricsSettings = SpanMetricsSettings()
    service_graphs: ServiceGraphSettings = ServiceGraphSettings()


class Settings(_Section):
    server: ServerSettings = ServerSettings()
    storage: StorageSettings = StorageSettings()
    limits: LimitSettings = LimitSettings()
    write: WriteSettings = WriteSettings()
    scrape: ScrapeSettings = ScrapeSettings()
    forward: ForwardSettings = ForwardSettings()
    query: QuerySettings = QuerySettings()
    metrics_generator: MetricsGeneratorSettings = MetricsGeneratorSettings()
    log_level: str = "info"

    @model_validator(mode="after")
    def _check_log_level(self) -> Settings:
        if self.log_level.lower() not in {"debug", "info", "warning", "error", "critical"}:
            raise ValueError(f"log_level {self.log_level!r} must be debug, info, warning, error or critical")
        return self


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and the reason."""


# The one section of obs.yaml that is not the collector's: the local stack `obs up` runs.
STACK_KEY = "stack"
STACK_ENV_PREFIX = "OBS_STACK__"
# The alerting service's section: read and checked by `alerting` itself (alerting/config.py), not here.
ALERTING_KEY = "alerting"
ALERTING_ENV_PREFIX = "OBS_ALERTING__"


def apply_env(data: dict[str, Any], env: Mapping[str, str], prefix: str = "OBS_") -> dict[str, str]:
    """Set PREFIX + A__B=v into data['a']['b'] (the value read as YAML); returns key path -> variable name.

    With the collector's prefix `OBS_`, OBS_TEST_*, OBS_CONFIG and the stack's OBS_STACK__* are not settings.
    """
    origins: dict[str, str] = {}
    for name, raw in sorted(env.items()):
        if not name.startswith(prefix):
            continue
        if prefix == "OBS_" and (
            name.startswith(("OBS_TEST_", STACK_ENV_PREFIX, ALERTING_ENV_PREFIX)) or name == "OBS_CONFIG"
        ):
            continue
        path = [part.lower() for part in name[len(prefix) :].split("__")]
        if not all(path):
            raise ConfigError(f"{name}: empty key segment (use __ between levels, e.g. {prefix}A__B)")
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


def read_yaml(path: Path | None) -> dict[str, Any]:
    """The whole obs.yaml as a mapping ({} without a file), every section. Raises ConfigError."""
    if path is None:
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    return loaded or {}


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the YAML file (if any), apply environment overrides, validate. Raises ConfigError."""
    data = read_yaml(path)
    data.pop(STACK_KEY, None)  # the local stack's settings: `obs up` reads and checks them (obs/stack_config.py)
    data.pop(ALERTING_KEY, None)  # the alerting service's settings: it reads and checks them itself
    origins = apply_env(data, os.environ if env is None else env)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            where = f" (from {origins[key]})" if key in origins else ""
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            problems.append(f"{key}{where}: {msg}")
        source = str(path) if path else "configuration"
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None
