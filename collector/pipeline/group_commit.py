"""Group commit: requests that arrive while an insert runs are written together by the next insert.

Each submitter waits until the insert holding its batch has finished, so a 2xx always means "in the
store"; throughput no longer depends on how clients batch, because a burst of small requests costs
one insert. One insert runs at a time per committer (inserts into the same table would only contend).

Like PostgreSQL's commit_delay with commit_siblings, an insert may wait a little (`group_wait`) for
requests that are already being decoded, but only while there are such requests: under load the
insert takes them along (every insert has a fixed cost), and a lone request is never delayed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Generic, TypeVar

from collector.errors import RetryableError
from collector.store.engine import StoreUnavailable

T = TypeVar("T")


class _Arrival:
    """A request on its way to submit(): counted by its committer until it submits or gives up."""

    __slots__ = ("committer", "counted")

    def __init__(self, committer: object) -> None:
        self.committer = committer
        self.counted = True


_ARRIVAL: ContextVar[_Arrival | None] = ContextVar("group_commit_arrival", default=None)


class GroupCommitter(Generic[T]):
    def __init__(
        self,
        name: str,
        write: Callable[[Sequence[T]], None],
        max_rows: int,
        min_interval: float = 0.0,
        group_wait: float = 0.0,
    ) -> None:
        """min_interval: seconds between the starts of two inserts. Every insert makes a part that
        ClickHouse later merges; fewer, larger inserts cost far less CPU for the same rows.
        group_wait: at most this long an insert waits for requests announced by `arriving()`."""
        self.name = name
        self._write = write
        self._max_rows = max_rows
        self._min_interval = min_interval
        self._group_wait = group_wait
        self._coming = 0  # requests inside arriving() that have not submitted yet
        self._pending: list[tuple[T, int, asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"insert-{name}")
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def queued_rows(self) -> int:
        return sum(rows for _, rows, _ in self._pending)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"group-commit-{self.name}")

    @contextlib.contextmanager
    def arriving(self) -> Iterator[None]:
        """Around a request that will submit here soon (while it is decoded): the next insert may wait
        for it, up to group_wait. Leaving without submitting (bad data, an error) releases the insert."""
        arrival = _Arrival(self)
        self._coming += 1
        token = _ARRIVAL.set(arrival)
        try:
            yield
        finally:
            _ARRIVAL.reset(token)
            self._arrived(arrival)

    def _arrived(self, arrival: _Arrival) -> None:
        if arrival.counted:
            arrival.counted = False
            self._coming -= 1
            self._wakeup.set()

    async def submit(self, batch: T, rows: int) -> None:
        """Returns once the batch is in the store; raises what the insert raised."""
        arrival = _ARRIVAL.get()
        if arrival is not None and arrival.committer is self:
            self._arrived(arrival)
        if self._closing:
            raise RetryableError("the collector is shutting down", status=503, reason="shutdown")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((batch, rows, future))
        self._wakeup.set()
        await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last_start = -self._min_interval
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            wait = last_start + self._min_interval - loop.time()
            if wait > 0 and not self._closing and self.queued_rows < self._max_rows:
                await asyncio.sleep(wait)
            await self._wait_for_arrivals(loop)
            last_start = loop.time()
            take, rows = 0, 0
            while take < len(self._pending) and (take == 0 or rows + self._pending[take][1] <= self._max_rows):
                rows += self._pending[take][1]
                take += 1
            group, self._pending = self._pending[:take], self._pending[take:]
            try:
                await loop.run_in_executor(self._executor, self._write, [item[0] for item in group])
            except StoreUnavailable as exc:
                error: BaseException = RetryableError(f"the store is unavailable: {exc}", status=503, reason="store")
                self._fail(group, error)
            except Exception as exc:  # the store refused the insert: nothing of the group was acked
                if len(group) == 1:
                    self._fail(group, exc)
                    continue
                # One request's data may be what the store refused: write each on its own, so
                # only the offending request fails and the others are stored and acknowledged.
                for item in group:
                    try:
                        await loop.run_in_executor(self._executor, self._write, [item[0]])
                    except StoreUnavailable as one_exc:
                        self._fail(
                            [item], RetryableError(f"the store is unavailable: {one_exc}", status=503, reason="store")
                        )
                    except Exception as one_exc:
                        self._fail([item], one_exc)
                    else:
                        if not item[2].done():
                            item[2].set_result(None)
            else:
                for _, _, future in group:
                    if not future.done():
                        future.set_result(None)

    async def _wait_for_arrivals(self, loop: asyncio.AbstractEventLoop) -> None:
        """Up to group_wait, while requests being decoded may still join this insert."""
        deadline = loop.time() + self._group_wait
        while self._coming > 0 and not self._closing and self.queued_rows < self._max_rows:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wakeup.clear()  # set again by each submit and by each request that gives up
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)

    @staticmethod
    def _fail(group: list[tuple[T, int, asyncio.Future[None]]], error: BaseException) -> None:
        for _, _, future in group:
            if not future.done():
                future.set_exception(error)

    async def close(self) -> None:
        """Finish what was submitted, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)
