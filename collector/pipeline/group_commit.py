"""Group commit: requests that arrive while an insert runs are written together by the next insert.

Each submitter waits until the insert holding its batch has finished, so a 2xx always means "in the
store"; throughput no longer depends on how clients batch, because a burst of small requests costs
one insert. One insert runs at a time per committer (inserts into the same table would only contend).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

from collector.errors import RetryableError
from collector.store.engine import StoreUnavailable

T = TypeVar("T")


class GroupCommitter(Generic[T]):
    def __init__(
        self, name: str, write: Callable[[Sequence[T]], None], max_rows: int, min_interval: float = 0.0
    ) -> None:
        """min_interval: seconds between the starts of two inserts. Every insert makes a part that
        ClickHouse later merges; fewer, larger inserts cost far less CPU for the same rows."""
        self.name = name
        self._write = write
        self._max_rows = max_rows
        self._min_interval = min_interval
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

    async def submit(self, batch: T, rows: int) -> None:
        """Returns once the batch is in the store; raises what the insert raised."""
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
