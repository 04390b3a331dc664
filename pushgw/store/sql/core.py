"""
The pieces the SQL store is built from: the parameter style (`:name`, and
`numbered()` for drivers that want `$n`), the dialect interface (`SqlBase`, `Tx`)
and statement builders. See the package docstring.
"""

from __future__ import annotations

import abc
import functools
import re
from collections.abc import Callable, Coroutine, Sequence
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

from pushgw.store.rows import Params, Row
from pushgw.store.sealing import PLAIN, CredentialSealer

T = TypeVar("T")
NO_PARAMS: Params = MappingProxyType({})

# A `:name` placeholder, or a quoted literal to pass over. `::type` casts are
# not placeholders: the first colon is followed by a colon, the second preceded
# by one.
_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|(?<![:\w]):([A-Za-z_]\w*)")


@functools.cache
def numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """
    `sql` with `$n` placeholders instead of `:name`, and the names in `$n` order
    (a name used twice is one `$n`).
    """
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match[1]
        if name is None:
            return match[0]
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PLACEHOLDER.sub(number, sql), tuple(names)


def insert_sql(table: str, columns: Sequence[str]) -> str:
    """INSERT of one row, a `:column` parameter a column."""
    placeholders = ", ".join(f":{c}" for c in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"


def update_sql(table: str, columns: Sequence[str]) -> str:
    """
    UPDATE of every column but the key (columns[0]) of the row with that key;
    RETURNING tells whether it existed.
    """
    key, *fields = columns
    assignments = ", ".join(f"{c} = :{c}" for c in fields)
    return f"UPDATE {table} SET {assignments} WHERE {key} = :{key} RETURNING seq"


class Tx(abc.ABC):
    """A connection in an open transaction (`SqlBase._transact`)."""

    @abc.abstractmethod
    async def fetch(self, sql: str, params: Params = NO_PARAMS) -> list[Row]:
        """Run one statement; its rows (none for most writes)."""

    @abc.abstractmethod
    async def executemany(self, sql: str, params: Sequence[Params]) -> None:
        """Run one statement once per parameter set."""

    @abc.abstractmethod
    async def wake(self) -> None:
        """Jobs became claimable: wake the dispatchers once this commits."""

    async def fetchrow(self, sql: str, params: Params = NO_PARAMS) -> Row | None:
        rows = await self.fetch(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Params = NO_PARAMS) -> None:
        await self.fetch(sql, params)


TxBody = Callable[[Tx], Coroutine[Any, Any, T]]


class SqlBase(abc.ABC):
    """What a dialect implements; the Store methods are built on it."""

    # Claim up to :limit jobs due at :now for :owner, leased until :until.
    _CLAIM: ClassVar[str]
    # Appended to a SELECT that must lock the row it reads until commit.
    _LOCK_ROW: ClassVar[str]
    # Seals app credentials before they are written (none: PLAIN).
    sealer: CredentialSealer = PLAIN

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and apply pending schema migrations."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    # -- dialect primitives ----------------------------------------------------
    @abc.abstractmethod
    async def _read(self, sql: str, params: Params = NO_PARAMS) -> list[Row]: ...

    @abc.abstractmethod
    async def _write(
        self, sql: str, params: Params = NO_PARAMS, *, wake: bool = False
    ) -> list[Row]: ...

    @abc.abstractmethod
    async def _transact(self, body: TxBody[T]) -> T: ...

    @abc.abstractmethod
    def _in_list(self, column: str, param: str) -> str:
        """SQL true when `column` is in the list parameter `param`."""

    @abc.abstractmethod
    def _list(self, values: Sequence[Any]) -> Any:
        """The value of a list parameter (see `_in_list`)."""

    async def _read_one(self, sql: str, params: Params = NO_PARAMS) -> Row | None:
        rows = await self._read(sql, params)
        return rows[0] if rows else None
