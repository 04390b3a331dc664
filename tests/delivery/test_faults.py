"""
The delivery engine under faults, in process: a store that fails while `down`,
poison messages and adapter bugs. Nothing accepted is lost, nothing is sent
twice for a failed ack, and our own bugs never pause an application.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from pushgw.delivery import dispatcher as dispatcher_module
from pushgw.delivery.dispatcher import CLAIM_TASK
from pushgw.errors import StoreUnavailableError
from pushgw.providers.fake import FakeProvider
from pushgw.service.types import PublishInput
from pushgw.store.memory import InMemoryStore
from pushgw.supervisor import Supervisor
from tests.delivery.test_dispatcher import Rig, make_rig


class FlakyStore(InMemoryStore):
    """The memory store, failing the named calls while `down` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.down: set[str] = set()
        self.failures: dict[str, int] = {}
        self.fail_once: set[str] = set()

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if name.startswith("_") or not callable(attr):
            return attr
        down = super().__getattribute__("down")
        once = super().__getattribute__("fail_once")
        if name not in down and name not in once and "*" not in down:
            return attr
        failures = super().__getattribute__("failures")

        async def failing(*args: Any, **kwargs: Any) -> Any:
            if name in once:
                once.discard(name)
                failures[name] = failures.get(name, 0) + 1
                if name == "complete_job":  # committed, but the answer was lost
                    await attr(*args, **kwargs)
                raise StoreUnavailableError(f"{name}: connection lost")
            failures[name] = failures.get(name, 0) + 1
            raise StoreUnavailableError(f"{name}: database or disk is full")

        return failing


@dataclass
class FaultRig:
    rig: Rig
    store: FlakyStore
    supervisor: Supervisor

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rig, name)


@pytest.fixture(name="rig")
async def _rig() -> AsyncIterator[FaultRig]:
    store = FlakyStore()
    rig = await make_rig(store, lease_s=0.6)
    supervisor = Supervisor(first_delay_s=0.01, max_delay_s=0.05)
    rig.dispatcher.supervise(supervisor)
    yield FaultRig(rig, store, supervisor)
    store.down.clear()
    await rig.dispatcher.stop(1.0)
    await supervisor.stop()


