"""
The two dialects' migrations must build the same schema: the same tables with
the same column names, and the same indexes.

The DDL is written twice (types, AUTOINCREMENT vs BIGSERIAL, trigger syntax
differ), so drift is caught here: by reading the migration files' text, which
needs no PostgreSQL, and, where PostgreSQL is available, by comparing the
schemas the two databases really end with.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import asyncpg
import pytest

from pushgw.store.migrations import Dialect, load_migrations, quote_ident
from pushgw.store.postgres import PostgresStore
from pushgw.store.sqlite import SqliteStore
from tests.store.conftest import pg_dsn

# Table -> its column names, in order.
Schema = dict[str, list[str]]

_CREATE_TABLE = re.compile(
    r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\s*\(", re.I
)
_ALTER_TABLE = re.compile(
    r"ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(\w+)\s+(.*)", re.I | re.S
)
_ADD_COLUMN = re.compile(r"ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.I)
_DROP_COLUMN = re.compile(r"DROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?(\w+)", re.I)
_RENAME_COLUMN = re.compile(r"RENAME\s+(?:COLUMN\s+)?(\w+)\s+TO\s+(\w+)", re.I)
_DROP_TABLE = re.compile(r"DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(\w+)", re.I)
_CREATE_INDEX = re.compile(
    r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\s+ON\s+(\w+)", re.I
)
_DROP_INDEX = re.compile(r"DROP\s+INDEX\s+(?:IF\s+EXISTS\s+)?(\w+)", re.I)
# Table-level constraints inside CREATE TABLE (...), not columns.
_CONSTRAINTS = {"constraint", "primary", "unique", "foreign", "check", "exclude"}


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def _parenthesised(text: str, start: int) -> str:
    """The text inside the parentheses that open at `text[start]`."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    raise AssertionError(f"unbalanced parentheses after {text[start : start + 40]!r}")


def _top_level_items(body: str) -> list[str]:
    """`body` split at the commas outside parentheses."""
    items, depth, current = [], 0, ""
    for char in body:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    return [*items, current]


def _columns(body: str) -> list[str]:
    names = []
    for item in _top_level_items(body):
        word = item.split()[0].strip('"')
        if word.lower() not in _CONSTRAINTS:
            names.append(word)
    return names


def _alter(schema: Schema, table: str, action: str) -> None:
    """Apply one ALTER TABLE action; an unknown one fails (teach it here)."""
    columns = schema[table]
    if match := _RENAME_COLUMN.match(action):
        columns[columns.index(match[1])] = match[2]
    elif match := re.match(r"RENAME\s+TO\s+(\w+)", action, re.I):
        schema[match[1]] = schema.pop(table)
    elif match := _ADD_COLUMN.match(action):
        columns.append(match[1])
    elif match := _DROP_COLUMN.match(action):
        columns.remove(match[1])
    elif not re.match(r"(ALTER|ADD\s+CONSTRAINT|DROP\s+CONSTRAINT)\b", action, re.I):
        raise AssertionError(f"cannot read ALTER TABLE {table} {action!r}")


def schema_from_migrations(dialect: Dialect) -> tuple[Schema, set[str]]:
    """Tables with their columns, and index names, that the migration files build."""
    schema: Schema = {}
    indexes: set[str] = set()
    for migration in load_migrations(dialect):
        sql = _strip_comments(migration.sql)
        for match in _CREATE_TABLE.finditer(sql):
            schema[match[1]] = _columns(_parenthesised(sql, match.end() - 1))
        for match in _DROP_TABLE.finditer(sql):
            del schema[match[1]]
        for statement in sql.split(";"):
            if match := _ALTER_TABLE.search(statement):
                for action in _top_level_items(match[2]):
                    _alter(schema, match[1], action.strip())
        # In statement order: a file may drop an index and create it anew.
        for statement in sql.split(";"):
            if match := _DROP_INDEX.search(statement):
                indexes.discard(match[1])
            if match := _CREATE_INDEX.search(statement):
                indexes.add(match[1])
    return schema, indexes


