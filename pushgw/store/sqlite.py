"""
SqliteStore: the default, single-process backend on SqlStore (store/sql/).

WAL with `synchronous=NORMAL`: a crash of the process loses nothing; a power cut
may lose the last few commits. All writes go through one connection on one
thread (`_GroupWriter`) in `BEGIN IMMEDIATE` transactions; writes that arrive
together share a transaction (group commit), each under its own savepoint, and
each caller is answered after COMMIT. A transaction body (`SqlBase._transact`)
runs on that thread: `_SqliteTx`'s methods are coroutines that never suspend,
so `_run_to_end` drives the body through in one step, without the event loop.
Reads use a separate aiosqlite connection (`query_only`), so they run beside
writes. A trigger on `jobs` deletes a message with its last job.

What is SQLite's own: the claim (two bounded scans, no SKIP LOCKED needed with
one writer), complete_job lingering a few ms to share a batch, list parameters
bound as JSON arrays and read with `json_each`, no row locks (BEGIN IMMEDIATE
holds the database's write lock), no NOTIFY (one process: the callers wake
their dispatcher), and the error translation.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import sqlite3
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

import aiosqlite

from pushgw.errors import (
    ConflictError,
    StoreError,
    StoreUnavailableError,
)
from pushgw.store.group import Failed, GroupCommit
from pushgw.store.migrations import migrate_sqlite
from pushgw.store.rows import Params, Row
from pushgw.store.sealing import PLAIN, CredentialSealer
from pushgw.store.sql import NO_PARAMS, SqlStore, Tx, TxBody
from pushgw.store.sql.queue import COMPLETE_JOB

T = TypeVar("T")
BUSY_TIMEOUT_MS = 10_000
# Most writes committed together in one transaction (group commit).
MAX_WRITE_BATCH = 1000
# How long a complete_job may wait for other writes to share its transaction
# (GroupCommit linger): outcomes then mostly ride along with the next publish's
# commit instead of taking a commit and a thread hop each. The job stays
# leased (and its lane slot taken) meanwhile.
COMPLETE_LINGER_S = 0.005
WriteFn = Callable[[sqlite3.Connection], T]
# A queued write: the function, and whether it is one statement (no savepoint).
_Write = tuple[WriteFn[Any], bool]

# Two bounded scans on partial indexes: unleased due jobs, and lapsed leases.
# With one writer no row can be claimed twice, so nothing needs SKIP LOCKED.
_CLAIM_JOBS = """
UPDATE jobs SET lease_owner = :owner, lease_expires_at = :until
WHERE id IN (
    SELECT id FROM (
        SELECT * FROM (
            SELECT id, next_attempt_at FROM jobs
            WHERE lane = :lane AND lease_owner IS NULL AND next_attempt_at <= :now
            ORDER BY next_attempt_at, id LIMIT :limit
        )
        UNION ALL
        SELECT * FROM (
            SELECT id, next_attempt_at FROM jobs
            WHERE lane = :lane AND lease_owner IS NOT NULL AND lease_expires_at <= :now
              AND next_attempt_at <= :now
            ORDER BY next_attempt_at, id LIMIT :limit
        )
    )
    ORDER BY next_attempt_at, id LIMIT :limit
)
RETURNING *
"""


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
        self._group: GroupCommit[_Write, Any] = GroupCommit(
            self._commit_on_thread, max_batch=MAX_WRITE_BATCH, name="SQLite writer"
        )

    async def open(self) -> None:
        await self._call(self._connect)

    async def close(self) -> None:
        await self._group.drain()
        if self._conn is not None:
            await self._call(self._conn.close)
            self._conn = None
        self._thread.shutdown(wait=False)

    async def run(
        self, fn: WriteFn[T], *, one_statement: bool = False, linger_s: float = 0.0
    ) -> T:
        """
        Run `fn(conn)` in the next write transaction; its result once committed.

        `one_statement`: fn runs a single statement, which SQLite already undoes
        alone on error, so it needs no savepoint. `linger_s`: the write may
        wait that long for others to share its transaction (GroupCommit). A
        cancelled caller's write may still be committed (its future is just
        dropped).
        """
        if self._conn is None:
            raise StoreError("store is not open")
        result: T = await self._group.submit((fn, one_statement), linger_s=linger_s)
        return result

    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    def _connect(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        self._conn = conn

    async def _commit_on_thread(self, writes: list[_Write]) -> list[Any]:
        # If the thread itself fails, GroupCommit fails the whole batch.
        return await self._call(functools.partial(self._commit, writes))

    def _commit(self, fns: list[_Write]) -> list[Any]:
        """On the writer thread: one transaction, a savepoint per write."""
        conn = self._conn
        assert conn is not None
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            return [Failed(exc)] * len(fns)
        outcomes: list[Any] = []
        try:
            for fn, one_statement in fns:
                if one_statement:
                    try:
                        outcomes.append(fn(conn))
                    except sqlite3.IntegrityError as exc:
                        # Other errors may end the transaction: fail the batch.
                        outcomes.append(Failed(exc))
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
                    outcomes.append(Failed(exc))
                conn.execute("RELEASE w")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            return [Failed(exc)] * len(fns)
        return outcomes


class SqliteStore(SqlStore):
    """The Store on one SQLite file. See the module docstring."""

    _CLAIM = _CLAIM_JOBS
    # The writer's BEGIN IMMEDIATE already holds the whole database.
    _LOCK_ROW = ""

    def __init__(self, path: str, *, sealer: CredentialSealer = PLAIN) -> None:
        self.path = path
        self.sealer = sealer
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

    # -- the dialect primitives (store/sql/core.py) ----------------------------
    async def _read(self, sql: str, params: Params = NO_PARAMS) -> list[Row]:
        if self._reader is None:
            raise StoreError("store is not open")
        with _translated():
            return list(await self._reader.execute_fetchall(sql, _bound(params)))

    async def _write(
        self, sql: str, params: Params = NO_PARAMS, *, wake: bool = False
    ) -> list[Row]:
        # `wake` needs nothing here: see _SqliteTx.wake.
        bound = _bound(params)
        return await self._run(
            lambda conn: conn.execute(sql, bound).fetchall(), one_statement=True
        )

    async def _transact(self, body: TxBody[T]) -> T:
        return await self._run(lambda conn: _run_to_end(body(_SqliteTx(conn))))

    async def complete_job(self, job_id: int, *, owner: str) -> bool:
        # The hottest write: it lingers for company (COMPLETE_LINGER_S). The
        # jobs_done trigger deletes the message with its last job.
        params = {"id": job_id, "owner": owner}
        rows = await self._run(
            lambda conn: conn.execute(COMPLETE_JOB, params).fetchall(),
            one_statement=True,
            linger_s=COMPLETE_LINGER_S,
        )
        return bool(rows)

    def _in_list(self, column: str, param: str) -> str:
        return f"{column} IN (SELECT value FROM json_each(:{param}))"

    def _list(self, values: Sequence[Any]) -> Any:
        return json.dumps(list(values))

    async def _run(
        self, fn: WriteFn[T], *, one_statement: bool = False, linger_s: float = 0.0
    ) -> T:
        """Run `fn(conn)` in a write transaction; driver errors translated."""
        if self._writer is None:
            raise StoreError("store is not open")
        with _translated():
            return await self._writer.run(
                fn, one_statement=one_statement, linger_s=linger_s
            )


class _SqliteTx(Tx):
    """The writer's connection inside its transaction (on the writer thread)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, params: Params = NO_PARAMS) -> list[Row]:
        return self._conn.execute(sql, _bound(params)).fetchall()

    async def executemany(self, sql: str, params: Sequence[Params]) -> None:
        self._conn.executemany(sql, [_bound(p) for p in params])

    async def wake(self) -> None:
        pass  # one process: the callers wake their own dispatcher


def _run_to_end(body: Coroutine[Any, Any, T]) -> T:
    """
    Run a transaction body on the writer thread, where no event loop runs. It
    awaits only `_SqliteTx` methods, which never suspend, so one step runs it to
    the end; a body that does suspend is a bug.
    """
    try:
        body.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    body.close()
    raise RuntimeError("a SQLite transaction body awaited more than its Tx")


def _bound(params: Params) -> dict[str, Any]:
    """Parameters as sqlite3 takes them: named ones only from a dict."""
    return params if isinstance(params, dict) else dict(params)


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
