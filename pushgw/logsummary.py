"""
Repeated failures as a few log lines, not one per attempt.

A provider outage makes thousands of attempts fail the same way. `RepeatedLog`
logs the first occurrence of each (event, key, reason) at once, then counts the
repeats and logs one summary line per key and interval with the count, the
first and last time seen and one example's details. A supervised task calls
`flush()` every interval, so a burst that stops is still summarised.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_INTERVAL_S = 10.0
MAX_KEYS = 10_000  # distinct (event, key, reason) kept between flushes


@dataclass(slots=True)
class _Window:
    first_at: float
    last_at: float
    repeats: int = 0
    example: dict[str, Any] = field(default_factory=dict)


class RepeatedLog:
    def __init__(
        self,
        log: Any,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        level: str = "warning",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.interval_s = interval_s
        self.level = level
        self.clock = clock
        self._windows: dict[tuple[str, str, str], _Window] = {}
        self.dropped = 0  # repeats not summarised because MAX_KEYS was reached

    def note(self, event: str, *, key: str, reason: str, **details: Any) -> None:
        """One occurrence: logged now if it is the first of its window."""
        ident = (event, key, reason)
        now = self.clock()
        window = self._windows.get(ident)
        if window is None:
            if len(self._windows) >= MAX_KEYS:
                self.dropped += 1
                return
            self._windows[ident] = _Window(now, now, example=details)
            self._emit(event, key=key, reason=reason, **details)
            return
        window.repeats += 1
        window.last_at = now

    def flush(self) -> None:
        """Summarise the windows older than the interval (and forget them)."""
        now = self.clock()
        if self.dropped:
            # More distinct failures than windows: say how many went unlogged.
            self._emit("log_summary_full", unlogged=self.dropped, max_keys=MAX_KEYS)
            self.dropped = 0
        for ident, window in list(self._windows.items()):
            if now - window.first_at < self.interval_s:
                continue
            del self._windows[ident]
            if window.repeats:
                event, key, reason = ident
                self._emit(
                    f"{event}_repeated",
                    key=key,
                    reason=reason,
                    repeats=window.repeats,
                    over_s=round(window.last_at - window.first_at, 3),
                    **window.example,
                )

    def _emit(self, event: str, **fields: Any) -> None:
        getattr(self.log, self.level)(event, **fields)
