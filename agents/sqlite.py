"""DB spans for sqlite3: the OTel dbapi proxy, plus the `Connection.execute` shortcuts it does not trace.

The sqlite3 instrumentation traces `cursor.execute*` only; `conn.execute(...)` (sqlite3's shortcut that
opens a cursor) would pass through untraced. `TracedSQLiteConnection` sends the shortcuts through a
traced cursor and delegates everything else to the instrumented connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
from opentelemetry.trace import TracerProvider


class TracedSQLiteConnection:
    """Duck-types sqlite3.Connection; every statement is a DB span (db.system=sqlite, db.statement)."""

    def __init__(self, conn: sqlite3.Connection, tracer_provider: TracerProvider) -> None:
        self._traced: Any = SQLite3Instrumentor.instrument_connection(conn, tracer_provider=tracer_provider)

    def cursor(self, *args: Any) -> Any:
        return self._traced.cursor(*args)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        cur: sqlite3.Cursor = self._traced.cursor().execute(sql, parameters)
        return cur

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        cur: sqlite3.Cursor = self._traced.cursor().executemany(sql, parameters)
        return cur

    def executescript(self, script: str, /) -> sqlite3.Cursor:
        cur: sqlite3.Cursor = self._traced.cursor().executescript(script)
        return cur

    def __getattr__(self, name: str) -> Any:
        return getattr(self._traced, name)

    def __enter__(self) -> TracedSQLiteConnection:
        self._traced.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        result: bool | None = self._traced.__exit__(exc_type, exc, tb)
        return result
