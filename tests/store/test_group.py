"""
Group commit (pushgw/store/group.py), with a commit function that the test
holds back: batching, per-item and whole-batch failures, and shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import pytest

from pushgw.errors import StoreError
from pushgw.store.group import Failed, GroupCommit


class HeldCommit:
    """Records each batch; each commit waits until `release` is set."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, items: list[int]) -> Sequence[int | Failed]:
        self.batches.append(items)
        self.started.set()
        await self.release.wait()
        if -1 in items:
            raise OSError("the batch failed")
        return [Failed(ValueError(i)) if i < 0 else i * 10 for i in items]


@pytest.fixture(name="held")
def _held() -> HeldCommit:
    return HeldCommit()


async def test_items_arriving_during_a_commit_share_the_next_batch(
    held: HeldCommit,
) -> None:
    """While one batch commits, new items queue; they then go in one batch, at
    most `max_batch` at a time, and each caller gets its own outcome."""
    group: GroupCommit[int, int] = GroupCommit(held, max_batch=3, name="test")
    first = asyncio.create_task(group.submit(1))
    await asyncio.wait_for(held.started.wait(), 2)
    rest = [asyncio.create_task(group.submit(n)) for n in range(2, 7)]
    await asyncio.sleep(0)  # one loop turn: the new tasks queue their items

    held.release.set()
    results = await asyncio.wait_for(asyncio.gather(first, *rest), 2)

    assert [10, 20, 30, 40, 50, 60] == results
    assert [[1], [2, 3, 4], [5, 6]] == held.batches


async def test_one_item_fails_alone_a_raising_commit_fails_its_batch(
    held: HeldCommit,
) -> None:
    """A Failed outcome fails only its caller; an exception from commit fails
    every caller of that batch, and the next batch still runs."""
    group: GroupCommit[int, int] = GroupCommit(held, max_batch=2, name="test")
    held.release.set()

    results = await asyncio.gather(
        group.submit(1),
        group.submit(-2),
        group.submit(-1),
        group.submit(4),
        group.submit(5),
        return_exceptions=True,
    )

    assert 10 == results[0]
    assert isinstance(results[1], ValueError)
    assert isinstance(results[2], OSError) and isinstance(results[3], OSError)
    assert 50 == results[4]


async def test_a_stopped_flusher_fails_every_waiting_caller(held: HeldCommit) -> None:
    """Cancelling the batch in flight (loop shutdown) answers its callers and
    the queued ones with StoreError instead of leaving them waiting."""
    group: GroupCommit[int, int] = GroupCommit(held, max_batch=1, name="test")
    callers = [asyncio.create_task(group.submit(n)) for n in (1, 2)]
    await asyncio.wait_for(held.started.wait(), 2)
    flusher = next(t for t in asyncio.all_tasks() if t.get_name() == "test")

    flusher.cancel()
    results = await asyncio.gather(*callers, return_exceptions=True)

    assert all(isinstance(r, StoreError) for r in results)
    assert "the test was stopped" == str(results[0])
    with contextlib.suppress(asyncio.CancelledError):
        await flusher


async def test_a_cancelled_callers_item_is_still_committed(held: HeldCommit) -> None:
    """A caller that gives up does not take its item out of the batch."""
    group: GroupCommit[int, int] = GroupCommit(held, max_batch=10, name="test")
    blocker = asyncio.create_task(group.submit(1))
    await asyncio.wait_for(held.started.wait(), 2)
    gone = asyncio.create_task(group.submit(2))
    await asyncio.sleep(0)  # one loop turn: the task queues its item
    gone.cancel()

    held.release.set()
    await group.drain()

    assert 10 == await blocker
    assert [[1], [2]] == held.batches


async def test_a_lingering_item_waits_for_company_or_its_time() -> None:
    """An item with linger_s does not start a batch at once: it waits that long,
    or goes with the next item submitted without linger."""
    batches: list[list[int]] = []

    async def commit(items: list[int]) -> Sequence[int | Failed]:
        batches.append(items)
        return items

    group: GroupCommit[int, int] = GroupCommit(commit, max_batch=10, name="test")
    lingering = asyncio.create_task(group.submit(1, linger_s=10.0))
    await asyncio.sleep(0.01)
    assert [] == batches

    assert [2, 1] == await asyncio.wait_for(
        asyncio.gather(group.submit(2), lingering), 2
    )
    assert [[1, 2]] == batches

    alone = await asyncio.wait_for(group.submit(3, linger_s=0.01), 2)
    assert (3, [[1, 2], [3]]) == (alone, batches)


async def test_drain_does_not_wait_out_a_linger() -> None:
    """drain() flushes a lingering item at once."""
    group: GroupCommit[int, int] = GroupCommit(
        lambda items: asyncio.sleep(0, items), max_batch=10, name="test"
    )
    lingering = asyncio.create_task(group.submit(1, linger_s=60.0))
    await asyncio.sleep(0)

    await asyncio.wait_for(group.drain(), 2)

    assert 1 == await asyncio.wait_for(lingering, 2)
