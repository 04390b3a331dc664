"""Retry policy: exponential back-off with full jitter, never before Retry-After."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_s: float = 1.0
    max_s: float = 300.0

    def delay(self, attempt: int, *, retry_after: float | None = None) -> float:
        """
        Seconds to wait before attempt number `attempt + 1` (attempt >= 1).

        Full jitter (AWS architecture blog "Exponential Backoff And Jitter") keeps
        a thundering herd of retries from arriving together; Retry-After is a floor.
        """
        ceiling = min(self.max_s, self.base_s * 2 ** max(0, attempt - 1))
        delay = random.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay
