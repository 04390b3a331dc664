"""
SqliteStore: the default, single-process backend.

WAL with `synchronous=NORMAL`: a crash of the process loses nothing; a power cut
may lose the last few commits. All writes go through one connection on one
thread (`_GroupWriter`) in `BEGIN IMMEDIATE` transactions; writes that arrive
together share a transaction (group commit), each under its own savepoint, and
each caller is answered after COMMIT. Reads use a separate aiosqlite connection
(`query_only`), so they run beside writes. A trigger on `jobs` deletes a message
with its last job.

Row conversions live in `rows.py`, shared with `postgres.py`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import json
import sqlite3
import time
from collections.abc import (
    Callable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import Any, TypeVar

import aiosqlite

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
from pushgw.store.migrations import migrate_sqlite
from pushgw.store.rows import (
    NEXT_DUE_AT,
    app_from_row,
    app_params,
    chunks,
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

T = TypeVar("T")
BUSY_TIMEOUT_MS = 10_000
# Most writes committed together in one transaction (group commit).
MAX_WRITE_BATCH = 1000
WriteFn = Callable[[sqlite3.Connection], T]


# -- SQL ----------------------------------------------------------------------
_APP_COLS = (
    "arn, name, platform, principal, credential, enabled, attributes, created_at"
)
_EP_COLS = "arn, app_arn, token, enabled, custom_user_data, attributes, created_at"
_SUB_COLS = "arn, topic_arn, endpoint_arn, protocol, attributes, created_at"
_MSG_COLS = (
    "id, body, structure, subject, attributes, topic_arn, target_arn, created_at,"
    " expires_at, pending_jobs"
)
_JOB_INSERT = (
    "INSERT INTO jobs (message_id, kind, endpoint_arn, topic_arn, cursor, range_hi,"
    " attempts, next_attempt_at, created_at, last_error)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Two bounded scans on partial indexes: unleased due jobs, and lapsed leases.
_CLAIM = """
UPDATE jobs SET lease_owner = :owner, lease_expires_at = :until
WHERE id IN (
    SELECT id FROM (
        SELECT * FROM (
            SELECT id, next_attempt_at FROM jobs
            WHERE lease_owner IS NULL AND next_attempt_at <= :now
            ORDER BY next_attempt_at, id LIMIT :limit
        )
        UNION ALL
        SELECT * FROM (
            SELECT id, next_attempt_at FROM jobs
            WHERE lease_owner IS NOT NULL AND lease_expires_at <= :now
              AND next_attempt_at <= :now
            ORDER BY next_attempt_at, id LIMIT :limit
        )
    )
    ORDER BY next_attempt_at, id LIMIT :limit
)
RETURNING *
"""
_JOB_COUNTS = """
SELECT count(*) AS total,
       coalesce(sum(lease_expires_at > :now), 0) AS leased,
       coalesce(sum(next_attempt_at <= :now
                    AND (lease_expires_at IS NULL OR lease_expires_at <= :now)), 0)
           AS due
