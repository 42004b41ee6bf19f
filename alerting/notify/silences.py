"""Silences: matchers that mute alerts between startsAt and endsAt, persisted in SQLite.

Shapes and rules follow Alertmanager's v2 API and silence package: a silence is pending before startsAt,
active until endsAt, expired after; updating an active silence in place is allowed only when its matchers
and start are unchanged (otherwise the old one is expired and a new id is created); expiring sets endsAt to
now. Expired silences are kept for `retention_s` and then dropped. Times are Unix seconds.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from alerting.notify.matchers import Matcher, MatcherError, MatchOp
from alerting.notify.timefmt import format_rfc3339, parse_rfc3339

RETENTION_S = 120 * 3600.0  # Alertmanager's --data.retention default


class SilenceError(ValueError):
    """A silence is invalid (bad matcher, times, missing creator); the message names the field."""


class SilenceNotFound(KeyError):
    pass


class SilenceState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    updated_at: float

    def state(self, now: float) -> SilenceState:
        if now < self.starts_at:
            return SilenceState.PENDING
        if now < self.ends_at:
            return SilenceState.ACTIVE
        return SilenceState.EXPIRED

    def mutes(self, labels: Mapping[str, str], now: float) -> bool:
        return self.state(now) is SilenceState.ACTIVE and all(m.matches(labels) for m in self.matchers)

    def to_json(self, now: float) -> dict[str, Any]:
        """Alertmanager's v2 GettableSilence."""
        return {
            "id": self.id,
            "matchers": [matcher_to_json(m) for m in self.matchers],
            "startsAt": format_rfc3339(self.starts_at),
            "endsAt": format_rfc3339(self.ends_at),
            "updatedAt": format_rfc3339(self.updated_at),
            "createdBy": self.created_by,
            "comment": self.comment,
            "status": {"state": self.state(now).value},
        }


@dataclass(frozen=True)
class SilenceSpec:
    """What a client asks for (Alertmanager's PostableSilence): `id` set means update that silence."""

    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    id: str | None = None


def matcher_to_json(m: Matcher) -> dict[str, Any]:
    return {"name": m.name, "value": m.value, "isRegex": m.is_regex, "isEqual": m.is_equal}


def matcher_from_json(data: Mapping[str, Any], where: str) -> Matcher:
    name, value = data.get("name"), data.get("value")
    if not isinstance(name, str) or not name:
        raise SilenceError(f"{where}.name: required, a non-empty string")
    if not isinstance(value, str):
        raise SilenceError(f"{where}.value: required, a string")
    is_regex, is_equal = data.get("isRegex", False), data.get("isEqual", True)
    if not isinstance(is_regex, bool) or not isinstance(is_equal, bool):
        raise SilenceError(f"{where}: isRegex and isEqual must be booleans")
    op = {(False, True): MatchOp.EQ, (False, False): MatchOp.NE, (True, True): MatchOp.RE, (True, False): MatchOp.NRE}[
        (is_regex, is_equal)
    ]
    try:
        return Matcher(name, op, value)
    except MatcherError as e:
        raise SilenceError(f"{where}: {e}") from e


def silence_from_json(data: Mapping[str, Any]) -> SilenceSpec:
    """Parse Alertmanager's v2 PostableSilence JSON; errors name the field."""
    if not isinstance(data, Mapping):
        raise SilenceError("body: expected a JSON object")
    raw = data.get("matchers")
    if not isinstance(raw, list) or not raw:
        raise SilenceError("matchers: at least one matcher is required")
    matchers = tuple(
        matcher_from_json(m if isinstance(m, Mapping) else {}, f"matchers[{i}]") for i, m in enumerate(raw)
    )
    times = {}
    for key in ("startsAt", "endsAt"):
        value = data.get(key)
        if not isinstance(value, str):
            raise SilenceError(f"{key}: required, an RFC 3339 time")
        try:
            times[key] = parse_rfc3339(value)
        except ValueError as e:
            raise SilenceError(f"{key}: {e}") from e
    created_by, comment = data.get("createdBy"), data.get("comment")
    if not isinstance(created_by, str) or not created_by:
        raise SilenceError("createdBy: required, a non-empty string")
    if not isinstance(comment, str) or not comment:
        raise SilenceError("comment: required, a non-empty string")
    sid = data.get("id") or None
    if sid is not None and not isinstance(sid, str):
        raise SilenceError("id: must be a string")
    return SilenceSpec(matchers, times["startsAt"], times["endsAt"], created_by, comment, sid)


