"""
The delivery engine: claims jobs with leases and delivers them.

* `endpoint` jobs send one message to one endpoint.
* `topic` jobs fan a message out to a chunk of subscriptions (keyset range). A
  chunk larger than `chunk_size` is split first, so other workers (or other
  daemons on the same PostgreSQL) take the rest. Progress inside a chunk is
  recorded (`chunk.py`), so a crash re-sends only what was in flight.
* Outcomes: delivered; invalid token → endpoint disabled; canonical token →
  token updated; retry → back-off with jitter, never before Retry-After, until
  the TTL runs out; bad credentials → application disabled, jobs wait;
  permanent → recorded. A transient failure never disables anything.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from providers.base import Outcome, RenderedMessage, SendResult, redact
from pushgw.config import DeliveryConfig
from pushgw.delivery import events
from pushgw.delivery.chunk import TopicChunk
from pushgw.delivery.decision import DONE, Decision, RetryAt
from pushgw.delivery.providers import AppGate, ProviderPool
from pushgw.delivery.render import expires_at, render
from pushgw.delivery.retry import RetryPolicy
from pushgw.errors import ConflictError, NotFoundError
from pushgw.log import get_logger
from pushgw.model import (
    DeliveryJob,
    Endpoint,
    Message,
    Platform,
    PlatformApplication,
    Subscription,
)
from pushgw.store.base import Store

log = get_logger("pushgw.delivery")

APP_CACHE_S = 2.0  # how stale an app's enabled flag may be on this node


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One delivery attempt of a message to an endpoint, and its deadline."""

    app: PlatformApplication
    endpoint: Endpoint
    message: Message
    attempts: int
    deadline: float  # TTL end: give up rather than retry past it