FROM jobs
"""


def _marks(n: int) -> str:
    return ", ".join("?" * n)


class _GroupWriter:
    """
    The one write connection, on a thread of its own, with group commit.

    Each write is a function of the connection. Writes that arrive while a batch
    is committing wait and go together into the next BEGIN IMMEDIATE transaction,
    each under its own SAVEPOINT so one failing write (say a token clash) is
    rolled back alone. A caller is answered only after COMMIT, so `enqueue` is
    durable when it returns. One thread hop and one commit per batch instead of
    several per write is what lets the dispatcher complete thousands of jobs a
    second through the one-job-at-a-time Store calls.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="pushgw-sqlite-writer"
        )
        self._queue: list[tuple[WriteFn[Any], asyncio.Future[Any], bool]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def open(self) -> None:
        await self._call(self._connect)

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        if self._conn is not None:
            await self._call(self._conn.close)
            self._conn = None
        self._thread.shutdown(wait=False)

    async def run(self, fn: WriteFn[T], *, one_statement: bool = False) -> T:
        """
        Run `fn(conn)` in the next write transaction; its result once committed.

        `one_statement`: fn runs a single statement, which SQLite already undoes
        alone on error, so it needs no savepoint. A cancelled caller's write may
        still be committed (its future is just dropped).
        """
        if self._conn is None:
            raise StoreError("store is not open")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((fn, future, one_statement))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="sqlite-writer")
        return await future

    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    def _connect(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        self._conn = conn

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch = self._queue[:MAX_WRITE_BATCH]
                del self._queue[:MAX_WRITE_BATCH]
                try:
                    outcomes = await self._call(
                        functools.partial(
                            self._commit, [(fn, one) for fn, _, one in batch]
                        )
                    )
                except Exception as exc:  # the writer thread itself failed
                    outcomes = [_Failed(exc)] * len(batch)
                except BaseException:
                    # Cancelled (loop shutdown): nobody may wait forever.
                    lost = StoreError("the SQLite writer was stopped")
                    for _, future, _ in batch + self._queue:
                        if not future.done():
                            future.set_exception(lost)
                    self._queue.clear()
                    raise
                for (_, future, _), outcome in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, _Failed):
                        future.set_exception(outcome.error)
                    else:
                        future.set_result(outcome)
        finally:
            self._flusher = None

    def _commit(self, fns: list[tuple[WriteFn[Any], bool]]) -> list[Any]:
        """On the writer thread: one transaction, a savepoint per write."""
        conn = self._conn
        assert conn is not None
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            return [_Failed(exc)] * len(fns)
        outcomes: list[Any] = []
        try:
            for fn, one_statement in fns:
                if one_statement:
                    try:
                        outcomes.append(fn(conn))
                    except sqlite3.IntegrityError as exc:
                        # Other errors may end the transaction: fail the batch.
                        outcomes.append(_Failed(exc))
                    continue
                conn.execute("SAVEPOINT w")
                try:
                    outcomes.append(fn(conn))
                except Exception as exc:
                    if not conn.in_transaction:
                        # SQLite rolled the whole transaction back itself (disk
                        # full, I/O error): every write of the batch failed.
                        raise
                    conn.execute("ROLLBACK TO w")
                    outcomes.append(_Failed(exc))
                conn.execute("RELEASE w")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            return [_Failed(exc)] * len(fns)
        return outcomes


