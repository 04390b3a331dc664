"""
PostgresStore: the multi-node backend (asyncpg pool).

Any number of daemons share one database. Jobs are claimed in one statement with
`FOR UPDATE SKIP LOCKED`, so concurrent claimers never wait on each other nor take
the same job. Enqueue, retry, split and release send `pg_notify('pushgw_jobs')`
(delivered at commit) so idle dispatchers wake at once; `listen()` subscribes.
Polling on `next_due_at()` stays the fallback. A trigger on `jobs` deletes a
message with its last job (see the migration). Concurrent `complete_job` calls
are sent together as one DELETE (group commit, `_CompleteBatcher`).

All tables live in one schema (`schema=`, default "public"), so tests and
side-by-side deployments can isolate themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import asyncpg

from pushgw.errors import (
    ConflictError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
)
from pushgw.model import (
    DeliveryJob,
    Endpoint,
    Message,
    PlatformApplication,
    Subscription,
    Topic,
)
from pushgw.store.base import NewJob, Page
from pushgw.store.migrations import migrate_postgres
from pushgw.store.rows import (
    NEXT_DUE_AT,
    app_from_row,
    app_params,
    dump_attrs,
    endpoint_from_row,
    endpoint_params,
    format_done,
    job_counts_of,
    job_from_row,
    message_from_row,
    message_params,
    page_of,
    sorted_jobs,
    sub_from_row,
    sub_params,
    topic_from_row,
)

CHANNEL = "pushgw_jobs"
_NOTIFY = f"SELECT pg_notify('{CHANNEL}', '')"

_CLAIM = """
WITH free AS (
    SELECT id, next_attempt_at FROM jobs
    WHERE lease_owner IS NULL AND next_attempt_at <= $3
    ORDER BY next_attempt_at, id LIMIT $4
    FOR UPDATE SKIP LOCKED
), lapsed AS (
    SELECT id, next_attempt_at FROM jobs
    WHERE lease_owner IS NOT NULL AND lease_expires_at <= $3 AND next_attempt_at <= $3
    ORDER BY next_attempt_at, id LIMIT $4
    FOR UPDATE SKIP LOCKED
), pick AS (
    SELECT id FROM (SELECT * FROM free UNION ALL SELECT * FROM lapsed) AS c
    ORDER BY next_attempt_at, id LIMIT $4
)
UPDATE jobs SET lease_owner = $1, lease_expires_at = $2
FROM pick WHERE jobs.id = pick.id
RETURNING jobs.*
"""
_JOB_INSERT = (
    "INSERT INTO jobs (message_id, kind, endpoint_arn, topic_arn, cursor, range_hi,"
    " attempts, next_attempt_at, created_at, last_error)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
)
_JOB_COUNTS = """
SELECT count(*) AS total,
       count(*) FILTER (WHERE lease_expires_at > $1) AS leased,
       count(*) FILTER (WHERE next_attempt_at <= $1
                        AND (lease_expires_at IS NULL OR lease_expires_at <= $1)) AS due
