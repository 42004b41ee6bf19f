"""The alerting service's composition root: rules, evaluator, notifications and state wired from settings.

Nothing else builds the concrete pieces. The evaluator reaches the collector only through `HttpQuerier`
(the `QueryFunc` seam) and `RemoteWriteSender`; notifications go through the `Dispatcher` (the `Notifier`
seam). A reload re-reads the rule files and swaps the groups in place: rules that still exist keep their
alerts and timers (RuleEngine.reload), and a file that fails to load leaves the running rules untouched.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge

from alerting.config import AlertingSettings
from alerting.engine import RuleEngine
from alerting.notify.dispatch import Dispatcher
from alerting.querier import HttpQuerier
from alerting.remote_write import RemoteWriteSender
from alerting.rulefile import RuleFileError, load_rule_files
from alerting.rules import RuleGroup
from alerting.state_store import StateStore
from alerting.template import render

log = logging.getLogger("observatory.alerting")


class ReloadError(Exception):
    """The rule files could not be loaded; the running rules are unchanged."""


@dataclass
class _ReloadMetrics:
    registry: CollectorRegistry
    success: Gauge = field(init=False)
    last_success: Gauge = field(init=False)
    reloads: Counter = field(init=False)

    def __post_init__(self) -> None:
        # Prometheus' names, so its standard "config reload failed" alert works on this service too.
        self.success = Gauge(
            "prometheus_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
            registry=self.registry,
        )
        self.last_success = Gauge(
            "prometheus_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload.",
            registry=self.registry,
        )
        self.reloads = Counter("alerting_rule_reloads", "Rule reloads by result.", ["result"], registry=self.registry)


def load_groups(settings: AlertingSettings) -> list[RuleGroup]:
    """The configured rule groups (rule files plus extension files). Raises RuleFileError."""
    return load_rule_files(settings.rule_files, settings.evaluation_interval, settings.extension_files)


class AlertingService:
    """The running service: `start()` begins evaluation and delivery, `stop()` ends both and closes state."""

    def __init__(self, settings: AlertingSettings, groups: list[RuleGroup] | None = None) -> None:
        self.settings = settings
        self.registry = CollectorRegistry()
        self._reload = _ReloadMetrics(self.registry)
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        groups = load_groups(settings) if groups is None else groups
        notify = settings.notify
        if not notify.external_url:
            notify = notify.model_copy(update={"external_url": settings.public_url})
        self.dispatcher = Dispatcher(notify, settings.state_dir / "notify", self.registry)
        self.querier = HttpQuerier(settings.query_url, timeout_s=settings.query_timeout)
        self.writer = RemoteWriteSender(settings.remote_write_url) if settings.remote_write_url else None
        self.store = StateStore(settings.state_dir)
        self.engine = RuleEngine(
            groups,
            self.querier,
            self.dispatcher,
            self.store,
            render=render,
            write_samples=self.writer,
            external_labels=settings.external_labels,
            external_url=settings.public_url,
            registry=self.registry,
            query_many=self.querier.query_many,
        )
        self._reload.success.set(1)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reload_lock = threading.Lock()

    def start(self) -> None:
        self.dispatcher.start()
        self._thread = threading.Thread(target=self.engine.run, args=(self._stop,), name="rule-engine", daemon=True)
        self._thread.start()

    def reload(self) -> int:
        """Re-read the rule files; returns the number of groups. Raises ReloadError (old rules kept)."""
        with self._reload_lock:
            try:
                groups = load_groups(self.settings)
                self.engine.reload(groups)
            except (RuleFileError, ValueError) as exc:
                self._reload.success.set(0)
                self._reload.reloads.labels("failure").inc()
                log.error("rule reload failed, keeping the running rules: %s", exc)
                raise ReloadError(str(exc)) from None
            self._reload.success.set(1)
            self._reload.last_success.set_to_current_time()
            self._reload.reloads.labels("success").inc()
            log.info("rules reloaded: %d groups", len(groups))
            return len(groups)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.dispatcher.stop()
        self.dispatcher.close()
        self.querier.close()
        if self.writer is not None:
            self.writer.close()
        self.store.close()