class _Failed:
    """A write's exception, carried back from the writer thread as a value."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


class SqliteStore:
    """The Store on one SQLite file. See the module docstring."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._writer: _GroupWriter | None = None
        self._reader: aiosqlite.Connection | None = None

    # -- lifecycle -------------------------------------------------------------
    async def open(self) -> None:
        """Connect, switch to WAL and apply pending migrations."""
        if self.path == ":memory:":
            raise StoreError("SqliteStore needs a file; use the memory: store")
        try:
            reader = await aiosqlite.connect(self.path, isolation_level=None)
            self._reader = reader
            reader.row_factory = sqlite3.Row
            await reader.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await reader.execute("PRAGMA synchronous = NORMAL")
            await _enable_wal(reader)
            await migrate_sqlite(reader)
            # Writes go through the writer only; this guards against slips.
            await reader.execute("PRAGMA query_only = ON")
            self._writer = _GroupWriter(self.path)
            await self._writer.open()
        except sqlite3.Error as exc:
            await self.close()
            raise StoreError(f"cannot open {self.path}: {exc}") from exc

    async def close(self) -> None:
        reader, writer = self._reader, self._writer
        self._reader = self._writer = None
        if writer is not None:
            await writer.close()
        if reader is not None:
            await reader.close()

    @property
    def _r(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise StoreError("store is not open")
        return self._reader

    # -- helpers ---------------------------------------------------------------
    async def _run(self, fn: WriteFn[T], *, one_statement: bool = False) -> T:
        """Run `fn(conn)` in a write transaction; driver errors translated."""
        if self._writer is None:
            raise StoreError("store is not open")
        with _translated():
            return await self._writer.run(fn, one_statement=one_statement)

    async def _write(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        """One write statement; returns its rows (RETURNING)."""
        return await self._run(
            lambda conn: conn.execute(sql, params).fetchall(), one_statement=True
        )

    async def _read(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        with _translated():
            return list(await self._r.execute_fetchall(sql, params))

    async def _read_one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        rows = await self._read(sql, params)
        return rows[0] if rows else None

    # -- platform applications -------------------------------------------------
    async def put_app(self, app: PlatformApplication) -> PlatformApplication:
        await self._write(
            f"INSERT INTO apps ({_APP_COLS}) VALUES ({_marks(8)})"
            " ON CONFLICT (arn) DO UPDATE SET name = excluded.name,"
            " platform = excluded.platform, principal = excluded.principal,"
            " credential = excluded.credential, enabled = excluded.enabled,"
            " attributes = excluded.attributes, created_at = excluded.created_at",
            app_params(app),
        )
        return app

    async def get_app(self, arn: str) -> PlatformApplication | None:
        row = await self._read_one("SELECT * FROM apps WHERE arn = ?", (arn,))
        return app_from_row(row) if row else None

    async def list_apps(self, *, after: int, limit: int) -> Page[PlatformApplication]:
        rows = await self._read(
            "SELECT * FROM apps WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit + 1)
        )
        return page_of(rows, limit, app_from_row)

    async def update_app(self, app: PlatformApplication) -> None:
        rows = await self._write(
            "UPDATE apps SET name = ?, platform = ?, principal = ?, credential = ?,"
            " enabled = ?, attributes = ?, created_at = ? WHERE arn = ? RETURNING seq",
            (*app_params(app)[1:], app.arn),
        )
        if not rows:
            raise NotFoundError(app.arn)

    async def delete_app(self, arn: str) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM endpoints WHERE app_arn = ?", (arn,))
            conn.execute("DELETE FROM apps WHERE arn = ?", (arn,))

        await self._run(delete)

    # -- endpoints -------------------------------------------------------------
    async def insert_endpoint(self, endpoint: Endpoint) -> Endpoint:
        await self._write(
            f"INSERT INTO endpoints ({_EP_COLS}) VALUES ({_marks(7)})",
            endpoint_params(endpoint),
        )
        return endpoint

    async def get_endpoint(self, arn: str) -> Endpoint | None:
        row = await self._read_one("SELECT * FROM endpoints WHERE arn = ?", (arn,))
        return endpoint_from_row(row) if row else None

    async def get_endpoint_by_token(self, app_arn: str, token: str) -> Endpoint | None:
        row = await self._read_one(
            "SELECT * FROM endpoints WHERE app_arn = ? AND token = ?", (app_arn, token)
        )
        return endpoint_from_row(row) if row else None

    async def list_endpoints(
        self, app_arn: str, *, after: int, limit: int
    ) -> Page[Endpoint]:
        rows = await self._read(
            "SELECT * FROM endpoints WHERE app_arn = ? AND seq > ?"
            " ORDER BY seq LIMIT ?",
            (app_arn, after, limit + 1),
        )
        return page_of(rows, limit, endpoint_from_row)

    async def update_endpoint(self, endpoint: Endpoint) -> None:
        rows = await self._write(
            "UPDATE endpoints SET app_arn = ?, token = ?, enabled = ?,"
            " custom_user_data = ?, attributes = ?, created_at = ?"
            " WHERE arn = ? RETURNING seq",
            (*endpoint_params(endpoint)[1:], endpoint.arn),
        )
        if not rows:
            raise NotFoundError(endpoint.arn)

    async def disable_endpoint(self, arn: str, *, token: str) -> Endpoint | None:
        rows = await self._write(
            "UPDATE endpoints SET enabled = 0"
            " WHERE arn = ? AND token = ? AND enabled RETURNING *",
            (arn, token),
        )
        return endpoint_from_row(rows[0]) if rows else None

    async def replace_endpoint_token(
        self, arn: str, *, old_token: str, new_token: str
    ) -> Endpoint | None:
        rows = await self._write(
            "UPDATE endpoints SET token = ? WHERE arn = ? AND token = ? RETURNING *",
            (new_token, arn, old_token),
        )
        return endpoint_from_row(rows[0]) if rows else None

    async def delete_endpoint(self, arn: str) -> bool:
        rows = await self._write(
            "DELETE FROM endpoints WHERE arn = ? RETURNING seq", (arn,)
        )
        return bool(rows)

    async def get_endpoints(self, arns: Sequence[str]) -> dict[str, Endpoint]:
        found: dict[str, Endpoint] = {}
        for part in chunks(list(dict.fromkeys(arns))):
            rows = await self._read(
                f"SELECT * FROM endpoints WHERE arn IN ({_marks(len(part))})", part
            )
            found.update((r["arn"], endpoint_from_row(r)) for r in rows)
        return found

    # -- topics ----------------------------------------------------------------
    async def insert_topic(self, topic: Topic) -> Topic:
        await self._write(
            "INSERT INTO topics (arn, name, attributes, created_at)"
            " VALUES (?, ?, ?, ?)",
            (topic.arn, topic.name, dump_attrs(topic.attributes), topic.created_at),
        )
        return topic

    async def get_topic(self, arn: str) -> Topic | None:
        row = await self._read_one("SELECT * FROM topics WHERE arn = ?", (arn,))
        return topic_from_row(row) if row else None

    async def list_topics(self, *, after: int, limit: int) -> Page[Topic]:
        rows = await self._read(
            "SELECT * FROM topics WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit + 1),
        )
        return page_of(rows, limit, topic_from_row)

    async def update_topic(self, topic: Topic) -> None:
        rows = await self._write(
            "UPDATE topics SET name = ?, attributes = ?, created_at = ?"
            " WHERE arn = ? RETURNING seq",
            (topic.name, dump_attrs(topic.attributes), topic.created_at, topic.arn),
        )
        if not rows:
            raise NotFoundError(topic.arn)

    async def delete_topic(self, arn: str) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM subscriptions WHERE topic_arn = ?", (arn,))
            conn.execute("DELETE FROM topics WHERE arn = ?", (arn,))

        await self._run(delete)

    # -- subscriptions ---------------------------------------------------------
    async def insert_subscription(self, sub: Subscription) -> Subscription:
        rows = await self._write(
            f"INSERT INTO subscriptions ({_SUB_COLS}) VALUES ({_marks(6)})"
            " RETURNING seq",
            sub_params(sub),
        )
        return dataclasses.replace(sub, seq=rows[0]["seq"])

    async def get_subscription(self, arn: str) -> Subscription | None:
        row = await self._read_one("SELECT * FROM subscriptions WHERE arn = ?", (arn,))
        return sub_from_row(row) if row else None

    async def find_subscription(
        self, topic_arn: str, endpoint_arn: str
    ) -> Subscription | None:
        row = await self._read_one(
            "SELECT * FROM subscriptions WHERE topic_arn = ? AND endpoint_arn = ?",
            (topic_arn, endpoint_arn),
        )
        return sub_from_row(row) if row else None

    async def list_subscriptions(
        self, *, topic_arn: str | None, after: int, limit: int
    ) -> Page[Subscription]:
        if topic_arn is None:
            rows = await self._read(
                "SELECT * FROM subscriptions WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit + 1),
            )
        else:
            rows = await self._read(
                "SELECT * FROM subscriptions WHERE topic_arn = ? AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (topic_arn, after, limit + 1),
            )
        return page_of(rows, limit, sub_from_row)

    async def update_subscription(self, sub: Subscription) -> None:
        rows = await self._write(
            "UPDATE subscriptions SET topic_arn = ?, endpoint_arn = ?, protocol = ?,"
            " attributes = ?, created_at = ? WHERE arn = ? RETURNING seq",
            (*sub_params(sub)[1:], sub.arn),
        )
        if not rows:
            raise NotFoundError(sub.arn)

    async def delete_subscription(self, arn: str) -> None:
        await self._write("DELETE FROM subscriptions WHERE arn = ?", (arn,))

    async def subscriptions_range(
        self, topic_arn: str, *, after_seq: int, upto_seq: int, limit: int
    ) -> list[Subscription]:
        rows = await self._read(
            "SELECT * FROM subscriptions WHERE topic_arn = ? AND seq > ? AND seq <= ?"
            " ORDER BY seq LIMIT ?",
            (topic_arn, after_seq, upto_seq, limit),
        )
        return [sub_from_row(r) for r in rows]

    # -- tags ------------------------------------------------------------------
    async def get_tags(self, arn: str) -> dict[str, str]:
        rows = await self._read("SELECT key, value FROM tags WHERE arn = ?", (arn,))
        return {r["key"]: r["value"] for r in rows}

    async def set_tags(self, arn: str, tags: Mapping[str, str]) -> None:
        rows = [(arn, k, v) for k, v in tags.items()]
        await self._run(
            lambda conn: conn.executemany(
                "INSERT INTO tags (arn, key, value) VALUES (?, ?, ?)"
                " ON CONFLICT (arn, key) DO UPDATE SET value = excluded.value",
                rows,
            )
        )

    async def remove_tags(self, arn: str, keys: Sequence[str]) -> None:
        rows = [(arn, k) for k in keys]
        await self._run(
            lambda conn: conn.executemany(
                "DELETE FROM tags WHERE arn = ? AND key = ?", rows
            )
        )

    # -- messages and delivery jobs -------------------------------------------
    async def enqueue(self, message: Message, jobs: Sequence[NewJob]) -> None:
        params = message_params(message, len(jobs))

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT INTO messages ({_MSG_COLS}) VALUES ({_marks(10)})", params
            )
            _insert_jobs(conn, message.id, message.created_at, jobs)

        await self._run(insert)

    async def add_jobs(self, message_id: str, jobs: Sequence[NewJob]) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "UPDATE messages SET pending_jobs = pending_jobs + ?"
                " WHERE id = ? RETURNING created_at",
                (len(jobs), message_id),
            ).fetchone()
            if row is None:
                raise NotFoundError(message_id)
            _insert_jobs(conn, message_id, row["created_at"], jobs)

        await self._run(insert)

    async def get_message(self, message_id: str) -> Message | None:
        row = await self._read_one("SELECT * FROM messages WHERE id = ?", (message_id,))
        return message_from_row(row) if row else None

    async def claim_jobs(
        self, *, owner: str, limit: int, lease_s: float, now: float
    ) -> list[DeliveryJob]:
        if limit <= 0:
            return []
        rows = await self._write(
            _CLAIM, {"owner": owner, "until": now + lease_s, "now": now, "limit": limit}
        )
        return sorted_jobs(rows)

    async def extend_leases(
        self, *, owner: str, job_ids: Sequence[int], until: float
    ) -> int:
        count = 0
        for part in chunks(list(job_ids)):
            rows = await self._write(
                "UPDATE jobs SET lease_expires_at = ?"
                f" WHERE lease_owner = ? AND id IN ({_marks(len(part))}) RETURNING id",
                (until, owner, *part),
            )
            count += len(rows)
        return count

    async def complete_job(self, job_id: int, *, owner: str) -> bool:
        # The jobs_done trigger deletes the message with its last job.
        rows = await self._write(
            "DELETE FROM jobs WHERE id = ? AND lease_owner = ? RETURNING id",
            (job_id, owner),
        )
        return bool(rows)

    async def retry_job(
        self,
        job_id: int,
        *,
        owner: str,
        next_attempt_at: float,
        last_error: str | None,
    ) -> bool:
        rows = await self._write(
            "UPDATE jobs SET attempts = attempts + 1, next_attempt_at = ?,"
            " lease_owner = NULL, lease_expires_at = NULL, last_error = ?"
            " WHERE id = ? AND lease_owner = ? RETURNING id",
            (next_attempt_at, last_error, job_id, owner),
        )
        return bool(rows)

    async def save_progress(
        self, job_id: int, *, owner: str, cursor: int, done: Sequence[int] = ()
    ) -> bool:
        rows = await self._write(
            "UPDATE jobs SET cursor = ?, done_seqs = ?"
            " WHERE id = ? AND lease_owner = ? RETURNING id",
            (cursor, format_done(done), job_id, owner),
        )
        return bool(rows)

    async def split_topic_job(
        self, job_id: int, *, owner: str, at_seq: int
    ) -> DeliveryJob | None:
        return await self._run(lambda conn: _split(conn, job_id, owner, at_seq))

    async def release_jobs(self, *, owner: str) -> int:
        rows = await self._write(
            "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL"
            " WHERE lease_owner = ? RETURNING id",
            (owner,),
        )
        return len(rows)

    async def release_node_jobs(self, *, node: str, keep: Sequence[int] = ()) -> int:
        rows = await self._write(
            "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL"
            " WHERE (lease_owner = :node"
            "  OR substr(lease_owner, 1, length(:node) + 1) = :node || '/')"
            " AND id NOT IN (SELECT value FROM json_each(:keep)) RETURNING id",
            {"node": node, "keep": json.dumps(list(keep))},
        )
        return len(rows)

    async def probe(self, *, node: str, now: float) -> None:
        await self._write(
            "INSERT INTO nodes (id, seen_at) VALUES (?, ?)"
            " ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
            (node, now),
        )

    async def next_due_at(self) -> float | None:
        row = await self._read_one(NEXT_DUE_AT)
        return None if row is None else row["due"]

    async def job_counts(self) -> dict[str, int]:
        row = await self._read_one(_JOB_COUNTS, {"now": time.time()})
        assert row is not None
        return job_counts_of(row["total"], row["leased"], row["due"])


async def _enable_wal(conn: aiosqlite.Connection) -> None:
    """
    Switch to WAL (persistent in the file). The switch needs an exclusive lock and
    SQLite does not call the busy handler for it, so retry a contended switch.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            rows = await conn.execute_fetchall("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        else:
            mode = next(iter(rows))[0]
            if mode.lower() == "wal":
                return
            if time.monotonic() > deadline:
                raise StoreError(f"cannot switch SQLite to WAL (mode is {mode})")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)


def _insert_jobs(
    conn: sqlite3.Connection,
    message_id: str,
    created_at: float,
    jobs: Sequence[NewJob],
) -> None:
    """Insert jobs in the open transaction; topic jobs get range_hi = max seq now."""
    bounds: dict[str | None, int] = {}
    for new in jobs:
        if new.kind == "topic" and new.topic_arn not in bounds:
            bounds[new.topic_arn] = conn.execute(
                "SELECT coalesce(max(seq), 0) FROM subscriptions WHERE topic_arn = ?",
                (new.topic_arn,),
            ).fetchone()[0]
    conn.executemany(
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


def _split(
    conn: sqlite3.Connection, job_id: int, owner: str, at_seq: int
) -> DeliveryJob | None:
    """split_topic_job inside the write transaction."""
    row = conn.execute(
        "SELECT * FROM jobs WHERE id = ? AND lease_owner = ?", (job_id, owner)
    ).fetchone()
    if row is None:
        return None
    job = job_from_row(row)
    if job.range_hi is None or at_seq >= job.range_hi:
        return None
    new = conn.execute(
        _JOB_INSERT + " RETURNING *",
        (
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
        ),
    ).fetchone()
    conn.execute("UPDATE jobs SET range_hi = ? WHERE id = ?", (at_seq, job_id))
    conn.execute(
        "UPDATE messages SET pending_jobs = pending_jobs + 1 WHERE id = ?",
        (job.message_id,),
    )
    return job_from_row(new)


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Driver errors become StoreError, the cause kept: uniqueness is a
    ConflictError; an OperationalError (disk full, read-only, locked past the
    busy timeout, I/O error) is a StoreUnavailableError, worth trying again."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise ConflictError(str(exc)) from exc
    except sqlite3.OperationalError as exc:
        raise StoreUnavailableError(str(exc)) from exc
    except sqlite3.Error as exc:
        raise StoreError(str(exc)) from exc
