"""
Row conversions shared by the SQL backends (sqlite.py, postgres.py): both
drivers' rows are indexable by column name.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from pushgw.model import (
    DeliveryJob,
    Endpoint,
    Message,
    MessageAttribute,
    Platform,
    PlatformApplication,
    Subscription,
    Topic,
)
from pushgw.store.base import Page

T = TypeVar("T")
# Largest `IN (...)` list per statement (SQLite allows 32766 parameters).
IN_CHUNK = 500

# When the next job becomes claimable (the same SQL on both backends): unleased
# jobs fall due at next_attempt_at; leased ones when their lease expires (a dead
# worker's jobs).
NEXT_DUE_AT = (
    "SELECT min(due) AS due FROM ("
    " SELECT min(next_attempt_at) AS due FROM jobs WHERE lease_owner IS NULL"
    " UNION ALL"
    " SELECT min(lease_expires_at) FROM jobs WHERE lease_owner IS NOT NULL"
    ") AS soonest"
)


class Row(Protocol):
    def __getitem__(self, key: str) -> Any: ...


def dump_attrs(attrs: Mapping[str, str]) -> str:
    return json.dumps(dict(attrs), separators=(",", ":"))


def dump_message_attrs(attrs: Mapping[str, MessageAttribute]) -> str:
    return json.dumps(
        {
            name: {
                "data_type": a.data_type,
                "string_value": a.string_value,
                "binary_value": (
                    base64.b64encode(a.binary_value).decode()
                    if a.binary_value is not None
                    else None
                ),
            }
            for name, a in attrs.items()
        },
        separators=(",", ":"),
    )


def load_message_attrs(text: str) -> dict[str, MessageAttribute]:
    return {
        name: MessageAttribute(
            data_type=a["data_type"],
            string_value=a["string_value"],
            binary_value=(
                base64.b64decode(a["binary_value"])
                if a["binary_value"] is not None
                else None
            ),
        )
        for name, a in json.loads(text).items()
    }


def app_params(app: PlatformApplication) -> tuple[Any, ...]:
    # Credentials are stored as given for now; encryption at rest is layered on
    # top by the lead (DESIGN.md "Security").
    return (
        app.arn,
        app.name,
        app.platform.value,
        app.principal,
        app.credential,
        app.enabled,
        dump_attrs(app.attributes),
        app.created_at,
    )


def app_from_row(r: Row) -> PlatformApplication:
    return PlatformApplication(
        arn=r["arn"],
        name=r["name"],
        platform=Platform(r["platform"]),
        principal=r["principal"],
        credential=r["credential"],
        enabled=bool(r["enabled"]),
        attributes=json.loads(r["attributes"]),
        created_at=r["created_at"],
    )


def endpoint_params(e: Endpoint) -> tuple[Any, ...]:
    return (
        e.arn,
        e.app_arn,
        e.token,
        e.enabled,
        e.custom_user_data,
        dump_attrs(e.attributes),
        e.created_at,
    )


def endpoint_from_row(r: Row) -> Endpoint:
    return Endpoint(
        arn=r["arn"],
        app_arn=r["app_arn"],
        token=r["token"],
        enabled=bool(r["enabled"]),
        custom_user_data=r["custom_user_data"],
        attributes=json.loads(r["attributes"]),
        created_at=r["created_at"],
    )


def topic_from_row(r: Row) -> Topic:
    return Topic(
        arn=r["arn"],
        name=r["name"],
        attributes=json.loads(r["attributes"]),
        created_at=r["created_at"],
    )


def sub_params(s: Subscription) -> tuple[Any, ...]:
    return (
        s.arn,
        s.topic_arn,
        s.endpoint_arn,
        s.protocol,
        dump_attrs(s.attributes),
        s.created_at,
    )


def sub_from_row(r: Row) -> Subscription:
    return Subscription(
        arn=r["arn"],
        topic_arn=r["topic_arn"],
        endpoint_arn=r["endpoint_arn"],
        protocol=r["protocol"],
        attributes=json.loads(r["attributes"]),
        created_at=r["created_at"],
        seq=r["seq"],
    )


def message_params(m: Message, pending_jobs: int) -> tuple[Any, ...]:
    return (
        m.id,
        m.body,
        m.structure,
        m.subject,
        dump_message_attrs(m.attributes),
        m.topic_arn,
        m.target_arn,
        m.created_at,
        m.expires_at,
        pending_jobs,
    )


def message_from_row(r: Row) -> Message:
    return Message(
        id=r["id"],
        body=r["body"],
        structure=r["structure"],
        subject=r["subject"],
        attributes=load_message_attrs(r["attributes"]),
        topic_arn=r["topic_arn"],
        target_arn=r["target_arn"],
        created_at=r["created_at"],
        expires_at=r["expires_at"],
    )


def parse_done(text: str | None) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",")) if text else ()


def format_done(done: Sequence[int]) -> str:
    return ",".join(str(seq) for seq in sorted(done))


def job_from_row(r: Row) -> DeliveryJob:
    return DeliveryJob(
        id=r["id"],
        message_id=r["message_id"],
        kind=r["kind"],
        endpoint_arn=r["endpoint_arn"],
        topic_arn=r["topic_arn"],
        cursor=r["cursor"],
        range_hi=r["range_hi"],
        attempts=r["attempts"],
        next_attempt_at=r["next_attempt_at"],
        lease_owner=r["lease_owner"],
        lease_expires_at=r["lease_expires_at"],
        created_at=r["created_at"],
        last_error=r["last_error"],
        done=parse_done(r["done_seqs"]),
    )


def page_of(rows: Sequence[Row], limit: int, convert: Callable[[Row], T]) -> Page[T]:
    """A keyset page from up to `limit + 1` rows ordered by `seq`."""
    chosen = rows[:limit]
    more = len(rows) > limit and bool(chosen)
    return Page(
        items=[convert(r) for r in chosen],
        next_after=chosen[-1]["seq"] if more else None,
    )


def sorted_jobs(rows: Iterable[Row]) -> list[DeliveryJob]:
    """Jobs oldest due first (RETURNING gives no order)."""
    jobs = [job_from_row(r) for r in rows]
    jobs.sort(key=lambda j: (j.next_attempt_at, j.id))
    return jobs


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def job_counts_of(total: int, leased: int, due: int) -> dict[str, int]:
    return {
        "due": due,
        "leased": leased,
        "scheduled": total - due - leased,
        "total": total,
    }
