"""The FIFO limiter of sends in flight (pushgw/limiter.py)."""

from __future__ import annotations

import asyncio

import pytest

from pushgw.limiter import Limiter


async def test_holds_at_most_limit_and_serves_in_arrival_order() -> None:
    limiter = Limiter(2)
    order: list[int] = []
    gate = asyncio.Event()
    peak = 0

    async def work(i: int) -> None:
        nonlocal peak
        async with limiter:
            order.append(i)
            peak = max(peak, limiter.in_use)
            await gate.wait()

    tasks = [asyncio.create_task(work(i)) for i in range(6)]
    await asyncio.sleep(0)
    assert order == [0, 1] and limiter.in_use == 2 and limiter.waiting == 4
    gate.set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4, 5]
    assert peak == 2 and limiter.in_use == 0 and limiter.waiting == 0


async def test_a_cancelled_waiter_takes_no_permit() -> None:
    limiter = Limiter(1)
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    later = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.sleep(0)
    limiter.release()  # goes past the cancelled waiter to the next one
    await asyncio.wait_for(later, 1)
    assert waiter.cancelled() and limiter.in_use == 1
    limiter.release()
    assert limiter.in_use == 0


async def test_a_permit_handed_to_a_task_cancelled_before_it_ran_is_passed_on() -> None:
    limiter = Limiter(1)
    await limiter.acquire()
    first = asyncio.create_task(limiter.acquire())
    second = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    limiter.release()  # handed to `first` ...
    first.cancel()  # ... which is cancelled before it resumes
    await asyncio.wait_for(second, 1)
    assert first.cancelled() and limiter.in_use == 1
    limiter.release()
    assert limiter.in_use == 0


async def test_release_without_acquire_is_a_bug() -> None:
    limiter = Limiter(1)
    with pytest.raises(RuntimeError):
        limiter.release()
    with pytest.raises(ValueError):
        Limiter(0)