async def wait_for(check: Callable[[], bool], limit_s: float = 5.0) -> None:
    for _ in range(int(limit_s / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not true within {limit_s} s")


async def publish(rig: FaultRig, target: str, message: str) -> None:
    await rig.service.publish(PublishInput(message=message, target_arn=target))


async def test_a_store_outage_is_ridden_out_and_everything_is_delivered(
    rig: FaultRig,
) -> None:
    """Claims failing for a while (disk full) stop nothing for good: the claim
    loop is retried, reported as failing meanwhile, and delivers once the
    store is back, without a restart."""
    arns = [await rig.endpoint(f"good-{n}") for n in range(5)]
    # Publishes that wait for a claim: not handed to the dispatcher in memory.
    rig.service.delivery = None
    rig.store.down.add("claim_jobs")
    for n, arn in enumerate(arns):
        await publish(rig, arn, f"m{n}")
    await wait_for(lambda: rig.store.failures.get("claim_jobs", 0) >= 3)
    await wait_for(lambda: bool(rig.supervisor.failing()))
    assert [] == FakeProvider.sent
    assert CLAIM_TASK in {h.name for h in rig.supervisor.failing()}

    rig.store.down.clear()
    await rig.settle()

    assert sorted(f"m{n}" for n in range(5)) == sorted(
        d.message.body for d in FakeProvider.sent
    )
    await wait_for(lambda: not rig.supervisor.failing())


async def test_a_lost_ack_is_retried_not_resent(rig: FaultRig) -> None:
    """complete_job committed but its answer lost (a cut connection): the ack is
    tried again, and the message is sent exactly once."""
    arn = await rig.endpoint("good-1")
    rig.store.fail_once.add("complete_job")

    await publish(rig, arn, "once")
    await rig.settle()

    assert ["once"] == [d.message.body for d in FakeProvider.sent]
    assert 1 == rig.store.failures["complete_job"]


async def test_acks_wait_out_an_outage_with_the_lease_kept(rig: FaultRig) -> None:
    """Every ack failing for longer than the lease: the job stays active here,
    is not claimed and sent again when its lease lapses, and completes once
    the store is back."""
    arn = await rig.endpoint("good-1")
    rig.store.down |= {"complete_job", "extend_leases"}
    await publish(rig, arn, "kept")
    await wait_for(lambda: rig.store.failures.get("complete_job", 0) >= 3)
    await asyncio.sleep(1.0)  # past lease_s = 0.6: the lease lapses

    rig.store.down.clear()
    await rig.settle()

    assert ["kept"] == [d.message.body for d in FakeProvider.sent]


async def test_a_fanout_rides_out_failed_reads_and_progress_saves(
    rig: FaultRig,
) -> None:
    """Mid fan-out, progress saves and the app's read fail for a while: every
    subscriber still gets the message (sends the store interrupted become
    endpoint jobs), none is lost."""
    topic = await rig.service.create_topic(name="t", attributes=None, tags=None)
    tokens = [f"good-{n:02d}" for n in range(25)]
    for token in tokens:
        await rig.service.subscribe(
            topic_arn=topic,
            protocol="application",
            endpoint=await rig.endpoint(token),
            attributes=None,
        )
    rig.dispatcher._apps.clear()
    rig.store.down |= {"save_progress", "get_app"}

    await rig.service.publish(PublishInput(message="all", topic_arn=topic))
    await wait_for(lambda: rig.store.failures.get("get_app", 0) >= 5)
    rig.store.down.clear()
    await rig.settle()

    assert sorted(tokens) == sorted({d.token for d in FakeProvider.sent})


async def test_a_poison_message_fails_alone_and_never_pauses_the_app(
    rig: FaultRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message our code cannot render is a permanent failure for its endpoint,
    with no retry and no circuit-breaker count; the next message to another
    endpoint of the same app goes straight out."""
    real_render = dispatcher_module.render

    def render(message: Any, platform: Any) -> Any:
        if message.body == "poison":
            raise RecursionError("maximum recursion depth exceeded")
        return real_render(message, platform)

    monkeypatch.setattr(dispatcher_module, "render", render)
    poisoned = await rig.endpoint("good-poisoned")
    healthy = await rig.endpoint("good-healthy")

    for _ in range(6):  # more than the breaker's threshold
        await publish(rig, poisoned, "poison")
    await publish(rig, healthy, "fine")
    await rig.settle()

    assert ["fine"] == [d.message.body for d in FakeProvider.sent]
    assert 6 == rig.dispatcher.stats["failed_DeliveryFailedPerm"]
    assert 0 == rig.dispatcher.stats["retries_scheduled"]
    gate = rig.dispatcher._gate(rig.app_arn)
    assert 0 == gate.failures and 0 == gate.paused_until
    endpoint = await rig.store.get_endpoint(poisoned)
    assert endpoint is not None and endpoint.enabled


async def test_an_adapter_bug_is_permanent_and_never_pauses_the_app(
    rig: FaultRig,
) -> None:
    """An exception raised by adapter code (not a provider answer) fails that
    delivery permanently; the app is not paused."""
    crashing = await rig.endpoint("crash-1")
    healthy = await rig.endpoint("good-1")

    for _ in range(6):
        await publish(rig, crashing, "boom")
    await publish(rig, healthy, "fine")
    await rig.settle()

    assert ["fine"] == [d.message.body for d in FakeProvider.sent]
    assert 6 == rig.dispatcher.stats["adapter_errors"]
    assert 0 == rig.dispatcher._gate(rig.app_arn).paused_until
