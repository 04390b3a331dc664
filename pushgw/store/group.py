"""
Group commit: calls that arrive while a batch is being committed wait, and go
together into the next batch; each caller is answered once its batch is done.
Many callers then share one round trip and one commit (one WAL flush), which is
what lets one-job-at-a-time Store calls complete thousands of jobs a second.

Used for every SQLite write (`sqlite._GroupWriter`: one transaction per batch)
and for PostgreSQL's complete_job (`postgres._CompleteBatcher`: one DELETE).

An item submitted with `linger_s` may wait that long for company: if no batch
is running, its flush starts only then, or as soon as an item without linger
arrives (which takes it along). Below saturation there is often no batch in
flight, so without this every outcome would commit alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from pushgw.errors import StoreError

Item = TypeVar("Item")
Result = TypeVar("Result")


class Failed:
    """One item's exception, carried back as a value among a batch's outcomes."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class GroupCommit(Generic[Item, Result]):
    """
    Batches of up to `max_batch` items for `commit`, one batch at a time.

    `commit(items)` returns one outcome per item, a `Failed` for an item that
    failed alone; if it raises, every item of the batch fails with that error.
    """

    def __init__(
        self,
        commit: Callable[[list[Item]], Awaitable[Sequence[Result | Failed]]],
        *,
        max_batch: int,
        name: str,
    ) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._name = name
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None  # a lingering flush

    async def submit(self, item: Item, *, linger_s: float = 0.0) -> Result:
        """
        `item`'s outcome once its batch is committed. A cancelled caller's item
        may still be committed (its answer is just dropped). `linger_s`: see
        the module docstring.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._queue.append((item, future))
        if self._flusher is None:
            if linger_s <= 0:
                self._start()
            elif self._timer is None:
                self._timer = loop.call_later(linger_s, self._start)
        return await future

    async def drain(self) -> None:
        """Wait until everything submitted so far is committed (or failed)."""
        if self._timer is not None:
            self._start()
        if self._flusher is not None:
            await asyncio.shield(self._flusher)

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flusher is None and self._queue:
            self._flusher = asyncio.create_task(self._flush(), name=self._name)

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                try:
                    outcomes = await self._commit([item for item, _ in batch])
                except Exception as exc:
                    outcomes = [Failed(exc)] * len(batch)
                except BaseException:
                    # Cancelled (loop shutdown): nobody may wait forever.
                    stopped = Failed(StoreError(f"the {self._name} was stopped"))
                    rest = batch + self._queue
                    self._queue.clear()
                    _answer(rest, [stopped] * len(rest))
                    raise
                _answer(batch, outcomes)
        finally:
            self._flusher = None


def _answer(
    batch: Sequence[tuple[object, asyncio.Future[Result]]],
    outcomes: Sequence[Result | Failed],
) -> None:
    for (_, future), outcome in zip(batch, outcomes, strict=True):
        if future.done():  # the caller was cancelled
            continue
        if isinstance(outcome, Failed):
            future.set_exception(outcome.error)
        else:
            future.set_result(outcome)
