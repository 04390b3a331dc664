"""
Row conversions for the SQL store (store/sql/): model objects to named statement
parameters (one key a column) and rows back to model objects. Both drivers'
rows are indexable by column name.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
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
    lane_of,
)
from pushgw.store.base import NewJob, Page

T = TypeVar("T")
# Named statement parameters: a column (or placeholder) name -> its value.
Params = Mapping[str, Any]

# Columns written from the model, in table order (`seq` is the database's).
APP_COLUMNS = (
    "arn",
    "name",
    "platform",
    "principal",
    "credential",
    "enabled",
    "attributes",
    "created_at",
)
ENDPOINT_COLUMNS = (
    "arn",
    "app_arn",
    "token",
    "enabled",
    "custom_user_data",
    "attributes",
    "created_at",
)
TOPIC_COLUMNS = ("arn", "name", "attributes", "created_at")
SUBSCRIPTION_COLUMNS = (
    "arn",
    "topic_arn",
    "endpoint_arn",
    "protocol",
    "attributes",
    "created_at",
    "confirm_token",
)
MESSAGE_COLUMNS = (
    "id",
    "body",
    "structure",
    "subject",
    "attributes",
    "topic_arn",
    "target_arn",
    "created_at",
    "expires_at",
    "pending_jobs",
)
JOB_COLUMNS = (
    "message_id",
    "kind",
    "endpoint_arn",
    "topic_arn",
    "cursor",
    "range_hi",
    "attempts",
    "next_attempt_at",
    "created_at",
    "last_error",
    "lane",
    "subscription_arn",
    "payload",
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


def params_of(obj: object, columns: Sequence[str], **converted: Any) -> dict[str, Any]:
    """
    A model object's row as statement parameters: each column from the
    attribute of that name, or from `converted` (JSON text, enum values, and
    columns the model does not have).
    """
    return {c: converted[c] if c in converted else getattr(obj, c) for c in columns}


def app_params(app: PlatformApplication) -> dict[str, Any]:
    # Credentials arrive sealed (store/sealing.py) when a key is configured.
    return params_of(
        app,
        APP_COLUMNS,
        platform=app.platform.value,
        attributes=dump_attrs(app.attributes),
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


def endpoint_params(e: Endpoint) -> dict[str, Any]:
    return params_of(e, ENDPOINT_COLUMNS, attributes=dump_attrs(e.attributes))


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


def topic_params(t: Topic) -> dict[str, Any]:
    return params_of(t, TOPIC_COLUMNS, attributes=dump_attrs(t.attributes))


def topic_from_row(r: Row) -> Topic:
    return Topic(
        arn=r["arn"],
        name=r["name"],
        attributes=json.loads(r["attributes"]),
        created_at=r["created_at"],
    )


def sub_params(s: Subscription) -> dict[str, Any]:
    return params_of(s, SUBSCRIPTION_COLUMNS, attributes=dump_attrs(s.attributes))


def sub_from_row(r: Row) -> Subscription:
    return Subscription(
        arn=r["arn"],
        topic_arn=r["topic_arn"],
        endpoint_arn=r["endpoint_arn"],
        protocol=r["protocol"],
        attributes=json.loads(r["attributes"]),
        created_at=r["created_at"],
        seq=r["seq"],
        confirm_token=r["confirm_token"],
    )


def message_params(m: Message, pending_jobs: int) -> dict[str, Any]:
    return params_of(
        m,
        MESSAGE_COLUMNS,
        attributes=dump_message_attrs(m.attributes),
        pending_jobs=pending_jobs,
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


def job_params(
    new: NewJob,
    *,
    message_id: str,
    created_at: float,
    range_hi: int | None,
    cursor: int = 0,
) -> dict[str, Any]:
    """A new job's row; topic jobs cover subscriptions (cursor, range_hi]."""
    return params_of(
        new,
        JOB_COLUMNS,
        message_id=message_id,
        created_at=created_at,
        range_hi=range_hi,
        cursor=cursor,
        lane=lane_of(new.kind),
    )


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
        subscription_arn=r["subscription_arn"],
        payload=r["payload"],
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


def job_counts_of(total: int, leased: int, due: int) -> dict[str, int]:
    return {
        "due": due,
        "leased": leased,
        "scheduled": total - due - leased,
        "total": total,
    }
