"""
Versioned schema migrations for the SQL stores, applied by `open()`.

Files live in `migrations/<dialect>/NNNN_name.sql`; NNNN is the version. Applied
versions are recorded in `schema_migrations(version, applied_at)`. Each pending
file runs in its own transaction together with its `schema_migrations` row, so a
failed migration leaves nothing half-applied. On PostgreSQL a transaction-level
advisory lock serialises daemons that start together.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiosqlite

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Arbitrary constant key for pg_advisory_xact_lock: "pushgw" migrations.
PG_LOCK_KEY = 0x70757368677701

Dialect = Literal["sqlite", "postgres"]
_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(dialect: Dialect) -> list[Migration]:
    """The dialect's migration files, in version order."""
    found = []
    for path in sorted((MIGRATIONS_DIR / dialect).iterdir()):
        match = _FILE_NAME.match(path.name)
        if match:
            found.append(Migration(int(match[1]), path.name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions in {dialect}: {versions}")
    return found


async def migrate_sqlite(conn: aiosqlite.Connection) -> list[int]:
    """
    Apply pending migrations on an autocommit (isolation_level=None) connection.

    Returns:
        The versions applied now (empty when the schema was up to date).
    """
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    applied = []
    for migration in load_migrations("sqlite"):
        # BEGIN IMMEDIATE takes the write lock before reading the version, so two
        # connections opening together apply each file once.
        await conn.execute("BEGIN IMMEDIATE")
        try:
            rows = await conn.execute_fetchall(
                "SELECT 1 FROM schema_migrations WHERE version = ?",
                (migration.version,),
            )
            if not list(rows):
                await _sqlite_script(conn, migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (migration.version, time.time()),
                )
                applied.append(migration.version)
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
    return applied


async def _sqlite_script(conn: aiosqlite.Connection, sql: str) -> None:
    # executescript() would COMMIT first, so run the statements one by one inside
    # the open transaction. complete_statement() finds the statement boundaries.
    pending = ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            await conn.execute(pending)
            pending = ""
    if pending.strip() and not _only_comments(pending):
        raise RuntimeError(f"incomplete SQL statement in migration: {pending!r}")


def _only_comments(sql: str) -> bool:
    return all(
        not line.strip() or line.strip().startswith("--") for line in sql.splitlines()
    )


async def migrate_postgres(conn: Any, *, schema: str) -> list[int]:
    """
    Apply pending migrations on an asyncpg connection, inside `schema`.

    Returns:
        The versions applied now (empty when the schema was up to date).
    """
    applied = []
    for migration in load_migrations("postgres"):
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", PG_LOCK_KEY)
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {quote_ident(schema)}.schema_migrations"
                " (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
            )
            done = await conn.fetchval(
                f"SELECT 1 FROM {quote_ident(schema)}.schema_migrations"
                " WHERE version = $1",
                migration.version,
            )
            if done:
                continue
            await conn.execute(f"SET LOCAL search_path TO {quote_ident(schema)}")
            await conn.execute(migration.sql)
            await conn.execute(
                f"INSERT INTO {quote_ident(schema)}.schema_migrations"
                " (version, applied_at) VALUES ($1, $2)",
                migration.version,
                time.time(),
            )
            applied.append(migration.version)
    return applied


def quote_ident(name: str) -> str:
    """Quote a PostgreSQL identifier (schema names come from config)."""
    return '"' + name.replace('"', '""') + '"'
