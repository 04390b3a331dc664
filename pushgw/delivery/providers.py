"""Adapters per platform application, and per-app send limits and back-off."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pushgw.limiter import Limiter
from pushgw.log import get_logger
from pushgw.model import PlatformApplication
from pushgw.providers.base import Provider

log = get_logger("pushgw.delivery")

ProviderFactory = Callable[[PlatformApplication], Awaitable[Provider]]


def _identity(app: PlatformApplication) -> tuple[object, ...]:
    """What forces a new adapter: changed credentials or Apple attributes."""
    return (app.principal, app.credential, tuple(sorted(app.attributes.items())))


class ProviderPool:
    """One adapter per application, rebuilt when its credentials change."""

    def __init__(self, factory: ProviderFactory) -> None:
        self._factory = factory
        self._adapters: dict[str, tuple[tuple[object, ...], Provider]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._retired: set[asyncio.Task[None]] = set()

    async def get(self, app: PlatformApplication) -> Provider:
        identity = _identity(app)
        entry = self._adapters.get(app.arn)
        if entry is not None and entry[0] == identity:
            return entry[1]
        async with self._locks.setdefault(app.arn, asyncio.Lock()):
            entry = self._adapters.get(app.arn)
            if entry is not None and entry[0] == identity:
                return entry[1]
            adapter = await self._factory(app)
            self._adapters[app.arn] = (identity, adapter)
            if entry is not None:
                self._close_later(entry[1])
            return adapter

    def _close_later(self, adapter: Provider) -> None:
        """Close a replaced adapter after its in-flight sends had time to finish."""

        async def close() -> None:
            await asyncio.sleep(30)
            await adapter.aclose()

        task = asyncio.create_task(close(), name="provider-retire")
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    async def aclose(self) -> None:
        for task in list(self._retired):
            task.cancel()
        for _, adapter in self._adapters.values():
            with contextlib.suppress(Exception):
                await adapter.aclose()
        self._adapters.clear()


@dataclass(slots=True)
class AppGate:
    """
    Per-application cap on sends in flight, and a circuit breaker: after
    `threshold` transient failures in a row the app pauses, so a provider that
    answers 503 to everything slows the whole app down, not only one token.
    """

    limit: int
    pause_s: float
    max_pause_s: float
    threshold: int = 5
    semaphore: Limiter = field(init=False)
    failures: int = 0
    pauses: int = 0  # pauses in a row; each one twice as long
    paused_until: float = 0.0

    def __post_init__(self) -> None:
        self.semaphore = Limiter(self.limit)

    def success(self) -> None:
        self.failures = 0
        self.pauses = 0

    def failure(self, now: float, retry_after: float | None) -> None:
        """Count a transient failure; pause the app after `threshold` in a row.

        Answers to sends already in flight when a pause starts do not lengthen
        it: only a failure after the pause ended (a probe) doubles the next one.
        """
        self.failures += 1
        if self.failures < self.threshold or now < self.paused_until:
            return
        pause = min(self.max_pause_s, self.pause_s * 2**self.pauses)
        if retry_after is not None:
            pause = max(pause, retry_after)
        self.pauses += 1
        self.paused_until = now + pause
