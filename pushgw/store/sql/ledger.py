"""
The SQL of the delivery ledger: message counters, the per-minute rollup,
delivery records, dead letters and their replay (store/ledger_model.py).

A flush is one transaction of batched statements (executemany), its rows in
key order so two nodes flushing together lock shared counter rows in the same
order. Counters are added with upserts (`count = count + excluded.count`).
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

from pushgw.model import Message
from pushgw.store.base import NewJob, Page, replay_job
from pushgw.store.ledger_model import (
    DeliveryFilter,
    DeliveryRecord,
    LedgerBatch,
    LedgerRetention,
    MessageLedger,
    OutcomeCount,
    ReplayResult,
    StatsRow,
    replayed_message,
)
from pushgw.store.rows import (
    MESSAGE_COLUMNS,
    Row,
    message_from_row,
    message_params,
    params_of,
)
from pushgw.store.sql.core import SqlBase, Tx, insert_sql
from pushgw.store.sql.queue import _insert_jobs

DELIVERY_COLUMNS = (
    "message_id",
    "endpoint_arn",
    "app_arn",
    "platform",
    "status",
    "failure_type",
    "reason",
    "provider_status",
    "attempts",
    "finished_at",
    "dead_letter",
)
DEAD_MESSAGE_COLUMNS = tuple(c for c in MESSAGE_COLUMNS if c != "pending_jobs")

# The earlier (op "<") or later (">") of the stored and the new value of {c}
# (a NULL, no attempt yet, gives way to a time).
_EXTREME = (
    "CASE WHEN ledger_messages.{c} IS NULL OR excluded.{c} {op} ledger_messages.{c}"
    " THEN excluded.{c} ELSE ledger_messages.{c} END"
)
_MESSAGE_TIMES = {
    "first_seen_at": "<",
    "last_seen_at": ">",
    "first_attempt_at": "<",
    "last_attempt_at": ">",
}
_MESSAGE_UPSERT = (
    insert_sql(
        "ledger_messages",
        ("id", "topic_arn", "target_arn", "created_at", *_MESSAGE_TIMES),
    )
    + " ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(
        f"{c} = {_EXTREME.format(c=c, op=op)}" for c, op in _MESSAGE_TIMES.items()
    )
)
_COUNT_UPSERT = (
    "INSERT INTO ledger_counts (message_id, platform, status, failure_type, count)"
    " VALUES (:message_id, :platform, :status, :failure_type, :count)"
    " ON CONFLICT (message_id, platform, status, failure_type)"
    " DO UPDATE SET count = ledger_counts.count + excluded.count"
)
_ROLLUP_UPSERT = (
    "INSERT INTO ledger_rollup (bucket, platform, status, count)"
    " VALUES (:bucket, :platform, :status, :count)"
    " ON CONFLICT (bucket, platform, status)"
    " DO UPDATE SET count = ledger_rollup.count + excluded.count"
)
_DELIVERY_INSERT = insert_sql("deliveries", DELIVERY_COLUMNS)
_DEAD_MESSAGE_INSERT = (
    insert_sql("dead_letter_messages", DEAD_MESSAGE_COLUMNS)
    + " ON CONFLICT (id) DO NOTHING"
)
# A replayed message: stored anew, or its jobs added to the row still queued.
# A row still there but already expired (its last job done, the row not yet
# gone) takes the replay's times too, as if stored anew: else the replay
# would expire at once, or not, by the timing of the cleanup.
_RENEW = (
    "messages.expires_at IS NOT NULL AND messages.expires_at <= excluded.created_at"
)
_MESSAGE_UPSERT_JOBS = (
    insert_sql("messages", MESSAGE_COLUMNS) + " ON CONFLICT (id) DO UPDATE"
    " SET pending_jobs = messages.pending_jobs + excluded.pending_jobs,"
    f" created_at = CASE WHEN {_RENEW} THEN excluded.created_at"
    " ELSE messages.created_at END,"
    f" expires_at = CASE WHEN {_RENEW} THEN excluded.expires_at"
    " ELSE messages.expires_at END RETURNING *"
)
# A dead letter can be replayed while its message is kept (`c`: the candidate).
_REPLAYABLE = (
    "c.replayed_at IS NULL AND c.dead_letter = :dead AND EXISTS"
    " (SELECT 1 FROM dead_letter_messages d WHERE d.id = c.message_id)"
)
_STATS = (
    "SELECT (bucket / :size) * :size AS start, platform, status, sum(count) AS n"
    " FROM ledger_rollup WHERE bucket >= :since"
    " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
)
# Records past a cap: older than the (cap + 1)-th newest of their kind.
_PAST_CAP = (
    "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries"
    " WHERE dead_letter = :dead AND id <= (SELECT id FROM deliveries"
    "  WHERE dead_letter = :dead ORDER BY id DESC LIMIT 1 OFFSET :keep)"
    " ORDER BY id LIMIT :limit) RETURNING message_id"
)
# Message counters past the cap: least recently seen first, id breaking ties
# (the index ledger_messages_seen), older than the (cap + 1)-th most recent.
_MESSAGES_PAST_CAP = (
    "DELETE FROM ledger_messages WHERE id IN (SELECT l.id FROM ledger_messages l"
    " WHERE (l.last_seen_at, l.id) <= (SELECT c.last_seen_at, c.id"
    "  FROM ledger_messages c ORDER BY c.last_seen_at DESC, c.id DESC"
    "  LIMIT 1 OFFSET :keep)"
    " ORDER BY l.last_seen_at, l.id LIMIT :limit) RETURNING id"
)
# Checked again on the row: a message counted anew meanwhile stays.
_MESSAGES_TOO_OLD = (
    "DELETE FROM ledger_messages WHERE id IN (SELECT id FROM"
    " ledger_messages WHERE last_seen_at < :before"
    " ORDER BY last_seen_at, id LIMIT :limit)"
    " AND last_seen_at < :before RETURNING id"
)
_TOO_OLD = (
    "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries"
    " WHERE finished_at < :before ORDER BY id LIMIT :limit) RETURNING message_id"
)


def _none_if_empty(value: str) -> str | None:
    return value or None


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def delivery_from_row(r: Row) -> DeliveryRecord:
    return DeliveryRecord(
        id=r["id"],
        message_id=r["message_id"],
        endpoint_arn=r["endpoint_arn"],
        app_arn=r["app_arn"],
        platform=r["platform"],
        status=r["status"],
        failure_type=r["failure_type"],
        reason=r["reason"],
        provider_status=r["provider_status"],
        attempts=r["attempts"],
        at=r["finished_at"],
        replayed_at=r["replayed_at"],
    )


def _delivery_params(d: DeliveryRecord) -> dict[str, Any]:
    return params_of(d, DELIVERY_COLUMNS, finished_at=float(d.at))


def _dead_message_params(m: Message) -> dict[str, Any]:
    params = message_params(m, 0)
    del params["pending_jobs"]
    return params


class LedgerSql(SqlBase):
    """Store methods of the delivery ledger."""

    async def record_ledger(self, batch: LedgerBatch) -> None:
        if not batch and not batch.dead_messages:
            return
        messages = sorted(batch.messages, key=lambda m: m.message_id)
        counts = sorted(
            (
                {
                    "message_id": m.message_id,
                    "platform": platform,
                    "status": status,
                    "failure_type": failure or "",
                    "count": n,
                }
                for m in messages
                for (platform, status, failure), n in m.counts.items()
            ),
            key=lambda p: (
                p["message_id"],
                p["platform"],
                p["status"],
                p["failure_type"],
            ),
        )
        rollup = [
            {"bucket": bucket, "platform": platform, "status": status, "count": n}
            for (bucket, platform, status), n in sorted(batch.rollup.items())
        ]
        dead = sorted(
            {m.id: m for m in batch.dead_messages}.values(), key=lambda m: m.id
        )

        async def write(tx: Tx) -> None:
            if messages:
                await tx.executemany(
                    _MESSAGE_UPSERT,
                    [
                        {
                            "id": m.message_id,
                            "topic_arn": m.topic_arn,
                            "target_arn": m.target_arn,
                            "created_at": float(m.created_at),
                            "first_seen_at": float(m.first_at),
                            "last_seen_at": float(m.last_at),
                            "first_attempt_at": _float(m.first_attempt_at),
                            "last_attempt_at": _float(m.last_attempt_at),
                        }
                        for m in messages
                    ],
                )
            if counts:
                await tx.executemany(_COUNT_UPSERT, counts)
            if rollup:
                await tx.executemany(_ROLLUP_UPSERT, rollup)
            if dead:
                await tx.executemany(
                    _DEAD_MESSAGE_INSERT, [_dead_message_params(m) for m in dead]
                )
            if batch.deliveries:
                await tx.executemany(
                    _DELIVERY_INSERT, [_delivery_params(d) for d in batch.deliveries]
                )

        await self._transact(write)

    async def get_message_ledger(self, message_id: str) -> MessageLedger | None:
        params = {"id": message_id}
        row = await self._read_one(
            "SELECT l.*, (SELECT m.pending_jobs FROM messages m WHERE m.id = l.id)"
            " AS pending_jobs FROM ledger_messages l WHERE l.id = :id",
            params,
        )
        if row is None:
            queued = await self._read_one(
                "SELECT topic_arn, target_arn, created_at, pending_jobs"
                " FROM messages WHERE id = :id",
                params,
            )
            if queued is None:
                return None
            return MessageLedger(
                message_id=message_id,
                topic_arn=queued["topic_arn"],
                target_arn=queued["target_arn"],
                created_at=queued["created_at"],
                first_attempt_at=None,
                last_attempt_at=None,
                pending_jobs=int(queued["pending_jobs"]),
                counts=[],
            )
        counts = await self._read(
            "SELECT platform, status, failure_type, count FROM ledger_counts"
            " WHERE message_id = :id ORDER BY platform, status, failure_type",
            params,
        )
        return MessageLedger(
            message_id=message_id,
            topic_arn=row["topic_arn"],
            target_arn=row["target_arn"],
            created_at=row["created_at"],
            first_attempt_at=row["first_attempt_at"],
            last_attempt_at=row["last_attempt_at"],
            pending_jobs=int(row["pending_jobs"] or 0),
            counts=[
                OutcomeCount(
                    platform=c["platform"],
                    status=c["status"],
                    failure_type=_none_if_empty(c["failure_type"]),
                    count=int(c["count"]),
                )
                for c in counts
            ],
        )

    def _filter_sql(self, where: DeliveryFilter, params: dict[str, Any]) -> list[str]:
        """The conditions of `where` on the records (`c`), their values in params."""
        conditions = []
        for column, name, value in (
            ("status", "status", where.status),
            ("app_arn", "app", where.app_arn),
            ("endpoint_arn", "endpoint", where.endpoint_arn),
            ("message_id", "message", where.message_id),
            ("failure_type", "reason", where.failure_type),
            ("dead_letter", "dead_letter", where.dead_letter),
        ):
            if value is not None:
                conditions.append(f"c.{column} = :{name}")
                params[name] = value
        if where.replayed is not None:
            not_ = "NOT " if where.replayed else ""
            conditions.append(f"c.replayed_at IS {not_}NULL")
        if where.since is not None:
            conditions.append("c.finished_at >= :since")
            params["since"] = float(where.since)
        if where.ids is not None:
            conditions.append(self._in_list("c.id", "ids"))
            params["ids"] = self._list([int(i) for i in where.ids])
        return conditions

    async def list_deliveries(
        self, where: DeliveryFilter, *, before: int | None, limit: int
    ) -> Page[DeliveryRecord]:
        params: dict[str, Any] = {"limit": limit + 1}
        conditions = self._filter_sql(where, params)
        if before is not None:
            conditions.append("c.id < :before")
            params["before"] = int(before)
        rows = await self._read(
            "SELECT * FROM deliveries c"
            + (" WHERE " + " AND ".join(conditions) if conditions else "")
            + " ORDER BY c.id DESC LIMIT :limit",
            params,
        )
        chosen = rows[:limit]
        more = len(rows) > limit and bool(chosen)
        return Page(
            items=[delivery_from_row(r) for r in chosen],
            next_after=chosen[-1]["id"] if more else None,
        )

    async def delivery_stats(self, *, since: float, bucket_s: int) -> list[StatsRow]:
        start = int(since // bucket_s) * bucket_s
        rows = await self._read(_STATS, {"size": int(bucket_s), "since": start})
        return [
            StatsRow(
                start=int(r["start"]),
                platform=r["platform"],
                status=r["status"],
                count=int(r["n"]),
            )
            for r in rows
        ]

    async def replay_dead_letters(
        self, where: DeliveryFilter, *, limit: int, now: float
    ) -> ReplayResult:
        params: dict[str, Any] = {"now": float(now), "limit": limit, "dead": True}
        selected = " AND ".join([*self._filter_sql(where, params), _REPLAYABLE])
        in_list, as_list = self._in_list, self._list

        async def replay(tx: Tx) -> ReplayResult:
            # The outer `replayed_at IS NULL` is checked again on the locked row:
            # two replays at once never queue one dead letter twice.
            rows = await tx.fetch(
                "UPDATE deliveries SET replayed_at = :now WHERE id IN"
                f" (SELECT c.id FROM deliveries c WHERE {selected}"
                " ORDER BY c.id LIMIT :limit)"
                " AND replayed_at IS NULL RETURNING *",
                params,
            )
            jobs: dict[str, list[NewJob]] = collections.defaultdict(list)
            for r in sorted(rows, key=lambda r: int(r["id"])):
                jobs[r["message_id"]].append(replay_job(delivery_from_row(r), now))
            kept = await tx.fetch(
                f"SELECT * FROM dead_letter_messages WHERE {in_list('id', 'ids')}",
                {"ids": as_list(list(jobs))},
            )
            copies = {r["id"]: message_from_row(r) for r in kept}
            messages = []
            for message_id, new in jobs.items():
                # Stored anew (created now), or, still queued, the row takes the jobs.
                row = await tx.fetchrow(
                    _MESSAGE_UPSERT_JOBS,
                    message_params(replayed_message(copies[message_id], now), len(new)),
                )
                assert row is not None
                message = message_from_row(row)
                await _insert_jobs(tx, message_id, message.created_at, new)
                messages.append(message)
            left = await tx.fetchrow(
                f"SELECT count(*) AS n FROM deliveries c WHERE {selected}", params
            )
            assert left is not None
            return ReplayResult(
                replayed=len(rows), remaining=int(left["n"]), messages=messages
            )

        return await self._transact(replay)

    async def prune_ledger(self, retention: LedgerRetention, *, limit: int) -> int:
        in_list, as_list = self._in_list, self._list

        async def prune(tx: Tx) -> int:
            gone: list[Row] = list(
                await tx.fetch(
                    _TOO_OLD, {"before": float(retention.before), "limit": limit}
                )
            )
            for dead, keep in (
                (False, retention.max_deliveries),
                (True, retention.max_dead_letters),
            ):
                gone += await tx.fetch(
                    _PAST_CAP, {"dead": dead, "keep": int(keep), "limit": limit}
                )
            touched = sorted({r["message_id"] for r in gone})
            unneeded: Sequence[Row] = []
            if touched:
                unneeded = await tx.fetch(
                    "DELETE FROM dead_letter_messages"
                    f" WHERE {in_list('id', 'ids')} AND NOT EXISTS"
                    " (SELECT 1 FROM deliveries c WHERE c.message_id ="
                    " dead_letter_messages.id AND c.dead_letter = :dead) RETURNING id",
                    {"ids": as_list(touched), "dead": True},
                )
            old = list(
                await tx.fetch(
                    _MESSAGES_TOO_OLD,
                    {"before": float(retention.before), "limit": limit},
                )
            )
            old += await tx.fetch(
                _MESSAGES_PAST_CAP,
                {"keep": int(retention.max_messages), "limit": limit},
            )
            if old:
                await tx.execute(
                    f"DELETE FROM ledger_counts WHERE {in_list('message_id', 'ids')}",
                    {"ids": as_list([r["id"] for r in old])},
                )
            buckets = await tx.fetch(
                "DELETE FROM ledger_rollup WHERE bucket < :before RETURNING bucket",
                {"before": int(retention.rollup_before)},
            )
            return len(gone) + len(unneeded) + len(old) + len(buckets)

        return await self._transact(prune)
