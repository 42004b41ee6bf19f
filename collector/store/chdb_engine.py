"""Engine adapter for chDB: ClickHouse in this process, its files under a data directory.

chDB allows one data path per process, so a process opens exactly one ChdbEngine; tests isolate
themselves with a database per test, never a second path.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import chdb
import numpy as np
import pyarrow as pa

from collector.store.native_format import decode_columns

_OPEN: dict[str, ChdbEngine] = {}

# Query parameter values travel in ClickHouse's "escaped" text format (as on the HTTP interface):
# scalars are TSV-escaped, array elements are quoted literals with backslash escapes.
_ESCAPED = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0", "\b": "\\b", "\f": "\\f"})
_QUOTED = str.maketrans(
    {"\\": "\\\\", "'": "\\'", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0", "\b": "\\b", "\f": "\\f"}
)


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.translate(_QUOTED) + "'"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_literal(v) for v in value) + "]"
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def encode_params(params: Mapping[str, Any] | None) -> dict[str, str]:
    """Parameter values as the text ClickHouse parses them from."""
    out = {}
    for name, value in (params or {}).items():
        if isinstance(value, str):
            out[name] = value.translate(_ESCAPED)
        elif isinstance(value, datetime):
            out[name] = value.strftime("%Y-%m-%d %H:%M:%S")
        else:
            out[name] = _literal(value)
    return out


_OPEN_LOCK = threading.Lock()


class ChdbEngine:
    name = "chdb"

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = str(data_dir.resolve())
        self._conn = chdb.connect(self.path)
        # One call into chDB at a time. chDB takes its own connection lock while still holding the
        # GIL, and an INSERT ... FROM Python() needs the GIL to read its Arrow table: two threads
        # calling in at once deadlock. Waiting on this lock releases the GIL, so they cannot.
        self._lock = threading.Lock()
        # Every timestamp is UTC on the way in and out, whatever the machine's zone.
        self._conn.query("SET session_timezone = 'UTC'")

    @classmethod
    def shared(cls, data_dir: Path) -> ChdbEngine:
        """The process' engine for data_dir; asking for a second, different path is an error."""
        path = str(data_dir.resolve())
        with _OPEN_LOCK:
            if path in _OPEN:
                return _OPEN[path]
            if _OPEN:
                other = next(iter(_OPEN))
                raise RuntimeError(f"chDB already has data path {other} open in this process; cannot open {path}")
            engine = cls(data_dir)
            _OPEN[path] = engine
            atexit.register(engine._shutdown)
            return engine

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        encoded = encode_params(params)
        with self._lock:
            self._conn.query(sql, "Null", params=encoded)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        encoded = encode_params(params)
        with self._lock:
            result = self._conn.query(sql, "ArrowTable", params=encoded)
        assert isinstance(result, pa.Table)
        return result

    def query_columns(self, sql: str, params: Mapping[str, Any] | None = None) -> dict[str, np.ndarray[Any, Any]]:
        encoded = encode_params(params)
        with self._lock:
            result = self._conn.query(sql, "Native", params=encoded)
        # Decoded from chDB's buffer without a copy of the whole result: decode_columns copies each
        # column out once, while `result` keeps the buffer alive.
        return decode_columns(result.get_memview().view())

    def insert(self, table: str, data: pa.Table) -> None:
        # chDB's Python() table function finds the Arrow table by variable name in this frame.
        obs_insert_data = data  # noqa: F841 - read by chDB through the frame
        columns = ", ".join(f"`{name}`" for name in data.column_names)
        with self._lock:
            self._conn.query(f"INSERT INTO {table} ({columns}) SELECT * FROM Python(obs_insert_data)", "Null")

    def _shutdown(self) -> None:
        # At interpreter exit, before chDB's own static teardown: closing the session first keeps that
        # teardown from running on a half-destroyed server context (a segfault at exit otherwise).
        with self._lock:
            self._conn.close()

    def close(self) -> None:
        # chDB keeps one session per process; closing it would make the path unusable for the process.
        pass
