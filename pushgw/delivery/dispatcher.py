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
* Faults: the claim loop and the lease heartbeat run under the daemon's
  Supervisor, so a store error is retried with back-off, never the end of
  delivery. Acks (complete, retry, progress, the side effects of an outcome)
  are retried until the store takes them, while the job's lease is kept alive.
  A message our own code cannot render or build a request for (a poison
  message) is a permanent failure for that endpoint; only provider answers
  and transport errors count towards an app's circuit breaker.
* Leases are owned by `{node}/{incarnation}`: a (re)started claim loop first
  drops this node's leases that no running job holds — a crashed previous run's,
  or claims whose answer a store fault lost — so they are taken again at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from pushgw.config import DeliveryConfig
from pushgw.delivery.chunk import TopicChunk
from pushgw.delivery.decision import DONE, STORE_RETRY_S, Decision, RetryAt
from pushgw.delivery.http import HttpSender
from pushgw.delivery.observe import (
    Attempt,
    DeliveryObserver,
    Finished,
    Observers,
    expired,
)
from pushgw.delivery.providers import AppGate, ProviderPool
from pushgw.delivery.render import expires_at, render
from pushgw.delivery.retry import RetryPolicy
from pushgw.errors import (
    ConflictError,
    NotFoundError,
    ProviderSetupError,
    StoreError,
    StoreUnavailableError,
)
from pushgw.limiter import Limiter
from pushgw.log import get_logger
from pushgw.logsummary import RepeatedLog
from pushgw.model import (
    HTTP_LANE,
    PUSH_LANE,
    DeliveryJob,
    Endpoint,
    Message,
    Platform,
    PlatformApplication,
    Subscription,
)
from pushgw.providers.base import (
    Outcome,
    RenderedMessage,
    SendResult,
    redact,
)
from pushgw.sns import events
from pushgw.store.base import WAITING_FOR_APP, EndpointEnqueued, JobClaim, Store
from pushgw.supervisor import Pulse, Supervisor

log = get_logger("pushgw.delivery")
T = TypeVar("T")

APP_CACHE_S = 2.0  # how stale an app's enabled flag may be on this node
PULSE_S = 1.0  # the claim loop beats at least this often, even when full
PERSIST_FIRST_S = 0.05  # an ack the store refused is tried again after this,
PERSIST_MAX_S = 2.0  # doubling up to this
CLAIM_TASK = "dispatcher"
HTTP_CLAIM_TASK = "http-dispatcher"
HEARTBEAT_TASK = "lease-heartbeat"
LOG_SUMMARY_TASK = "log-summary"


def node_id_for(config: DeliveryConfig, source: str = "") -> str:
    """`delivery.node_id`, else host name plus a digest of the config path
    (`source`): stable across restarts of one daemon, distinct for daemons with
    their own configs on one host."""
    if config.node_id:
        return config.node_id
    where = source or f"pid-{uuid.uuid4().hex}"  # no config file: no takeover
    return f"{socket.gethostname()}:{hashlib.sha256(where.encode()).hexdigest()[:8]}"


