"""A topic fan-out chunk in flight, with its progress recorded."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from pushgw.delivery.decision import STORE_RETRY_S, Decision, RetryAt
from pushgw.errors import StoreUnavailableError
from pushgw.limiter import Limiter
from pushgw.log import get_logger
from pushgw.model import DeliveryJob, Endpoint, Message, Subscription
from pushgw.sns.filters import (
    ParsedBody,
    message_body,
    message_matches,
    parse_filter_policy,
    scope_of,
)
from pushgw.store.base import NewJob, Store

T = TypeVar("T")


class ChunkHost(Protocol):
    """What a chunk needs from the dispatcher that runs it, and nothing more."""

    store: Store  # for the chunk's own progress and split-off retries
    owner: str  # the lease those writes are made under
    sends: Limiter  # the process-wide cap on sends in flight

    def clock(self) -> float: ...

    async def deliver(
        self, message: Message, endpoint: Endpoint, *, attempts: int
    ) -> Decision: ...

    async def persist(self, what: str, write: Callable[[], Awaitable[T]]) -> T: ...


log = get_logger("pushgw.delivery")

PROGRESS_EVERY = 200  # completions between progress saves inside a chunk
PROGRESS_INTERVAL_S = 1.0  # and at least this often while a chunk runs


class TopicChunk:
    """
    One topic chunk in flight: bounded concurrency, recorded progress.

    Progress is the contiguous `cursor` plus the seqs finished above it, saved
    every PROGRESS_EVERY completions and at least every PROGRESS_INTERVAL_S, after
    the retries split off so far are stored. After a crash only the sends in
    flight and those finished since the last save are repeated, even when one
    send is slow.

    While the store is unavailable the sends go on; a save that fails is kept
    for the next one, and the last save before the chunk completes is retried
    until it lands. A send the store interrupted (its app could not be read)
    becomes an endpoint job of its own, like a provider retry.
    """

    def __init__(
        self,
        host: ChunkHost,
        job: DeliveryJob,
        message: Message,
        subs: Sequence[Subscription],
    ) -> None:
        self.host = host
        self.job = job
        self.message = message
        self.subs = [s for s in subs if s.seq not in set(job.done)]
        self.pending_seqs = collections.deque(s.seq for s in subs)
        self.done: set[int] = set(job.done)
        self.retries: list[NewJob] = []
        self.completions = 0
        self.cursor = job.cursor
        self.saved: tuple[int, frozenset[int]] = (job.cursor, frozenset(job.done))
        self.flush_lock = asyncio.Lock()
        # One verdict per (scope, policy text): the message is the same for
        # every subscriber, so a million subscriptions sharing a few policies
        # cost a few matches. The body is parsed once, on first need.
        self.verdicts: dict[tuple[str, str], bool] = {}
        self.body: ParsedBody | None = None

    async def run(self) -> None:
        endpoints = await self.host.store.get_endpoints(
            [s.endpoint_arn for s in self.subs if not s.is_http]
        )
        tasks: set[asyncio.Task[None]] = set()
        ticker = asyncio.create_task(self._tick(), name=f"progress-{self.job.id}")
        try:
            for sub in self.subs:
                if sub.is_http:
                    self._hand_over(sub)
                    continue
                endpoint = endpoints.get(sub.endpoint_arn)
                if endpoint is None or not self._wanted(sub):
                    self._finish(sub.seq)
                    continue
                await self.host.sends.acquire()  # released when this send is done
                task = asyncio.create_task(self._one(sub.seq, endpoint))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                if self.completions >= PROGRESS_EVERY:
                    await self._try_flush()
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            ticker.cancel()
        await self.host.persist("chunk_progress", self._flush)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            await self._try_flush()

    async def _try_flush(self) -> None:
        """A progress save in passing: if it fails, the next one will do (the
        last one, before the chunk completes, is retried until it lands). It
        never ends the ticker: a failure is logged, whatever it is."""
        try:
            await self._flush()
        except StoreUnavailableError as exc:
            log.warning("chunk_progress_deferred", job_id=self.job.id, error=str(exc))
        except Exception:
            log.exception("chunk_progress_failed", job_id=self.job.id)

    def _wanted(self, sub: Subscription) -> bool:
        text = sub.attributes.get("FilterPolicy")
        if not text:
            return True
        key = (scope_of(sub.attributes), text)
        verdict = self.verdicts.get(key)
        if verdict is None:
            verdict = self.verdicts[key] = self._verdict(*key)
        return verdict

    def _verdict(self, scope: str, text: str) -> bool:
        try:
            # Limits are checked when a policy is set; one stored before they
            # applied still filters as it did rather than dropping every message.
            policy = parse_filter_policy(text, scope=scope, check_limits=False)
        except ValueError:
            return False  # refused at Subscribe; match nothing
        if self.body is None:
            self.body = message_body(self.message)
        return message_matches(policy, self.message.attributes, self.body)

    def _hand_over(self, sub: Subscription) -> None:
        """
        An HTTP/HTTPS subscriber is not sent to from the chunk: it becomes an
        `http` job of its own (stored with the next progress save, before its
        seq counts as done), run in the HTTP lane with the subscription's
        delivery policy. A pending subscription receives nothing.
        """
        if not sub.pending and self._wanted(sub):
            self.retries.append(
                NewJob(
                    kind="http",
                    subscription_arn=sub.arn,
                    next_attempt_at=self.host.clock(),
                )
            )
        self._finish(sub.seq)

    async def _one(self, seq: int, endpoint: Endpoint) -> None:
        attempts = 1
        try:
            decision = await self.host.deliver(self.message, endpoint, attempts=1)
        except StoreUnavailableError as exc:  # before the send: nothing went out
            attempts = 0
            decision = RetryAt(self.host.clock() + STORE_RETRY_S, f"store: {exc}")
        except Exception:  # a bug: this endpoint is tried again as a job of its own
            log.exception("fanout_send_failed", job_id=self.job.id, seq=seq)
            decision = RetryAt(self.host.clock() + STORE_RETRY_S, "internal error")
        finally:
            self.host.sends.release()
        if isinstance(decision, RetryAt):
            self.retries.append(
                NewJob(
                    kind="endpoint",
                    endpoint_arn=endpoint.arn,
                    next_attempt_at=decision.at,
                    attempts=attempts,
                    last_error=decision.error,
                )
            )
        self._finish(seq)

    def _finish(self, seq: int) -> None:
        self.done.add(seq)
        self.completions += 1

    async def _flush(self) -> None:
        """Store split-off retries, then record the finished seqs."""
        async with self.flush_lock:
            self.completions = 0
            if self.retries:
                batch, self.retries = self.retries, []
                try:
                    await self.host.store.add_jobs(self.message.id, batch)
                except BaseException:
                    self.retries[:0] = batch  # stored with the next save
                    raise
            while self.pending_seqs and self.pending_seqs[0] in self.done:
                self.cursor = self.pending_seqs.popleft()
                self.done.discard(self.cursor)
            state = (self.cursor, frozenset(self.done))
            if state != self.saved:
                await self.host.store.save_progress(
                    self.job.id,
                    owner=self.host.owner,
                    cursor=self.cursor,
                    done=sorted(state[1]),
                )
                self.saved = state
