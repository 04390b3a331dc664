"""
The SQL of the SNS resources: platform applications, endpoints, topics,
subscriptions and tags.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from pushgw.errors import NotFoundError
from pushgw.model import Endpoint, PlatformApplication, Subscription, Topic
from pushgw.store.base import Page, TokenPage, prefix_upper_bound
from pushgw.store.rows import (
    APP_COLUMNS,
    ENDPOINT_COLUMNS,
    SUBSCRIPTION_COLUMNS,
    TOPIC_COLUMNS,
    Row,
    app_from_row,
    app_params,
    endpoint_from_row,
    endpoint_params,
    page_of,
    sub_from_row,
    sub_params,
    topic_from_row,
    topic_params,
)
from pushgw.store.sql.core import SqlBase, Tx, insert_sql, update_sql

# Put replaces the fields but keeps the row (its seq, and so the page order).
_APP_PUT = (
    insert_sql("apps", APP_COLUMNS)
    + " ON CONFLICT (arn) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in APP_COLUMNS[1:])
)
_APP_UPDATE = update_sql("apps", APP_COLUMNS)
_TAG_UPSERT = (
    "INSERT INTO tags (arn, key, value) VALUES (:arn, :key, :value)"
    " ON CONFLICT (arn, key) DO UPDATE SET value = excluded.value"
)
_ENDPOINT_INSERT = insert_sql("endpoints", ENDPOINT_COLUMNS)
_ENDPOINT_UPDATE = update_sql("endpoints", ENDPOINT_COLUMNS)
_TOPIC_INSERT = insert_sql("topics", TOPIC_COLUMNS)
_TOPIC_UPDATE = update_sql("topics", TOPIC_COLUMNS)
_SUB_INSERT = insert_sql("subscriptions", SUBSCRIPTION_COLUMNS) + " RETURNING seq"
_SUB_UPDATE = update_sql("subscriptions", SUBSCRIPTION_COLUMNS)
_DELETED_INSERT = (
    insert_sql("deleted_subscriptions", (*SUBSCRIPTION_COLUMNS, "deleted_at"))
    + " ON CONFLICT (arn) DO NOTHING"
)


class CatalogSql(SqlBase):
    """Store methods for the SNS resources."""

    # -- platform applications -------------------------------------------------
    # Credentials are sealed on the way in and opened on the way out
    # (`self.sealer`, store/sealing.py): these four methods are the only ones.
    async def put_app(self, app: PlatformApplication) -> PlatformApplication:
        await self._write(_APP_PUT, app_params(self.sealer.sealed(app)))
        return app

    async def get_app(self, arn: str) -> PlatformApplication | None:
        row = await self._read_one("SELECT * FROM apps WHERE arn = :arn", {"arn": arn})
        return self._app_of(row) if row else None

    async def list_apps(self, *, after: int, limit: int) -> Page[PlatformApplication]:
        rows = await self._read(
            "SELECT * FROM apps WHERE seq > :after ORDER BY seq LIMIT :limit",
            {"after": after, "limit": limit + 1},
        )
        return page_of(rows, limit, self._app_of)

    async def update_app(self, app: PlatformApplication) -> None:
        if not await self._write(_APP_UPDATE, app_params(self.sealer.sealed(app))):
            raise NotFoundError(app.arn)

    def _app_of(self, row: Row) -> PlatformApplication:
        return self.sealer.opened(app_from_row(row))

    async def delete_app(self, arn: str) -> None:
        async def delete(tx: Tx) -> None:
            await tx.execute("DELETE FROM endpoints WHERE app_arn = :arn", {"arn": arn})
            await tx.execute("DELETE FROM apps WHERE arn = :arn", {"arn": arn})

        await self._transact(delete)

    # -- endpoints -------------------------------------------------------------
    async def insert_endpoint(self, endpoint: Endpoint) -> Endpoint:
        await self._write(_ENDPOINT_INSERT, endpoint_params(endpoint))
        return endpoint

    async def get_endpoint(self, arn: str) -> Endpoint | None:
        row = await self._read_one(
            "SELECT * FROM endpoints WHERE arn = :arn", {"arn": arn}
        )
        return endpoint_from_row(row) if row else None

    async def get_endpoint_by_token(self, app_arn: str, token: str) -> Endpoint | None:
        row = await self._read_one(
            "SELECT * FROM endpoints WHERE app_arn = :app_arn AND token = :token",
            {"app_arn": app_arn, "token": token},
        )
        return endpoint_from_row(row) if row else None

    async def list_endpoints(
        self, app_arn: str, *, after: int, limit: int
    ) -> Page[Endpoint]:
        rows = await self._read(
            "SELECT * FROM endpoints WHERE app_arn = :app_arn AND seq > :after"
            " ORDER BY seq LIMIT :limit",
            {"app_arn": app_arn, "after": after, "limit": limit + 1},
        )
        return page_of(rows, limit, endpoint_from_row)

    async def update_endpoint(self, endpoint: Endpoint) -> None:
        if not await self._write(_ENDPOINT_UPDATE, endpoint_params(endpoint)):
            raise NotFoundError(endpoint.arn)

    async def disable_endpoint(self, arn: str, *, token: str) -> Endpoint | None:
        rows = await self._write(
            "UPDATE endpoints SET enabled = false"
            " WHERE arn = :arn AND token = :token AND enabled RETURNING *",
            {"arn": arn, "token": token},
        )
        return endpoint_from_row(rows[0]) if rows else None

    async def replace_endpoint_token(
        self, arn: str, *, old_token: str, new_token: str
    ) -> Endpoint | None:
        rows = await self._write(
            "UPDATE endpoints SET token = :new WHERE arn = :arn AND token = :old"
            " RETURNING *",
            {"arn": arn, "old": old_token, "new": new_token},
        )
        return endpoint_from_row(rows[0]) if rows else None

    async def delete_endpoint(self, arn: str) -> bool:
        rows = await self._write(
            "DELETE FROM endpoints WHERE arn = :arn RETURNING seq", {"arn": arn}
        )
        return bool(rows)

    async def get_endpoints(self, arns: Sequence[str]) -> dict[str, Endpoint]:
        if not arns:
            return {}
        rows = await self._read(
            f"SELECT * FROM endpoints WHERE {self._in_list('arn', 'arns')}",
            {"arns": self._list(arns)},
        )
        return {r["arn"]: endpoint_from_row(r) for r in rows}

    async def search_endpoints(
        self,
        app_arn: str,
        *,
        token_prefix: str = "",
        custom_user_data: str | None = None,
        after: str | None = None,
        limit: int,
    ) -> TokenPage:
        # Ranges on `token`, never LIKE: a prefix is `token >= :lo AND token <
        # :hi` on the (app_arn, token) unique index, or on (app_arn,
        # custom_user_data, token) with a CustomUserData. Both dialects compare
        # tokens by code point (SQLite BINARY; PostgreSQL's column is COLLATE
        # "C", migration 0006), as the memory store does.
        where = ["app_arn = :app_arn"]
        params: dict[str, object] = {"app_arn": app_arn, "limit": limit + 1}
        if token_prefix:
            where.append("token >= :lo")
            params["lo"] = token_prefix
            hi = prefix_upper_bound(token_prefix)
            if hi is not None:
                where.append("token < :hi")
                params["hi"] = hi
        if after is not None:
            where.append("token > :after")
            params["after"] = after
        if custom_user_data is not None:
            where.append("custom_user_data = :cud")
            params["cud"] = custom_user_data
        rows = await self._read(
            f"SELECT * FROM endpoints WHERE {' AND '.join(where)}"
            " ORDER BY token LIMIT :limit",
            params,
        )
        chosen = [endpoint_from_row(r) for r in rows[:limit]]
        more = len(rows) > limit and bool(chosen)
        return TokenPage(chosen, chosen[-1].token if more else None)

    # -- topics ----------------------------------------------------------------
    async def insert_topic(
        self, topic: Topic, tags: Mapping[str, str] | None = None
    ) -> Topic:
        rows = [
            {"arn": topic.arn, "key": k, "value": v} for k, v in (tags or {}).items()
        ]

        async def insert(tx: Tx) -> None:
            await tx.execute(_TOPIC_INSERT, topic_params(topic))
            if rows:
                await tx.executemany(_TAG_UPSERT, rows)

        await self._transact(insert)
        return topic

    async def get_topic(self, arn: str) -> Topic | None:
        row = await self._read_one(
            "SELECT * FROM topics WHERE arn = :arn", {"arn": arn}
        )
        return topic_from_row(row) if row else None

    async def list_topics(self, *, after: int, limit: int) -> Page[Topic]:
        rows = await self._read(
            "SELECT * FROM topics WHERE seq > :after ORDER BY seq LIMIT :limit",
            {"after": after, "limit": limit + 1},
        )
        return page_of(rows, limit, topic_from_row)

    async def update_topic(self, topic: Topic) -> None:
        if not await self._write(_TOPIC_UPDATE, topic_params(topic)):
            raise NotFoundError(topic.arn)

    async def delete_topic(self, arn: str) -> None:
        async def delete(tx: Tx) -> None:
            await tx.execute(
                "DELETE FROM subscriptions WHERE topic_arn = :arn", {"arn": arn}
            )
            await tx.execute(
                "DELETE FROM deleted_subscriptions WHERE topic_arn = :arn",
                {"arn": arn},
            )
            await tx.execute("DELETE FROM topics WHERE arn = :arn", {"arn": arn})

        await self._transact(delete)

    # -- subscriptions ---------------------------------------------------------
    async def insert_subscription(self, sub: Subscription) -> Subscription:
        rows = await self._write(_SUB_INSERT, sub_params(sub))
        return dataclasses.replace(sub, seq=rows[0]["seq"])

    async def get_subscription(self, arn: str) -> Subscription | None:
        row = await self._read_one(
            "SELECT * FROM subscriptions WHERE arn = :arn", {"arn": arn}
        )
        return sub_from_row(row) if row else None

    async def find_subscription(
        self, topic_arn: str, endpoint_arn: str
    ) -> Subscription | None:
        row = await self._read_one(
            "SELECT * FROM subscriptions"
            " WHERE topic_arn = :topic_arn AND endpoint_arn = :endpoint_arn",
            {"topic_arn": topic_arn, "endpoint_arn": endpoint_arn},
        )
        return sub_from_row(row) if row else None

    async def list_subscriptions(
        self, *, topic_arn: str | None, after: int, limit: int
    ) -> Page[Subscription]:
        params = {"topic_arn": topic_arn, "after": after, "limit": limit + 1}
        of_topic = "" if topic_arn is None else "topic_arn = :topic_arn AND "
        rows = await self._read(
            f"SELECT * FROM subscriptions WHERE {of_topic}seq > :after"
            " ORDER BY seq LIMIT :limit",
            params,
        )
        return page_of(rows, limit, sub_from_row)

    async def update_subscription(self, sub: Subscription) -> None:
        if not await self._write(_SUB_UPDATE, sub_params(sub)):
            raise NotFoundError(sub.arn)

    async def delete_subscription(
        self, arn: str, *, now: float | None = None, restore_token: str | None = None
    ) -> Subscription | None:
        async def delete(tx: Tx) -> Subscription | None:
            row = await tx.fetchrow(
                "DELETE FROM subscriptions WHERE arn = :arn RETURNING *", {"arn": arn}
            )
            if row is None:
                return None
            sub = sub_from_row(row)
            if now is not None:
                kept = dataclasses.replace(sub, confirm_token=restore_token)
                await tx.execute(
                    _DELETED_INSERT, {**sub_params(kept), "deleted_at": now}
                )
            return sub

        return await self._transact(delete)

    async def get_deleted_subscription(self, arn: str) -> Subscription | None:
        row = await self._read_one(
            "SELECT *, 0 AS seq FROM deleted_subscriptions WHERE arn = :arn",
            {"arn": arn},
        )
        return sub_from_row(row) if row else None

    async def restore_subscription(self, sub: Subscription) -> Subscription:
        async def restore(tx: Tx) -> Subscription:
            await tx.execute(
                "DELETE FROM deleted_subscriptions WHERE arn = :arn", {"arn": sub.arn}
            )
            rows = await tx.fetch(_SUB_INSERT, sub_params(sub))
            return dataclasses.replace(sub, seq=rows[0]["seq"])

        return await self._transact(restore)

    async def subscription_counts(self, topic_arn: str) -> dict[str, int]:
        params = {"topic": topic_arn}
        # Three index-only counts (migration 0007): none reads a subscription row.
        row = await self._read_one(
            "SELECT (SELECT count(*) FROM subscriptions WHERE topic_arn = :topic)"
            " AS total,"
            " (SELECT count(*) FROM subscriptions WHERE topic_arn = :topic"
            "  AND confirm_token IS NOT NULL) AS pending,"
            " (SELECT count(*) FROM deleted_subscriptions WHERE topic_arn = :topic)"
            " AS deleted",
            params,
        )
        assert row is not None
        total, pending = int(row["total"]), int(row["pending"])
        return {
            "confirmed": total - pending,
            "pending": pending,
            "deleted": int(row["deleted"]),
        }

    async def purge_subscriptions(
        self, *, pending_before: float, deleted_before: float
    ) -> int:
        async def purge(tx: Tx) -> int:
            pending = await tx.fetch(
                "DELETE FROM subscriptions WHERE confirm_token IS NOT NULL"
                " AND created_at < :before RETURNING arn",
                {"before": pending_before},
            )
            deleted = await tx.fetch(
                "DELETE FROM deleted_subscriptions WHERE deleted_at < :before"
                " RETURNING arn",
                {"before": deleted_before},
            )
            return len(pending) + len(deleted)

        return await self._transact(purge)

    async def subscriptions_range(
        self, topic_arn: str, *, after_seq: int, upto_seq: int, limit: int
    ) -> list[Subscription]:
        rows = await self._read(
            "SELECT * FROM subscriptions WHERE topic_arn = :topic_arn"
            " AND seq > :after AND seq <= :upto ORDER BY seq LIMIT :limit",
            {
                "topic_arn": topic_arn,
                "after": after_seq,
                "upto": upto_seq,
                "limit": limit,
            },
        )
        return [sub_from_row(r) for r in rows]

    # -- tags ------------------------------------------------------------------
    async def get_tags(self, arn: str) -> dict[str, str]:
        rows = await self._read(
            "SELECT key, value FROM tags WHERE arn = :arn", {"arn": arn}
        )
        return {r["key"]: r["value"] for r in rows}

    async def set_tags(self, arn: str, tags: Mapping[str, str]) -> None:
        if not tags:
            return
        rows = [{"arn": arn, "key": k, "value": v} for k, v in tags.items()]
        await self._transact(lambda tx: tx.executemany(_TAG_UPSERT, rows))

    async def remove_tags(self, arn: str, keys: Sequence[str]) -> None:
        if not keys:
            return
        await self._write(
            f"DELETE FROM tags WHERE arn = :arn AND {self._in_list('key', 'keys')}",
            {"arn": arn, "keys": self._list(keys)},
        )
