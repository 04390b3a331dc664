"""
One supervisor for the daemon's long-running side tasks.

The claim loop, the lease heartbeat, the PostgreSQL LISTEN connection and the
systemd watchdog each run as a named task here. A task that raises is logged
with its name and error, and started again after a capped, doubling back-off
for as long as the fault lasts: a store outage is a state the daemon is in, not
the end of delivery. A task that returns has finished its work (the claim loop
does once the dispatcher stops) and is not started again. A task shows it is
well by calling `pulse.beat()`; the supervisor reports a task as failing from
its first error until its next beat, which is what `/readyz` and the metrics
read.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pushgw.log import get_logger

log = get_logger("pushgw.supervisor")

FIRST_DELAY_S = 0.1
MAX_DELAY_S = 2.0  # so a fault that clears is noticed within 2 s


@dataclass(slots=True)
class TaskHealth:
    """What the supervisor knows of one task."""

    name: str
    started_at: float
    last_beat: float | None = None  # monotonic time of the last beat
    last_attempt: float = 0.0  # monotonic time the task was last (re)started
    failing_since: float | None = None
    last_error: str | None = None
    failures: int = 0  # errors since the task was first started


class Pulse:
    """Handed to a supervised task: `beat()` says it is making progress."""

    __slots__ = ("_clock", "_health")

    def __init__(self, health: TaskHealth, clock: Callable[[], float]) -> None:
        self._health = health
        self._clock = clock

    def beat(self) -> None:
        health = self._health
        health.last_beat = self._clock()
        if health.failing_since is not None:
            log.info("task_recovered", task=health.name, failures=health.failures)
            health.failing_since = None


TaskFn = Callable[[Pulse], Awaitable[None]]


class Supervisor:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        first_delay_s: float = FIRST_DELAY_S,
        max_delay_s: float = MAX_DELAY_S,
    ) -> None:
        self._clock = clock
        self._first_delay = first_delay_s
        self._max_delay = max_delay_s
        self.health: dict[str, TaskHealth] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = False

    def start(self, name: str, fn: TaskFn) -> None:
        """Run `fn(pulse)` under supervision until `stop()`."""
        if name in self._tasks:
            raise ValueError(f"task {name!r} is already supervised")
        health = TaskHealth(name=name, started_at=self._clock())
        self.health[name] = health
        self._tasks[name] = asyncio.create_task(
            self._keep_running(health, fn), name=name
        )

    async def stop(self) -> None:
        """Cancel every task and wait for them."""
        self._stopping = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def running(self, name: str) -> bool:
        task = self._tasks.get(name)
        return task is not None and not task.done()

    def failing(self, *, longer_than: float = 0.0) -> list[TaskHealth]:
        """Tasks failing (since their last error, with no beat) for that long."""
        now = self._clock()
        return [
            h
            for h in self.health.values()
            if h.failing_since is not None and now - h.failing_since >= longer_than
        ]

    def alive(self, name: str, *, within: float) -> bool:
        """The task beat, or was being retried, in the last `within` seconds."""
        health = self.health.get(name)
        if health is None or not self.running(name):
            return False
        latest = max(health.last_beat or 0.0, health.last_attempt)
        return self._clock() - latest <= within

    async def _keep_running(self, health: TaskHealth, fn: TaskFn) -> None:
        pulse = Pulse(health, self._clock)
        delay = self._first_delay
        while not self._stopping:
            health.last_attempt = self._clock()
            beats_before = health.last_beat
            try:
                await fn(pulse)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure = exc
            else:
                log.info("task_finished", task=health.name)
                return
            error = f"{type(failure).__name__}: {failure}"
            if health.last_beat != beats_before:
                delay = self._first_delay  # it got going before failing again
            health.failures += 1
            health.last_error = error
            if health.failing_since is None:
                health.failing_since = self._clock()
            # Tracebacks while the back-off grows; once it is at its cap (a long
            # outage) one short line per retry, so the log is not flooded.
            log.error(
                "task_failed",
                task=health.name,
                error=error,
                failures=health.failures,
                retry_in_s=round(delay, 3),
                exc_info=failure if delay < self._max_delay else None,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_delay)
