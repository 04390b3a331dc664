"""The delivery engine against the in-memory store and the in-process fake provider."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from pushgw.arn import ArnBuilder
from pushgw.config import DeliveryConfig, config_from_mapping
from pushgw.daemon import Gateway
from pushgw.delivery.dispatcher import Dispatcher
from pushgw.delivery.providers import ProviderPool
from pushgw.errors import EndpointDisabledError
from pushgw.model import PlatformApplication, Subscription
from pushgw.providers.base import Provider
from pushgw.providers.fake import FakeProvider
from pushgw.service import Service
from pushgw.service.types import MessageAttributeInput, PublishInput
from pushgw.store.memory import InMemoryStore
from tests.e2e.harness import free_port


@dataclass
class Rig:
    store: InMemoryStore
    service: Service
    dispatcher: Dispatcher
    app_arn: str

    async def endpoint(self, token: str) -> str:
        return await self.service.create_platform_endpoint(
            app_arn=self.app_arn, token=token, custom_user_data=None, attributes=None
        )

    async def settle(self, limit_s: float = 10.0) -> None:
        """Wait until no job is left (deliveries, retries and events done)."""
        async with asyncio.timeout(limit_s):
            while self.store.jobs:
                self.dispatcher.wake()
                await asyncio.sleep(0.01)


async def fake_factory(app: PlatformApplication) -> Provider:
    return FakeProvider(app=app, settings=None)  # type: ignore[arg-type]


async def make_rig(store: InMemoryStore, **delivery: Any) -> Rig:
    """A dispatcher (not started) and a service on `store`, with one GCM app."""
    FakeProvider.reset()
    config = DeliveryConfig(
        **{
            "chunk_size": 10,
            "retry_base_s": 0.01,
            "retry_max_s": 0.05,
            "poll_interval_s": 0.01,
            "app_backoff_s": 0.01,
            "max_in_flight": 8,
            **delivery,
        }
    )
    dispatcher = Dispatcher(
        store=store, providers=ProviderPool(fake_factory), config=config
    )
    service = Service(
        store=store,
        arns=ArnBuilder("us-east-1", "123456789012"),
        on_enqueue=dispatcher.accepted,
        delivery=dispatcher,  # as the daemon wires them
    )
    app_arn = await service.create_platform_application(
        name="app", platform="GCM", attributes={"PlatformCredential": "AIzaKey"}
    )
    return Rig(store, service, dispatcher, app_arn)


@pytest.fixture(name="rig")
async def _rig() -> AsyncIterator[Rig]:
    rig = await make_rig(InMemoryStore())
    task = asyncio.create_task(rig.dispatcher.run())
    yield rig
    await rig.dispatcher.stop(1.0)
    await asyncio.wait_for(task, 5)  # run() returns once stopped


async def test_direct_publish_is_delivered_once(rig: Rig) -> None:
    """A publish to an endpoint reaches the provider once and leaves no job behind."""
    arn = await rig.endpoint("good-1")

    await rig.service.publish(PublishInput(message="hi", target_arn=arn))
    await rig.settle()

    assert ["good-1"] == [d.token for d in FakeProvider.sent]
    assert "hi" == FakeProvider.sent[0].message.body
    assert {} == rig.store.messages


async def test_direct_publish_is_handed_over_without_claim_or_read(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish to an endpoint is stored leased to the local dispatcher and run
    from memory: no claim returns it and the endpoint is not read again."""
    claimed: list[int] = []
    reads: list[str] = []
    claim_jobs, get_endpoint = rig.store.claim_jobs, rig.store.get_endpoint

    async def claim_spy(**kw: Any) -> Any:
        jobs = await claim_jobs(**kw)
        claimed.extend(j.id for j in jobs)
        return jobs

    async def read_spy(arn: str) -> Any:
        reads.append(arn)
        return await get_endpoint(arn)

    arn = await rig.endpoint("good-1")
    monkeypatch.setattr(rig.store, "claim_jobs", claim_spy)
    monkeypatch.setattr(rig.store, "get_endpoint", read_spy)

    await rig.service.publish(PublishInput(message="hi", target_arn=arn))
    await rig.settle()

    assert ["good-1"] == [d.token for d in FakeProvider.sent]
    assert ([], []) == (claimed, reads)
    assert 0 == rig.dispatcher._push.load


