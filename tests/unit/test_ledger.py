"""The delivery ledger's observer: aggregation, flushing, store outages, shutdown."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest
import structlog

from pushgw.config import LedgerConfig, config_from_mapping
from pushgw.daemon import Gateway
from pushgw.delivery.observe import Attempt, Finished
from pushgw.errors import StoreError, StoreUnavailableError
from pushgw.ledger import Ledger
from pushgw.model import Endpoint, Message, Platform, PlatformApplication
from pushgw.providers.base import Provider
from pushgw.providers.fake import FakeProvider
from pushgw.service.types import PublishInput
from pushgw.store.ledger_model import DeliveryFilter, LedgerBatch
from pushgw.store.memory import InMemoryStore
from pushgw.supervisor import Supervisor

NOW = 1_700_000_040.0
APP = PlatformApplication(
    arn="arn:aws:sns:us-east-1:123456789012:app/APNS/ios",
    name="ios",
    platform=Platform.APNS,
    principal="",
    credential="key",
)


def endpoint(n: int) -> Endpoint:
    return Endpoint(
        arn=f"arn:aws:sns:us-east-1:123456789012:endpoint/APNS/ios/{n}",
        app_arn=APP.arn,
        token=f"token-{n}",
    )


def message(n: int = 1) -> Message:
    return Message(
        id=f"message-{n}",
        body="hi",
        topic_arn="arn:aws:sns:us-east-1:123456789012:news",
        created_at=NOW - 5,
    )


def finished(
    n: int = 1,
    status: str = "delivered",
    *,
    msg: Message | None = None,
    at: float = NOW,
    sampled: bool = False,
) -> Finished:
    failure = {"failed": "InvalidPlatformToken", "expired": "NotificationTTLExpired"}
    return Finished(
        message=msg or message(),
        platform=APP.platform.value,
        endpoint_arn=endpoint(n).arn,
        app_arn=APP.arn,
        status=status,  # type: ignore[arg-type]
        failure_type=failure.get(status),
        reason="410 Unregistered" if status == "failed" else "ok",
        provider_status=410 if status == "failed" else 200,
        attempts=1,
        at=at,
        sampled=sampled,
    )


def attempt(msg: Message | None = None, *, at: float = NOW) -> Attempt:
    return Attempt("APNS", "retry", 503, 0.01, message=msg or message(), at=at)


class FlakyStore(InMemoryStore):
    """The memory store whose ledger writes fail while `down` (or `broken`)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.broken = False
        self.attempts = 0

    async def record_ledger(self, batch: LedgerBatch) -> None:
        self.attempts += 1
        if self.broken:
            raise StoreError("a constraint failed")
        if self.down:
            raise StoreUnavailableError("database is locked")
        await super().record_ledger(batch)


