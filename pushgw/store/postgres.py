"""
PostgresStore: the multi-node backend (asyncpg pool) on SqlStore (store/sql/),
its `:name` parameters numbered for asyncpg (`numbered`, cached).

Any number of daemons share one database. Jobs are claimed in one statement with
`FOR UPDATE SKIP LOCKED`, so concurrent claimers never wait on each other nor take
the same job. Writes that make jobs claimable (enqueue, add_jobs, retry, split,
release) send `pg_notify('pushgw_jobs')` (delivered at commit) so idle
dispatchers on every node wake at once; `listen_forever()` subscribes. Polling
on `next_due_at()` stays the fallback. A trigger on `jobs` deletes a message
with its last job (see the migration). Concurrent `complete_job` calls are sent
together as one DELETE (group commit, `_CompleteBatcher`).

What is PostgreSQL's own: that claim, `FOR UPDATE` on the row a split reads,
list parameters as arrays (`= ANY(...)`), NOTIFY, LISTEN, the complete_job
batching and the error translation. All tables live in one schema (`schema=`,
default "public"), so tests and side-by-side deployments can isolate themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import asyncpg

from pushgw.errors import (
    ConflictError,
    StoreError,
    StoreUnavailableError,
)
from pushgw.store.group import GroupCommit
from pushgw.store.migrations import migrate_postgres
from pushgw.store.rows import Params, Row
from pushgw.store.sealing import PLAIN, CredentialSealer
from pushgw.store.sql import NO_PARAMS, SqlStore, Tx, TxBody, numbered

T = TypeVar("T")
CHANNEL = "pushgw_jobs"
_NOTIFY = f"SELECT pg_notify('{CHANNEL}', '')"

# Each scan skips rows another claimer holds: concurrent claims never wait
# on each other nor take the same job.
_CLAIM_JOBS = """
WITH free AS (
    SELECT id, next_attempt_at FROM jobs
    WHERE lane = :lane AND lease_owner IS NULL AND next_attempt_at <= :now
    ORDER BY next_attempt_at, id LIMIT :limit
    FOR UPDATE SKIP LOCKED
), lapsed AS (
    SELECT id, next_attempt_at FROM jobs
    WHERE lane = :lane AND lease_owner IS NOT NULL AND lease_expires_at <= :now
      AND next_attempt_at <= :now
    ORDER BY next_attempt_at, id LIMIT :limit
    FOR UPDATE SKIP LOCKED
), pick AS (
    SELECT id FROM (SELECT * FROM free UNION ALL SELECT * FROM lapsed) AS c
    ORDER BY next_attempt_at, id LIMIT :limit
)
UPDATE jobs SET lease_owner = :owner, lease_expires_at = :until
FROM pick WHERE jobs.id = pick.id
RETURNING jobs.*
"""
_COMPLETE_MANY = """
DELETE FROM jobs USING unnest(:ids::bigint[], :owners::text[]) AS done (id, owner)
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
        self._group: GroupCommit[tuple[int, str], bool] = GroupCommit(
            self._commit, max_batch=MAX_COMPLETE_BATCH, name="complete_job batcher"
        )

    async def complete(self, job_id: int, owner: str) -> bool:
        return await self._group.submit((job_id, owner))

    async def drain(self) -> None:
        await self._group.drain()

    async def _commit(self, jobs: list[tuple[int, str]]) -> list[bool]:
        done = await self._delete(jobs)
        answers = []
        for job_id, _ in jobs:
            # A job named twice in one batch is completed once.
            answers.append(job_id in done)
            done.discard(job_id)
        return answers

    async def _delete(self, jobs: list[tuple[int, str]]) -> set[int]:
        # Two batches finishing jobs of one message lock its row (trigger) in
        # their own order, so a deadlock is possible if rare: PostgreSQL aborts
        # one side, which simply runs again.
        text, args = _bound(
            _COMPLETE_MANY,
            {"ids": [i for i, _ in jobs], "owners": [o for _, o in jobs]},
        )
        for attempt in range(DEADLOCK_RETRIES):
            try:
                with _translated():
                    async with self._pool.acquire(timeout=self._timeout_s) as conn:
                        rows = await conn.fetch(text, *args)
                return {r["id"] for r in rows}
            except StoreError as exc:
                deadlock = isinstance(exc.__cause__, asyncpg.DeadlockDetectedError)
                if not deadlock or attempt == DEADLOCK_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")


class PostgresStore(SqlStore):
    """The Store on PostgreSQL. See the module docstring."""

    _CLAIM = _CLAIM_JOBS
    _LOCK_ROW = " FOR UPDATE"

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        schema: str = "public",
        timeout_s: float = 5.0,
        sealer: CredentialSealer = PLAIN,
    ) -> None:
        self.sealer = sealer
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
                server_settings=self._settings(),
            )
            self._completer = _CompleteBatcher(self._pool, self._timeout_s)

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(
            self.dsn,
            timeout=self._timeout_s,
            command_timeout=self._timeout_s,
            server_settings=self._settings(),
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

    def _settings(self) -> dict[str, str]:
        # application_name shows operators (pg_stat_activity) whose connection
        # this is; it names the schema, since daemons sharing one are one store.
        return {"search_path": self.schema, "application_name": self.application_name}

    @property
    def application_name(self) -> str:
        return f"pushgw:{self.schema}"[:63]

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

    # -- the dialect primitives (store/sql/core.py) ----------------------------
    async def _read(self, sql: str, params: Params = NO_PARAMS) -> list[Row]:
        text, args = _bound(sql, params)
        with _translated():
            async with self._acquire() as conn:
                return list(await conn.fetch(text, *args))

    async def _write(
        self, sql: str, params: Params = NO_PARAMS, *, wake: bool = False
    ) -> list[Row]:
        text, args = _bound(_waking(sql) if wake else sql, params)
        with _translated():
            async with self._acquire() as conn:
                return list(await conn.fetch(text, *args))

    async def _transact(self, body: TxBody[T]) -> T:
        with _translated():
            async with self._acquire() as conn, conn.transaction():
                return await body(_PgTx(conn))

    def _in_list(self, column: str, param: str) -> str:
        # The array's element type is inferred from the column's.
        return f"{column} = ANY(:{param})"

    def _list(self, values: Sequence[Any]) -> Any:
        return list(values)

    async def complete_job(self, job_id: int, *, owner: str) -> bool:
        # The jobs_done trigger deletes the message with its last job.
        if self._completer is None:
            raise StoreError("store is not open")
        return await self._completer.complete(job_id, owner)


class _PgTx(Tx):
    """A pooled connection inside `conn.transaction()`."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, params: Params = NO_PARAMS) -> list[Row]:
        text, args = _bound(sql, params)
        return list(await self._conn.fetch(text, *args))

    async def executemany(self, sql: str, params: Sequence[Params]) -> None:
        text, names = numbered(sql)
        await self._conn.executemany(text, [[p[n] for n in names] for p in params])

    async def wake(self) -> None:
        await self._conn.execute(_NOTIFY)  # sent at commit, once per transaction


def _bound(sql: str, params: Params) -> tuple[str, list[Any]]:
    """The asyncpg form of a statement: `$n` text and positional arguments."""
    text, names = numbered(sql)
    return text, [params[name] for name in names]


@functools.cache
def _waking(sql: str) -> str:
    """
    A write statement that also sends NOTIFY if it changed a row (it must
    return rows): one round trip, and nobody is woken for nothing.
    """
    return f"WITH changed AS ({sql}) SELECT *, pg_notify('{CHANNEL}', '') FROM changed"


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