async def test_publish_with_the_lane_full_is_left_to_the_claim_loop(rig: Rig) -> None:
    """With no slot to reserve, the job is stored claimable (no lease) and the
    claim loop delivers it once a slot is free."""
    arn = await rig.endpoint("good-1")
    slots = []
    while (slot := rig.dispatcher.reserve()) is not None:
        slots.append(slot)

    await rig.service.publish(PublishInput(message="hi", target_arn=arn))

    assert [None] == [j.lease_owner for j in rig.store.jobs.values()]
    for _ in slots:
        rig.dispatcher.unreserve()
    await rig.settle()
    assert ["good-1"] == [d.token for d in FakeProvider.sent]


async def test_refused_publish_gives_its_slot_back(rig: Rig) -> None:
    """A publish the store refuses (endpoint disabled) stores nothing and leaves
    the push lane's reservation as it was."""
    arn = await rig.endpoint("good-1")
    await rig.service.set_endpoint_attributes(arn, {"Enabled": "false"})

    with pytest.raises(EndpointDisabledError):
        await rig.service.publish(PublishInput(message="hi", target_arn=arn))

    assert (0, {}) == (rig.dispatcher._push.load, rig.store.jobs)


async def test_a_node_with_delivery_disabled_stores_publishes_claimable() -> None:
    """`[delivery] enabled = false`: the daemon takes publishes but never sends;
    a publish to an endpoint is stored claimable (no lease of its own), and a
    node that delivers takes it."""
    FakeProvider.reset()
    config = config_from_mapping(
        {
            "store": {"url": "memory:"},
            "server": {"port": free_port()},
            "delivery": {"enabled": False},
        }
    )
    gateway = Gateway(config, provider_factory=fake_factory)
    store = gateway.store
    assert isinstance(store, InMemoryStore)
    await gateway.start()
    try:
        service = gateway.service
        app_arn = await service.create_platform_application(
            name="app", platform="GCM", attributes={"PlatformCredential": "AIzaKey"}
        )
        arn = await service.create_platform_endpoint(
            app_arn=app_arn, token="good-1", custom_user_data=None, attributes=None
        )
        await service.publish(PublishInput(message="hi", target_arn=arn))
        await asyncio.sleep(0.3)

        assert [] == FakeProvider.sent
        assert [None] == [j.lease_owner for j in store.jobs.values()]
        assert 0 == gateway.dispatcher.in_flight
    finally:
        await gateway.stop()
    other = Dispatcher(
        store=store,
        providers=ProviderPool(fake_factory),
        config=DeliveryConfig(poll_interval_s=0.01),
    )
    task = asyncio.create_task(other.run())
    try:
        async with asyncio.timeout(10):
            while store.jobs:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    finally:
        await other.stop(1.0)
        await asyncio.wait_for(task, 5)
    assert ["good-1"] == [d.token for d in FakeProvider.sent]


async def test_topic_fanout_reaches_every_subscriber_across_chunks(rig: Rig) -> None:
    """A topic publish to 35 endpoints (chunks of 10) delivers to each exactly once."""
    topic = await rig.service.create_topic(name="t", attributes=None, tags=None)
    for i in range(35):
        arn = await rig.endpoint(f"good-{i}")
        await rig.service.subscribe(
            topic_arn=topic, protocol="application", endpoint=arn, attributes=None
        )

    await rig.service.publish(PublishInput(message="all", topic_arn=topic))
    await rig.settle()

    tokens = sorted(d.token for d in FakeProvider.sent)
    assert sorted(f"good-{i}" for i in range(35)) == tokens


async def test_invalid_token_disables_only_that_endpoint(rig: Rig) -> None:
    """An invalid-token answer disables that endpoint; a good one stays enabled."""
    bad = await rig.endpoint("unregistered-1")
    good = await rig.endpoint("good-1")
    topic = await rig.service.create_topic(name="t", attributes=None, tags=None)
    for arn in (bad, good):
        await rig.service.subscribe(
            topic_arn=topic, protocol="application", endpoint=arn, attributes=None
        )

    await rig.service.publish(PublishInput(message="m", topic_arn=topic))
    await rig.settle()

    assert "false" == (await rig.service.get_endpoint_attributes(bad))["Enabled"]
    assert "true" == (await rig.service.get_endpoint_attributes(good))["Enabled"]