class Silences:
    """The silence store. Thread-safe; every change is written to SQLite before the call returns."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time, retention_s: float = RETENTION_S) -> None:
        self._clock, self._retention_s = clock, retention_s
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS silences (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
        self._items: dict[str, Silence] = {}
        for sid, body in self._db.execute("SELECT id, body FROM silences"):
            self._items[sid] = _decode(json.loads(body))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def create(
        self,
        matchers: Sequence[Matcher],
        starts_at: float,
        ends_at: float,
        created_by: str,
        comment: str,
    ) -> Silence:
        return self.put(SilenceSpec(tuple(matchers), starts_at, ends_at, created_by, comment))

    def put(self, spec: SilenceSpec) -> Silence:
        """Create (spec.id None) or update a silence; returns it (a new id when Alertmanager would make one)."""
        now = self._clock()
        _validate(spec, now)
        with self._lock:
            starts_at = max(spec.starts_at, now)  # a start in the past means now, as in Alertmanager
            if spec.id is not None:
                prev = self._items.get(spec.id)
                if prev is None:
                    raise SilenceNotFound(spec.id)
                if _can_update(prev, spec, now):
                    sil = replace(
                        prev,
                        ends_at=spec.ends_at,
                        starts_at=prev.starts_at if prev.state(now) is SilenceState.ACTIVE else spec.starts_at,
                        created_by=spec.created_by,
                        comment=spec.comment,
                        updated_at=now,
                    )
                    self._store(sil)
                    return sil
                if prev.state(now) is not SilenceState.EXPIRED:
                    self._store(_expired(prev, now))
            sil = Silence(str(uuid.uuid4()), spec.matchers, starts_at, spec.ends_at, spec.created_by, spec.comment, now)
            self._store(sil)
            return sil

    def update(
        self,
        silence_id: str,
        *,
        matchers: Sequence[Matcher] | None = None,
        starts_at: float | None = None,
        ends_at: float | None = None,
        created_by: str | None = None,
        comment: str | None = None,
    ) -> Silence:
        """Change fields of a silence (unset ones are kept); as `put`, the result may carry a new id."""
        prev = self.get(silence_id)
        return self.put(
            SilenceSpec(
                matchers=tuple(matchers) if matchers is not None else prev.matchers,
                starts_at=starts_at if starts_at is not None else prev.starts_at,
                ends_at=ends_at if ends_at is not None else prev.ends_at,
                created_by=created_by if created_by is not None else prev.created_by,
                comment=comment if comment is not None else prev.comment,
                id=silence_id,
            )
        )

    def expire(self, silence_id: str) -> Silence:
        now = self._clock()
        with self._lock:
            prev = self._items.get(silence_id)
            if prev is None:
                raise SilenceNotFound(silence_id)
            if prev.state(now) is SilenceState.EXPIRED:
                raise SilenceError(f"silence {silence_id} is already expired")
            sil = _expired(prev, now)
            self._store(sil)
            return sil

    def get(self, silence_id: str) -> Silence:
        with self._lock:
            sil = self._items.get(silence_id)
        if sil is None:
            raise SilenceNotFound(silence_id)
        return sil

    def list(self, state: SilenceState | None = None) -> builtins.list[Silence]:
        """All silences (optionally in one state), oldest update first; drops those expired past retention."""
        now = self._clock()
        with self._lock:
            for sid, sil in list(self._items.items()):
                if sil.ends_at + self._retention_s < now:
                    del self._items[sid]
                    self._db.execute("DELETE FROM silences WHERE id = ?", (sid,))
            items = sorted(self._items.values(), key=lambda s: (s.updated_at, s.id))
        return [s for s in items if state is None or s.state(now) is state]

    def mutes(self, labels: Mapping[str, str], now: float) -> builtins.list[str]:
        """Ids of the active silences that mute `labels` at `now`."""
        with self._lock:
            return [s.id for s in self._items.values() if s.mutes(labels, now)]

    def _store(self, sil: Silence) -> None:
        self._db.execute("INSERT OR REPLACE INTO silences (id, body) VALUES (?, ?)", (sil.id, json.dumps(_encode(sil))))
        self._items[sil.id] = sil


def _validate(spec: SilenceSpec, now: float) -> None:
    if not spec.matchers:
        raise SilenceError("matchers: at least one matcher is required")
    if all(m.matches({}) for m in spec.matchers):
        raise SilenceError("matchers: at least one matcher must not match the empty string (it would mute everything)")
    if spec.ends_at <= spec.starts_at:
        raise SilenceError("endsAt: must be after startsAt")
    if spec.ends_at <= now:
        raise SilenceError("endsAt: must be in the future")
    if not spec.created_by:
        raise SilenceError("createdBy: required")
    if not spec.comment:
        raise SilenceError("comment: required")


def _can_update(prev: Silence, spec: SilenceSpec, now: float) -> bool:
    if prev.matchers != spec.matchers:
        return False
    state = prev.state(now)
    if state is SilenceState.ACTIVE:
        return spec.starts_at <= now or spec.starts_at == prev.starts_at
    if state is SilenceState.PENDING:
        return spec.starts_at >= now
    return False


def _expired(sil: Silence, now: float) -> Silence:
    if sil.state(now) is SilenceState.PENDING:
        return replace(sil, starts_at=now, ends_at=now, updated_at=now)
    return replace(sil, ends_at=now, updated_at=now)


def _encode(sil: Silence) -> dict[str, Any]:
    return {
        "id": sil.id,
        "matchers": [matcher_to_json(m) for m in sil.matchers],
        "starts_at": sil.starts_at,
        "ends_at": sil.ends_at,
        "created_by": sil.created_by,
        "comment": sil.comment,
        "updated_at": sil.updated_at,
    }


def _decode(data: Mapping[str, Any]) -> Silence:
    return Silence(
        id=data["id"],
        matchers=tuple(matcher_from_json(m, "matchers") for m in data["matchers"]),
        starts_at=float(data["starts_at"]),
        ends_at=float(data["ends_at"]),
        created_by=data["created_by"],
        comment=data["comment"],
        updated_at=float(data["updated_at"]),
    )
