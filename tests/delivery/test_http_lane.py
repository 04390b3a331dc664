"""
HTTP/HTTPS subscription delivery in the engine: the in-memory store, the fake
push provider and a real HTTP receiver on a loopback socket.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import itertools
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from pushgw.arn import ArnBuilder
from pushgw.config import DeliveryConfig, LedgerConfig
from pushgw.delivery.dispatcher import Dispatcher
from pushgw.delivery.http import SLOT_SWEEP_AT, HttpSender, HttpSenderSettings
from pushgw.delivery.observe import Observers
from pushgw.delivery.providers import ProviderPool
from pushgw.ledger import Ledger
from pushgw.metrics import DeliveryMetrics
from pushgw.netguard import check_subscriber_url
from pushgw.providers.fake import FakeProvider
from pushgw.service import Service
from pushgw.service.types import MessageAttributeInput, PublishInput
from pushgw.sns import confirmation
from pushgw.sns.http_messages import SigningKey, verify
from pushgw.store.ledger_model import DeliveryFilter
from pushgw.store.memory import InMemoryStore
from tests.delivery.test_dispatcher import fake_factory
from tests.e2e.harness import ROOT
from tests.unit.test_metrics import scraped


@dataclass
class Hook:
    """A receiver: records requests of any method; `status`, `headers` and
    `delay_s` shape its answers."""

    requests: list[tuple[str, dict[str, str], str, float]] = field(default_factory=list)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(
            (
                request.path,
                {k.lower(): v for k, v in request.headers.items()},
                await request.text(),
                time.monotonic(),
            )
        )
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return web.Response(status=self.status, headers=self.headers, text="ok")

    def of(self, path: str, kind: str) -> list[dict[str, Any]]:
        return [
            {"headers": h, "body": b, "at": t}
            for p, h, b, t in self.requests
            if p == path and h.get("x-amz-sns-message-type") == kind
        ]


@dataclass
class Rig:
    store: InMemoryStore
    service: Service
    dispatcher: Dispatcher
    hook: Hook
    base: str
    key: SigningKey
    app_arn: str

    async def wait(self, check: Any, limit_s: float = 10.0) -> None:
        async with asyncio.timeout(limit_s):
            while not check():
                self.dispatcher.wake()
                await asyncio.sleep(0.01)

    async def devices(self, topic: str, count: int, app_arn: str = "") -> None:
        """`count` endpoints of `app_arn` (else the rig's app), subscribed to
        `topic`."""
        for i in range(count):
            endpoint = await self.service.create_platform_endpoint(
                app_arn=app_arn or self.app_arn,
                token=f"good-{i}",
                custom_user_data=None,
                attributes=None,
            )
            await self.service.subscribe(
                topic_arn=topic,
                protocol="application",
                endpoint=endpoint,
                attributes=None,
            )

    async def confirmed(self, topic: str, path: str, **attributes: str) -> str:
        arn = await self.service.subscribe(
            topic_arn=topic,
            protocol="http",
            endpoint=self.base + path,
            attributes=attributes,
            return_subscription_arn=True,
        )
        await self.wait(lambda: self.hook.of(path, "SubscriptionConfirmation"))
        doc = json.loads(self.hook.of(path, "SubscriptionConfirmation")[-1]["body"])
        assert verify(doc, self.key.cert_pem)
        await self.service.confirm_subscription(
            topic_arn=topic, token=doc["Token"], authenticate_on_unsubscribe=None
        )
        return arn


def dev_signing_key() -> SigningKey:
    return SigningKey.from_files(
        ROOT / "config" / "dev-sns-signing.key", ROOT / "config" / "dev-sns-signing.pem"
    )


STATUS_TOPIC = "arn:aws:sns:us-east-1:123456789012:delivery-status"


def retry_policy(retries: int, **phases: int) -> str:
    """A subscription's DeliveryPolicy: `retries` retries 1 s apart, or in the
    phases named (`numNoDelayRetries=2`: the first two at once)."""
    retry = {"minDelayTarget": 1, "maxDelayTarget": 1, "numRetries": retries}
    return json.dumps({"healthyRetryPolicy": retry | phases})


@pytest.fixture(name="rig")
async def _rig() -> AsyncIterator[Rig]:
    hook = Hook()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hook.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    store = InMemoryStore()
    key = dev_signing_key()
    sender = HttpSender(
        store=store,
        key=key,
        settings=HttpSenderSettings(
            public_url="http://127.0.0.1:8080",
            timeout_s=1.0,
            max_in_flight=8,
            max_connections_per_host=4,
            allow_private_urls=True,
        ),
    )
    FakeProvider.reset()
    dispatcher = Dispatcher(
        store=store,
        providers=ProviderPool(fake_factory),
        config=DeliveryConfig(
            chunk_size=10,
            poll_interval_s=0.01,
            max_in_flight=8,
            retry_base_s=0.01,
            status_topic_arn=STATUS_TOPIC,
        ),
        http_sender=sender,
    )
    service = Service(
        store=store,
        arns=ArnBuilder("us-east-1", "123456789012"),
        on_enqueue=dispatcher.accepted,
        url_check=lambda url: check_subscriber_url(url, allow_private=True),
    )
    app_arn = await service.create_platform_application(
        name="app", platform="GCM", attributes={"PlatformCredential": "AIzaKey"}
    )
    task = asyncio.create_task(dispatcher.run())
    yield Rig(
        store, service, dispatcher, hook, f"http://127.0.0.1:{port}", key, app_arn
    )
    await dispatcher.stop(1.0)
    await asyncio.wait_for(task, 5)
    await sender.aclose()
    await runner.cleanup()


async def test_fanout_mixes_push_and_http_subscribers(rig: Rig) -> None:
    topic = await rig.service.create_topic(name="mixed", attributes=None, tags=None)
    await rig.devices(topic, 12)
    plain = await rig.confirmed(topic, "/plain")
    await rig.confirmed(topic, "/raw", RawMessageDelivery="true")
    await rig.confirmed(
        topic, "/filtered", FilterPolicy=json.dumps({"kind": [{"prefix": "wa"}]})
    )

    await rig.service.publish(
        PublishInput(
            message="hello",
            topic_arn=topic,
            message_attributes={"kind": MessageAttributeInput("String", "other")},
        )
    )
    await rig.wait(
        lambda: (
            len(FakeProvider.sent) == 12
            and rig.hook.of("/plain", "Notification")
            and rig.hook.of("/raw", "Notification")
        )
    )
    await asyncio.sleep(0.2)
    note = rig.hook.of("/plain", "Notification")[0]
    doc = json.loads(note["body"])
    assert verify(doc, rig.key.cert_pem)
    assert (
        doc["Message"] == "hello"
        and note["headers"]["x-amz-sns-subscription-arn"] == plain
    )
    assert rig.hook.of("/raw", "Notification")[0]["body"] == "hello"
    assert not rig.hook.of("/filtered", "Notification")
    await rig.wait(lambda: not rig.store.jobs)


async def test_pending_subscription_receives_nothing(rig: Rig) -> None:
    topic = await rig.service.create_topic(name="pending", attributes=None, tags=None)
    answer = await rig.service.subscribe(
        topic_arn=topic, protocol="http", endpoint=rig.base + "/p", attributes=None
    )
    assert answer == "pending confirmation"
    await rig.wait(lambda: rig.hook.of("/p", "SubscriptionConfirmation"))
    await rig.service.publish(PublishInput(message="too early", topic_arn=topic))
    await rig.wait(lambda: not rig.store.jobs)
    assert not rig.hook.of("/p", "Notification")


async def test_failures_follow_the_delivery_policy_then_stop(rig: Rig) -> None:
    """2 retries 1 s apart, then SNS drops the message: 3 attempts in all."""
    topic = await rig.service.create_topic(name="retry", attributes=None, tags=None)
    await rig.confirmed(topic, "/flaky", DeliveryPolicy=retry_policy(2))
    rig.hook.status = 500
    await rig.service.publish(PublishInput(message="m", topic_arn=topic))
    await rig.wait(lambda: len(rig.hook.of("/flaky", "Notification")) == 3, 10)
    await rig.wait(lambda: not rig.store.jobs)
    times = [r["at"] for r in rig.hook.of("/flaky", "Notification")]
    assert all(0.9 < b - a < 2.0 for a, b in itertools.pairwise(times))
    assert rig.dispatcher.http_sender is not None
    assert rig.dispatcher.http_sender.stats["http_failed"] == 1


@dataclass
class RawReceiver:
    """
    A bare TCP server: answers a Notification with `reply`, bytes no HTTP
    server would send, and anything else (the confirmation) with a plain 200.
    Records the x-amz-sns-message-type of each request.
    """

    reply: bytes
    kinds: list[str] = field(default_factory=list)

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        headers = dict(
            (name.strip().lower(), value.strip())
            for name, _, value in (line.partition(":") for line in head.split("\r\n"))
        )
        await reader.readexactly(int(headers.get("content-length", "0")))
        kind = headers.get("x-amz-sns-message-type", "")
        self.kinds.append(kind)
        ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        writer.write(self.reply if kind == "Notification" else ok)
        await writer.drain()
        writer.close()


MALFORMED_ANSWERS = [
    b"HTTP/1.1 2000 WAT\r\n\r\n",  # a status code of four digits
    b"\x00\x01 not HTTP at all\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",  # a bad header
]


@pytest.mark.parametrize("reply", MALFORMED_ANSWERS)
async def test_malformed_answers_follow_the_delivery_policy(
    rig: Rig, reply: bytes
) -> None:
    """An answer aiohttp cannot parse is a failed attempt like a 500: retried
    by the policy (2 immediate retries), then dropped with one warning; never
    an engine error retried without end."""
    receiver = RawReceiver(reply)
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    topic = await rig.service.create_topic(name="garbled", attributes=None, tags=None)
    arn = await rig.service.subscribe(
        topic_arn=topic,
        protocol="http",
        endpoint=f"http://127.0.0.1:{port}/garbled",
        attributes={"DeliveryPolicy": retry_policy(2, numNoDelayRetries=2)},
        return_subscription_arn=True,
    )
    sub = await rig.store.get_subscription(arn)
    assert sub is not None
    await rig.service.confirm_subscription(
        topic_arn=topic,
        token=confirmation.token_for(sub),
        authenticate_on_unsubscribe=None,
    )
    await rig.wait(lambda: not rig.store.jobs)  # the confirmation's POST
    with structlog.testing.capture_logs() as logs:
        await rig.service.publish(PublishInput(message="m", topic_arn=topic))
        await rig.wait(lambda: "Notification" in receiver.kinds)
        await rig.wait(lambda: not rig.store.jobs)
        await asyncio.sleep(0.2)  # no attempt after the last
    server.close()
    await server.wait_closed()

    assert 3 == receiver.kinds.count("Notification")  # 1 + numRetries
    sender = rig.dispatcher.http_sender
    assert sender is not None
    assert (1, 2) == (
        sender.stats["http_failed"],
        sender.stats["http_retries_scheduled"],
    )
    events = [line["event"] for line in logs]
    assert 1 == events.count("http_delivery_failed")
    assert "job_failed" not in events
    assert 0 == rig.dispatcher.stats["job_errors"]


async def test_a_hanging_subscriber_never_slows_push(rig: Rig) -> None:
    """A receiver that answers after the timeout holds HTTP-lane slots only:
    while it hangs, push fan-out of its topic and of another app's topic
    completes at once."""
    other_app = await rig.service.create_platform_application(
        name="other", platform="GCM", attributes={"PlatformCredential": "AIzaKey2"}
    )
    slow = await rig.service.create_topic(name="slow", attributes=None, tags=None)
    other = await rig.service.create_topic(name="other", attributes=None, tags=None)
    await rig.devices(slow, 20)
    await rig.devices(other, 20, other_app)
    await rig.confirmed(slow, "/hang")
    rig.hook.delay_s = 5.0
    for n in range(10):
        await rig.service.publish(PublishInput(message=f"m{n}", topic_arn=slow))
    await rig.wait(lambda: rig.hook.of("/hang", "Notification"), 5)  # it hangs now
    started = time.monotonic()
    for n in range(10):
        await rig.service.publish(PublishInput(message=f"o{n}", topic_arn=other))
    await rig.wait(lambda: len(FakeProvider.sent) == 400, 5)
    assert time.monotonic() - started < 3.0  # while the HTTP sends time out
    by_app = collections.Counter(sent.app_arn for sent in FakeProvider.sent)
    assert {rig.app_arn: 200, other_app: 200} == by_app
    rig.hook.delay_s = 0


@pytest.mark.parametrize("status", [301, 302])
async def test_redirects_are_never_followed(rig: Rig, status: int) -> None:
    """A 301/302 is a failed attempt like any non-2xx: retried at the same URL
    (1 immediate retry), then dropped; the Location is never fetched."""
    topic = await rig.service.create_topic(name="moved", attributes=None, tags=None)
    policy = retry_policy(1, numNoDelayRetries=1)
    await rig.confirmed(topic, "/moved", DeliveryPolicy=policy)
    sender = rig.dispatcher.http_sender
    assert sender is not None
    delivered = sender.stats["http_delivered"]  # the confirmation
    rig.hook.status = status
    rig.hook.headers = {"Location": rig.base + "/elsewhere"}
    await rig.service.publish(PublishInput(message="m", topic_arn=topic))
    await rig.wait(lambda: len(rig.hook.of("/moved", "Notification")) == 2)
    await rig.wait(lambda: not rig.store.jobs)
    await asyncio.sleep(0.2)  # a redirect followed late would show by now

    assert 2 == len(rig.hook.of("/moved", "Notification"))
    assert [] == [r for r in rig.hook.requests if r[0] == "/elsewhere"]
    assert (1, delivered) == (
        sender.stats["http_failed"],
        sender.stats["http_delivered"],
    )


@pytest.mark.parametrize("raw", ["false", "true"])
async def test_request_policy_content_type_reaches_the_wire(rig: Rig, raw: str) -> None:
    """requestPolicy.headerContentType is the Content-Type the receiver sees,
    of a signed notification and of a raw one; without it, SNS's default."""
    topic = await rig.service.create_topic(name="typed", attributes=None, tags=None)
    policy = json.dumps({"requestPolicy": {"headerContentType": "application/json"}})
    await rig.confirmed(topic, "/typed", DeliveryPolicy=policy, RawMessageDelivery=raw)
    await rig.confirmed(topic, "/plain", RawMessageDelivery=raw)
    await rig.service.publish(PublishInput(message='{"a":1}', topic_arn=topic))
    await rig.wait(
        lambda: (
            rig.hook.of("/typed", "Notification")
            and rig.hook.of("/plain", "Notification")
        )
    )

    [typed] = rig.hook.of("/typed", "Notification")
    [plain] = rig.hook.of("/plain", "Notification")
    assert "application/json" == typed["headers"]["content-type"]
    assert "text/plain; charset=UTF-8" == plain["headers"]["content-type"]


async def test_throttle_spreads_deliveries(rig: Rig) -> None:
    topic = await rig.service.create_topic(name="throttled", attributes=None, tags=None)
    policy = {"throttlePolicy": {"maxReceivesPerSecond": 4}}
    await rig.confirmed(topic, "/t", DeliveryPolicy=json.dumps(policy))
    for n in range(8):
        await rig.service.publish(PublishInput(message=f"m{n}", topic_arn=topic))
    await rig.wait(lambda: len(rig.hook.of("/t", "Notification")) == 8, 10)
    times = sorted(r["at"] for r in rig.hook.of("/t", "Notification"))
    assert times[-1] - times[0] >= 1.5  # 8 at 4/s: at least 1.75 s apart end to end
    await rig.wait(lambda: not rig.store.jobs)
    # Postponed (over the rate or the in-flight cap), never failed or retried:
    # each message was sent once.
    sender = rig.dispatcher.http_sender
    assert sender is not None
    assert sender.stats["http_postponed"] > 0
    assert sender.stats["http_retries_scheduled"] == 0
    assert len(rig.hook.of("/t", "Notification")) == 8
    # Idle again, the subscription holds no place in the in-flight counts.
    assert not sender._in_flight


def test_throttle_slots_that_ran_out_are_forgotten() -> None:
    """The sender remembers a throttle slot per subscription only while it is
    ahead: a sweep drops the past ones, so the map does not grow with every
    throttled subscription ever served."""
    now = [1000.0]
    sender = HttpSender(
        store=InMemoryStore(),
        key=dev_signing_key(),
        settings=HttpSenderSettings(public_url="http://127.0.0.1"),
        clock=lambda: now[0],
    )
    sender._next_slot = {f"sub-{n}": 900.0 for n in range(SLOT_SWEEP_AT)}

    assert 0.0 == sender._reserve("busy", 4)
    sender._release("busy")

    assert {"busy": 1000.25} == sender._next_slot
    assert not sender._in_flight


async def test_delivery_status_records_reach_the_status_topic(rig: Rig) -> None:
    """With delivery.status_topic_arn, SNS's record of a failed push delivery
    is published there, in the shape of SNS's delivery-status logs (token
    included, as SNS has it); an HTTP subscriber of that topic receives it.
    The debug log line of the record has the token redacted."""
    topic = await rig.service.create_topic(
        name="delivery-status", attributes=None, tags=None
    )
    assert topic == STATUS_TOPIC
    await rig.confirmed(topic, "/status")
    pushes = await rig.service.create_topic(name="pushes", attributes=None, tags=None)
    endpoint = await rig.service.create_platform_endpoint(
        app_arn=rig.app_arn,
        token="unregistered-1",
        custom_user_data=None,
        attributes=None,
    )
    await rig.service.subscribe(
        topic_arn=pushes, protocol="application", endpoint=endpoint, attributes=None
    )
    with structlog.testing.capture_logs() as logs:
        direct = await rig.service.publish(
            PublishInput(message="to nobody", target_arn=endpoint)
        )
        await rig.wait(lambda: rig.hook.of("/status", "Notification"))
        await rig.service.publish(PublishInput(message="again", topic_arn=pushes))
        await rig.wait(lambda: len(rig.hook.of("/status", "Notification")) == 2)
    first, second = sorted(
        (
            json.loads(json.loads(note["body"])["Message"])
            for note in rig.hook.of("/status", "Notification")
        ),
        key=lambda record: record["notification"]["messageId"] != direct,
    )

    assert ["notification", "delivery", "status"] == list(first)
    assert ["messageMD5Sum", "messageId", "timestamp"] == list(first["notification"])
    assert (
        hashlib.md5(b"to nobody").hexdigest(),
        direct,
    ) == (first["notification"]["messageMD5Sum"], first["notification"]["messageId"])
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", first["notification"]["timestamp"]
    )
    delivery = first["delivery"]
    assert [
        "deliveryId",
        "destination",
        "providerResponse",
        "dwellTimeMs",
        "attempts",
        "token",
        "statusCode",
    ] == list(delivery)
    assert (endpoint, "410 Unregistered", 1, "unregistered-1", 410) == (
        delivery["destination"],
        delivery["providerResponse"],
        delivery["attempts"],
        delivery["token"],
        delivery["statusCode"],
    )
    assert isinstance(delivery["dwellTimeMs"], int) and delivery["dwellTimeMs"] >= 0
    assert "FAILURE" == first["status"]
    # Published to a topic: the record names it, after the message id.
    assert ["messageMD5Sum", "messageId", "topicArn", "timestamp"] == list(
        second["notification"]
    )
    assert pushes == second["notification"]["topicArn"]
    lines = [line for line in logs if line["event"] == "delivery_status"]
    assert 2 == len(lines)
    assert "unregistered-1" not in json.dumps(lines, default=str)


