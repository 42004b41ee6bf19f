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


async def _request(committer: GroupCommitter[str], value: str, decode_s: float, submits: bool = True) -> None:
    """A request as the ingest path makes one: announced while it is decoded, then submitted (or not)."""
    with committer.arriving():
        await asyncio.sleep(decode_s)
        if submits:
            await committer.submit(value, 1)


@pytest.mark.parametrize(
    ("group_wait", "inserts"),
    [
        pytest.param(0.0, [["a"], ["b"]], id="no-wait-two-inserts"),
        pytest.param(5.0, [["a", "b"]], id="waits-for-the-request-being-decoded"),
    ],
)
def test_an_insert_waits_for_requests_still_being_decoded(group_wait: float, inserts: list[list[str]]) -> None:
    async def run() -> Store:
        store = Store()
        committer: GroupCommitter[str] = GroupCommitter("t", store.write, max_rows=100, group_wait=group_wait)
        committer.start()
        await asyncio.gather(_request(committer, "a", 0.0), _request(committer, "b", 0.2))
        await committer.close()
        return store

    assert asyncio.run(run()).inserts == inserts


def test_a_request_that_gives_up_releases_the_waiting_insert() -> None:
    """Bad data leaves without submitting: the insert goes at once, not after group_wait (5 s here)."""

    async def run() -> tuple[Store, float]:
        store = Store()
        committer: GroupCommitter[str] = GroupCommitter("t", store.write, max_rows=100, group_wait=5.0)
        committer.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(_request(committer, "a", 0.0), _request(committer, "bad-data", 0.1, submits=False))
        waited = loop.time() - started
        await committer.close()
        return store, waited

    store, waited = asyncio.run(run())
    assert store.inserts == [["a"]]
    assert waited < 2.5  # released when the other request left, far before the 5 s bound


def test_a_lone_request_is_not_held_back() -> None:
    async def run() -> float:
        store = Store()
        committer: GroupCommitter[str] = GroupCommitter("t", store.write, max_rows=100, group_wait=5.0)
        committer.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await _request(committer, "a", 0.0)
        waited = loop.time() - started
        await committer.close()
        return waited

    assert asyncio.run(run()) < 2.5  # nothing else announced: no wait at all (the bound is 5 s)
