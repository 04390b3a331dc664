"""What one delivery attempt leaves to do for an endpoint."""

from __future__ import annotations

from dataclasses import dataclass

# Work the store interrupted (a read failed before anything was sent) is due
# again after this long.
STORE_RETRY_S = 1.0


@dataclass(frozen=True, slots=True)
class Done:
    """The endpoint needs nothing more for this message."""


@dataclass(frozen=True, slots=True)
class RetryAt:
    at: float
    error: str
    # False: a postponement (a rate or in-flight limit), not a failed attempt.
    counts: bool = True


Decision = Done | RetryAt
DONE = Done()