def test_migrations_build_the_same_tables_and_columns() -> None:
    """The SQLite and PostgreSQL migration files create the same tables, each
    with the same column names in the same order, and the same indexes."""
    sqlite_schema, sqlite_indexes = schema_from_migrations("sqlite")
    postgres_schema, postgres_indexes = schema_from_migrations("postgres")

    assert sqlite_schema == postgres_schema
    assert sqlite_indexes == postgres_indexes
    assert {"apps", "endpoints", "jobs", "messages", "nodes"} <= set(sqlite_schema)
    assert "done_seqs" in sqlite_schema["jobs"]  # ALTER TABLE ... ADD COLUMN read


def test_both_dialects_have_the_same_migration_versions() -> None:
    """Every migration version exists for both dialects."""
    sqlite = [m.version for m in load_migrations("sqlite")]
    postgres = [m.version for m in load_migrations("postgres")]

    assert sqlite == postgres


def test_schema_reader_follows_alter_table() -> None:
    """The migration reader applies renames and drops, and refuses what it
    cannot read rather than passing it over."""
    schema: Schema = {"t": ["a", "b"]}

    _alter(schema, "t", "RENAME COLUMN a TO c")
    _alter(schema, "t", "DROP COLUMN b")
    _alter(schema, "t", "ADD COLUMN d TEXT NOT NULL DEFAULT ''")

    assert {"t": ["c", "d"]} == schema
    with pytest.raises(AssertionError, match="cannot read"):
        _alter(schema, "t", "SET UNLOGGED")


async def sqlite_schema(path: str) -> tuple[Schema, set[str]]:
    """The tables (but SQLite's own) and indexes of a SQLite database."""
    async with aiosqlite.connect(path) as conn:
        rows = await conn.execute_fetchall(
            "SELECT type, name FROM sqlite_master"
            " WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%'"
        )
        schema: Schema = {}
        for kind, name in rows:
            if kind == "table":
                info = await conn.execute_fetchall(f"PRAGMA table_info({name})")
                schema[name] = [r[1] for r in info]
        return schema, {name for kind, name in rows if kind == "index"}


async def postgres_schema(store: PostgresStore) -> tuple[Schema, set[str]]:
    """The tables and indexes (but primary keys and UNIQUE) of the store's schema."""
    conn = await asyncpg.connect(store.dsn)
    try:
        columns = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = $1 ORDER BY table_name, ordinal_position",
            store.schema,
        )
        indexes = await conn.fetch(
            "SELECT indexname FROM pg_indexes i WHERE schemaname = $1"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint c"
            "  WHERE c.conname = i.indexname AND c.contype IN ('p', 'u'))",
            store.schema,
        )
    finally:
        await conn.close()
    schema: Schema = {}
    for row in columns:
        schema.setdefault(row["table_name"], []).append(row["column_name"])
    return schema, {r["indexname"] for r in indexes}


@pytest.fixture
async def postgres() -> AsyncIterator[PostgresStore]:
    """A PostgreSQL store opened on a fresh schema, dropped afterwards."""
    dsn = pg_dsn()
    store = PostgresStore(dsn, schema=f"test_{uuid.uuid4().hex[:12]}", max_size=1)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f"DROP SCHEMA {quote_ident(store.schema)} CASCADE")
        finally:
            await conn.close()


@pytest.mark.postgres
async def test_migrated_databases_have_the_same_schema(
    tmp_path: Path, postgres: PostgresStore
) -> None:
    """A freshly migrated SQLite file and PostgreSQL schema have the same tables,
    columns and indexes (and the migration reader above agrees with them)."""
    sqlite = SqliteStore(str(tmp_path / "schema.db"))
    await sqlite.open()
    await sqlite.close()

    from_sqlite = await sqlite_schema(sqlite.path)
    from_postgres = await postgres_schema(postgres)

    assert from_sqlite == from_postgres
    expected_tables, expected_indexes = schema_from_migrations("sqlite")
    assert {**expected_tables, "schema_migrations": ["version", "applied_at"]} == (
        from_sqlite[0]
    )
    assert expected_indexes == from_sqlite[1]
