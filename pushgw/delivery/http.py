"""
Delivery to HTTP/HTTPS subscribers: one `http` job, one POST.

Jobs come from a topic fan-out (`TopicChunk` hands each confirmed HTTP
subscription a job of its own) or from Subscribe/Unsubscribe (the control
documents, `sns/confirmation.py`). They run in the dispatcher's HTTP lane, with
its own capacity, so a subscriber that is slow or down never holds a slot of
push delivery; they are leased, retried and crash-safe like every job.

* The body is SNS's: a signed Notification (`sns/http_messages.py`, signed
  once per message and shared by every subscriber of a fan-out), the bare
  message with RawMessageDelivery=true, or a signed confirmation.
* Success is any 2xx. Anything else (a timeout, a transport error, an answer
  that cannot be parsed) is retried by the subscription's effective delivery
  policy (`sns/delivery_policy.py`, SNS's default: 3 retries, 20 s apart);
  when the policy is spent the delivery is dropped with a warning, as SNS
  drops it.
* `throttlePolicy.maxReceivesPerSecond` is kept per subscription on this node,
  and at most `max_connections_per_host` deliveries of one subscription are in
  flight here: a job over either limit is postponed (not counted as an
  attempt), so one busy subscriber cannot fill the lane.
* No SSRF: the session's resolver refuses private addresses after DNS
  (`netguard`), redirects are never followed, answers are read up to a cap.
"""

from __future__ import annotations

import asyncio
import collections
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from pushgw import netguard
from pushgw.delivery.decision import DONE, Decision, RetryAt
from pushgw.delivery.observe import (
    HTTP_POLICY_SPENT,
    Attempt,
    DeliveryObserver,
    Finished,
    Observers,
)
from pushgw.log import get_logger
from pushgw.logsummary import RepeatedLog
from pushgw.model import DeliveryJob, Message, Subscription, Topic
from pushgw.providers.http import HTTP_TRANSPORT_ERRORS
from pushgw.sns import delivery_policy, http_messages
from pushgw.sns.http_messages import (
    SUBSCRIPTION_CONFIRMATION,
    HttpDelivery,
    SignedNotification,
    SigningKey,
)
from pushgw.store.base import Store

log = get_logger("pushgw.delivery.http")

TOPIC_CACHE_S = 2.0  # how stale a topic's DeliveryPolicy / SignatureVersion may be
SIGNED_CACHE = 256  # signed notifications kept (one per message and text)
POSTPONE_S = 0.25  # a job over its subscription's in-flight cap waits this long
SLEEP_AT_MOST_S = 1.0  # throttled by less than this: wait in place
SLOT_SWEEP_AT = 1024  # throttle slots kept before the past ones are dropped


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSenderSettings:
    public_url: str  # the base of SubscribeURL, UnsubscribeURL and SigningCertURL
    timeout_s: float = 15.0
    max_in_flight: int = 64
    max_connections_per_host: int = 8
    max_response_bytes: int = 65_536
    allow_private_urls: bool = False
    ca_file: str | None = None


def message_text(message: Message, protocol: str) -> str:
    """
    What an HTTP subscriber receives as `Message`: the body, or with
    MessageStructure=json the text under the protocol's key, else `default`
    (checked at Publish, so a stored message always has one).
    """
    if message.structure != "json":
        return message.body
    texts = json.loads(message.body)
    value = texts.get(protocol, texts.get("default", ""))
    return value if isinstance(value, str) else json.dumps(value)


