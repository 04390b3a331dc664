"""
The SQL of the delivery queue: messages and their jobs, with leases.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from pushgw.errors import NotFoundError
from pushgw.model import PUSH_LANE, DeliveryJob, Message, Platform
from pushgw.store.base import (
    WAITING_FOR_APP,
    BacklogRow,
    EndpointEnqueued,
    EndpointTarget,
    JobClaim,
    NewJob,
    TargetCheck,
    chunk_left,
)
from pushgw.store.ledger_model import PendingDeliveries
from pushgw.store.rows import (
    JOB_COLUMNS,
    MESSAGE_COLUMNS,
    endpoint_from_row,
    format_done,
    job_counts_of,
    job_from_row,
    job_params,
    message_from_row,
    message_params,
    sorted_jobs,
)
from pushgw.store.sql.core import SqlBase, Tx, insert_sql

_MESSAGE_INSERT = insert_sql("messages", MESSAGE_COLUMNS)
_JOB_INSERT = insert_sql("jobs", JOB_COLUMNS)
# A job created already leased (enqueue_endpoint with a JobClaim).
_CLAIMED_JOB_INSERT = (
    insert_sql("jobs", (*JOB_COLUMNS, "lease_owner", "lease_expires_at"))
    + " RETURNING *"
)
# An endpoint and what a publish checks of its application, in one read.
_ENDPOINT_TARGET = (
    "SELECT e.*, a.platform AS app_platform, a.enabled AS app_enabled"
    " FROM endpoints e LEFT JOIN apps a ON a.arn = e.app_arn WHERE e.arn = :arn"
)
# The chunk bound of a topic job: what the topic has when the job is made.
# A finished job; the jobs_done trigger deletes the message with its last job.
COMPLETE_JOB = "DELETE FROM jobs WHERE id = :id AND lease_owner = :owner RETURNING id"
_TOPIC_BOUND = (
    "SELECT coalesce(max(seq), 0) AS hi FROM subscriptions WHERE topic_arn = :topic"
)
# A named lease, taken when free or run out, renewed by its owner; the row
# comes back only when `owner` holds it (the upsert's WHERE let it through).
_HOLD_LEASE = (
    "INSERT INTO leases (name, owner, expires_at) VALUES (:name, :owner, :until)"
    " ON CONFLICT (name) DO UPDATE"
    " SET owner = excluded.owner, expires_at = excluded.expires_at"
    " WHERE leases.owner = excluded.owner OR leases.expires_at < :now"
    " RETURNING owner"
)
# Unleased jobs fall due at next_attempt_at; leased ones when their lease
# expires (a dead worker's jobs).
_NEXT_DUE_AT = (
    "SELECT min(due) AS due FROM ("
    " SELECT min(next_attempt_at) AS due FROM jobs"
    "  WHERE lane = :lane AND lease_owner IS NULL"
    " UNION ALL"
    " SELECT min(lease_expires_at) FROM jobs"
    "  WHERE lane = :lane AND lease_owner IS NOT NULL"
    ") AS soonest"
)
_JOB_COUNTS = (
    "SELECT count(*) AS total,"
    " count(CASE WHEN lease_expires_at > :now THEN 1 END) AS leased,"
    " count(CASE WHEN next_attempt_at <= :now"
    "  AND (lease_expires_at IS NULL OR lease_expires_at <= :now) THEN 1 END) AS due"
    " FROM jobs"
)
_RELEASE = "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL"
# One row per (state, kind, app): the states are disjoint, in this order.
_BACKLOG = (
    "SELECT state, kind, app_arn, platform, count(*) AS jobs FROM ("
    " SELECT CASE"
    "  WHEN j.lease_expires_at > :now THEN 'leased'"
    "  WHEN j.next_attempt_at <= :now THEN 'due'"
    "  WHEN j.last_error = :waiting THEN 'waiting_for_app'"
    "  ELSE 'scheduled' END AS state,"
    " j.kind AS kind, e.app_arn AS app_arn, a.platform AS platform"
    " FROM jobs j"
    " LEFT JOIN endpoints e ON j.kind = 'endpoint' AND e.arn = j.endpoint_arn"
    " LEFT JOIN apps a ON a.arn = e.app_arn"
    ") AS classified GROUP BY state, kind, app_arn, platform"
)

# A message's endpoint and http jobs by platform: the app's, as the backlog
# derives it, or the subscription's protocol. At most :limit jobs are read
# (the jobs_message_kind index), so a million retries cost no more than that.
_PENDING_BY_PLATFORM = (
    "SELECT CASE WHEN j.kind = 'http' THEN s.protocol ELSE a.platform END"
    " AS platform, count(*) AS n FROM ("
    " SELECT kind, endpoint_arn, subscription_arn FROM jobs"
    "  WHERE message_id = :id AND kind IN ('endpoint', 'http') LIMIT :limit"
    ") AS j"
    " LEFT JOIN endpoints e ON j.kind = 'endpoint' AND e.arn = j.endpoint_arn"
    " LEFT JOIN apps a ON a.arn = e.app_arn"
    " LEFT JOIN subscriptions s ON j.kind = 'http' AND s.arn = j.subscription_arn"
    " GROUP BY 1"
)
_PENDING_CHUNKS = (
    "SELECT * FROM jobs WHERE message_id = :id AND kind = 'topic' LIMIT :limit"
)
# The subscriptions one chunk still covers, read up to :limit from the
# (topic_arn, seq) index.
_CHUNK_SUBSCRIPTIONS = (
    "SELECT count(*) AS n FROM (SELECT 1 FROM subscriptions WHERE topic_arn = :topic"
    " AND seq > :lo AND seq <= :hi LIMIT :limit) AS covered"
)


class QueueSql(SqlBase):
    """Store methods for messages and delivery jobs."""

    async def enqueue(self, message: Message, jobs: Sequence[NewJob]) -> None:
        async def insert(tx: Tx) -> None:
            await tx.execute(_MESSAGE_INSERT, message_params(message, len(jobs)))
            await _insert_jobs(tx, message.id, message.created_at, jobs)

        await self._transact(insert)

    async def enqueue_endpoint(
        self,
        message: Message,
        endpoint_arn: str,
        *,
        check: TargetCheck,
        claim: JobClaim | None = None,
    ) -> EndpointEnqueued:
        # One transaction (for SQLite one hop to the writer thread) instead of
        # two reads and a write: the check sees exactly what is committed with.
        async def insert(tx: Tx) -> EndpointEnqueued:
            row = await tx.fetchrow(_ENDPOINT_TARGET, {"arn": endpoint_arn})
            target = None
            if row is not None:
                platform = row["app_platform"]
                target = EndpointTarget(
                    endpoint=endpoint_from_row(row),
                    platform=None if platform is None else Platform(platform),
                    app_enabled=bool(row["app_enabled"]),
                )
            check(target)
            if target is None:  # a check must refuse a missing endpoint
                raise NotFoundError(endpoint_arn)
            await tx.execute(_MESSAGE_INSERT, message_params(message, 1))
            params = job_params(
                NewJob("endpoint", endpoint_arn=endpoint_arn),
                message_id=message.id,
                created_at=message.created_at,
                range_hi=None,
            )
            params["lease_owner"] = claim.owner if claim else None
            params["lease_expires_at"] = claim.until if claim else None
            created = await tx.fetchrow(_CLAIMED_JOB_INSERT, params)
            assert created is not None
            if claim is None:
                await tx.wake()
            return EndpointEnqueued(target.endpoint, job_from_row(created))

        return await self._transact(insert)

    async def add_jobs(self, message_id: str, jobs: Sequence[NewJob]) -> None:
        async def insert(tx: Tx) -> None:
            row = await tx.fetchrow(
                "UPDATE messages SET pending_jobs = pending_jobs + :count"
                " WHERE id = :id RETURNING created_at",
                {"id": message_id, "count": len(jobs)},
            )
            if row is None:
                raise NotFoundError(message_id)
            await _insert_jobs(tx, message_id, row["created_at"], jobs)

        await self._transact(insert)

    async def get_message(self, message_id: str) -> Message | None:
        row = await self._read_one(
            "SELECT * FROM messages WHERE id = :id", {"id": message_id}
        )
        return message_from_row(row) if row else None

    async def claim_jobs(
        self,
        *,
        owner: str,
        limit: int,
        lease_s: float,
        now: float,
        lane: int = PUSH_LANE,
    ) -> list[DeliveryJob]:
        if limit <= 0:
            return []
        rows = await self._write(
            self._CLAIM,
            {
                "owner": owner,
                "until": now + lease_s,
                "now": now,
                "limit": limit,
                "lane": lane,
            },
        )
        return sorted_jobs(rows)

    async def extend_leases(
        self, *, owner: str, job_ids: Sequence[int], until: float
    ) -> int:
        if not job_ids:
            return 0
        rows = await self._write(
            "UPDATE jobs SET lease_expires_at = :until WHERE lease_owner = :owner"
            f" AND {self._in_list('id', 'ids')} RETURNING id",
            {"until": until, "owner": owner, "ids": self._list(job_ids)},
        )
        return len(rows)

    # complete_job, the hottest write, is each dialect's own group commit
    # (sqlite.py: COMPLETE_JOB with a linger; postgres.py: one DELETE a batch).

    async def retry_job(
        self,
        job_id: int,
        *,
        owner: str,
        next_attempt_at: float,
        last_error: str | None,
        count_attempt: bool = True,
    ) -> bool:
        rows = await self._write(
            "UPDATE jobs SET attempts = attempts + :count, next_attempt_at = :due,"
            " lease_owner = NULL, lease_expires_at = NULL, last_error = :error"
            " WHERE id = :id AND lease_owner = :owner RETURNING id",
            {
                "id": job_id,
                "owner": owner,
                "due": next_attempt_at,
                "error": last_error,
                "count": int(count_attempt),
            },
            wake=True,
        )
        return bool(rows)

    async def save_progress(
        self, job_id: int, *, owner: str, cursor: int, done: Sequence[int] = ()
    ) -> bool:
        rows = await self._write(
            "UPDATE jobs SET cursor = :cursor, done_seqs = :done"
            " WHERE id = :id AND lease_owner = :owner RETURNING id",
            {"id": job_id, "owner": owner, "cursor": cursor, "done": format_done(done)},
        )
        return bool(rows)

    async def split_topic_job(
        self, job_id: int, *, owner: str, at_seq: int
    ) -> DeliveryJob | None:
        async def split(tx: Tx) -> DeliveryJob | None:
            row = await tx.fetchrow(
                "SELECT * FROM jobs WHERE id = :id AND lease_owner = :owner"
                + self._LOCK_ROW,
                {"id": job_id, "owner": owner},
            )
            if row is None:
                return None
            job = job_from_row(row)
            if job.range_hi is None or at_seq >= job.range_hi:
                return None
            new = NewJob(
                "topic", topic_arn=job.topic_arn, next_attempt_at=job.next_attempt_at
            )
            params = job_params(
                new,
                message_id=job.message_id,
                created_at=job.created_at,
                range_hi=job.range_hi,
                cursor=at_seq,
            )
            created = await tx.fetchrow(_JOB_INSERT + " RETURNING *", params)
            assert created is not None
            await tx.execute(
                "UPDATE jobs SET range_hi = :at WHERE id = :id",
                {"id": job_id, "at": at_seq},
            )
            await tx.execute(
                "UPDATE messages SET pending_jobs = pending_jobs + 1 WHERE id = :id",
                {"id": job.message_id},
            )
            await tx.wake()
            return job_from_row(created)

        return await self._transact(split)

    async def release_jobs(self, *, owner: str) -> int:
        rows = await self._write(
            f"{_RELEASE} WHERE lease_owner = :owner RETURNING id",
            {"owner": owner},
            wake=True,
        )
        return len(rows)

    async def release_node_jobs(self, *, node: str, keep: Sequence[int] = ()) -> int:
        # Owners are `node` or `node/incarnation`; a LIKE pattern would need the
        # node id escaped, a prefix compare does not.
        rows = await self._write(
            f"{_RELEASE} WHERE (lease_owner = :node"
            " OR substr(lease_owner, 1, length(:node) + 1) = :node || '/')"
            f" AND NOT ({self._in_list('id', 'keep')}) RETURNING id",
            {"node": node, "keep": self._list(keep)},
            wake=True,
        )
        return len(rows)

    async def probe(self, *, node: str, now: float) -> None:
        await self._write(
            "INSERT INTO nodes (id, seen_at) VALUES (:id, :now)"
            " ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
            {"id": node, "now": now},
        )

    async def hold_lease(
        self, *, name: str, owner: str, lease_s: float, now: float
    ) -> bool:
        rows = await self._write(
            _HOLD_LEASE,
            {"name": name, "owner": owner, "until": now + lease_s, "now": now},
        )
        return bool(rows)

    async def release_lease(self, *, name: str, owner: str) -> None:
        await self._write(
            "DELETE FROM leases WHERE name = :name AND owner = :owner",
            {"name": name, "owner": owner},
        )

    async def next_due_at(self, lane: int = PUSH_LANE) -> float | None:
        row = await self._read_one(_NEXT_DUE_AT, {"lane": lane})
        return None if row is None else row["due"]

    async def backlog(self, *, now: float) -> list[BacklogRow]:
        rows = await self._read(_BACKLOG, {"now": now, "waiting": WAITING_FOR_APP})
        return [
            BacklogRow(
                state=r["state"],
                kind=r["kind"],
                app_arn=r["app_arn"],
                platform=r["platform"],
                jobs=int(r["jobs"]),
            )
            for r in rows
        ]

    async def pending_deliveries(
        self, message_id: str, *, limit: int
    ) -> PendingDeliveries:
        queued = await self._read_one(
            "SELECT pending_jobs FROM messages WHERE id = :id", {"id": message_id}
        )
        if queued is None:
            return PendingDeliveries()
        params = {"id": message_id, "limit": limit}
        platforms = await self._read(_PENDING_BY_PLATFORM, params)
        chunks = [job_from_row(r) for r in await self._read(_PENDING_CHUNKS, params)]
        covered, more = 0, False
        for chunk in chunks:
            row = await self._read_one(
                _CHUNK_SUBSCRIPTIONS,
                {
                    "topic": chunk.topic_arn,
                    "lo": chunk.cursor,
                    "hi": chunk.range_hi or 0,
                    "limit": limit + 1,
                },
            )
            assert row is not None
            left, beyond = chunk_left(int(row["n"]), chunk, limit)
            covered, more = covered + left, more or beyond
        return PendingDeliveries(
            deliveries=int(queued["pending_jobs"]) - len(chunks),
            by_platform={r["platform"]: int(r["n"]) for r in platforms},
            chunks=len(chunks),
            subscriptions=covered,
            subscriptions_more=more,
        )

    async def job_counts(self) -> dict[str, int]:
        row = await self._read_one(_JOB_COUNTS, {"now": time.time()})
        assert row is not None
        return job_counts_of(row["total"], row["leased"], row["due"])


async def _insert_jobs(
    tx: Tx, message_id: str, created_at: float, jobs: Sequence[NewJob]
) -> None:
    """Insert jobs in the open transaction; topic jobs get range_hi = max seq now."""
    bounds: dict[str | None, int] = {}
    for new in jobs:
        if new.kind == "topic" and new.topic_arn not in bounds:
            row = await tx.fetchrow(_TOPIC_BOUND, {"topic": new.topic_arn})
            assert row is not None
            bounds[new.topic_arn] = row["hi"]
    await tx.executemany(
        _JOB_INSERT,
        [
            job_params(
                new,
                message_id=message_id,
                created_at=created_at,
                range_hi=bounds[new.topic_arn] if new.kind == "topic" else None,
            )
            for new in jobs
        ],
    )
    await tx.wake()
