"""
A FIFO limit on concurrent work whose release is O(1).

`asyncio.Semaphore` (3.11) wakes a waiter by scanning its deque past the
futures already woken but not yet run: when a batch of HTTP/2 responses
releases hundreds of permits in one loop iteration, every release walks over
all the earlier ones. A fan-out with ~750 sends queued on a 256-send app gate
spent ~115 `Future.done()` calls per delivery there (cProfile, `pushgw bench
--scenario fanout-apns --profile`). Here a release hands its permit straight
to the oldest live waiter, which it pops.
"""

from __future__ import annotations

import asyncio
import collections
from types import TracebackType


class Limiter:
    """At most `limit` holders at once; waiters are served first come, first
    served. Use `async with limiter:` or `acquire()` / `release()`."""

    __slots__ = ("_free", "_waiters", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a limit is at least 1")
        self.limit = limit
        self._free = limit
        # Invariant: `_free > 0` only while no waiter is queued (a release
        # hands its permit over before it counts one free).
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def in_use(self) -> int:
        """Permits held (handed-over ones included)."""
        return self.limit - self._free

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._waiters if not f.done())

    async def acquire(self) -> None:
        if self._free > 0:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # handed a permit, then cancelled: pass it on
            raise

    def release(self) -> None:
        waiters = self._waiters
        while waiters:
            future = waiters.popleft()
            if not future.done():  # a cancelled waiter is just dropped
                future.set_result(None)
                return
        if self._free >= self.limit:
            raise RuntimeError("Limiter released more often than acquired")
        self._free += 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