class Dispatcher:
    def __init__(
        self,
        *,
        store: Store,
        providers: ProviderPool,
        config: DeliveryConfig,
        clock: Callable[[], float] = time.time,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.providers = providers
        self.config = config
        self.clock = clock
        self.owner = owner or default_owner()
        self.retry = RetryPolicy(config.retry_base_s, config.retry_max_s)
        self.stats: collections.Counter[str] = collections.Counter()
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        # Sends in flight in this process (topic chunks and endpoint jobs alike).
        self.sends = asyncio.Semaphore(config.max_in_flight)
        self._rendered: dict[tuple[str, Platform], RenderedMessage | None] = {}
        self._active: dict[int, DeliveryJob] = {}
        self._load = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._gates: dict[str, AppGate] = {}
        self._apps: dict[str, tuple[float, PlatformApplication | None]] = {}
        self._messages: collections.OrderedDict[str, Message] = (
            collections.OrderedDict()
        )
        self._stopping = False
        self._topic_weight = max(1, config.max_in_flight // 2)

    # -- lifecycle -------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def accepted(self, message: Message) -> None:
        """A publish was committed here: keep the message at hand, and wake up."""
        self._remember(message)
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return self.config.max_in_flight - self.sends._value

    async def run(self) -> None:
        """Claim and deliver until `stop()`; leases are kept alive meanwhile."""
        heartbeat = asyncio.create_task(self._heartbeat(), name="lease-heartbeat")
        try:
            while not self._stopping:
                room = self.config.max_in_flight - self._load
                if room <= 0:
                    self._room.clear()
                    await self._room.wait()
                    continue
                jobs = await self.store.claim_jobs(
                    owner=self.owner,
                    limit=min(self.config.claim_batch, room),
                    lease_s=self.config.lease_s,
                    now=self.clock(),
                )
                if not jobs:
                    await self._idle()
                    continue
                for job in jobs:
                    self._start(job)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def stop(self, grace_s: float) -> None:
        """Stop claiming; let in-flight work finish up to `grace_s`, then abort it.

        Unfinished jobs keep their rows: their leases are released so the next
        start (or another node) takes them over at once.
        """
        self._stopping = True
        self._wake.set()
        self._room.set()
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        with contextlib.suppress(Exception):
            await self.store.release_jobs(owner=self.owner)

    async def _idle(self) -> None:
        self._wake.clear()
        wait = self.config.poll_interval_s
        due = await self.store.next_due_at()
        if due is not None:
            wait = min(wait, max(0.0, due - self.clock()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(wait, 0.005))

    def _start(self, job: DeliveryJob) -> None:
        weight = self._topic_weight if job.kind == "topic" else 1
        self._load += weight
        self._active[job.id] = job
        task = asyncio.create_task(self._run_job(job), name=f"job-{job.id}")
        self._tasks.add(task)

        def finished(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._active.pop(job.id, None)
            self._load -= weight
            self._room.set()

        task.add_done_callback(finished)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.config.lease_s / 3)
            if self._active:
                until = self.clock() + self.config.lease_s
                await self.store.extend_leases(
                    owner=self.owner, job_ids=list(self._active), until=until
                )

    async def _run_job(self, job: DeliveryJob) -> None:
        try:
            if job.kind == "topic":
                await self._run_topic(job)
            else:
                await self._run_endpoint(job)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A bug, not a provider answer: keep the job, try again later.
            log.exception("job_failed", job_id=job.id, kind=job.kind)
            self.stats["job_errors"] += 1
            with contextlib.suppress(Exception):
                await self.store.retry_job(
                    job.id,
                    owner=self.owner,
                    next_attempt_at=self.clock() + self.retry.delay(job.attempts + 1),
                    last_error="internal error",
                )

    # -- endpoint jobs ---------------------------------------------------------
    async def _run_endpoint(self, job: DeliveryJob) -> None:
        message = await self._message(job.message_id)
        endpoint = (
            await self.store.get_endpoint(job.endpoint_arn)
            if job.endpoint_arn
            else None
        )
        if message is None or endpoint is None:
            self.stats["skipped_deleted"] += 1
            await self.store.complete_job(job.id, owner=self.owner)
            return
        async with self.sends:
            decision = await self.deliver(message, endpoint, attempts=job.attempts + 1)
        if isinstance(decision, RetryAt):
            await self.store.retry_job(
                job.id,
                owner=self.owner,
                next_attempt_at=decision.at,
                last_error=decision.error,
            )
        else:
            await self.store.complete_job(job.id, owner=self.owner)

    # -- topic chunks ----------------------------------------------------------
    async def _run_topic(self, job: DeliveryJob) -> None:
        message = await self._message(job.message_id)
        hi = job.range_hi or 0
        subs: list[Subscription] = []
        if message is not None and job.topic_arn and job.cursor < hi:
            subs = await self.store.subscriptions_range(
                job.topic_arn,
                after_seq=job.cursor,
                upto_seq=hi,
                limit=self.config.chunk_size,
            )
        if message is None or not subs:
            await self.store.complete_job(job.id, owner=self.owner)
            return
        if len(subs) == self.config.chunk_size and subs[-1].seq < hi:
            split = await self.store.split_topic_job(
                job.id, owner=self.owner, at_seq=subs[-1].seq
            )
            if split is not None:
                self.wake()
        await TopicChunk(self, job, message, subs).run()
        await self.store.complete_job(job.id, owner=self.owner)

    # -- one endpoint, one message --------------------------------------------
    async def deliver(
        self, message: Message, endpoint: Endpoint, *, attempts: int
    ) -> Decision:
        """Send once (if still due) and act on the outcome."""
        app = await self._app(endpoint.app_arn)
        now = self.clock()
        if app is None:
            self.stats["skipped_no_app"] += 1
            return DONE
        deadline = expires_at(message, app.platform, self.config.default_ttl_s)
        attempt = _Attempt(app, endpoint, message, attempts, deadline)
        if now >= deadline:
            return await self._fail(
                attempt, "NotificationTTLExpired", "message TTL expired before delivery"
            )
        if not endpoint.enabled:
            return await self._fail(attempt, "EndpointDisabled", "Endpoint is disabled")
        gate = self._gate(app.arn)
        if not app.enabled or gate.paused_until > now:
            wait_until = max(gate.paused_until, now + self.retry.delay(attempts))
            return await self._later(
                attempt, wait_until, "application paused or disabled"
            )
        rendered = self._render(message, app.platform)
        if rendered is None:
            return await self._fail(
                attempt, "DeliveryFailedPerm", f"no payload for {app.platform.value}"
            )
        provider = await self.providers.get(app)
        async with gate.semaphore:
            try:
                result = await provider.send(endpoint, rendered)
            except Exception as exc:  # an adapter bug must not lose the message
                log.exception(
                    "adapter_error", app=app.arn, device=redact(endpoint.token)
                )
                result = SendResult(
                    Outcome.RETRY, f"adapter error: {type(exc).__name__}"
                )
        self.stats[result.outcome.value] += 1
        return await self._act(attempt, result)

    async def _act(self, attempt: _Attempt, result: SendResult) -> Decision:
        app, endpoint = attempt.app, attempt.endpoint
        gate = self._gate(app.arn)
        now = self.clock()
        outcome = result.outcome
        if outcome in (Outcome.DELIVERED, Outcome.CANONICAL_TOKEN):
            gate.success()
            if outcome is Outcome.CANONICAL_TOKEN and result.new_token:
                await self._replace_token(app, endpoint, result.new_token)
            self._log_success(attempt, result)
            return DONE
        if outcome is Outcome.INVALID_TOKEN:
            gate.success()  # the provider is up; this token is gone
            await self._disable_endpoint(app, endpoint)
            return await self._fail(
                attempt, "InvalidPlatformToken", result.reason, result
            )
        if outcome is Outcome.PERMANENT:
            return await self._fail(
                attempt, "DeliveryFailedPerm", result.reason, result
            )
        if outcome is Outcome.BAD_CREDENTIALS:
            await self._disable_app(app, result.reason)
        else:
            gate.failure(now, result.retry_after)
        delay = self.retry.delay(attempt.attempts, retry_after=result.retry_after)
        log.info(
            "delivery_retry_scheduled",
            endpoint=endpoint.arn,
            attempt=attempt.attempts,
            retry_in_s=round(delay, 3),
            retry_after_s=result.retry_after,
            reason=result.reason,
        )
        return await self._later(attempt, now + delay, result.reason)

    async def _later(self, attempt: _Attempt, at: float, reason: str) -> Decision:
        if at >= attempt.deadline:
            return await self._fail(
                attempt,
                "NotificationTTLExpired",
                f"TTL expired while retrying: {reason}",
            )
        self.stats["retries_scheduled"] += 1
        return RetryAt(at + random.uniform(0, 0.05), reason)

    async def _fail(
        self,
        attempt: _Attempt,
        failure_type: str,
        failure_message: str,
        result: SendResult | None = None,
    ) -> Decision:
        now = self.clock()
        self.stats[f"failed_{failure_type}"] += 1
        events.log_delivery_status(
            success=False,
            message=attempt.message,
            endpoint=attempt.endpoint,
            result=result,
            attempts=attempt.attempts,
            now=now,
            reason=failure_message,
        )
        payload = events.delivery_failure_event(
            attempt.app,
            attempt.endpoint.arn,
            attempt.message,
            failure_type=failure_type,
            failure_message=failure_message,
            attempts=attempt.attempts,
            now=now,
        )
        if await events.publish_event(
            self.store, attempt.app, "EventDeliveryFailure", payload, now=now
        ):
            self.wake()
        return DONE

    def _log_success(self, attempt: _Attempt, result: SendResult) -> None:
        rate = attempt.app.attributes.get("SuccessFeedbackSampleRate")
        if rate and random.uniform(0, 100) < int(rate):
            events.log_delivery_status(
                success=True,
                message=attempt.message,
                endpoint=attempt.endpoint,
                result=result,
                attempts=attempt.attempts,
                now=self.clock(),
            )

    # -- endpoint and application hygiene --------------------------------------
    async def _disable_endpoint(
        self, app: PlatformApplication, endpoint: Endpoint
    ) -> None:
        current = await self.store.get_endpoint(endpoint.arn)
        if current is None or not current.enabled or current.token != endpoint.token:
            return  # deleted, already disabled, or re-registered meanwhile
        updated = dataclasses.replace(current, enabled=False)
        with contextlib.suppress(NotFoundError):
            await self.store.update_endpoint(updated)
        log.info(
            "endpoint_disabled", endpoint=endpoint.arn, device=redact(endpoint.token)
        )
        await self._endpoint_updated(app, updated)

    async def _replace_token(
        self, app: PlatformApplication, endpoint: Endpoint, new_token: str
    ) -> None:
        current = await self.store.get_endpoint(endpoint.arn)
        if current is None or current.token != endpoint.token:
            return
        updated = dataclasses.replace(current, token=new_token)
        try:
            await self.store.update_endpoint(updated)
        except ConflictError:
            # The canonical token already has its own endpoint: this one is a
            # duplicate registration of the same device.
            updated = dataclasses.replace(current, enabled=False)
            await self.store.update_endpoint(updated)
        except NotFoundError:
            return
        log.info("endpoint_token_canonicalised", endpoint=endpoint.arn)
        await self._endpoint_updated(app, updated)

    async def _endpoint_updated(
        self, app: PlatformApplication, endpoint: Endpoint
    ) -> None:
        now = self.clock()
        payload = events.endpoint_event(app, endpoint, "EventEndpointUpdated", now=now)
        if await events.publish_event(
            self.store, app, "EventEndpointUpdated", payload, now=now
        ):
            self.wake()

    async def _disable_app(self, app: PlatformApplication, reason: str) -> None:
        current = await self.store.get_app(app.arn)
        if current is None or not current.enabled:
            return
        if current.credential != app.credential or current.principal != app.principal:
            return  # credentials changed since this send: judge the new ones later
        await self.store.update_app(dataclasses.replace(current, enabled=False))
        self._apps.pop(app.arn, None)
        self.stats["apps_disabled"] += 1
        log.error(
            "platform_application_disabled", app=app.arn, reason=reason, alert=True
        )

    # -- caches ----------------------------------------------------------------
    def _render(self, message: Message, platform: Platform) -> RenderedMessage | None:
        """Render once per message and platform (a fan-out renders the same thing)."""
        key = (message.id, platform)
        if key not in self._rendered:
            if len(self._rendered) > 1024:
                self._rendered.clear()
            self._rendered[key] = render(message, platform)
        return self._rendered[key]

    def _gate(self, app_arn: str) -> AppGate:
        gate = self._gates.get(app_arn)
        if gate is None:
            gate = self._gates[app_arn] = AppGate(
                limit=self.config.per_app_in_flight,
                pause_s=self.config.app_backoff_s,
                max_pause_s=self.config.retry_max_s,
            )
        return gate

    async def _app(self, arn: str) -> PlatformApplication | None:
        cached = self._apps.get(arn)
        now = time.monotonic()
        if cached is not None and now - cached[0] < APP_CACHE_S:
            return cached[1]
        app = await self.store.get_app(arn)
        self._apps[arn] = (now, app)
        return app

    async def _message(self, message_id: str) -> Message | None:
        message = self._messages.get(message_id)
        if message is None:
            message = await self.store.get_message(message_id)
            if message is not None:
                self._remember(message)
        return message

    def _remember(self, message: Message) -> None:
        self._messages[message.id] = message
        while len(self._messages) > 1024:
            self._messages.popitem(last=False)
