"""What one delivery attempt leaves to do for an endpoint."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Done:
    """The endpoint needs nothing more for this message."""


@dataclass(frozen=True, slots=True)
class RetryAt:
    at: float
    error: str


Decision = Done | RetryAt
DONE = Done()