async def test_canonical_token_replaces_the_stored_token(rig: Rig) -> None:
    """A canonical-id answer delivers and updates the endpoint's token."""
    arn = await rig.endpoint("canonical-7")

    await rig.service.publish(PublishInput(message="m", target_arn=arn))
    await rig.settle()

    assert "renewed-7" == (await rig.service.get_endpoint_attributes(arn))["Token"]


async def test_transient_failures_retry_until_ttl_then_expire(rig: Rig) -> None:
    """A provider that is always down is retried, never disables, and gives up at TTL."""
    arn = await rig.endpoint("down-1")
    ttl = {"AWS.SNS.MOBILE.GCM.TTL": MessageAttributeInput("String", "1")}

    await rig.service.publish(
        PublishInput(message="m", target_arn=arn, message_attributes=ttl)
    )
    await rig.settle(limit_s=15)

    assert rig.dispatcher.stats["retry"] >= 2
    assert 1 == rig.dispatcher.stats["failed_NotificationTTLExpired"]
    assert "true" == (await rig.service.get_endpoint_attributes(arn))["Enabled"]
    assert (
        "true"
        == (await rig.service.get_platform_application_attributes(rig.app_arn))[
            "Enabled"
        ]
    )


async def test_bad_credentials_disable_the_application(rig: Rig) -> None:
    """A credentials rejection disables the app; later publishes are refused."""
    arn = await rig.endpoint("badcreds-1")
    ttl = {"AWS.SNS.MOBILE.GCM.TTL": MessageAttributeInput("String", "1")}

    await rig.service.publish(
        PublishInput(message="m", target_arn=arn, message_attributes=ttl)
    )
    await rig.settle(limit_s=15)

    attrs = await rig.service.get_platform_application_attributes(rig.app_arn)
    assert "false" == attrs["Enabled"]
    with pytest.raises(Exception, match="Platform application is disabled"):
        await rig.service.publish(PublishInput(message="m", target_arn=arn))


async def test_permanent_failure_is_not_retried(rig: Rig) -> None:
    """A permanent answer is recorded once and not retried."""
    arn = await rig.endpoint("badpayload-1")

    await rig.service.publish(PublishInput(message="m", target_arn=arn))
    await rig.settle()

    assert 1 == rig.dispatcher.stats["permanent"]
    assert 0 == rig.dispatcher.stats["retry"]


async def test_delivery_failure_event_is_published_to_the_event_topic(rig: Rig) -> None:
    """EventDeliveryFailure topics get SNS-shaped JSON for an invalid token."""
    events = await rig.service.create_topic(name="events", attributes=None, tags=None)
    await rig.service.set_platform_application_attributes(
        rig.app_arn, {"EventDeliveryFailure": events}
    )
    watcher = await rig.endpoint("good-watcher")
    await rig.service.subscribe(
        topic_arn=events, protocol="application", endpoint=watcher, attributes=None
    )
    bad = await rig.endpoint("unregistered-2")

    await rig.service.publish(PublishInput(message="m", target_arn=bad))
    await rig.settle()

    event = json.loads(
        next(d for d in FakeProvider.sent if d.token == "good-watcher").message.body
    )
    assert "DeliveryFailure" == event["EventType"]
    assert "InvalidPlatformToken" == event["FailureType"]
    assert bad == event["EndpointArn"]


async def test_filter_policy_skips_non_matching_subscribers(rig: Rig) -> None:
    """A subscription whose filter policy does not match gets nothing."""
    topic = await rig.service.create_topic(name="t", attributes=None, tags=None)
    eu = await rig.endpoint("good-eu")
    us = await rig.endpoint("good-us")
    await rig.service.subscribe(
        topic_arn=topic,
        protocol="application",
        endpoint=eu,
        attributes={"FilterPolicy": '{"region": ["eu"]}'},
    )
    await rig.service.subscribe(
        topic_arn=topic,
        protocol="application",
        endpoint=us,
        attributes={"FilterPolicy": '{"region": ["us"]}'},
    )
    region = {"region": MessageAttributeInput("String", "eu")}

    await rig.service.publish(
        PublishInput(message="m", topic_arn=topic, message_attributes=region)
    )
    await rig.settle()

    assert ["good-eu"] == [d.token for d in FakeProvider.sent]


