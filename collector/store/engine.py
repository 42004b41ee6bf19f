"""The one small interface the store needs from ClickHouse, whichever way it is reached.

Both adapters speak the same SQL. Query parameters use ClickHouse's server-side binding
(`{name:Type}` in the SQL, values passed apart), so values never become SQL text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import pyarrow as pa


class StoreUnavailable(Exception):
    """The engine cannot answer right now (server down, timeout): a retryable condition."""


class Engine(Protocol):
    """A ClickHouse connection. Implementations are safe to call from several threads at once."""

    name: str

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns nothing (DDL, ALTER, INSERT ... SELECT)."""

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run a SELECT and return its result as an Arrow table."""

    def query_columns(self, sql: str, params: Mapping[str, Any] | None = None) -> dict[str, np.ndarray[Any, Any]]:
        """Run a SELECT of fixed-width numeric columns only; each column as a new numpy array (the
        caller owns it). For large numeric reads: no Arrow conversion on either side where avoidable."""

    def insert(self, table: str, data: pa.Table) -> None:
        """Insert an Arrow table whose column names match the target table's; returns once written."""

    def close(self) -> None:
        """Release the connection."""
