"""Opens a service's SQLite database so several processes can share it safely, and runs write transactions.

Several instances of one service share one file: WAL lets readers run beside a writer, `busy_timeout`
makes a writer wait for the lock instead of failing at once, and `BEGIN IMMEDIATE` takes the write
lock before the first read of a read-modify-write, so two instances never both see the same stock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_MS = 5000


def open_database(path: Path | str, schema: str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with WAL and a busy timeout; `schema` applied."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # check_same_thread=False: handlers run in a thread pool; `Database` serialises use with a lock.
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    _apply_schema(conn, schema)
    return conn


def _apply_schema(conn: sqlite3.Connection, schema: str) -> None:
    # `CREATE ... IF NOT EXISTS` statements, run one by one inside one write transaction so two instances
    # starting at once do not race on creating the tables or seeding them.
    with _immediate(conn):
        for statement in schema.split(";"):
            if statement.strip():
                conn.execute(statement)


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class Database:
    """One shared connection; `write()` is a BEGIN IMMEDIATE transaction, `read()` a consistent snapshot.

    The lock serialises threads of this process on the connection (sqlite3 connections are not safe for
    concurrent use); other processes are serialised by SQLite's own lock.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._lock = threading.RLock()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, _immediate(self.conn):
            yield self.conn

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self.conn.execute("BEGIN DEFERRED")
            try:
                yield self.conn
            finally:
                self.conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self.conn.close()
