"""Retry back-off and the per-application circuit breaker (pure logic)."""

from __future__ import annotations

import pytest

from pushgw.delivery.providers import AppGate
from pushgw.delivery.retry import RetryPolicy


@pytest.mark.parametrize("attempt", [1, 2, 3, 8, 20])
def test_delay_is_jittered_within_the_exponential_ceiling(attempt: int) -> None:
    """Attempt n waits between half and all of min(max, base * 2**(n-1))."""
    policy = RetryPolicy(base_s=1.0, max_s=60.0)
    ceiling = min(60.0, 2.0 ** (attempt - 1))

    delays = [policy.delay(attempt) for _ in range(200)]

    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1  # jitter


def test_delay_is_never_sooner_than_retry_after() -> None:
    """A provider's Retry-After is a floor under the back-off."""
    policy = RetryPolicy(base_s=1.0, max_s=60.0)

    assert all(policy.delay(1, retry_after=30.0) >= 30.0 for _ in range(100))


def test_app_pauses_only_after_consecutive_failures() -> None:
    """Below the threshold nothing pauses; at it the app pauses for the base time."""
    gate = AppGate(limit=10, pause_s=5.0, max_pause_s=300.0, threshold=3)

    gate.failure(100.0, None)
    gate.failure(100.0, None)
    assert 0.0 == gate.paused_until

    gate.failure(100.0, None)
    assert 105.0 == gate.paused_until


def test_answers_in_flight_during_a_pause_do_not_lengthen_it() -> None:
    """Failures that arrive while paused (sends already in flight) are not escalation."""
    gate = AppGate(limit=10, pause_s=5.0, max_pause_s=300.0, threshold=1)
    gate.failure(100.0, None)

    for _ in range(50):
        gate.failure(101.0, None)

    assert 105.0 == gate.paused_until


def test_failed_probe_doubles_the_pause_and_success_resets() -> None:
    """A failure after the pause doubles the next pause; a success clears the state."""
    gate = AppGate(limit=10, pause_s=5.0, max_pause_s=300.0, threshold=1)
    gate.failure(100.0, None)
    gate.failure(106.0, None)
    assert 116.0 == gate.paused_until

    gate.success()
    gate.failure(200.0, retry_after=30.0)

    assert 230.0 == gate.paused_until
