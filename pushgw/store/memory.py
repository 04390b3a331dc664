"""
InMemoryStore: the test fake, shipped in the package (procrastinate.testing style).

It follows the same contract as the SQL backends (tests/store runs the same suite
against it) but lives in one process, so it is for tests and `pushgw demo --memory`.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pushgw.errors import ConflictError, NotFoundError
from pushgw.model import (
    PUSH_LANE,
    DeliveryJob,
    Endpoint,
    Message,
    PlatformApplication,
    Subscription,
    Topic,
    lane_of,
)
from pushgw.store.base import (
    WAITING_FOR_APP,
    BacklogRow,
    EndpointEnqueued,
    EndpointTarget,
    JobClaim,
    NewJob,
    Page,
    TargetCheck,
    TokenPage,
    chunk_left,
    prefix_upper_bound,
    replay_job,
)
from pushgw.store.ledger_model import (
    CountKey,
    DeliveryFilter,
    DeliveryRecord,
    LedgerBatch,
    LedgerRetention,
    MessageLedger,
    OutcomeCount,
    PendingDeliveries,
    ReplayResult,
    RollupKey,
    StatsRow,
    replayed_message,
)
from pushgw.store.sealing import PLAIN, CredentialSealer

T = TypeVar("T")


def _page(rows: Iterable[tuple[int, T]], after: int, limit: int) -> Page[T]:
    chosen = [(seq, row) for seq, row in rows if seq > after][: limit + 1]
    more = len(chosen) > limit
    chosen = chosen[:limit]
    return Page(
        items=[row for _, row in chosen],
        next_after=chosen[-1][0] if more and chosen else None,
    )


@dataclass(slots=True)
class _LedgerEntry:
    """A message's ledger entry, without its counters."""

    topic_arn: str | None
    target_arn: str | None
    created_at: float
    first_at: float  # first and last seen (an attempt or an outcome)
    last_at: float
    first_attempt_at: float | None
    last_attempt_at: float | None


