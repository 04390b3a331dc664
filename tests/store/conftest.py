"""
Fixtures for the store contract suite: one `backend` per store implementation.

PostgreSQL runs only when PUSHGW_TEST_PG_DSN is set; each test gets a fresh
schema, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from pushgw.store.base import Store
from pushgw.store.memory import InMemoryStore
from pushgw.store.migrations import quote_ident
from pushgw.store.postgres import PostgresStore
from pushgw.store.sqlite import SqliteStore

PG_DSN_VAR = "PUSHGW_TEST_PG_DSN"
PG_SKIP_REASON = f"{PG_DSN_VAR} is not set; CI sets it"


class Backend:
    """Opens stores on one database; closes them all at teardown."""

    def __init__(self, kind: str, factory: Callable[[], Store]) -> None:
        self.kind = kind
        self._factory = factory
        self._opened: list[Store] = []

    @property
    def is_sql(self) -> bool:
        return self.kind != "memory"

    async def new(self) -> Store:
        """A new, opened store instance on the same database."""
        store = self._factory()
        await store.open()
        self._opened.append(store)
        return store

    async def aclose(self) -> None:
        for store in reversed(self._opened):
            await store.close()


def pg_dsn() -> str:
    dsn = os.environ.get(PG_DSN_VAR)
    if not dsn:
        pytest.skip(PG_SKIP_REASON)
    return dsn


async def _drop_schema(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
    finally:
        await conn.close()


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Backend]:
    """Every store implementation in turn, on a clean database."""
    kind: str = request.param
    cleanup: Callable[[], Awaitable[None]] | None = None
    if kind == "memory":
        shared = InMemoryStore()
        made = Backend(kind, lambda: shared)
    elif kind == "sqlite":
        path = str(tmp_path / "pushgw.db")
        made = Backend(kind, lambda: SqliteStore(path))
    else:
        dsn = pg_dsn()
        schema = f"test_{uuid.uuid4().hex[:12]}"
        made = Backend(kind, lambda: PostgresStore(dsn, schema=schema, max_size=4))

        async def cleanup() -> None:
            await _drop_schema(dsn, schema)

    try:
        yield made
    finally:
        await made.aclose()
        if cleanup is not None:
            await cleanup()


@pytest.fixture
async def store(backend: Backend) -> Store:
    """One opened store of the current backend."""
    return await backend.new()