@dataclass(slots=True)
class _Lane:
    """
    One claim loop's share of the work: push jobs (endpoint and topic) or HTTP
    subscription jobs, each with its own capacity, so a slow or dead HTTP
    subscriber never holds a slot of push delivery (and the reverse).
    """

    lane: int
    capacity: int
    load: int = 0
    room: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    wake: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


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
        node: str | None = None,
        http_sender: HttpSender | None = None,
        observer: DeliveryObserver | None = None,
    ) -> None:
        self.store = store
        # Metrics and the delivery ledger: told of every attempt and outcome.
        self.observer: DeliveryObserver = observer or Observers()
        self.failure_log = RepeatedLog(log)
        self.providers = providers
        self.config = config
        self.clock = clock
        self.node = node or node_id_for(config)
        self.owner = f"{self.node}/{uuid.uuid4().hex[:8]}"
        self.retry = RetryPolicy(config.retry_base_s, config.retry_max_s)
        self.stats: collections.Counter[str] = collections.Counter()
        self._push = _Lane(PUSH_LANE, config.max_in_flight)
        self._http = _Lane(HTTP_LANE, http_sender.max_in_flight if http_sender else 0)
        self.http_sender = http_sender
        # Sends in flight in this process (topic chunks and endpoint jobs alike).
        self.sends = Limiter(config.max_in_flight)
        self._rendered: dict[
            tuple[str, Platform], RenderedMessage | Exception | None
        ] = {}
        self._active: dict[int, DeliveryJob] = {}  # both lanes
        self._tasks: set[asyncio.Task[None]] = set()
        self._gates: dict[str, AppGate] = {}
        self._apps: dict[str, tuple[float, PlatformApplication | None]] = {}
        self._messages: collections.OrderedDict[str, Message] = (
            collections.OrderedDict()
        )
        self._stopping = False
        self._stopped = asyncio.Event()
        self._topic_weight = max(1, config.max_in_flight // 2)

    # -- lifecycle -------------------------------------------------------------
    def wake(self) -> None:
        self._push.wake.set()
        self._http.wake.set()

    def accepted(self, message: Message) -> None:
        """A publish was committed here: keep the message at hand, and wake up."""
        self._remember(message)
        self.wake()

    def replayed(self, message: Message) -> None:
        """Dead letters of `message` were queued again (as stored now: a replay
        may have stored it anew, with a new TTL): forget what was cached."""
        for platform in Platform:
            self._rendered.pop((message.id, platform), None)
        self.accepted(message)

    # -- publishes handed over in memory (service/publish.py) ------------------
    def reserve(self) -> JobClaim | None:
        """
        A lease for an endpoint job this process runs as soon as it is stored:
        the publish stores it leased to us and hands it over (`run_claimed`),
        so it needs no wake-up, claim round trip or endpoint read. It takes a
        slot of the push lane now; None when this node does not deliver
        (`[delivery] enabled = false`), the lane is full or stopping (the job
        is then stored claimable, for the claim loop or another node).
        """
        lane = self._push
        if not self.config.enabled or self._stopping or lane.load >= lane.capacity:
            return None
        lane.load += 1
        return JobClaim(self.owner, self.clock() + self.config.lease_s)

    def unreserve(self) -> None:
        """Give back a `reserve()` slot whose job will not run here."""
        self._push.load -= 1
        self._push.room.set()

    def run_claimed(self, message: Message, enqueued: EndpointEnqueued) -> None:
        """Run a job stored with our `reserve()` lease (and its slot)."""
        self._remember(message)
        if self._stopping:
            # Not started: stop() releases our leases once in-flight work is
            # done (release_jobs), else the lease lapses; others take it then.
            self.unreserve()
            return
        self._start(enqueued.job, self._push, endpoint=enqueued.endpoint, reserved=True)

    @property
    def in_flight(self) -> int:
        return self.sends.in_use

    def supervise(self, supervisor: Supervisor) -> None:
        """Run the claim loop and the lease heartbeat under `supervisor`."""
        supervisor.start(CLAIM_TASK, lambda pulse: self._claim_loop(pulse, self._push))
        if self.http_sender is not None:
            supervisor.start(
                HTTP_CLAIM_TASK, lambda pulse: self._claim_loop(pulse, self._http)
            )
        supervisor.start(HEARTBEAT_TASK, self._heartbeat_loop)
        supervisor.start(LOG_SUMMARY_TASK, self._summarise_logs)

    async def run(self) -> None:
        """Claim and deliver until `stop()` (a supervisor of its own: tests)."""
        supervisor = Supervisor()
        self.supervise(supervisor)
        try:
            await self._stopped.wait()
        finally:
            await supervisor.stop()

    async def _claim_loop(self, pulse: Pulse, lane: _Lane) -> None:
        # (Re)started: this node's leases that no running job holds are stale.
        await self.store.release_node_jobs(node=self.node, keep=list(self._active))
        while not self._stopping:
            pulse.beat()
            room = lane.capacity - lane.load
            if room <= 0:
                lane.room.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lane.room.wait(), PULSE_S)
                continue
            jobs = await self.store.claim_jobs(
                owner=self.owner,
                limit=min(self.config.claim_batch, room),
                lease_s=self.config.lease_s,
                now=self.clock(),
                lane=lane.lane,
            )
            if not jobs:
                await self._idle(lane)
                continue
            for job in jobs:
                self._start(job, lane)

    async def stop(self, grace_s: float) -> None:
        """Stop claiming; let in-flight work finish up to `grace_s`, then abort it.

        Unfinished jobs keep their rows: their leases are released so the next
        start (or another node) takes them over at once.
        """
        self._stopping = True
        self._stopped.set()
        for lane in (self._push, self._http):
            lane.wake.set()
            lane.room.set()
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        with contextlib.suppress(StoreError):
            await self.store.release_jobs(owner=self.owner)

    async def _idle(self, lane: _Lane) -> None:
        lane.wake.clear()
        wait = min(self.config.poll_interval_s, PULSE_S)
        due = await self.store.next_due_at(lane.lane)
        if due is not None:
            wait = min(wait, max(0.0, due - self.clock()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(lane.wake.wait(), timeout=max(wait, 0.005))

    def _start(
        self,
        job: DeliveryJob,
        lane: _Lane,
        *,
        endpoint: Endpoint | None = None,
        reserved: bool = False,
    ) -> None:
        """Run `job`; `endpoint` as just read with it, `reserved`: its lane
        slot is already taken (`reserve`)."""
        weight = self._topic_weight if job.kind == "topic" else 1
        if job.id in self._active:
            # Our own lease lapsed during a store outage and we claimed the job
            # again: it is still running here, and the claim renewed its lease.
            if reserved:
                self.unreserve()
            return
        if not reserved:
            lane.load += weight
        self._active[job.id] = job
        task = asyncio.create_task(self._run_job(job, endpoint), name=f"job-{job.id}")
        self._tasks.add(task)

        def finished(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._active.pop(job.id, None)
            lane.load -= weight
            lane.room.set()

        task.add_done_callback(finished)

    async def _summarise_logs(self, pulse: Pulse) -> None:
        """Summarise repeated failures once per interval, bursts that stopped too."""
        while True:
            await asyncio.sleep(self.failure_log.interval_s / 2)
            self.failure_log.flush()
            if self.http_sender is not None:
                self.http_sender.failure_log.flush()
            pulse.beat()

    async def _heartbeat_loop(self, pulse: Pulse) -> None:
        # Extend first: restarted after a store fault, the leases are renewed
        # as soon as the store answers again.
        while True:
            if self._active:
                until = self.clock() + self.config.lease_s
                await self.store.extend_leases(
                    owner=self.owner, job_ids=list(self._active), until=until
                )
            pulse.beat()
            await asyncio.sleep(self.config.lease_s / 3)

    async def _run_job(self, job: DeliveryJob, endpoint: Endpoint | None) -> None:
        try:
            if job.kind == "topic":
                await self._run_topic(job)
            elif job.kind == "http":
                await self._run_http(job)
            else:
                await self._run_endpoint(job, endpoint)
            return
        except asyncio.CancelledError:
            raise
        except StoreUnavailableError as exc:
            # Nothing is lost: the job keeps its row; run it again soon.
            log.warning("job_interrupted", job_id=job.id, error=str(exc))
            self.stats["jobs_interrupted"] += 1
            delay, error = STORE_RETRY_S, "store unavailable"
        except Exception:
            # A bug, not a provider answer: keep the job, try again later.
            log.exception("job_failed", job_id=job.id, kind=job.kind)
            self.stats["job_errors"] += 1
            delay, error = self.retry.delay(job.attempts + 1), "internal error"
        try:
            await self.persist(
                "retry_job",
                lambda: self.store.retry_job(
                    job.id,
                    owner=self.owner,
                    next_attempt_at=self.clock() + delay,
                    last_error=error,
                ),
            )
        except StoreError:
            # Not transient: the lease runs out and the job is claimed again.
            log.exception("job_release_failed", job_id=job.id)

    async def persist(self, what: str, write: Callable[[], Awaitable[T]]) -> T:
        """
        Run a store write that must not be lost (an ack, an outcome's side
        effect), trying again while the store is unavailable. The job stays
        active meanwhile, so the heartbeat keeps its lease once the store is
        back. Other store errors (a conflict, a bug) are raised.
        """
        delay = PERSIST_FIRST_S
        failures = 0
        while True:
            try:
                return await write()
            except StoreUnavailableError as exc:
                failures += 1
                self.stats["store_write_retries"] += 1
                if failures == 1 or failures % 50 == 0:
                    log.warning(
                        "store_write_deferred",
                        what=what,
                        error=str(exc),
                        failures=failures,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, PERSIST_MAX_S)

    # -- endpoint jobs ---------------------------------------------------------
    async def _run_endpoint(self, job: DeliveryJob, endpoint: Endpoint | None) -> None:
        """`endpoint`: as read in the transaction that stored the job (a
        publish handed over in memory); else it is read now."""
        message = await self._message(job.message_id)
        if endpoint is None and job.endpoint_arn:
            endpoint = await self.store.get_endpoint(job.endpoint_arn)
        if message is None or endpoint is None:
            self.stats["skipped_deleted"] += 1
            await self._complete(job)
            return
        async with self.sends:
            decision = await self.deliver(message, endpoint, attempts=job.attempts + 1)
        await self._settle(job, decision)

    # -- HTTP/HTTPS subscription jobs -----------------------------------------
    async def _run_http(self, job: DeliveryJob) -> None:
        message = await self._message(job.message_id)
        if message is None or self.http_sender is None:
            await self._complete(job)
            return
        await self._settle(job, await self.http_sender.deliver(job, message))

    async def _settle(self, job: DeliveryJob, decision: Decision) -> None:
        """Ack a job run once: done, or its next attempt scheduled."""
        if isinstance(decision, RetryAt):
            await self.persist(
                "retry_job",
                lambda: self.store.retry_job(
                    job.id,
                    owner=self.owner,
                    next_attempt_at=decision.at,
                    last_error=decision.error,
                    count_attempt=decision.counts,
                ),
            )
        else:
            await self._complete(job)

    async def _complete(self, job: DeliveryJob) -> None:
        await self.persist(
            "complete_job", lambda: self.store.complete_job(job.id, owner=self.owner)
        )

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
            await self._complete(job)
            return
        if len(subs) == self.config.chunk_size and subs[-1].seq < hi:
            split = await self.store.split_topic_job(
                job.id, owner=self.owner, at_seq=subs[-1].seq
            )
            if split is not None:
                self.wake()
        await TopicChunk(self, job, message, subs).run()
        await self._complete(job)

    # -- one endpoint, one message --------------------------------------------
    async def deliver(
        self, message: Message, endpoint: Endpoint, *, attempts: int
    ) -> Decision:
        """Send once (if still due) and act on the outcome.

        Raises StoreUnavailableError only before anything was sent (the app
        could not be read), so the caller may simply try again later.
        """
        app = await self._app(endpoint.app_arn)
        now = self.clock()
        if app is None:
            self.stats["skipped_no_app"] += 1
            return DONE
        try:
            deadline = expires_at(message, app.platform, self.config.default_ttl_s)
            rendered = self._render(message, app.platform)
        except Exception as exc:  # a poison message: our code cannot render it
            attempt = _Attempt(app, endpoint, message, attempts, now)
            return await self._fail(attempt, "DeliveryFailedPerm", _poison(exc))
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
            return await self._later(attempt, wait_until, WAITING_FOR_APP)
        if rendered is None:
            return await self._fail(
                attempt, "DeliveryFailedPerm", f"no payload for {app.platform.value}"
            )
        async with gate.semaphore:
            result = await self._send(attempt, rendered)
        if result is None:  # our adapter code failed: permanent, never the breaker
            return await self._fail(
                attempt, "DeliveryFailedPerm", "the request could not be built"
            )
        self.stats[result.outcome.value] += 1
        return await self._act(attempt, result)

    async def _send(
        self, attempt: _Attempt, rendered: RenderedMessage
    ) -> SendResult | None:
        """The provider's answer; None when our own adapter code raised."""
        app, endpoint = attempt.app, attempt.endpoint
        try:
            provider = await self.providers.get(app)
        except ProviderSetupError as exc:
            return SendResult(Outcome.BAD_CREDENTIALS, f"provider setup: {exc}")
        sent_at, started = self.clock(), time.perf_counter()
        try:
            # Provider.send maps transport errors to RETRY itself: whatever
            # it raises is a bug in our adapter code.
            result = await provider.send(endpoint, rendered)
        except Exception:
            self.stats["adapter_errors"] += 1
            log.exception("adapter_error", app=app.arn, device=redact(endpoint.token))
            self._attempted(attempt, "error", None, sent_at, started)
            return None
        self._attempted(attempt, result.outcome.value, result.status, sent_at, started)
        return result

    def _attempted(
        self,
        attempt: _Attempt,
        outcome: str,
        status: int | None,
        sent_at: float,
        started: float,
    ) -> None:
        self.observer.attempt(
            Attempt(
                attempt.app.platform.value,
                outcome,
                status,
                time.perf_counter() - started,
                message=attempt.message,
                at=sent_at,
            )
        )

    async def _act(self, attempt: _Attempt, result: SendResult) -> Decision:
        app, endpoint = attempt.app, attempt.endpoint
        gate = self._gate(app.arn)
        now = self.clock()
        outcome = result.outcome
        if outcome in (Outcome.DELIVERED, Outcome.CANONICAL_TOKEN):
            gate.success()
            if outcome is Outcome.CANONICAL_TOKEN and result.new_token:
                await self._replace_token(app, endpoint, result.new_token)
            await self._log_success(attempt, result)
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
        # An outage retries thousands of sends the same way: the first is
        # logged at once, the rest summed per app and reason (logsummary).
        self.failure_log.note(
            "delivery_retry_scheduled",
            key=app.arn,
            reason=result.reason,
            endpoint=endpoint.arn,
            attempt=attempt.attempts,
            retry_in_s=round(delay, 3),
            retry_after_s=result.retry_after,
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
        self.observer.rescheduled(attempt.app.platform.value, reason)
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
        self.failure_log.note(
            "delivery_failed",
            key=attempt.app.arn,
            reason=failure_type,
            endpoint=attempt.endpoint.arn,
            message_id=attempt.message.id,
            failure_message=failure_message,
        )
        self.observer.finished(
            Finished(
                message=attempt.message,
                platform=attempt.app.platform.value,
                endpoint_arn=attempt.endpoint.arn,
                app_arn=attempt.app.arn,
                status="expired" if expired(failure_type) else "failed",
                failure_type=failure_type,
                reason=failure_message,
                provider_status=result.status if result else None,
                attempts=attempt.attempts,
                at=now,
            )
        )
        await self._delivery_status(
            attempt.message,
            events.delivery_status(
                success=False,
                message=attempt.message,
                endpoint=attempt.endpoint,
                result=result,
                attempts=attempt.attempts,
                now=now,
                reason=failure_message,
            ),
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
        await self._publish_event(attempt.app, "EventDeliveryFailure", payload, now)
        return DONE

    async def _publish_event(
        self,
        app: PlatformApplication,
        attribute: str,
        payload: dict[str, object],
        now: float,
    ) -> None:
        published = await self.persist(
            attribute,
            lambda: events.publish_event(self.store, app, attribute, payload, now=now),
        )
        if published:
            self.wake()

    async def _log_success(self, attempt: _Attempt, result: SendResult) -> None:
        rate = attempt.app.attributes.get("SuccessFeedbackSampleRate")
        sampled = bool(rate) and random.uniform(0, 100) < int(rate or 0)
        self.observer.finished(
            Finished(
                message=attempt.message,
                platform=attempt.app.platform.value,
                endpoint_arn=attempt.endpoint.arn,
                app_arn=attempt.app.arn,
                status="delivered",
                failure_type=None,
                reason=result.reason,
                provider_status=result.status,
                attempts=attempt.attempts,
                at=self.clock(),
                sampled=sampled,
            )
        )
        if sampled:
            await self._delivery_status(
                attempt.message,
                events.delivery_status(
                    success=True,
                    message=attempt.message,
                    endpoint=attempt.endpoint,
                    result=result,
                    attempts=attempt.attempts,
                    now=self.clock(),
                ),
            )

    async def _delivery_status(
        self, message: Message, record: dict[str, object]
    ) -> None:
        """Log SNS's delivery-status record; with `status_topic_arn`, also
        publish it there (a backend subscribes over HTTP to follow them). A
        record's own delivery makes none: no loop through the status topic."""
        events.log_delivery_status(record)
        topic = self.config.status_topic_arn
        if not topic or message.topic_arn == topic:
            return
        published = await self.persist(
            "delivery_status",
            lambda: events.publish_to_topic(
                self.store, topic, record, now=self.clock()
            ),
        )
        if published:
            self.wake()

    # -- endpoint and application hygiene --------------------------------------
    async def _disable_endpoint(
        self, app: PlatformApplication, endpoint: Endpoint
    ) -> None:
        # One conditional write: an endpoint deleted, disabled or re-registered
        # with a new token since this send is left alone.
        updated = await self.persist(
            "disable_endpoint",
            lambda: self.store.disable_endpoint(endpoint.arn, token=endpoint.token),
        )
        if updated is None:
            return
        log.info(
            "endpoint_disabled", endpoint=endpoint.arn, device=redact(endpoint.token)
        )
        await self._endpoint_updated(app, updated)

    async def _replace_token(
        self, app: PlatformApplication, endpoint: Endpoint, new_token: str
    ) -> None:
        try:
            updated = await self.persist(
                "replace_endpoint_token",
                lambda: self.store.replace_endpoint_token(
                    endpoint.arn, old_token=endpoint.token, new_token=new_token
                ),
            )
        except ConflictError:
            # The canonical token already has its own endpoint: this one is a
            # duplicate registration of the same device.
            updated = await self.persist(
                "disable_endpoint",
                lambda: self.store.disable_endpoint(endpoint.arn, token=endpoint.token),
            )
        if updated is None:
            return  # deleted or re-registered meanwhile
        log.info("endpoint_token_canonicalised", endpoint=endpoint.arn)
        await self._endpoint_updated(app, updated)

    async def _endpoint_updated(
        self, app: PlatformApplication, endpoint: Endpoint
    ) -> None:
        now = self.clock()
        payload = events.endpoint_event(app, endpoint, "EventEndpointUpdated", now=now)
        await self._publish_event(app, "EventEndpointUpdated", payload, now)

    async def _disable_app(self, app: PlatformApplication, reason: str) -> None:
        current = await self.persist("get_app", lambda: self.store.get_app(app.arn))
        if current is None or not current.enabled:
            return
        if current.credential != app.credential or current.principal != app.principal:
            return  # credentials changed since this send: judge the new ones later
        disabled = dataclasses.replace(current, enabled=False)
        with contextlib.suppress(NotFoundError):
            await self.persist("disable_app", lambda: self.store.update_app(disabled))
        self._apps.pop(app.arn, None)
        self.stats["apps_disabled"] += 1
        log.error(
            "platform_application_disabled", app=app.arn, reason=reason, alert=True
        )

    # -- caches ----------------------------------------------------------------
    def _render(self, message: Message, platform: Platform) -> RenderedMessage | None:
        """Render once per message and platform (a fan-out renders the same thing).

        A failure is kept too, so a poison fan-out logs one traceback, not one
        per endpoint; it is raised again on every call.
        """
        key = (message.id, platform)
        if key not in self._rendered:
            if len(self._rendered) > 1024:
                self._rendered.clear()
            try:
                self._rendered[key] = render(message, platform)
            except Exception as exc:
                log.exception(
                    "render_failed", message_id=message.id, platform=platform.value
                )
                self._rendered[key] = exc
        value = self._rendered[key]
        if isinstance(value, Exception):
            raise value
        return value

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


def _poison(exc: Exception) -> str:
    """The failure message of a message pushgw cannot render or build."""
    return f"message cannot be rendered: {type(exc).__name__}"