class HttpSender:
    def __init__(
        self,
        *,
        store: Store,
        key: SigningKey,
        settings: HttpSenderSettings,
        clock: Callable[[], float] = time.time,
        observer: DeliveryObserver | None = None,
    ) -> None:
        self.store = store
        self.observer: DeliveryObserver = observer or Observers()
        self.failure_log = RepeatedLog(log)
        self.key = key
        self.settings = settings
        self.clock = clock
        self.max_in_flight = settings.max_in_flight
        self.stats: collections.Counter[str] = collections.Counter()
        self._session: aiohttp.ClientSession | None = None
        self._topics: dict[str, tuple[float, Topic | None]] = {}
        self._signed: collections.OrderedDict[
            tuple[str, str, str], SignedNotification
        ] = collections.OrderedDict()
        self._in_flight: collections.Counter[str] = collections.Counter()
        self._next_slot: dict[str, float] = {}
        self._sweep_at = SLOT_SWEEP_AT

    # -- one job -----------------------------------------------------------------
    async def deliver(self, job: DeliveryJob, message: Message) -> Decision:
        if job.payload is not None:
            return await self._control(job, message)
        sub = (
            await self.store.get_subscription(job.subscription_arn)
            if job.subscription_arn
            else None
        )
        if sub is None or sub.pending:
            self.stats["http_skipped"] += 1  # unsubscribed since the fan-out
            return DONE
        topic = await self._topic(sub.topic_arn)
        policy = delivery_policy.resolve(
            topic.attributes.get("DeliveryPolicy") if topic else None,
            sub.attributes.get("DeliveryPolicy"),
        )
        wait = self._reserve(sub.arn, policy.max_receives_per_second)
        if isinstance(wait, RetryAt):
            return wait
        try:
            if wait > 0:
                await asyncio.sleep(wait)
            request = self._notification(sub, topic, message, policy.content_type)
            return await self._post(
                sub.endpoint_arn,
                request,
                policy,
                job,
                subscription=sub.arn,
                message=message,
            )
        finally:
            self._release(sub.arn)

    async def _control(self, job: DeliveryJob, message: Message) -> Decision:
        """A SubscriptionConfirmation or UnsubscribeConfirmation."""
        assert job.payload is not None
        spec = json.loads(job.payload)
        sub_arn = job.subscription_arn or ""
        if spec["type"] == SUBSCRIPTION_CONFIRMATION:
            sub = await self.store.get_subscription(sub_arn)
            if sub is None or not sub.pending:
                self.stats["http_skipped"] += 1  # confirmed or gone meanwhile
                return DONE
        topic = await self._topic(message.topic_arn or "")
        topic_policy = topic.attributes.get("DeliveryPolicy") if topic else None
        policy = delivery_policy.resolve(topic_policy, None)
        version = _signature_version(topic)
        common = {
            "message_id": message.id,
            "topic_arn": message.topic_arn or "",
            "token": spec["token"],
            "timestamp": message.created_at,
            "signature_version": version,
            "content_type": policy.content_type,
        }
        if spec["type"] == SUBSCRIPTION_CONFIRMATION:
            request = http_messages.subscription_confirmation(
                self.key, self.settings.public_url, **common
            )
        else:
            request = http_messages.unsubscribe_confirmation(
                self.key, self.settings.public_url, subscription_arn=sub_arn, **common
            )
        return await self._post(spec["url"], request, policy, job, subscription=sub_arn)

    def _notification(
        self,
        sub: Subscription,
        topic: Topic | None,
        message: Message,
        content_type: str | None,
    ) -> HttpDelivery:
        text = message_text(message, sub.protocol)
        raw = sub.attributes.get("RawMessageDelivery", "false").lower() == "true"
        if raw:
            return http_messages.raw_notification(
                message_id=message.id,
                topic_arn=sub.topic_arn,
                subscription_arn=sub.arn,
                message=text,
                content_type=content_type,
            )
        version = _signature_version(topic)
        cache_key = (message.id, sub.protocol, version)
        signed = self._signed.get(cache_key)
        if signed is None:
            # One RSA signature per message text: every subscriber of the
            # fan-out (and every retry) reuses it.
            signed = http_messages.sign_notification(
                self.key,
                self.settings.public_url,
                message_id=message.id,
                topic_arn=sub.topic_arn,
                message=text,
                timestamp=message.created_at,
                subject=message.subject,
                attributes=message.attributes,
                signature_version=version,
            )
            self._signed[cache_key] = signed
            while len(self._signed) > SIGNED_CACHE:
                self._signed.popitem(last=False)
        return signed.for_subscription(sub.arn, content_type=content_type)

    # -- the exchange ------------------------------------------------------------
    async def _post(
        self,
        url: str,
        request: HttpDelivery,
        policy: delivery_policy.HttpDeliveryPolicy,
        job: DeliveryJob,
        *,
        subscription: str,
        message: Message | None = None,
    ) -> Decision:
        """One POST. `message`: the notification's (None for a control
        document: its attempts count, its outcome is no message's delivery)."""
        failures = job.attempts + 1  # this attempt included
        sent = _Sent(url, subscription, message, self.clock(), time.perf_counter())
        status, reason = await self._exchange(url, request)
        if status is not None and 200 <= status < 300:
            self.stats["http_delivered"] += 1
            self._observe(sent, "delivered", status)
            self._finished(sent, status, reason, failures)
            return DONE
        self._observe(sent, "retry", status)
        delay = policy.retry_delay(failures)
        if delay is None:
            self.stats["http_failed"] += 1
            self.failure_log.note(
                "http_delivery_failed",
                key=subscription,
                reason=reason.split(":")[0],
                message_id=job.message_id,
                attempts=failures,
                detail=reason,
            )
            self._finished(sent, status, reason, failures, HTTP_POLICY_SPENT)
            return DONE
        self.stats["http_retries_scheduled"] += 1
        self.observer.rescheduled(sent.platform, reason)
        return RetryAt(self.clock() + delay, reason)

    async def _exchange(
        self, url: str, request: HttpDelivery
    ) -> tuple[int | None, str]:
        """
        One POST: the answer's status (None if there was no usable answer) and
        what to say if it is not a success. Whatever goes wrong with the
        subscriber is answered here, never raised, so the delivery policy
        decides what follows: a refused or reset connection, the guard's
        refusal at connect time, a timeout, and an answer aiohttp cannot parse
        (`HTTP/1.1 2000 WAT`, garbage). A body over the cap is cut short.
        """
        try:
            async with self.session.post(
                url,
                data=request.body_bytes,
                headers=dict(request.headers),
                allow_redirects=False,
            ) as resp:
                await netguard.read_capped(resp, self.settings.max_response_bytes)
                return resp.status, f"HTTP {resp.status}"
        except HTTP_TRANSPORT_ERRORS as exc:
            refused = netguard.refusal_reason(exc)  # the guard's words
            return None, refused or f"{type(exc).__name__}: {exc}"[:300]
        except TimeoutError:
            return None, f"no answer within {self.settings.timeout_s:g} s"

    def _observe(self, sent: _Sent, outcome: str, status: int | None) -> None:
        self.observer.attempt(
            Attempt(
                sent.platform,
                outcome,
                status,
                time.perf_counter() - sent.started,
                message=sent.message,
                at=sent.at,
            )
        )

    def _finished(
        self,
        sent: _Sent,
        status: int | None,
        reason: str,
        attempts: int,
        failure_type: str | None = None,
    ) -> None:
        """A notification's final outcome: counted, and a failure recorded (a
        dead letter that replay queues again as an http job)."""
        if sent.message is None:
            return
        self.observer.finished(
            Finished(
                message=sent.message,
                platform=sent.platform,
                endpoint_arn=sent.subscription,
                app_arn=None,
                status="failed" if failure_type else "delivered",
                failure_type=failure_type,
                reason=reason,
                provider_status=status,
                attempts=attempts,
                at=self.clock(),
            )
        )

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            context = ssl.create_default_context()
            if self.settings.ca_file:
                context.load_verify_locations(self.settings.ca_file)
            self._session = netguard.guarded_session(
                allow_private=self.settings.allow_private_urls,
                timeout_s=self.settings.timeout_s,
                ssl_context=context,
                limit=self.settings.max_in_flight,
                limit_per_host=self.settings.max_connections_per_host,
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- limits and caches ------------------------------------------------------
    def _reserve(self, sub_arn: str, per_second: int | None) -> RetryAt | float:
        """
        Take a place for one delivery of `sub_arn`: the seconds to wait before
        sending (the throttle's slot), or when to come back (a postponement,
        not an attempt) when the wait would exceed SLEEP_AT_MOST_S or the
        subscription has its fill of deliveries in flight here.
        """
        now = self.clock()
        if self._in_flight[sub_arn] >= self.settings.max_connections_per_host:
            self.stats["http_postponed"] += 1
            return RetryAt(now + POSTPONE_S, "postponed: in flight", counts=False)
        wait = 0.0
        if per_second:
            slot = max(now, self._next_slot.get(sub_arn, 0.0))
            if slot - now > SLEEP_AT_MOST_S:
                self.stats["http_postponed"] += 1
                return RetryAt(slot, "postponed: throttled", counts=False)
            self._next_slot[sub_arn] = slot + 1.0 / per_second
            wait = slot - now
            if len(self._next_slot) > self._sweep_at:
                # Slots already past are no slots: forget them, so the map is
                # the size of the subscriptions being throttled now (and the
                # next sweep waits for twice that, so sweeps stay rare).
                self._next_slot = {a: t for a, t in self._next_slot.items() if t > now}
                self._sweep_at = max(SLOT_SWEEP_AT, 2 * len(self._next_slot))
        self._in_flight[sub_arn] += 1
        return wait

    def _release(self, sub_arn: str) -> None:
        """A delivery of `sub_arn` is over; an idle subscription leaves the
        counts (the map is the size of what is in flight, not of every
        subscription ever served)."""
        left = self._in_flight[sub_arn] - 1
        if left > 0:
            self._in_flight[sub_arn] = left
            return
        del self._in_flight[sub_arn]

    async def _topic(self, arn: str) -> Topic | None:
        cached = self._topics.get(arn)
        now = time.monotonic()
        if cached is not None and now - cached[0] < TOPIC_CACHE_S:
            return cached[1]
        topic = await self.store.get_topic(arn)
        self._topics[arn] = (now, topic)
        if len(self._topics) > 4096:
            self._topics.clear()
        return topic


@dataclass(frozen=True, slots=True)
class _Sent:
    """One POST in flight: what its attempt and outcome are reported with."""

    url: str
    subscription: str  # the subscription's ARN
    message: Message | None  # None: a control document
    at: float  # epoch seconds, when the POST began
    started: float  # perf_counter then

    @property
    def platform(self) -> str:
        """The attempts' and outcomes' platform label: "http" or "https"."""
        return self.url.partition(":")[0].lower()


def _signature_version(topic: Topic | None) -> str:
    return (topic.attributes.get("SignatureVersion") if topic else None) or "1"
