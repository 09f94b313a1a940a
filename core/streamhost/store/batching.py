"""Group commit: callers that write at once share one transaction.

Under load a write's cost is mostly its round trips (BEGIN, the statement, COMMIT), each waiting for a busy event
loop: 400 runs recorded at once as 400 transactions queue for the pool's connections for seconds, as one
transaction they take one. A caller waits until the transaction that holds its item has committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from streamhost.store.records import StoreError

Item = TypeVar("Item")
Write = Callable[[list[Item]], Awaitable["Sequence[Any] | None"]]
"""Writes a list of items in one transaction; returns one result per item (or None: no results)."""


class GroupCommit(Generic[Item]):
    """Writes the items submitted while a write is under way together, in the next write.

    If a write of several fails, each item is written again on its own, so one bad item (a duplicate key) fails
    only its own caller.
    """

    def __init__(self, write: Write[Item]) -> None:
        self._write = write
        self._queued: list[tuple[Item, asyncio.Future[Any]]] = []
        self._lock = asyncio.Lock()

    async def submit(self, item: Item) -> Any:
        """Write ``item`` with whatever else is waiting: its result; raises what its own write raised."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queued.append((item, future))
        async with self._lock:
            if not future.done():  # else a caller ahead in the queue wrote this item with its own
                batch, self._queued = self._queued, []
                try:
                    await self._write_batch(batch)
                except BaseException:  # cancelled mid-write: nobody in the batch knows what was written
                    for _, waiting in batch:
                        if not waiting.done():
                            waiting.set_exception(StoreError("The write was cancelled (its caller was)."))
                    future.exception()  # retrieved: this caller raises its own cancellation instead
                    raise
        return await future

    async def _write_batch(self, batch: list[tuple[Item, asyncio.Future[Any]]]) -> None:
        try:
            results = await self._write([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            for item, waiting in batch:  # one at a time: only the bad item's caller fails
                try:
                    result = await self._write([item])
                except Exception as one:
                    waiting.set_exception(one)
                else:
                    waiting.set_result(None if result is None else result[0])
            return
        for i, (_, waiting) in enumerate(batch):
            waiting.set_result(None if results is None else results[i])
