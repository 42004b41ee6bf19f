"""Group commit: one insert for what arrived together; a refused group is retried request by request."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from collector.errors import RetryableError
from collector.pipeline.group_commit import GroupCommitter
from collector.store.engine import StoreUnavailable


class Store:
    """A real in-memory sink: records each insert; refuses any insert holding the value 'bad'."""

    def __init__(self) -> None:
        self.inserts: list[list[str]] = []
        self.down = False

    def write(self, batches: Sequence[str]) -> None:
        if self.down:
            raise StoreUnavailable("connection refused")
        if "bad" in batches:
            raise ValueError("Too many partitions for single INSERT block")
        self.inserts.append(list(batches))


def test_concurrent_requests_share_an_insert_and_a_bad_one_fails_alone() -> None:
    async def run() -> tuple[list[object], Store]:
        store = Store()
        committer: GroupCommitter[str] = GroupCommitter("t", store.write, max_rows=100)
        committer.start()
        results = await asyncio.gather(
            *(committer.submit(v, 1) for v in ("a", "b", "bad", "c")), return_exceptions=True
        )
        await committer.close()
        return list(results), store

    results, store = asyncio.run(run())
    assert [type(r).__name__ for r in results] == ["NoneType", "NoneType", "ValueError", "NoneType"]
    stored = [v for insert in store.inserts for v in insert]
    assert sorted(stored) == ["a", "b", "c"]


def test_store_down_is_retryable() -> None:
    async def run() -> None:
        store = Store()
        store.down = True
        committer: GroupCommitter[str] = GroupCommitter("t", store.write, max_rows=100)
        committer.start()
        with pytest.raises(RetryableError) as err:
            await committer.submit("a", 1)
        assert err.value.status == 503
        await committer.close()

    asyncio.run(run())