async def wait_for(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_outcomes_aggregate_per_message_and_minute() -> None:
    """Counters per message (platform, status, failure type) and per minute;
    first and last seen times; a record per failure and sampled success."""
    ledger = Ledger(InMemoryStore(), LedgerConfig())
    ledger.finished(finished(1, at=NOW + 30))
    ledger.finished(finished(2, at=NOW - 10))
    ledger.finished(finished(3, "failed", at=NOW + 1))
    ledger.finished(finished(4, sampled=True))
    ledger.finished(finished(5, "expired", msg=message(2), at=NOW + 70))

    batch = ledger.take()

    one, two = sorted(batch.messages, key=lambda m: m.message_id)
    assert {
        ("APNS", "delivered", None): 3,
        ("APNS", "failed", "InvalidPlatformToken"): 1,
    } == one.counts
    assert (NOW - 10, NOW + 30) == (one.first_at, one.last_at)
    assert (None, None) == (one.first_attempt_at, one.last_attempt_at)  # no sends
    assert {("APNS", "expired", "NotificationTTLExpired"): 1} == two.counts
    minute = int(NOW // 60) * 60
    assert {
        (minute, "APNS", "delivered"): 2,
        (minute - 60, "APNS", "delivered"): 1,
        (minute, "APNS", "failed"): 1,
        (minute + 60, "APNS", "expired"): 1,
    } == batch.rollup
    assert ["failed", "delivered", "expired"] == [d.status for d in batch.deliveries]
    assert ["message-1", "message-2"] == sorted(m.id for m in batch.dead_messages)
    assert not ledger.pending
    assert not ledger.take()


def test_attempts_give_first_and_last_attempt_times() -> None:
    """Each send widens its message's attempt times, outcome or not: a message
    still retrying has them and no counts; a send of no message (an HTTP
    confirmation) is not the ledger's."""
    ledger = Ledger(InMemoryStore(), LedgerConfig())
    ledger.attempt(attempt(at=NOW + 3))
    ledger.attempt(attempt(at=NOW + 1))
    ledger.attempt(attempt(at=NOW + 2))
    ledger.finished(finished(1, at=NOW + 9))
    ledger.attempt(attempt(message(2), at=NOW + 5))
    ledger.attempt(Attempt("https", "delivered", 200, 0.01))

    one, two = sorted(ledger.take().messages, key=lambda m: m.message_id)

    assert (NOW + 1, NOW + 3) == (one.first_attempt_at, one.last_attempt_at)
    assert (NOW + 1, NOW + 9) == (one.first_at, one.last_at)
    assert {("APNS", "delivered", None): 1} == one.counts
    assert (NOW + 5, NOW + 5, {}) == (
        two.first_attempt_at,
        two.last_attempt_at,
        two.counts,
    )


async def test_attempt_times_are_flushed_into_the_message_row() -> None:
    """Flush after flush the stored attempt times widen (min and max)."""
    store = InMemoryStore()
    ledger = Ledger(store, LedgerConfig())
    ledger.attempt(attempt(at=NOW + 2))
    assert await ledger.flush()
    retrying = await store.get_message_ledger("message-1")
    ledger.attempt(attempt(at=NOW + 1))
    ledger.attempt(attempt(at=NOW + 4))
    ledger.finished(finished(1, at=NOW + 4))
    assert await ledger.flush()
    done = await store.get_message_ledger("message-1")

    assert retrying is not None and done is not None
    assert (NOW + 2, NOW + 2, []) == (
        retrying.first_attempt_at,
        retrying.last_attempt_at,
        retrying.counts,
    )
    assert (NOW + 1, NOW + 4) == (done.first_attempt_at, done.last_attempt_at)


def test_a_subscription_s_outcome_is_recorded_without_an_app() -> None:
    """An HTTP/HTTPS subscription's failure: counted under its protocol, a
    dead letter whose endpoint is the subscription and app none ("")."""
    ledger = Ledger(InMemoryStore(), LedgerConfig())
    sub = "arn:aws:sns:us-east-1:123456789012:news:hook"
    ledger.finished(
        Finished(
            message=message(),
            platform="https",
            endpoint_arn=sub,
            app_arn=None,
            status="failed",
            failure_type="DeliveryPolicyExhausted",
            reason="HTTP 500",
            provider_status=500,
            attempts=4,
            at=NOW,
        )
    )

    batch = ledger.take()

    assert {("https", "failed", "DeliveryPolicyExhausted"): 1} == (
        batch.messages[0].counts
    )
    (record,) = batch.deliveries
    assert (sub, "", "https", 500, 4) == (
        record.endpoint_arn,
        record.app_arn,
        record.platform,
        record.provider_status,
        record.attempts,
    )
    assert record.subscription and record.dead_letter
    assert ["message-1"] == [m.id for m in batch.dead_messages]


def test_a_big_fan_out_adds_counters_not_rows() -> None:
    """100,000 sends and deliveries of one message: one message entry, one
    rollup key, no rows (successes are recorded only when sampled)."""
    ledger = Ledger(InMemoryStore(), LedgerConfig())
    for n in range(100_000):
        ledger.attempt(attempt(at=NOW + n / 1000))
        ledger.finished(finished(n))

    batch = ledger.take()

    assert 1 == len(batch.messages)
    assert (NOW, NOW + 99.999) == (
        batch.messages[0].first_attempt_at,
        batch.messages[0].last_attempt_at,
    )
    assert {("APNS", "delivered", None): 100_000} == batch.messages[0].counts
    assert [100_000] == list(batch.rollup.values())
    assert [] == list(batch.deliveries)
    assert [] == list(batch.dead_messages)


def test_record_successes_records_every_one() -> None:
    """`[ledger] record_successes = true`: a row per success, sampled or not."""
    ledger = Ledger(InMemoryStore(), LedgerConfig(record_successes=True))
    for n in range(3):
        ledger.finished(finished(n))

    assert 3 == len(ledger.take().deliveries)


async def test_flush_writes_one_batch_to_the_store() -> None:
    store = InMemoryStore()
    ledger = Ledger(store, LedgerConfig())
    ledger.finished(finished(1))
    ledger.finished(finished(2, "failed"))

    assert await ledger.flush()

    counted = await store.get_message_ledger("message-1")
    assert counted is not None
    assert {"delivered": 1, "failed": 1} == {c.status: c.count for c in counted.counts}
    page = await store.list_deliveries(DeliveryFilter(), before=None, limit=10)
    assert ["failed"] == [d.status for d in page.items]
    assert 1 == ledger.flushes


async def test_outage_keeps_counting_and_bounds_the_records() -> None:
    """While the store refuses writes, the flush is retried, counters keep
    aggregating, and records beyond the buffer are dropped (one warning);
    once the store is back everything counted is written, exactly once."""
    store = FlakyStore()
    store.down = True
    ledger = Ledger(store, LedgerConfig(), flush_s=0.01, buffer_rows=5)
    supervisor = Supervisor()
    supervisor.start("ledger-flush", ledger.run)
    try:
        with structlog.testing.capture_logs() as logs:
            for n in range(3):
                ledger.finished(finished(n, "failed"))
            await wait_for(lambda: store.attempts >= 3)  # the first batch, retried
            for n in range(3, 10):
                ledger.finished(finished(n, "failed"))
            for n in range(1000):
                ledger.finished(finished(n))
            store.down = False
            await wait_for(lambda: not ledger.pending and ledger.flushes >= 2)
    finally:
        await supervisor.stop()

    counted = await store.get_message_ledger("message-1")
    assert counted is not None
    assert {"delivered": 1000, "failed": 10} == {
        c.status: c.count for c in counted.counts
    }
    page = await store.list_deliveries(DeliveryFilter(), before=None, limit=100)
    assert 5 == len(page.items)
    assert 5 == ledger.rows_dropped
    events = [e["event"] for e in logs]
    assert 1 == events.count("ledger_records_dropped")
    assert "ledger_flush_deferred" in events
    assert "ledger_flush_recovered" in events
    assert not supervisor.failing()


async def test_a_write_the_store_refuses_for_good_is_dropped() -> None:
    """A non-transient store error drops that batch (logged); later flushes go on."""
    store = FlakyStore()
    store.broken = True
    ledger = Ledger(store, LedgerConfig())
    ledger.finished(finished(1, "failed"))

    with structlog.testing.capture_logs() as logs:
        assert not await ledger.flush()
    store.broken = False
    ledger.finished(finished(2, "failed"))
    assert await ledger.flush()

    assert {"ledger_flush_failed", "ledger_batch_lost"} <= {e["event"] for e in logs}
    page = await store.list_deliveries(DeliveryFilter(), before=None, limit=10)
    assert [endpoint(2).arn] == [d.endpoint_arn for d in page.items]


async def test_drain_writes_what_is_left() -> None:
    """Shutdown: what gathered since the last flush is written; the flush task
    ends."""
    store = InMemoryStore()
    ledger = Ledger(store, LedgerConfig(), flush_s=3600)
    supervisor = Supervisor()
    supervisor.start("ledger-flush", ledger.run)
    ledger.finished(finished(1, "expired"))

    await ledger.drain()
    await wait_for(lambda: not supervisor.running("ledger-flush"))
    await supervisor.stop()

    page = await store.list_deliveries(DeliveryFilter(), before=None, limit=10)
    assert ["expired"] == [d.status for d in page.items]


async def test_drain_gives_up_when_the_store_stays_down() -> None:
    store = FlakyStore()
    store.down = True
    ledger = Ledger(store, LedgerConfig())
    ledger.finished(finished(1, "failed"))

    with structlog.testing.capture_logs() as logs:
        async with asyncio.timeout(5):
            await ledger.drain(timeout_s=0.2)

    assert "ledger_batch_lost" in [e["event"] for e in logs]
    assert 1 == ledger.rows_dropped


async def test_prune_applies_the_retention_in_bounded_rounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Old records go, in as many bounded rounds as it takes."""
    monkeypatch.setattr("pushgw.ledger.PRUNE_BATCH", 4)
    store = InMemoryStore()
    clock = [NOW]
    ledger = Ledger(store, LedgerConfig(retention_s=60), clock=lambda: clock[0])
    for n in range(10):
        ledger.finished(finished(n, "failed"))
    await ledger.flush()
    clock[0] = NOW + 30

    assert 0 == await ledger.prune()
    clock[0] = NOW + 61
    gone = await ledger.prune()

    assert gone >= 10 + 1 + 1  # records, the message's counters, its copy
    page = await store.list_deliveries(DeliveryFilter(), before=None, limit=100)
    assert [] == page.items
    assert None is await store.get_message_ledger("message-1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_gateway_records_deliveries_and_flushes_on_stop() -> None:
    """The daemon's dispatcher reports to the ledger; stopping the daemon
    writes the last outcomes before the store is closed."""
    FakeProvider.reset()
    config = config_from_mapping(
        {
            "store": {"url": "memory:"},
            "server": {"port": free_port()},
            "delivery": {"poll_interval_s": 0.05},
        }
    )

    async def fake(app: PlatformApplication) -> Provider:
        return FakeProvider(app=app, settings=None)  # type: ignore[arg-type]

    gateway = Gateway(config, provider_factory=fake)
    gateway.ledger.flush_s = 3600.0  # only the drain at stop writes
    store = gateway.store
    assert isinstance(store, InMemoryStore)
    await gateway.start()
    closed: list[Any] = []
    try:
        service = gateway.service
        arn = await service.create_platform_application(
            name="droid",
            platform="GCM",
            attributes={"PlatformCredential": "AIzaSyExampleKey"},
        )
        good, bad = [
            await service.create_platform_endpoint(
                app_arn=arn, token=token, custom_user_data=None, attributes=None
            )
            for token in ("good-1", "unregistered-1")
        ]
        first = await service.publish(PublishInput(message="a", target_arn=good))
        second = await service.publish(PublishInput(message="b", target_arn=bad))
        await wait_for(lambda: len(gateway.dispatcher.stats) >= 2)
        await wait_for(lambda: gateway.ledger.pending)
    finally:
        real_close = store.close

        async def close() -> None:
            closed.append(await store.get_message_ledger(second))
            await real_close()

        store.close = close  # type: ignore[method-assign]
        await gateway.stop()

    assert closed and closed[0] is not None
    assert [("failed", "InvalidPlatformToken", 1)] == [
        (c.status, c.failure_type, c.count) for c in closed[0].counts
    ]
    delivered = await store.get_message_ledger(first)
    assert delivered is not None
    assert ["delivered"] == [c.status for c in delivered.counts]
    # The dispatcher reports its sends with their message: attempt times.
    assert delivered.first_attempt_at is not None
    assert delivered.first_attempt_at == delivered.last_attempt_at
