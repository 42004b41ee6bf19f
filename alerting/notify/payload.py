"""Wire payloads built from alerts: the webhook version-4 message and Alertmanager's v2 postable alerts.

Pure functions, no I/O. Field names, shapes and rules follow Alertmanager 0.25 (notify/webhook and
template.Data) and Prometheus' notifier.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from alerting.model import Alert, AlertState, fingerprint
from alerting.notify.timefmt import ZERO_TIME, format_rfc3339

_GO_REGEX_META = re.compile(r"([\\.+*?()|\[\]{}^$])")


def is_resolved(alert: Alert) -> bool:
    return alert.state is AlertState.INACTIVE


def starts_at(alert: Alert) -> float:
    return alert.fired_at if alert.fired_at is not None else alert.active_at


def labels_string(labels: Mapping[str, str]) -> str:
    """prometheus/common LabelSet.String(): `{a="b", c="d"}`, sorted by name."""
    inner = ", ".join(f"{k}={_go_quote(v)}" for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def _go_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = dict(maps[0])
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def webhook_alert(alert: Alert) -> dict[str, Any]:
    resolved = is_resolved(alert)
    ends = alert.resolved_at if resolved and alert.resolved_at is not None else None
    return {
        "status": "resolved" if resolved else "firing",
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": format_rfc3339(starts_at(alert)),
        "endsAt": format_rfc3339(ends) if ends is not None else ZERO_TIME,
        "generatorURL": alert.generator_url,
        "fingerprint": fingerprint(alert.labels),
    }


def webhook_message(
    *,
    receiver: str,
    group_key: str,
    group_labels: Mapping[str, str],
    alerts: Sequence[Alert],
    external_url: str,
    max_alerts: int = 0,
) -> dict[str, Any]:
    """The version-4 webhook message. Common labels and status are computed before `max_alerts` truncates."""
    firing_any = any(not is_resolved(a) for a in alerts)
    kept = list(alerts) if max_alerts <= 0 else list(alerts)[:max_alerts]
    return {
        "receiver": _GO_REGEX_META.sub(r"\\\1", receiver),  # Alertmanager quotes it with regexp.QuoteMeta
        "status": "firing" if firing_any else "resolved",
        "alerts": [webhook_alert(a) for a in kept],
        "groupLabels": dict(group_labels),
        "commonLabels": _common([a.labels for a in alerts]),
        "commonAnnotations": _common([a.annotations for a in alerts]),
        "externalURL": external_url,
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": len(alerts) - len(kept),
    }


def postable_alert(alert: Alert, now: float, resend_delay_s: float) -> dict[str, Any]:
    """One element of `POST /api/v2/alerts`, as Prometheus' notifier sends it.

    A firing alert is valid until now + 4 x resend delay, so that Alertmanager resolves it by itself if we
    stop sending; a resolved one ends at its resolution time.
    """
    resolved_at = alert.resolved_at if is_resolved(alert) else None
    ends = resolved_at if resolved_at is not None else now + 4 * resend_delay_s
    out: dict[str, Any] = {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": format_rfc3339(starts_at(alert)),
        "endsAt": format_rfc3339(ends),
    }
    if alert.generator_url:
        out["generatorURL"] = alert.generator_url
    return out