async def test_filter_policy_scope_picks_attributes_or_body(rig: Rig) -> None:
    """One policy text filters the body or the attributes per subscription scope."""
    topic = await rig.service.create_topic(name="t", attributes=None, tags=None)
    policy = '{"kind": ["a"]}'
    for token, scope in [("good-body", "MessageBody"), ("good-attrs", None)]:
        await rig.service.subscribe(
            topic_arn=topic,
            protocol="application",
            endpoint=await rig.endpoint(token),
            attributes={"FilterPolicy": policy}
            | ({"FilterPolicyScope": scope} if scope else {}),
        )
    kind_b = {"kind": MessageAttributeInput("String", "b")}

    await rig.service.publish(
        PublishInput(
            message='{"kind": "a"}', topic_arn=topic, message_attributes=kind_b
        )
    )
    await rig.settle()

    assert ["good-body"] == [d.token for d in FakeProvider.sent]


async def test_stored_policy_over_the_limits_still_filters(rig: Rig) -> None:
    """A policy stored before the key limit applied filters as before, not as 'none'."""
    topic = await rig.service.create_topic(name="t", attributes=None, tags=None)
    policy = {f"k{i}": ["v"] for i in range(6)}
    for token, value in [("good-all", "v"), ("good-none", "other")]:
        await rig.store.insert_subscription(
            Subscription(
                arn=rig.service.arns.subscription(topic),
                topic_arn=topic,
                endpoint_arn=await rig.endpoint(token),
                attributes={"FilterPolicy": json.dumps(policy | {"k0": [value]})},
            )
        )
    attributes = {f"k{i}": MessageAttributeInput("String", "v") for i in range(6)}

    await rig.service.publish(
        PublishInput(message="m", topic_arn=topic, message_attributes=attributes)
    )
    await rig.settle()

    assert ["good-all"] == [d.token for d in FakeProvider.sent]


async def test_body_filter_reads_the_default_of_a_json_structure(rig: Rig) -> None:
    """With MessageStructure=json, a MessageBody policy reads the `default` text."""
    topic = await rig.service.create_topic(name="t", attributes=None, tags=None)
    await rig.service.subscribe(
        topic_arn=topic,
        protocol="application",
        endpoint=await rig.endpoint("good-nested"),
        attributes={
            "FilterPolicy": '{"order": {"kind": ["a"]}}',
            "FilterPolicyScope": "MessageBody",
        },
    )
    structured = [
        {"default": json.dumps({"order": {"kind": kind}}), "GCM": '{"data": {}}'}
        for kind in ("b", "a")
    ]

    for body in structured:
        await rig.service.publish(
            PublishInput(
                message=json.dumps(body), topic_arn=topic, message_structure="json"
            )
        )
    await rig.settle()

    assert ["good-nested"] == [d.token for d in FakeProvider.sent]


async def test_endpoint_lifecycle_events_reach_the_event_topics(rig: Rig) -> None:
    """Created, updated and deleted endpoints are announced on their event topics."""
    events = await rig.service.create_topic(
        name="lifecycle", attributes=None, tags=None
    )
    watcher = await rig.endpoint("good-watcher")
    await rig.service.subscribe(
        topic_arn=events, protocol="application", endpoint=watcher, attributes=None
    )
    await rig.service.set_platform_application_attributes(
        rig.app_arn,
        {
            "EventEndpointCreated": events,
            "EventEndpointUpdated": events,
            "EventEndpointDeleted": events,
        },
    )

    arn = await rig.endpoint("good-new")
    await rig.service.set_endpoint_attributes(arn, {"Enabled": "false"})
    await rig.service.delete_endpoint(arn)
    await rig.settle()

    got = [
        json.loads(d.message.body)
        for d in FakeProvider.sent
        if d.token == "good-watcher"
    ]
    assert ["EndpointCreated", "EndpointUpdated", "EndpointDeleted"] == sorted(
        (e["EventType"] for e in got),
        key=["EndpointCreated", "EndpointUpdated", "EndpointDeleted"].index,
    )
    assert {arn} == {e["EndpointArn"] for e in got}
    assert all("good-new" not in json.dumps(e) for e in got)  # token never sent
