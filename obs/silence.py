"""`obs silence add|list|expire`: manage the alerting service's silences over its Alertmanager v2 API.

Matchers are Alertmanager's (`alertname="HighErrorRate"`, `service=~"pay.*"`); times go over the wire in
RFC 3339, as amtool sends them.
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import httpx

from alerting.durations import DurationError, parse_duration
from alerting.notify.matchers import MatcherError, parse_matchers
from alerting.notify.silences import matcher_from_json, matcher_to_json


class SilenceCommandError(Exception):
    """The command could not be done; the message says why (bad matcher, service unreachable, refusal)."""


def _rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _request(method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        r = httpx.request(method, url, timeout=10.0, **kwargs)
    except httpx.HTTPError as exc:
        raise SilenceCommandError(f"the alerting service at {url} did not answer: {exc}") from None
    if r.status_code // 100 != 2:
        raise SilenceCommandError(f"{method} {url} answered {r.status_code}: {r.text.strip()}")
    return r


def add(base_url: str, matchers: Sequence[str], duration: str, comment: str, author: str | None) -> str:
    """Create a silence from now for `duration`; returns its id."""
    try:
        parsed = [m for text in matchers for m in parse_matchers(text)]
        seconds = parse_duration(duration)
    except (MatcherError, DurationError) as exc:
        raise SilenceCommandError(str(exc)) from None
    if not parsed:
        raise SilenceCommandError('give at least one matcher, e.g. alertname="HighErrorRate"')
    if seconds <= 0:
        raise SilenceCommandError("the duration must be positive")
    now = datetime.now(UTC)
    body = {
        "matchers": [matcher_to_json(m) for m in parsed],
        "startsAt": _rfc3339(now),
        "endsAt": _rfc3339(now + timedelta(seconds=seconds)),
        "createdBy": author or getpass.getuser(),
        "comment": comment,
    }
    return str(_request("POST", f"{base_url}/api/v2/silences", json=body).json()["silenceID"])


def expire(base_url: str, silence_id: str) -> None:
    _request("DELETE", f"{base_url}/api/v2/silence/{silence_id}")


def list_silences(base_url: str, show_expired: bool, out: IO[str]) -> int:
    """Print the silences as a table; returns how many were printed."""
    silences = _request("GET", f"{base_url}/api/v2/silences").json()
    rows = [s for s in silences if show_expired or s["status"]["state"] != "expired"]
    rows.sort(key=lambda s: s["endsAt"])
    out.write(f"{'ID':<36}  {'STATE':<8}  {'ENDS':<24}  {'CREATED BY':<12}  MATCHERS / COMMENT\n")
    for s in rows:
        ms = ", ".join(str(matcher_from_json(m, "matchers")) for m in s["matchers"])
        out.write(f"{s['id']:<36}  {s['status']['state']:<8}  {s['endsAt']:<24}  {s['createdBy']:<12}  {ms}")
        out.write(f"  # {s['comment']}\n" if s["comment"] else "\n")
    return len(rows)