async def test_http_outcomes_reach_the_ledger_and_metrics_and_replay(
    rig: Rig,
) -> None:
    """A notification delivered and one dropped once its delivery policy is
    spent are counted like push deliveries, under the label the attempts use
    ("http"); the dropped one is a dead letter (the subscription as endpoint,
    no app, the HTTP status) whose replay posts it again as an http job."""
    registry = CollectorRegistry()
    metrics = DeliveryMetrics(registry)
    ledger = Ledger(rig.store, LedgerConfig())
    sender = rig.dispatcher.http_sender
    assert sender is not None
    sender.observer = Observers([ledger, metrics])
    topic = await rig.service.create_topic(name="counted", attributes=None, tags=None)
    sub = await rig.confirmed(topic, "/h", DeliveryPolicy=retry_policy(0))
    delivered = await rig.service.publish(PublishInput(message="1", topic_arn=topic))
    await rig.wait(lambda: not rig.store.jobs)
    rig.hook.status = 500
    dropped = await rig.service.publish(PublishInput(message="2", topic_arn=topic))
    await rig.wait(lambda: not rig.store.jobs)
    assert await ledger.flush()

    found = scraped(registry)
    total = "pushgw_deliveries_total"
    assert 1 == found.value(total, platform="http", status="delivered", failure_type="")
    assert 1 == found.value(
        total,
        platform="http",
        status="failed",
        failure_type="DeliveryPolicyExhausted",
    )
    attempts = found.series("pushgw_delivery_attempts_total")
    assert {"http"} == {s["platform"] for s in attempts}
    (record,) = (
        await rig.store.list_deliveries(DeliveryFilter(), before=None, limit=10)
    ).items
    assert (dropped, sub, "", "http", 500, "HTTP 500", True) == (
        record.message_id,
        record.endpoint_arn,
        record.app_arn,
        record.platform,
        record.provider_status,
        record.reason,
        record.dead_letter,
    )
    counted = await rig.store.get_message_ledger(delivered)
    assert counted is not None and counted.first_attempt_at is not None
    assert [("http", "delivered", None, 1)] == [
        (c.platform, c.status, c.failure_type, c.count) for c in counted.counts
    ]

    rig.hook.status = 200
    result = await rig.store.replay_dead_letters(
        DeliveryFilter(message_id=dropped), limit=10, now=time.time()
    )
    assert 1 == result.replayed
    await rig.wait(lambda: len(rig.hook.of("/h", "Notification")) == 3)
    await rig.wait(lambda: not rig.store.jobs)
    assert await ledger.flush()
    again = await rig.store.get_message_ledger(dropped)
    assert again is not None
    assert {"delivered": 1, "failed": 1} == {c.status: c.count for c in again.counts}
    replayed = json.loads(rig.hook.of("/h", "Notification")[-1]["body"])
    assert (dropped, "2") == (replayed["MessageId"], replayed["Message"])