FROM jobs
"""


_COMPLETE_MANY = """
DELETE FROM jobs USING unnest($1::bigint[], $2::text[]) AS done (id, owner)
WHERE jobs.id = done.id AND jobs.lease_owner = done.owner
RETURNING jobs.id
"""
# Most completions sent in one statement.
MAX_COMPLETE_BATCH = 1000
DEADLOCK_RETRIES = 3
# How often the idle LISTEN connection is checked (a cut may leave it half-open).
LISTEN_CHECK_S = 5.0


class _CompleteBatcher:
    """
    Group commit for complete_job, the hottest write.

    Completions that arrive while a batch is in flight go together in the next
    single DELETE statement: one round trip and one commit (one WAL flush) for
    many jobs. Each caller is answered after that commit.
    """

    def __init__(self, pool: asyncpg.Pool, timeout_s: float) -> None:
        self._pool = pool
        self._timeout_s = timeout_s
        self._queue: list[tuple[int, str, asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def complete(self, job_id: int, owner: str) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((job_id, owner, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="pg-complete")
        return await future

    async def drain(self) -> None:
        if self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch = self._queue[:MAX_COMPLETE_BATCH]
                del self._queue[:MAX_COMPLETE_BATCH]
                try:
                    done = await self._delete([(i, o) for i, o, _ in batch])
                except Exception as exc:
                    _fail(batch, exc)
                    continue
                except BaseException:
                    _fail(batch + self._queue, StoreError("the store was stopped"))
                    self._queue.clear()
                    raise
                for job_id, _, future in batch:
                    if not future.done():
                        # A job named twice in one batch is completed once.
                        future.set_result(job_id in done)
                        done.discard(job_id)
        finally:
            self._flusher = None

    async def _delete(self, jobs: list[tuple[int, str]]) -> set[int]:
        # Two batches finishing jobs of one message lock its row (trigger) in
        # their own order, so a deadlock is possible if rare: PostgreSQL aborts
        # one side, which simply runs again.
        for attempt in range(DEADLOCK_RETRIES):
            try:
                with _translated():
                    async with self._pool.acquire(timeout=self._timeout_s) as conn:
                        rows = await conn.fetch(
                            _COMPLETE_MANY, [i for i, _ in jobs], [o for _, o in jobs]
                        )
                return {r["id"] for r in rows}
            except StoreError as exc:
                deadlock = isinstance(exc.__cause__, asyncpg.DeadlockDetectedError)
                if not deadlock or attempt == DEADLOCK_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")


def _fail(
    batch: Sequence[tuple[int, str, asyncio.Future[bool]]], exc: BaseException
) -> None:
    for _, _, future in batch:
        if not future.done():
            future.set_exception(exc)


class PostgresStore:
    """The Store on PostgreSQL. See the module docstring."""

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        schema: str = "public",
        timeout_s: float = 5.0,
    ) -> None:
        self.dsn = dsn
        self.schema = schema
        self._min_size = min_size
        self._max_size = max_size
        # Every statement and connect has this deadline: a stalled server or a
        # half-open connection becomes a StoreUnavailableError, never a hang.
        self._timeout_s = timeout_s
        self._pool: asyncpg.Pool | None = None
        self._completer: _CompleteBatcher | None = None

    # -- lifecycle -------------------------------------------------------------
    async def open(self) -> None:
        """Connect (the first connection eagerly) and apply pending migrations."""
        with _translated("cannot open the PostgreSQL store: "):
            conn = await self._connect()
            try:
                await migrate_postgres(conn, schema=self.schema)
            finally:
                await conn.close()
            # The pool reconnects by itself: a connection found closed (cut,
            # server restarted) is replaced on its next acquire.
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=self._min_size,
                max_size=self._max_size,
                timeout=self._timeout_s,
                command_timeout=self._timeout_s,
                server_settings={"search_path": self.schema},
            )
            self._completer = _CompleteBatcher(self._pool, self._timeout_s)

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(
            self.dsn,
            timeout=self._timeout_s,
            command_timeout=self._timeout_s,
            server_settings={"search_path": self.schema},
        )

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        completer, self._completer = self._completer, None
        if completer is not None:
            with contextlib.suppress(StoreError):
                await completer.drain()
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=self._timeout_s)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pool.terminate()  # the server is gone: drop the sockets

    async def listen_forever(self, callback: Callable[[], object]) -> None:
        """
        Call `callback()` whenever jobs may have become due (NOTIFY pushgw_jobs).

        Runs on a dedicated connection outside the pool until cancelled. Raises
        StoreUnavailableError when that connection is lost or stops answering
        (checked every LISTEN_CHECK_S), for the caller to start it again; each
        (re)connect calls `callback()` once, for notifications sent meanwhile.
        """
        with _translated():
            conn = await self._connect()
        lost = asyncio.Event()

        def on_notify(*_: object) -> None:
            callback()

        try:
            with _translated():
                await conn.add_listener(CHANNEL, on_notify)
                conn.add_termination_listener(lambda *_: lost.set())
                callback()
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), LISTEN_CHECK_S)
                    if not lost.is_set():
                        await conn.execute("SELECT 1")  # a half-open socket
            raise StoreUnavailableError("the LISTEN connection was closed")
        finally:
            conn.terminate()

    def _acquire(self) -> Any:
        """A pooled connection, waited for no longer than the store timeout: with
        every connection stuck on a stalled server, a caller gets an error, not
        a wait of several statement timeouts."""
        return self._p.acquire(timeout=self._timeout_s)

    @property
    def _p(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError("store is not open")
        return self._pool

    # -- helpers ---------------------------------------------------------------
    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        with _translated():
            async with self._acquire() as conn:
                return list(await conn.fetch(sql, *args))

    async def _fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        with _translated():
            async with self._acquire() as conn:
                return await conn.fetchrow(sql, *args)

    async def _execute(self, sql: str, *args: Any) -> None:
        with _translated():
            async with self._acquire() as conn:
                await conn.execute(sql, *args)

    # -- platform applications -------------------------------------------------
    async def put_app(self, app: PlatformApplication) -> PlatformApplication:
        await self._execute(
            "INSERT INTO apps (arn, name, platform, principal, credential, enabled,"
            " attributes, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            " ON CONFLICT (arn) DO UPDATE SET name = excluded.name,"
            " platform = excluded.platform, principal = excluded.principal,"
            " credential = excluded.credential, enabled = excluded.enabled,"
            " attributes = excluded.attributes, created_at = excluded.created_at",
            *app_params(app),
        )
        return app

    async def get_app(self, arn: str) -> PlatformApplication | None:
        row = await self._fetchrow("SELECT * FROM apps WHERE arn = $1", arn)
        return app_from_row(row) if row else None

    async def list_apps(self, *, after: int, limit: int) -> Page[PlatformApplication]:
        rows = await self._fetch(
            "SELECT * FROM apps WHERE seq > $1 ORDER BY seq LIMIT $2", after, limit + 1
        )
        return page_of(rows, limit, app_from_row)

    async def update_app(self, app: PlatformApplication) -> None:
        row = await self._fetchrow(
            "UPDATE apps SET name = $2, platform = $3, principal = $4, credential = $5,"
            " enabled = $6, attributes = $7, created_at = $8 WHERE arn = $1"
            " RETURNING seq",
            *app_params(app),
        )
        if row is None:
            raise NotFoundError(app.arn)

    async def delete_app(self, arn: str) -> None:
        with _translated():
            async with self._acquire() as conn, conn.transaction():
                await conn.execute("DELETE FROM endpoints WHERE app_arn = $1", arn)
                await conn.execute("DELETE FROM apps WHERE arn = $1", arn)

    # -- endpoints -------------------------------------------------------------
    async def insert_endpoint(self, endpoint: Endpoint) -> Endpoint:
        await self._execute(
            "INSERT INTO endpoints (arn, app_arn, token, enabled, custom_user_data,"
            " attributes, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            *endpoint_params(endpoint),
        )
        return endpoint

    async def get_endpoint(self, arn: str) -> Endpoint | None:
        row = await self._fetchrow("SELECT * FROM endpoints WHERE arn = $1", arn)
        return endpoint_from_row(row) if row else None

    async def get_endpoint_by_token(self, app_arn: str, token: str) -> Endpoint | None:
        row = await self._fetchrow(
            "SELECT * FROM endpoints WHERE app_arn = $1 AND token = $2", app_arn, token
        )
        return endpoint_from_row(row) if row else None

    async def list_endpoints(
        self, app_arn: str, *, after: int, limit: int
    ) -> Page[Endpoint]:
        rows = await self._fetch(
            "SELECT * FROM endpoints WHERE app_arn = $1 AND seq > $2"
            " ORDER BY seq LIMIT $3",
            app_arn,
            after,
            limit + 1,
        )
        return page_of(rows, limit, endpoint_from_row)

    async def update_endpoint(self, endpoint: Endpoint) -> None:
        row = await self._fetchrow(
            "UPDATE endpoints SET app_arn = $2, token = $3, enabled = $4,"
            " custom_user_data = $5, attributes = $6, created_at = $7"
            " WHERE arn = $1 RETURNING seq",
            *endpoint_params(endpoint),
        )
        if row is None:
            raise NotFoundError(endpoint.arn)

    async def disable_endpoint(self, arn: str, *, token: str) -> Endpoint | None:
        row = await self._fetchrow(
            "UPDATE endpoints SET enabled = false"
            " WHERE arn = $1 AND token = $2 AND enabled RETURNING *",
            arn,
            token,
        )
        return endpoint_from_row(row) if row else None

    async def replace_endpoint_token(
        self, arn: str, *, old_token: str, new_token: str
    ) -> Endpoint | None:
        row = await self._fetchrow(
            "UPDATE endpoints SET token = $3 WHERE arn = $1 AND token = $2 RETURNING *",
            arn,
            old_token,
            new_token,
        )
        return endpoint_from_row(row) if row else None

    async def delete_endpoint(self, arn: str) -> bool:
        row = await self._fetchrow(
            "DELETE FROM endpoints WHERE arn = $1 RETURNING seq", arn
        )
        return row is not None

    async def get_endpoints(self, arns: Sequence[str]) -> dict[str, Endpoint]:
        rows = await self._fetch(
            "SELECT * FROM endpoints WHERE arn = ANY($1::text[])", list(arns)
        )
        return {r["arn"]: endpoint_from_row(r) for r in rows}

    # -- topics ----------------------------------------------------------------
    async def insert_topic(self, topic: Topic) -> Topic:
        await self._execute(
            "INSERT INTO topics (arn, name, attributes, created_at)"
            " VALUES ($1, $2, $3, $4)",
            topic.arn,
            topic.name,
            dump_attrs(topic.attributes),
            topic.created_at,
        )
        return topic

    async def get_topic(self, arn: str) -> Topic | None:
        row = await self._fetchrow("SELECT * FROM topics WHERE arn = $1", arn)
        return topic_from_row(row) if row else None

    async def list_topics(self, *, after: int, limit: int) -> Page[Topic]:
        rows = await self._fetch(
            "SELECT * FROM topics WHERE seq > $1 ORDER BY seq LIMIT $2",
            after,
            limit + 1,
        )
        return page_of(rows, limit, topic_from_row)

    async def update_topic(self, topic: Topic) -> None:
        row = await self._fetchrow(
            "UPDATE topics SET name = $2, attributes = $3, created_at = $4"
            " WHERE arn = $1 RETURNING seq",
            topic.arn,
            topic.name,
            dump_attrs(topic.attributes),
            topic.created_at,
        )
        if row is None:
            raise NotFoundError(topic.arn)

    async def delete_topic(self, arn: str) -> None:
        with _translated():
            async with self._acquire() as conn, conn.transaction():
                await conn.execute(
                    "DELETE FROM subscriptions WHERE topic_arn = $1", arn
                )
                await conn.execute("DELETE FROM topics WHERE arn = $1", arn)

    # -- subscriptions ---------------------------------------------------------
    async def insert_subscription(self, sub: Subscription) -> Subscription:
        row = await self._fetchrow(
            "INSERT INTO subscriptions (arn, topic_arn, endpoint_arn, protocol,"
            " attributes, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
            *sub_params(sub),
        )
        assert row is not None
        return dataclasses.replace(sub, seq=row["seq"])

    async def get_subscription(self, arn: str) -> Subscription | None:
        row = await self._fetchrow("SELECT * FROM subscriptions WHERE arn = $1", arn)
        return sub_from_row(row) if row else None

    async def find_subscription(
        self, topic_arn: str, endpoint_arn: str
    ) -> Subscription | None:
        row = await self._fetchrow(
            "SELECT * FROM subscriptions WHERE topic_arn = $1 AND endpoint_arn = $2",
            topic_arn,
            endpoint_arn,
        )
        return sub_from_row(row) if row else None

    async def list_subscriptions(
        self, *, topic_arn: str | None, after: int, limit: int
    ) -> Page[Subscription]:
        if topic_arn is None:
            rows = await self._fetch(
                "SELECT * FROM subscriptions WHERE seq > $1 ORDER BY seq LIMIT $2",
                after,
                limit + 1,
            )
        else:
            rows = await self._fetch(
                "SELECT * FROM subscriptions WHERE topic_arn = $1 AND seq > $2"
                " ORDER BY seq LIMIT $3",
                topic_arn,
                after,
                limit + 1,
            )
        return page_of(rows, limit, sub_from_row)

    async def update_subscription(self, sub: Subscription) -> None:
        row = await self._fetchrow(
            "UPDATE subscriptions SET topic_arn = $2, endpoint_arn = $3,"
            " protocol = $4, attributes = $5, created_at = $6"
            " WHERE arn = $1 RETURNING seq",
            *sub_params(sub),
        )
        if row is None:
            raise NotFoundError(sub.arn)

    async def delete_subscription(self, arn: str) -> None:
        await self._execute("DELETE FROM subscriptions WHERE arn = $1", arn)

    async def subscriptions_range(
        self, topic_arn: str, *, after_seq: int, upto_seq: int, limit: int
    ) -> list[Subscription]:
        rows = await self._fetch(
            "SELECT * FROM subscriptions"
            " WHERE topic_arn = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4",
            topic_arn,
            after_seq,
            upto_seq,
            limit,
        )
        return [sub_from_row(r) for r in rows]

    # -- tags ------------------------------------------------------------------
    async def get_tags(self, arn: str) -> dict[str, str]:
        rows = await self._fetch("SELECT key, value FROM tags WHERE arn = $1", arn)
        return {r["key"]: r["value"] for r in rows}

    async def set_tags(self, arn: str, tags: Mapping[str, str]) -> None:
        await self._execute(
            "INSERT INTO tags (arn, key, value)"
            " SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t (k, v)"
            " ON CONFLICT (arn, key) DO UPDATE SET value = excluded.value",
            arn,
            list(tags.keys()),
            list(tags.values()),
        )

    async def remove_tags(self, arn: str, keys: Sequence[str]) -> None:
        await self._execute(
            "DELETE FROM tags WHERE arn = $1 AND key = ANY($2::text[])", arn, list(keys)
        )

    # -- messages and delivery jobs -------------------------------------------
    async def enqueue(self, message: Message, jobs: Sequence[NewJob]) -> None:
        with _translated():
            async with self._acquire() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO messages (id, body, structure, subject, attributes,"
                    " topic_arn, target_arn, created_at, expires_at, pending_jobs)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    *message_params(message, len(jobs)),
                )
                await _insert_jobs(conn, message.id, message.created_at, jobs)

    async def add_jobs(self, message_id: str, jobs: Sequence[NewJob]) -> None:
        with _translated():
            async with self._acquire() as conn, conn.transaction():
                created_at = await conn.fetchval(
                    "UPDATE messages SET pending_jobs = pending_jobs + $2"
                    " WHERE id = $1 RETURNING created_at",
                    message_id,
                    len(jobs),
                )
                if created_at is None:
                    raise NotFoundError(message_id)
                await _insert_jobs(conn, message_id, created_at, jobs)

    async def get_message(self, message_id: str) -> Message | None:
        row = await self._fetchrow("SELECT * FROM messages WHERE id = $1", message_id)
        return message_from_row(row) if row else None

    async def claim_jobs(
        self, *, owner: str, limit: int, lease_s: float, now: float
    ) -> list[DeliveryJob]:
        if limit <= 0:
            return []
        rows = await self._fetch(_CLAIM, owner, now + lease_s, now, limit)
        return sorted_jobs(rows)

    async def extend_leases(
        self, *, owner: str, job_ids: Sequence[int], until: float
    ) -> int:
        rows = await self._fetch(
            "UPDATE jobs SET lease_expires_at = $1"
            " WHERE lease_owner = $2 AND id = ANY($3::bigint[]) RETURNING id",
            until,
            owner,
            list(job_ids),
        )
        return len(rows)

    async def complete_job(self, job_id: int, *, owner: str) -> bool:
        # The jobs_done trigger deletes the message with its last job.
        if self._completer is None:
            raise StoreError("store is not open")
        return await self._completer.complete(job_id, owner)

    async def retry_job(
        self,
        job_id: int,
        *,
        owner: str,
        next_attempt_at: float,
        last_error: str | None,
    ) -> bool:
        rows = await self._fetch(
            "WITH u AS (UPDATE jobs SET attempts = attempts + 1, next_attempt_at = $3,"
            " lease_owner = NULL, lease_expires_at = NULL, last_error = $4"
            " WHERE id = $1 AND lease_owner = $2 RETURNING id)"
            f" SELECT id, pg_notify('{CHANNEL}', '') FROM u",
            job_id,
            owner,
            next_attempt_at,
            last_error,
        )
        return bool(rows)

    async def save_progress(
        self, job_id: int, *, owner: str, cursor: int, done: Sequence[int] = ()
    ) -> bool:
        row = await self._fetchrow(
            "UPDATE jobs SET cursor = $3, done_seqs = $4"
            " WHERE id = $1 AND lease_owner = $2 RETURNING id",
            job_id,
            owner,
            cursor,
            format_done(done),
        )
        return row is not None

    async def split_topic_job(
        self, job_id: int, *, owner: str, at_seq: int
    ) -> DeliveryJob | None:
        with _translated():
            async with self._acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    "SELECT * FROM jobs WHERE id = $1 AND lease_owner = $2 FOR UPDATE",
                    job_id,
                    owner,
                )
                if row is None:
                    return None
                job = job_from_row(row)
                if job.range_hi is None or at_seq >= job.range_hi:
                    return None
                new = await conn.fetchrow(
                    _JOB_INSERT + " RETURNING *",
                    job.message_id,
                    "topic",
                    None,
                    job.topic_arn,
                    at_seq,
                    job.range_hi,
                    0,
                    job.next_attempt_at,
                    job.created_at,
                    None,
                )
                await conn.execute(
                    "UPDATE jobs SET range_hi = $2 WHERE id = $1", job_id, at_seq
                )
                await conn.execute(
                    "UPDATE messages SET pending_jobs = pending_jobs + 1 WHERE id = $1",
                    job.message_id,
                )
                await conn.execute(_NOTIFY)
                return job_from_row(new)

    async def release_jobs(self, *, owner: str) -> int:
        rows = await self._fetch(
            "WITH u AS (UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL"
            " WHERE lease_owner = $1 RETURNING id)"
            f" SELECT id, pg_notify('{CHANNEL}', '') FROM u",
            owner,
        )
        return len(rows)

    async def release_node_jobs(self, *, node: str, keep: Sequence[int] = ()) -> int:
        rows = await self._fetch(
            "WITH u AS (UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL"
            " WHERE (lease_owner = $1 OR starts_with(lease_owner, $1 || '/'))"
            " AND id <> ALL($2::bigint[]) RETURNING id)"
            f" SELECT id, pg_notify('{CHANNEL}', '') FROM u",
            node,
            list(keep),
        )
        return len(rows)

    async def probe(self, *, node: str, now: float) -> None:
        await self._execute(
            "INSERT INTO nodes (id, seen_at) VALUES ($1, $2)"
            " ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
            node,
            now,
        )

    async def next_due_at(self) -> float | None:
        row = await self._fetchrow(NEXT_DUE_AT)
        return None if row is None else row["due"]

    async def job_counts(self) -> dict[str, int]:
        row = await self._fetchrow(_JOB_COUNTS, time.time())
        assert row is not None
        return job_counts_of(row["total"], row["leased"], row["due"])


async def _insert_jobs(
    conn: Any, message_id: str, created_at: float, jobs: Sequence[NewJob]
) -> None:
    """Insert jobs in the open transaction and NOTIFY (sent at commit)."""
    bounds: dict[str | None, int] = {}
    for new in jobs:
        if new.kind == "topic" and new.topic_arn not in bounds:
            bounds[new.topic_arn] = await conn.fetchval(
                "SELECT coalesce(max(seq), 0) FROM subscriptions WHERE topic_arn = $1",
                new.topic_arn,
            )
    await conn.executemany(
        _JOB_INSERT,
        [
            (
                message_id,
                new.kind,
                new.endpoint_arn,
                new.topic_arn,
                0,
                bounds[new.topic_arn] if new.kind == "topic" else None,
                new.attempts,
                new.next_attempt_at,
                created_at,
                new.last_error,
            )
            for new in jobs
        ],
    )
    await conn.execute(_NOTIFY)


# Errors that mean "the database is not reachable or not answering right now".
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, broken pipe; TimeoutError (a stall) is an OSError
    asyncpg.InterfaceError,  # e.g. ConnectionDoesNotExistError after a cut
    asyncpg.PostgresConnectionError,
    asyncpg.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.OperatorInterventionError,  # admin shutdown, server restarting
    asyncpg.TransactionRollbackError,  # serialization failure, deadlock
)


@contextlib.contextmanager
def _translated(context: str = "") -> Iterator[None]:
    """Driver errors become StoreError (uniqueness: ConflictError; the server
    unreachable or overloaded: StoreUnavailableError), the cause kept."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise ConflictError(f"{context}{exc}") from exc
    except _UNAVAILABLE as exc:
        raise StoreUnavailableError(f"{context}{type(exc).__name__}: {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise StoreError(f"{context}{exc}") from exc