def _earlier(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _later(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _selects(where: DeliveryFilter, d: DeliveryRecord) -> bool:
    """Whether the record is one `where` selects."""
    return (
        (where.status is None or d.status == where.status)
        and (where.app_arn is None or d.app_arn == where.app_arn)
        and (where.endpoint_arn is None or d.endpoint_arn == where.endpoint_arn)
        and (where.message_id is None or d.message_id == where.message_id)
        and (where.failure_type is None or d.failure_type == where.failure_type)
        and (where.since is None or d.at >= where.since)
        and (where.dead_letter is None or d.dead_letter == where.dead_letter)
        and (where.replayed is None or (d.replayed_at is not None) == where.replayed)
        and (where.ids is None or d.id in where.ids)
    )


class InMemoryStore:
    """Dict-backed Store. Insertion order is `seq` order."""

    def __init__(self, *, sealer: CredentialSealer = PLAIN) -> None:
        self.sealer = sealer
        self._seq = itertools.count(1)
        self.apps: dict[str, tuple[int, PlatformApplication]] = {}
        self.endpoints: dict[str, tuple[int, Endpoint]] = {}
        self.topics: dict[str, tuple[int, Topic]] = {}
        self.subs: dict[str, Subscription] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.messages: dict[str, Message] = {}
        self.jobs: dict[int, DeliveryJob] = {}
        self.pending: dict[str, int] = {}  # message id -> jobs left
        self.nodes: dict[str, float] = {}  # node id -> last probe
        self.leases: dict[str, tuple[str, float]] = {}  # name -> (owner, expires_at)
        # Unsubscribed: arn -> (the subscription, deleted at).
        self.deleted_subs: dict[str, tuple[Subscription, float]] = {}
        # The delivery ledger (store/ledger_model.py).
        self.ledger_messages: dict[str, _LedgerEntry] = {}
        self.ledger_counts: dict[str, collections.Counter[CountKey]] = {}
        self.ledger_rollup: collections.Counter[RollupKey] = collections.Counter()
        self.deliveries: dict[int, DeliveryRecord] = {}  # id order
        self.dead_messages: dict[str, Message] = {}
        self._delivery_ids = itertools.count(1)

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def reset(self) -> None:
        self.__init__(sealer=self.sealer)  # type: ignore[misc]

    # -- apps ------------------------------------------------------------------
    async def put_app(self, app: PlatformApplication) -> PlatformApplication:
        old = self.apps.get(app.arn)
        seq = old[0] if old else next(self._seq)
        self.apps[app.arn] = (seq, self.sealer.sealed(app))
        return app

    async def get_app(self, arn: str) -> PlatformApplication | None:
        row = self.apps.get(arn)
        return self.sealer.opened(row[1]) if row else None

    async def list_apps(self, *, after: int, limit: int) -> Page[PlatformApplication]:
        page = _page(self.apps.values(), after, limit)
        return Page([self.sealer.opened(a) for a in page.items], page.next_after)

    async def update_app(self, app: PlatformApplication) -> None:
        if app.arn not in self.apps:
            raise NotFoundError(app.arn)
        self.apps[app.arn] = (self.apps[app.arn][0], self.sealer.sealed(app))

    async def delete_app(self, arn: str) -> None:
        self.apps.pop(arn, None)
        for ep_arn in [a for a, (_, e) in self.endpoints.items() if e.app_arn == arn]:
            del self.endpoints[ep_arn]

    # -- endpoints -------------------------------------------------------------
    def _token_owner(self, app_arn: str, token: str) -> Endpoint | None:
        for _, e in self.endpoints.values():
            if e.app_arn == app_arn and e.token == token:
                return e
        return None

    async def insert_endpoint(self, endpoint: Endpoint) -> Endpoint:
        if endpoint.arn in self.endpoints:
            raise ConflictError("endpoint exists")
        if self._token_owner(endpoint.app_arn, endpoint.token) is not None:
            raise ConflictError("token already registered")
        self.endpoints[endpoint.arn] = (next(self._seq), endpoint)
        return endpoint

    async def get_endpoint(self, arn: str) -> Endpoint | None:
        row = self.endpoints.get(arn)
        return row[1] if row else None

    async def get_endpoint_by_token(self, app_arn: str, token: str) -> Endpoint | None:
        return self._token_owner(app_arn, token)

    async def list_endpoints(
        self, app_arn: str, *, after: int, limit: int
    ) -> Page[Endpoint]:
        rows = ((s, e) for s, e in self.endpoints.values() if e.app_arn == app_arn)
        return _page(rows, after, limit)

    async def update_endpoint(self, endpoint: Endpoint) -> None:
        if endpoint.arn not in self.endpoints:
            raise NotFoundError(endpoint.arn)
        owner = self._token_owner(endpoint.app_arn, endpoint.token)
        if owner is not None and owner.arn != endpoint.arn:
            raise ConflictError("token already registered")
        self.endpoints[endpoint.arn] = (self.endpoints[endpoint.arn][0], endpoint)

    async def disable_endpoint(self, arn: str, *, token: str) -> Endpoint | None:
        found = self.endpoints.get(arn)
        if found is None or found[1].token != token or not found[1].enabled:
            return None
        updated = dataclasses.replace(found[1], enabled=False)
        self.endpoints[arn] = (found[0], updated)
        return updated

    async def replace_endpoint_token(
        self, arn: str, *, old_token: str, new_token: str
    ) -> Endpoint | None:
        found = self.endpoints.get(arn)
        if found is None or found[1].token != old_token:
            return None
        updated = dataclasses.replace(found[1], token=new_token)
        await self.update_endpoint(updated)  # ConflictError if the token is taken
        return updated

    async def delete_endpoint(self, arn: str) -> bool:
        return self.endpoints.pop(arn, None) is not None

    async def get_endpoints(self, arns: Sequence[str]) -> dict[str, Endpoint]:
        return {a: self.endpoints[a][1] for a in arns if a in self.endpoints}

    async def search_endpoints(
        self,
        app_arn: str,
        *,
        token_prefix: str = "",
        custom_user_data: str | None = None,
        after: str | None = None,
        limit: int,
    ) -> TokenPage:
        hi = prefix_upper_bound(token_prefix) if token_prefix else None
        found = sorted(
            (
                e
                for _, e in self.endpoints.values()
                if e.app_arn == app_arn
                and e.token >= token_prefix
                and (hi is None or e.token < hi)
                and (after is None or e.token > after)
                and (custom_user_data is None or e.custom_user_data == custom_user_data)
            ),
            key=lambda e: e.token,
        )
        chosen = found[:limit]
        more = len(found) > limit and bool(chosen)
        return TokenPage(chosen, chosen[-1].token if more else None)

    # -- topics ----------------------------------------------------------------
    async def insert_topic(
        self, topic: Topic, tags: Mapping[str, str] | None = None
    ) -> Topic:
        if topic.arn in self.topics:
            raise ConflictError("topic exists")
        self.topics[topic.arn] = (next(self._seq), topic)
        if tags:
            self.tags.setdefault(topic.arn, {}).update(tags)
        return topic

    async def get_topic(self, arn: str) -> Topic | None:
        row = self.topics.get(arn)
        return row[1] if row else None

    async def list_topics(self, *, after: int, limit: int) -> Page[Topic]:
        return _page(self.topics.values(), after, limit)

    async def update_topic(self, topic: Topic) -> None:
        if topic.arn not in self.topics:
            raise NotFoundError(topic.arn)
        self.topics[topic.arn] = (self.topics[topic.arn][0], topic)

    async def delete_topic(self, arn: str) -> None:
        self.topics.pop(arn, None)
        for sub_arn in [a for a, s in self.subs.items() if s.topic_arn == arn]:
            del self.subs[sub_arn]
        for sub_arn in [
            a for a, d in self.deleted_subs.items() if d[0].topic_arn == arn
        ]:
            del self.deleted_subs[sub_arn]

    # -- subscriptions ---------------------------------------------------------
    async def insert_subscription(self, sub: Subscription) -> Subscription:
        if await self.find_subscription(sub.topic_arn, sub.endpoint_arn):
            raise ConflictError("subscription exists")
        stored = dataclasses.replace(sub, seq=next(self._seq))
        self.subs[sub.arn] = stored
        return stored

    async def get_subscription(self, arn: str) -> Subscription | None:
        return self.subs.get(arn)

    async def find_subscription(
        self, topic_arn: str, endpoint_arn: str
    ) -> Subscription | None:
        for s in self.subs.values():
            if s.topic_arn == topic_arn and s.endpoint_arn == endpoint_arn:
                return s
        return None

    async def list_subscriptions(
        self, *, topic_arn: str | None, after: int, limit: int
    ) -> Page[Subscription]:
        rows = (
            (s.seq, s)
            for s in self.subs.values()
            if topic_arn is None or s.topic_arn == topic_arn
        )
        return _page(rows, after, limit)

    async def update_subscription(self, sub: Subscription) -> None:
        if sub.arn not in self.subs:
            raise NotFoundError(sub.arn)
        self.subs[sub.arn] = dataclasses.replace(sub, seq=self.subs[sub.arn].seq)

    async def delete_subscription(
        self, arn: str, *, now: float | None = None, restore_token: str | None = None
    ) -> Subscription | None:
        sub = self.subs.pop(arn, None)
        if sub is not None and now is not None:
            kept = dataclasses.replace(sub, confirm_token=restore_token, seq=0)
            self.deleted_subs.setdefault(arn, (kept, now))
        return sub

    async def get_deleted_subscription(self, arn: str) -> Subscription | None:
        found = self.deleted_subs.get(arn)
        return found[0] if found else None

    async def restore_subscription(self, sub: Subscription) -> Subscription:
        stored = await self.insert_subscription(sub)
        self.deleted_subs.pop(sub.arn, None)
        return stored

    async def subscription_counts(self, topic_arn: str) -> dict[str, int]:
        subs = [s for s in self.subs.values() if s.topic_arn == topic_arn]
        pending = sum(1 for s in subs if s.pending)
        deleted = sum(
            1 for d in self.deleted_subs.values() if d[0].topic_arn == topic_arn
        )
        return {
            "confirmed": len(subs) - pending,
            "pending": pending,
            "deleted": deleted,
        }

    async def purge_subscriptions(
        self, *, pending_before: float, deleted_before: float
    ) -> int:
        gone = [
            a
            for a, s in self.subs.items()
            if s.pending and s.created_at < pending_before
        ]
        old = [a for a, d in self.deleted_subs.items() if d[1] < deleted_before]
        for arn in gone:
            del self.subs[arn]
        for arn in old:
            del self.deleted_subs[arn]
        return len(gone) + len(old)

    async def subscriptions_range(
        self, topic_arn: str, *, after_seq: int, upto_seq: int, limit: int
    ) -> list[Subscription]:
        rows = [
            s
            for s in self.subs.values()
            if s.topic_arn == topic_arn and after_seq < s.seq <= upto_seq
        ]
        return rows[:limit]

    # -- tags ------------------------------------------------------------------
    async def get_tags(self, arn: str) -> dict[str, str]:
        return dict(self.tags.get(arn, {}))

    async def set_tags(self, arn: str, tags: Mapping[str, str]) -> None:
        self.tags.setdefault(arn, {}).update(tags)

    async def remove_tags(self, arn: str, keys: Sequence[str]) -> None:
        for key in keys:
            self.tags.get(arn, {}).pop(key, None)

    # -- delivery ledger -------------------------------------------------------
    async def record_ledger(self, batch: LedgerBatch) -> None:
        for m in batch.messages:
            entry = self.ledger_messages.get(m.message_id)
            if entry is None:
                self.ledger_messages[m.message_id] = _LedgerEntry(
                    m.topic_arn,
                    m.target_arn,
                    m.created_at,
                    m.first_at,
                    m.last_at,
                    m.first_attempt_at,
                    m.last_attempt_at,
                )
            else:
                entry.first_at = min(entry.first_at, m.first_at)
                entry.last_at = max(entry.last_at, m.last_at)
                entry.first_attempt_at = _earlier(
                    entry.first_attempt_at, m.first_attempt_at
                )
                entry.last_attempt_at = _later(entry.last_attempt_at, m.last_attempt_at)
            self.ledger_counts.setdefault(m.message_id, collections.Counter()).update(
                m.counts
            )
        self.ledger_rollup.update(batch.rollup)
        for message in batch.dead_messages:
            self.dead_messages.setdefault(message.id, message)
        for record in batch.deliveries:
            seq = next(self._delivery_ids)
            self.deliveries[seq] = dataclasses.replace(record, id=seq)

    async def get_message_ledger(self, message_id: str) -> MessageLedger | None:
        entry = self.ledger_messages.get(message_id)
        queued = self.messages.get(message_id)
        pending = self.pending.get(message_id, 0) if queued else 0
        if entry is None:
            if queued is None:
                return None
            return MessageLedger(
                message_id=message_id,
                topic_arn=queued.topic_arn,
                target_arn=queued.target_arn,
                created_at=queued.created_at,
                first_attempt_at=None,
                last_attempt_at=None,
                pending_jobs=pending,
                counts=[],
            )
        counts = self.ledger_counts.get(message_id, collections.Counter())
        return MessageLedger(
            message_id=message_id,
            topic_arn=entry.topic_arn,
            target_arn=entry.target_arn,
            created_at=entry.created_at,
            first_attempt_at=entry.first_attempt_at,
            last_attempt_at=entry.last_attempt_at,
            pending_jobs=pending,
            counts=[
                OutcomeCount(platform, status, failure, n)  # type: ignore[arg-type]
                for (platform, status, failure), n in sorted(
                    counts.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or "")
                )
            ],
        )

    async def list_deliveries(
        self, where: DeliveryFilter, *, before: int | None, limit: int
    ) -> Page[DeliveryRecord]:
        rows = [
            d
            for seq, d in reversed(self.deliveries.items())
            if (before is None or seq < before) and _selects(where, d)
        ][: limit + 1]
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, rows[-1].id if more and rows else None)

    async def delivery_stats(self, *, since: float, bucket_s: int) -> list[StatsRow]:
        start = int(since // bucket_s) * bucket_s
        sums: collections.Counter[tuple[int, str, str]] = collections.Counter()
        for (bucket, platform, status), n in self.ledger_rollup.items():
            if bucket >= start:
                sums[(bucket // bucket_s * bucket_s, platform, status)] += n
        rows = sorted(sums.items())
        return [StatsRow(k[0], k[1], k[2], n) for k, n in rows]  # type: ignore[arg-type]

    async def replay_dead_letters(
        self, where: DeliveryFilter, *, limit: int, now: float
    ) -> ReplayResult:
        def replayable(d: DeliveryRecord) -> bool:
            return (
                d.dead_letter
                and d.replayed_at is None
                and d.message_id in self.dead_messages
                and _selects(where, d)
            )

        chosen = [d for d in self.deliveries.values() if replayable(d)][:limit]
        jobs: dict[str, list[NewJob]] = collections.defaultdict(list)
        for d in chosen:
            self.deliveries[d.id] = dataclasses.replace(d, replayed_at=now)
            jobs[d.message_id].append(replay_job(d, now))
        messages = []
        for message_id, new in jobs.items():
            message = self.messages.get(message_id)
            if message is None or (
                message.expires_at is not None and message.expires_at <= now
            ):
                # Stored anew, or still there but expired: the replay's times.
                kept = message or self.dead_messages[message_id]
                message = self.messages[message_id] = replayed_message(kept, now)
            await self.add_jobs(message_id, new)
            messages.append(message)
        remaining = sum(1 for d in self.deliveries.values() if replayable(d))
        return ReplayResult(len(chosen), remaining, messages)

    async def prune_ledger(self, retention: LedgerRetention, *, limit: int) -> int:
        gone = [seq for seq, d in self.deliveries.items() if d.at < retention.before][
            :limit
        ]
        for dead, keep in (
            (False, retention.max_deliveries),
            (True, retention.max_dead_letters),
        ):
            taken = set(gone)
            kind = [
                seq
                for seq, d in self.deliveries.items()
                if d.dead_letter == dead and seq not in taken
            ]
            gone += kind[: max(0, len(kind) - keep)][:limit]
        touched = {self.deliveries[seq].message_id for seq in gone}
        for seq in gone:
            del self.deliveries[seq]
        needed = {d.message_id for d in self.deliveries.values() if d.dead_letter}
        unneeded = [m for m in touched if m in self.dead_messages and m not in needed]
        for message_id in unneeded:
            del self.dead_messages[message_id]
        by_age = sorted((e.last_at, m) for m, e in self.ledger_messages.items())
        old = [k for k in by_age if k[0] < retention.before][:limit]
        kept = by_age[len(old) :]
        old += kept[: max(0, len(kept) - retention.max_messages)][:limit]
        for _, message_id in old:
            del self.ledger_messages[message_id]
            self.ledger_counts.pop(message_id, None)
        buckets = [k for k in self.ledger_rollup if k[0] < retention.rollup_before]
        for key in buckets:
            del self.ledger_rollup[key]
        return len(gone) + len(unneeded) + len(old) + len(buckets)

    # -- messages and jobs -----------------------------------------------------
    def _max_sub_seq(self, topic_arn: str) -> int:
        return max(
            (s.seq for s in self.subs.values() if s.topic_arn == topic_arn), default=0
        )

    async def enqueue(self, message: Message, jobs: Sequence[NewJob]) -> None:
        self.messages[message.id] = message
        await self.add_jobs(message.id, jobs)

    async def enqueue_endpoint(
        self,
        message: Message,
        endpoint_arn: str,
        *,
        check: TargetCheck,
        claim: JobClaim | None = None,
    ) -> EndpointEnqueued:
        # No await before the job is stored: one step, as a transaction.
        row = self.endpoints.get(endpoint_arn)
        target = None
        if row is not None:
            endpoint = row[1]
            app = self.apps.get(endpoint.app_arn)
            target = EndpointTarget(
                endpoint=endpoint,
                platform=app[1].platform if app else None,
                app_enabled=app[1].enabled if app else False,
            )
        check(target)
        if target is None:  # a check must refuse a missing endpoint
            raise NotFoundError(endpoint_arn)
        self.messages[message.id] = message
        self.pending[message.id] = self.pending.get(message.id, 0) + 1
        job_id = next(self._seq)
        job = self.jobs[job_id] = DeliveryJob(
            id=job_id,
            message_id=message.id,
            kind="endpoint",
            endpoint_arn=endpoint_arn,
            topic_arn=None,
            range_hi=None,
            created_at=message.created_at,
            lease_owner=claim.owner if claim else None,
            lease_expires_at=claim.until if claim else None,
        )
        return EndpointEnqueued(target.endpoint, job)

    async def add_jobs(self, message_id: str, jobs: Sequence[NewJob]) -> None:
        message = self.messages.get(message_id)
        if message is None:
            raise NotFoundError(message_id)
        self.pending[message_id] = self.pending.get(message_id, 0) + len(jobs)
        for new in jobs:
            job_id = next(self._seq)
            self.jobs[job_id] = DeliveryJob(
                id=job_id,
                message_id=message.id,
                kind=new.kind,
                endpoint_arn=new.endpoint_arn,
                topic_arn=new.topic_arn,
                range_hi=(
                    self._max_sub_seq(new.topic_arn)
                    if new.kind == "topic" and new.topic_arn
                    else None
                ),
                next_attempt_at=new.next_attempt_at,
                attempts=new.attempts,
                last_error=new.last_error,
                created_at=message.created_at,
                subscription_arn=new.subscription_arn,
                payload=new.payload,
            )

    async def get_message(self, message_id: str) -> Message | None:
        return self.messages.get(message_id)

    def _owned(self, job_id: int, owner: str) -> DeliveryJob | None:
        job = self.jobs.get(job_id)
        return job if job is not None and job.lease_owner == owner else None

    async def claim_jobs(
        self,
        *,
        owner: str,
        limit: int,
        lease_s: float,
        now: float,
        lane: int = PUSH_LANE,
    ) -> list[DeliveryJob]:
        due = sorted(
            (
                j
                for j in self.jobs.values()
                if lane_of(j.kind) == lane
                and j.next_attempt_at <= now
                and (j.lease_expires_at is None or j.lease_expires_at <= now)
            ),
            key=lambda j: (j.next_attempt_at, j.id),
        )[:limit]
        claimed = []
        for job in due:
            leased = dataclasses.replace(
                job, lease_owner=owner, lease_expires_at=now + lease_s
            )
            self.jobs[job.id] = leased
            claimed.append(leased)
        return claimed

    async def extend_leases(
        self, *, owner: str, job_ids: Sequence[int], until: float
    ) -> int:
        count = 0
        for job_id in job_ids:
            job = self._owned(job_id, owner)
            if job is not None:
                self.jobs[job_id] = dataclasses.replace(job, lease_expires_at=until)
                count += 1
        return count

    async def complete_job(self, job_id: int, *, owner: str) -> bool:
        job = self._owned(job_id, owner)
        if job is None:
            return False
        del self.jobs[job_id]
        left = self.pending[job.message_id] = self.pending.get(job.message_id, 1) - 1
        if left <= 0:
            self.pending.pop(job.message_id, None)
            self.messages.pop(job.message_id, None)
        return True

    async def retry_job(
        self,
        job_id: int,
        *,
        owner: str,
        next_attempt_at: float,
        last_error: str | None,
        count_attempt: bool = True,
    ) -> bool:
        job = self._owned(job_id, owner)
        if job is None:
            return False
        self.jobs[job_id] = dataclasses.replace(
            job,
            attempts=job.attempts + int(count_attempt),
            next_attempt_at=next_attempt_at,
            lease_owner=None,
            lease_expires_at=None,
            last_error=last_error,
        )
        return True

    async def save_progress(
        self, job_id: int, *, owner: str, cursor: int, done: Sequence[int] = ()
    ) -> bool:
        job = self._owned(job_id, owner)
        if job is None:
            return False
        self.jobs[job_id] = dataclasses.replace(
            job, cursor=cursor, done=tuple(sorted(done))
        )
        return True

    async def split_topic_job(
        self, job_id: int, *, owner: str, at_seq: int
    ) -> DeliveryJob | None:
        job = self._owned(job_id, owner)
        if job is None or job.range_hi is None or at_seq >= job.range_hi:
            return None
        new_id = next(self._seq)
        new = DeliveryJob(
            id=new_id,
            message_id=job.message_id,
            kind="topic",
            topic_arn=job.topic_arn,
            cursor=at_seq,
            range_hi=job.range_hi,
            next_attempt_at=job.next_attempt_at,
            created_at=job.created_at,
        )
        self.jobs[new_id] = new
        self.pending[job.message_id] = self.pending.get(job.message_id, 0) + 1
        self.jobs[job_id] = dataclasses.replace(job, range_hi=at_seq)
        return new

    async def release_jobs(self, *, owner: str) -> int:
        mine = [j for j in self.jobs.values() if j.lease_owner == owner]
        for job in mine:
            self.jobs[job.id] = dataclasses.replace(
                job, lease_owner=None, lease_expires_at=None
            )
        return len(mine)

    async def release_node_jobs(self, *, node: str, keep: Sequence[int] = ()) -> int:
        kept = set(keep)
        mine = [
            j
            for j in self.jobs.values()
            if j.lease_owner is not None
            and (j.lease_owner == node or j.lease_owner.startswith(node + "/"))
            and j.id not in kept
        ]
        for job in mine:
            self.jobs[job.id] = dataclasses.replace(
                job, lease_owner=None, lease_expires_at=None
            )
        return len(mine)

    async def probe(self, *, node: str, now: float) -> None:
        self.nodes[node] = now

    async def hold_lease(
        self, *, name: str, owner: str, lease_s: float, now: float
    ) -> bool:
        held = self.leases.get(name)
        if held is not None and held[0] != owner and held[1] >= now:
            return False
        self.leases[name] = (owner, now + lease_s)
        return True

    async def release_lease(self, *, name: str, owner: str) -> None:
        if self.leases.get(name, ("", 0.0))[0] == owner:
            del self.leases[name]

    async def next_due_at(self, lane: int = PUSH_LANE) -> float | None:
        return min(
            (
                j.next_attempt_at
                if j.lease_owner is None or j.lease_expires_at is None
                else j.lease_expires_at
                for j in self.jobs.values()
                if lane_of(j.kind) == lane
            ),
            default=None,
        )

    async def backlog(self, *, now: float) -> list[BacklogRow]:
        counts: collections.Counter[tuple[str, str, str | None, str | None]] = (
            collections.Counter()
        )
        for job in self.jobs.values():
            if job.lease_expires_at is not None and job.lease_expires_at > now:
                state = "leased"
            elif job.next_attempt_at <= now:
                state = "due"
            elif job.last_error == WAITING_FOR_APP:
                state = "waiting_for_app"
            else:
                state = "scheduled"
            app_arn = platform = None
            found = self.endpoints.get(job.endpoint_arn or "")
            if job.kind == "endpoint" and found is not None:
                app_arn = found[1].app_arn
                app = self.apps.get(app_arn)
                platform = app[1].platform.value if app else None
            counts[(state, job.kind, app_arn, platform)] += 1
        return [
            BacklogRow(state=k[0], kind=k[1], app_arn=k[2], platform=k[3], jobs=n)  # type: ignore[arg-type]
            for k, n in counts.items()
        ]

    async def pending_deliveries(
        self, message_id: str, *, limit: int
    ) -> PendingDeliveries:
        if message_id not in self.messages:
            return PendingDeliveries()
        jobs = [j for j in self.jobs.values() if j.message_id == message_id]
        chunks = [j for j in jobs if j.kind == "topic"]
        deliveries = [j for j in jobs if j.kind != "topic"]
        # As the SQL backends: the platforms of at most `limit` jobs are read.
        platforms = collections.Counter(
            self._platform_of(j) for j in deliveries[:limit]
        )
        covered, more = 0, False
        for chunk in chunks:
            counted = sum(
                1
                for s in self.subs.values()
                if s.topic_arn == chunk.topic_arn
                and chunk.cursor < s.seq <= (chunk.range_hi or 0)
            )
            left, beyond = chunk_left(min(counted, limit + 1), chunk, limit)
            covered, more = covered + left, more or beyond
        return PendingDeliveries(
            deliveries=self.pending.get(message_id, 0) - len(chunks),
            by_platform=dict(platforms),
            chunks=len(chunks),
            subscriptions=covered,
            subscriptions_more=more,
        )

    def _platform_of(self, job: DeliveryJob) -> str | None:
        """An endpoint job's application platform, an http job's protocol."""
        if job.kind == "http":
            sub = self.subs.get(job.subscription_arn or "")
            return sub.protocol if sub else None
        found = self.endpoints.get(job.endpoint_arn or "")
        app = self.apps.get(found[1].app_arn) if found else None
        return app[1].platform.value if app else None

    async def job_counts(self) -> dict[str, int]:
        import time

        now = time.time()
        leased = sum(
            1
            for j in self.jobs.values()
            if j.lease_expires_at is not None and j.lease_expires_at > now
        )
        due = sum(
            1
            for j in self.jobs.values()
            if j.next_attempt_at <= now
            and (j.lease_expires_at is None or j.lease_expires_at <= now)
        )
        total = len(self.jobs)
        return {
            "due": due,
            "leased": leased,
            "scheduled": total - due - leased,
            "total": total,
        }
