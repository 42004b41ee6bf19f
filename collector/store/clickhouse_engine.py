"""Engine adapter for a ClickHouse server or cluster, reached over HTTP with clickhouse-connect."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa

from collector.store.engine import StoreUnavailable


class ClickHouseEngine:
    name = "clickhouse"

    def __init__(self, url: str) -> None:
        import clickhouse_connect  # imported here: only deployments with a server need it loaded
        from clickhouse_connect.driver.exceptions import OperationalError

        parts = urlparse(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"storage.url {url!r} must start with http:// or https://")
        self._unavailable = OperationalError
        self._client = clickhouse_connect.get_client(
            host=parts.hostname or "localhost",
            port=parts.port or (8443 if parts.scheme == "https" else 8123),
            username=parts.username or "default",
            password=parts.password or "",
            secure=parts.scheme == "https",
            settings={"session_timezone": "UTC"},
            autogenerate_session_id=False,
        )

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        try:
            self._client.command(sql, parameters=dict(params or {}))
        except self._unavailable as exc:
            raise StoreUnavailable(str(exc)) from exc

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        try:
            return self._client.query_arrow(sql, parameters=dict(params or {}), use_strings=True)
        except self._unavailable as exc:
            raise StoreUnavailable(str(exc)) from exc

    def query_columns(self, sql: str, params: Mapping[str, Any] | None = None) -> dict[str, np.ndarray[Any, Any]]:
        table = self.query(sql, params)
        return {
            name: np.array(table.column(name).combine_chunks().to_numpy(zero_copy_only=False), copy=True)
            for name in table.column_names
        }

    def insert(self, table: str, data: pa.Table) -> None:
        try:
            self._client.insert_arrow(table, data)
        except self._unavailable as exc:
            raise StoreUnavailable(str(exc)) from exc

    def close(self) -> None:
        self._client.close()
