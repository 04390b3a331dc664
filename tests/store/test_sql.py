"""
The SQL layer's own machinery, without a database: the `:name` to `$n`
translation for PostgreSQL and the SQLite writer's one-step transaction bodies.
"""

from __future__ import annotations

import asyncio

import pytest

from pushgw.store.sql import numbered
from pushgw.store.sqlite import _run_to_end


def test_numbered_numbers_names_in_order_of_first_use() -> None:
    """Each name gets one number, in order of first use, reused when repeated."""
    text, names = numbered("SELECT :b, :a WHERE x = :b AND y <= :a_2")

    assert "SELECT $1, $2 WHERE x = $1 AND y <= $3" == text
    assert ("b", "a", "a_2") == names


def test_numbered_leaves_casts_and_literals_alone() -> None:
    """`::type` casts, quoted text and a time like '10:30' are not placeholders."""
    text, names = numbered(
        "SELECT :ids::bigint[], 'at 10:30 :not', 'it''s :no', x||':y' FROM t"
    )

    assert "SELECT $1::bigint[], 'at 10:30 :not', 'it''s :no', x||':y' FROM t" == text
    assert ("ids",) == names


def test_numbered_is_cached() -> None:
    """The translation of one statement text is made once."""
    sql = "SELECT * FROM jobs WHERE id = :id"

    assert numbered(sql) is numbered(sql)


def test_run_to_end_returns_or_raises_what_the_body_does() -> None:
    """A body that awaits only non-suspending coroutines runs in one step."""

    async def step(value: int) -> int:
        return value

    async def body() -> int:
        return await step(1) + await step(2)

    async def failing() -> None:
        await step(0)
        raise ValueError("boom")

    assert 3 == _run_to_end(body())
    with pytest.raises(ValueError, match="boom"):
        _run_to_end(failing())


def test_run_to_end_refuses_a_body_that_suspends() -> None:
    """A body that really waits (on the event loop) is a bug, said at once."""

    async def body() -> None:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="awaited more than its Tx"):
        _run_to_end(body())
