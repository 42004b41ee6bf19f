"""The notification log: per group, receiver and integration, what was last sent, persisted in SQLite.

Like Alertmanager's nflog it is what deduplication compares against, so that after a restart nothing
already sent goes out again and a resolution not yet sent still does. WAL with synchronous=FULL: a record
is on disk before `record` returns, i.e. before the next notification could depend on it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SentRecord:
    """What one integration of a receiver last got for one group.

    `firing` maps each alert identity sent as firing to its level ("" without a level); `resolved` holds
    the identities sent as resolved in that notification. `sent_at` is Unix seconds.
    """

    firing: Mapping[str, str]
    resolved: frozenset[str]
    sent_at: float


@dataclass(frozen=True)
class HistoryKey:
    group_key: str
    receiver: str
    integration: str  # e.g. "webhook/0", "log"


class NotificationLog:
    """Thread-safe; reads come from memory (loaded at open), writes go through to SQLite."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            """CREATE TABLE IF NOT EXISTS notifications (
                group_key TEXT NOT NULL,
                receiver TEXT NOT NULL,
                integration TEXT NOT NULL,
                firing TEXT NOT NULL,
                resolved TEXT NOT NULL,
                sent_at REAL NOT NULL,
                PRIMARY KEY (group_key, receiver, integration)
            )"""
        )
        self._records: dict[HistoryKey, SentRecord] = {}
        for group_key, receiver, integration, firing, resolved, sent_at in self._db.execute(
            "SELECT group_key, receiver, integration, firing, resolved, sent_at FROM notifications"
        ):
            self._records[HistoryKey(group_key, receiver, integration)] = SentRecord(
                firing=json.loads(firing), resolved=frozenset(json.loads(resolved)), sent_at=sent_at
            )

    def get(self, key: HistoryKey) -> SentRecord | None:
        with self._lock:
            return self._records.get(key)

    def record(self, key: HistoryKey, rec: SentRecord) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO notifications VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key.group_key,
                    key.receiver,
                    key.integration,
                    json.dumps(dict(sorted(rec.firing.items()))),
                    json.dumps(sorted(rec.resolved)),
                    rec.sent_at,
                ),
            )
            self._records[key] = rec

    def forget_before(self, cutoff: float) -> int:
        """Drop records with nothing firing that were last sent before `cutoff`; returns how many."""
        with self._lock:
            stale = [k for k, r in self._records.items() if not r.firing and r.sent_at < cutoff]
            for k in stale:
                del self._records[k]
                self._db.execute(
                    "DELETE FROM notifications WHERE group_key = ? AND receiver = ? AND integration = ?",
                    (k.group_key, k.receiver, k.integration),
                )
            return len(stale)

    def close(self) -> None:
        with self._lock:
            self._db.close()
