"""The Dispatcher: takes the evaluator's alerts each round and sends what changed, grouped and routed.

Alertmanager's dispatcher and notification pipeline in one place: alerts are routed, and gathered into
aggregation groups keyed by route and group labels; a group is flushed `group_wait` after it appears and
then every `group_interval`; at a flush each integration of the route's receiver gets the group's unmuted
alerts if `dedup.plan` finds a change (or the repeat interval has passed) against the notification log.
Silenced and inhibited alerts are muted; flapping alerts are held (see dedup). Receivers' Alertmanager
forwarders get every routed alert on Prometheus' schedule instead.

`notify` only records state; `tick(now)` does the flushing and sending, so tests drive time explicitly;
`start()` runs tick on a background thread every `tick_interval`. Times are Unix seconds.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry

from alerting.model import Alert, AlertState, fingerprint
from alerting.notify.alertmanager import AlertmanagerForwarder
from alerting.notify.config import NotifyConfig
from alerting.notify.dedup import Plan, plan
from alerting.notify.delivery import DeadLetters, Delivery
from alerting.notify.history import HistoryKey, NotificationLog
from alerting.notify.inhibit import Inhibitor
from alerting.notify.integration import GroupNotification, Integration
from alerting.notify.log import LogIntegration
from alerting.notify.metrics import NotifyMetrics
from alerting.notify.payload import labels_string
from alerting.notify.route import Route, build_route
from alerting.notify.silences import Silences
from alerting.notify.webhook import WebhookIntegration

log = logging.getLogger(__name__)

RESOLVED_RETENTION_S = 3600.0  # a resolved alert the evaluator stopped passing is forgotten after this long
HISTORY_RETENTION_S = 7 * 86400.0  # notification-log entries with nothing firing are dropped after this long


@dataclass(frozen=True)
class MuteStatus:
    silenced_by: tuple[str, ...]  # silence ids
    inhibited: bool

    @property
    def muted(self) -> bool:
        return bool(self.silenced_by) or self.inhibited


@dataclass
class _Group:
    route: Route
    labels: dict[str, str]
    key: str  # Alertmanager's group key: route key ':' group labels
    next_flush: float


@dataclass
class _Job:
    integration: Integration
    notification: GroupNotification
    history_key: HistoryKey
    plan: Plan


@dataclass
class _Stored:
    alert: Alert
    seen_at: float
    routes: list[Route] = field(default_factory=list)


class Dispatcher:
    """Implements `alerting.model.Notifier`. Thread-safe: notify, tick and the API may run concurrently."""

    def __init__(
        self,
        config: NotifyConfig,
        state_dir: Path,
        registry: CollectorRegistry,
        *,
        clock: Callable[[], float] = time.time,
        http_client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        integrations: Mapping[str, Sequence[Integration]] | None = None,
    ) -> None:
        """`integrations` adds integrations to receivers by name (beside those of the config), e.g. a UI feed."""
        self.config, self._clock = config, clock
        state_dir.mkdir(parents=True, exist_ok=True)
        self.metrics = NotifyMetrics(registry)
        self.silences = Silences(state_dir / "silences.db", clock)
        self.history = NotificationLog(state_dir / "notifications.db")
        self.inhibitor = Inhibitor(config.inhibit_rules)
        self.route = build_route(config.route)
        dead_letter_path = Path(config.dead_letter) if config.dead_letter else state_dir / "dead_letters.jsonl"
        self.dead_letters = DeadLetters(dead_letter_path, self.metrics)
        self._own_client = http_client is None
        self._client = http_client or httpx.Client()
        delivery = Delivery(
            config.retry, self.dead_letters, self.metrics, self._client, clock=clock, sleep=sleep, rng=rng
        )
        self.integrations: dict[str, list[Integration]] = {}
        self.forwarders: dict[str, list[AlertmanagerForwarder]] = {}
        for r in config.receivers:
            ints: list[Integration] = [
                WebhookIntegration(w, i, config.external_url, delivery) for i, w in enumerate(r.webhook_configs)
            ]
            if r.log:
                ints.append(LogIntegration(self.metrics))
            ints.extend((integrations or {}).get(r.name, ()))
            self.integrations[r.name] = ints
            self.forwarders[r.name] = [AlertmanagerForwarder(r.name, a, delivery) for a in r.alertmanager_configs]
        self._lock = threading.Lock()  # alerts and groups
        self._tick_lock = threading.Lock()  # one flush at a time
        self._alerts: dict[tuple[str, str], _Stored] = {}  # (rule group, identity) -> latest alert
        self._groups: dict[tuple[str, str], _Group] = {}  # (route id, group labels) -> group
        self._held: set[tuple[str, str]] = set()
        self._last_history_gc = 0.0
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="alert-notify")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the Notifier seam -------------------------------------------------------------------------------

    def notify(self, alerts: Sequence[Alert], now: float) -> None:
        """Record the current firing and resolved alerts of the rule groups named in `alerts`.

        An alert of those rule groups that is not passed again is forgotten (the evaluator passes every
        firing alert and every one resolved in the last 15 minutes each round). Pending alerts are ignored.
        """
        current = [a for a in alerts if a.state in (AlertState.FIRING, AlertState.INACTIVE)]
        rule_groups = {a.rule_group for a in alerts}
        with self._lock:
            passed = {(a.rule_group, a.identity) for a in current}
            for key in [k for k in self._alerts if k[0] in rule_groups and k not in passed]:
                del self._alerts[key]
            for a in current:
                key = (a.rule_group, a.identity)
                prev = self._alerts.get(key)
                routes = (
                    prev.routes if prev is not None and prev.alert.labels == a.labels else self.route.match(a.labels)
                )
                self._alerts[key] = _Stored(a, now, routes)
                for route in routes:
                    self._ensure_group(route, a, now)

    def _ensure_group(self, route: Route, alert: Alert, now: float) -> None:
        labels = route.group_labels(alert.labels)
        gkey = (route.id, labels_string(labels))
        if gkey in self._groups:
            return
        # Alertmanager flushes a new group at once when its alert is older than group_wait (after a restart).
        started = alert.fired_at if alert.fired_at is not None else alert.active_at
        wait = 0.0 if started + route.group_wait_s <= now else route.group_wait_s
        self._groups[gkey] = _Group(route, labels, f"{route.key}:{labels_string(labels)}", now + wait)

    # --- status for the API --------------------------------------------------------------------------------

    def mute_status(self, labels: Mapping[str, str], now: float | None = None) -> MuteStatus:
        t = self._clock() if now is None else now
        with self._lock:
            firing = [s.alert.labels for s in self._alerts.values() if s.alert.state is AlertState.FIRING]
        return MuteStatus(tuple(self.silences.mutes(labels, t)), self.inhibitor.mutes(labels, firing))

    # --- flushing ------------------------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> None:
        """Flush the groups whose timers are due at `now` and forward to Alertmanagers; blocks until sent."""
        t = self._clock() if now is None else now
        with self._tick_lock:
            jobs, forwards = self._due(t)
            futures: list[Future[object]] = [self._pool.submit(self._run, job) for job in jobs]
            futures += [self._pool.submit(fwd.forward, batch, t) for fwd, batch in forwards]
            for f in futures:
                f.result()
            if t - self._last_history_gc > 3600:
                self.history.forget_before(t - HISTORY_RETENTION_S)
                self._last_history_gc = t

    def _run(self, job: _Job) -> None:
        if job.plan.alerts and not job.integration.send(job.notification):
            return  # not recorded: the next flush tries again, as Alertmanager does
        self.history.record(job.history_key, job.plan.record)

    def _due(self, now: float) -> tuple[list[_Job], list[tuple[AlertmanagerForwarder, list[Alert]]]]:
        with self._lock:
            for key in [
                k
                for k, s in self._alerts.items()
                if s.alert.state is AlertState.INACTIVE
                and (s.alert.resolved_at or s.seen_at) < now - RESOLVED_RETENTION_S
            ]:
                del self._alerts[key]
            stored = list(self._alerts.values())
            members: dict[tuple[str, str], list[Alert]] = {}  # unmuted alerts per group
            occupied: set[tuple[str, str]] = set()  # groups with any alert, muted or not
            routed: dict[str, list[Alert]] = {}
            firing = [s.alert.labels for s in stored if s.alert.state is AlertState.FIRING]
            silenced = inhibited = 0
            for s in stored:
                a = s.alert
                keys = [(route.id, labels_string(route.group_labels(a.labels))) for route in s.routes]
                occupied.update(keys)
                for r in {r.receiver for r in s.routes}:
                    routed.setdefault(r, []).append(a)
                # Muted resolutions are not sent either (Alertmanager's MuteStage); the gauge counts firing alerts.
                active = a.state is AlertState.FIRING
                if self.silences.mutes(a.labels, now):
                    silenced += active
                    continue
                if self.inhibitor.mutes(a.labels, firing):
                    inhibited += active
                    continue
                for key in keys:
                    members.setdefault(key, []).append(a)
            self.metrics.muted.labels(reason="silenced").set(silenced)
            self.metrics.muted.labels(reason="inhibited").set(inhibited)
            self._track_flapping(stored)
            jobs: list[_Job] = []
            for gkey, group in list(self._groups.items()):
                if gkey not in occupied:
                    del self._groups[gkey]  # its alerts are gone; the notification log remembers what was sent
                    continue
                alerts = members.get(gkey, [])
                if group.next_flush > now:
                    continue
                group.next_flush = now + group.route.group_interval_s
                if alerts:
                    jobs.extend(self._plan_group(group, alerts, now))
            self.metrics.groups.set(len(self._groups))
            forwards = [(f, routed.get(name, [])) for name, fs in self.forwarders.items() for f in fs]
        return jobs, forwards

    def _plan_group(self, group: _Group, alerts: list[Alert], now: float) -> list[_Job]:
        receiver = group.route.receiver
        repeats = [
            a.repeat_interval_s if a.repeat_interval_s is not None else group.route.repeat_interval_s for a in alerts
        ]
        positive = [r for r in repeats if r > 0]
        repeat = min(positive) if positive else 0.0
        jobs = []
        for integration in self.integrations.get(receiver, []):
            hkey = HistoryKey(group.key, receiver, integration.name)
            p = plan(
                alerts,
                self.history.get(hkey),
                send_resolved=integration.send_resolved,
                repeat_interval_s=repeat,
                now=now,
            )
            if p is not None:
                note = GroupNotification(receiver, group.key, dict(group.labels), p.alerts, now)
                jobs.append(_Job(integration, note, hkey, p))
        return jobs

    def _track_flapping(self, stored: list[_Stored]) -> None:
        held = {(s.alert.rule_group, s.alert.identity): s.alert for s in stored if s.alert.flapping}
        for key in held.keys() - self._held:
            a = held[key]
            log.warning(
                "holding notifications for alert %s %s: it is flapping (its state changes too often); its current"
                " state is notified once it settles, if that differs from what was last sent",
                a.name,
                dict(a.labels),
            )
            self.metrics.flapping.labels(alertname=a.name, fingerprint=fingerprint(a.labels)).set(1)
        for key in self._held - held.keys():
            log.info("alert %s stopped flapping; its notifications resume", key[1])
        self._held = set(held)
        # Rebuild the gauge so that settled or relabelled alerts leave it.
        self.metrics.flapping.clear()
        for a in held.values():
            self.metrics.flapping.labels(alertname=a.name, fingerprint=fingerprint(a.labels)).set(1)

    # --- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Run `tick(clock())` every `tick_interval` seconds on a background thread until `stop()`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="alert-dispatcher", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.config.tick_interval):
            try:
                self.tick()
            except Exception:  # a failing tick must not end notification for good
                log.exception("notification tick failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def close(self) -> None:
        """Stop, then release the thread pool, the HTTP client (if ours) and the databases."""
        self.stop()
        self._pool.shutdown(wait=True)
        if self._own_client:
            self._client.close()
        self.history.close()
        self.silences.close()
