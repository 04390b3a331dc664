"""The Supervisor: failing side tasks are restarted, reported, and recover."""

from __future__ import annotations

import asyncio

import pytest

from pushgw.supervisor import Pulse, Supervisor
from tests.tools import eventually


async def test_a_failing_task_is_restarted_and_reported_until_it_beats() -> None:
    """A task that raises is started again with back-off; it counts as failing
    from its first error until it beats again."""
    runs = 0
    healthy = asyncio.Event()

    async def flaky(pulse: Pulse) -> None:
        nonlocal runs
        runs += 1
        if runs <= 3:
            raise OSError(f"store down ({runs})")
        pulse.beat()
        healthy.set()
        await asyncio.sleep(3600)

    supervisor = Supervisor(first_delay_s=0.01, max_delay_s=0.02)
    supervisor.start("claim", flaky)
    try:
        await eventually(lambda: runs >= 2)
        failing = supervisor.failing()
        assert ["claim"] == [h.name for h in failing]
        assert "OSError: store down" in (failing[0].last_error or "")

        await asyncio.wait_for(healthy.wait(), 2)

        assert 4 == runs
        assert [] == supervisor.failing()
        assert 3 == supervisor.health["claim"].failures
        assert supervisor.running("claim")
        assert supervisor.alive("claim", within=1.0)
    finally:
        await supervisor.stop()
    assert not supervisor.running("claim")


async def test_a_task_that_returns_has_finished() -> None:
    """A task that returns (the claim loop once the dispatcher stops) is done:
    not started again, not reported as failing."""
    runs = 0

    async def finishes(pulse: Pulse) -> None:
        nonlocal runs
        runs += 1

    supervisor = Supervisor(first_delay_s=0.01, max_delay_s=0.01)
    supervisor.start("claim", finishes)
    try:
        await eventually(lambda: not supervisor.running("claim"))
        await asyncio.sleep(0.05)
        assert 1 == runs
        assert [] == supervisor.failing()
    finally:
        await supervisor.stop()


async def test_failing_longer_than_filters_by_age() -> None:
    """`failing(longer_than=...)` names only tasks failing for that long."""
    now = [100.0]

    async def broken(pulse: Pulse) -> None:
        raise RuntimeError("bug")

    supervisor = Supervisor(clock=lambda: now[0], first_delay_s=10, max_delay_s=10)
    supervisor.start("heartbeat", broken)
    try:
        await eventually(
            lambda: supervisor.health["heartbeat"].failing_since is not None
        )
        assert [] == supervisor.failing(longer_than=2.0)
        now[0] += 2.5
        assert ["heartbeat"] == [h.name for h in supervisor.failing(longer_than=2.0)]
        # Not beating and not retried for 2.5 s: wedged as far as the watchdog
        # can tell.
        assert not supervisor.alive("heartbeat", within=2.0)
    finally:
        await supervisor.stop()


async def test_stop_cancels_tasks_and_a_name_is_supervised_once() -> None:
    """stop() ends every task; starting the same name twice is refused."""

    async def forever(pulse: Pulse) -> None:
        pulse.beat()
        await asyncio.sleep(3600)

    supervisor = Supervisor()
    supervisor.start("a", forever)
    with pytest.raises(ValueError, match="already supervised"):
        supervisor.start("a", forever)
    await asyncio.sleep(0)
    await supervisor.stop()
    assert not supervisor.running("a")
