"""
SqlStore: every Store method, its SQL written once for SQLite and PostgreSQL.

    core.py      the parameter style, the dialect interface (SqlBase, Tx) and
                 statement builders
    catalog.py   apps, endpoints, topics, subscriptions, tags (CatalogSql)
    queue.py     messages and delivery jobs (QueueSql)
    ledger.py    the delivery ledger: counters, records, dead letters (LedgerSql)

The SQL uses named parameters (`:name`, values from a dict). SQLite binds them
as written; for PostgreSQL `numbered()` turns them into `$1, $2, ...` once per
statement text (cached). A dialect (sqlite.py, postgres.py) subclasses SqlStore
and supplies three primitives and a few fragments:

    _read(sql, params)              the rows of a read
    _write(sql, params, wake=...)   the rows (RETURNING) of one write, committed
    _transact(body)                 `await body(tx)` in one transaction, where
                                    `tx` (a `Tx`) runs the statements
    _CLAIM, _LOCK_ROW               SQL that is not the same in both dialects
    _in_list(), _list()             a list parameter: its SQL and its value

`wake` (and `Tx.wake()` in a transaction) marks a write that makes jobs
claimable: PostgreSQL sends NOTIFY with it, so idle dispatchers on every node
wake at once; SQLite serves one process, whose dispatcher its callers wake.

What else stays per dialect: connecting and migrating, error translation,
SQLite's group-commit writer, PostgreSQL's pool, LISTEN and complete_job
batching. `rows.py` converts between model objects and rows.
"""

from __future__ import annotations

from pushgw.store.sql.catalog import CatalogSql
from pushgw.store.sql.core import NO_PARAMS, SqlBase, Tx, TxBody, numbered
from pushgw.store.sql.ledger import LedgerSql
from pushgw.store.sql.queue import QueueSql


class SqlStore(CatalogSql, QueueSql, LedgerSql):
    """
    The Store over a SQL dialect: every method, its SQL written once. A dialect
    subclass implements `SqlBase`'s primitives. See the package docstring.
    """


__all__ = ["NO_PARAMS", "SqlBase", "SqlStore", "Tx", "TxBody", "numbered"]
