"""
Application events and delivery-status records (SNS_API §8.4).

Events are published to the topic named in the application attribute
(`EventEndpointCreated`, …) as an ordinary topic message, so they are as durable
as any publish. Delivery-status records are log lines in SNS's JSON shape, and
messages to `delivery.status_topic_arn` when one is configured.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

from pushgw.arn import new_id
from pushgw.log import get_logger
from pushgw.model import Endpoint, Message, PlatformApplication
from pushgw.providers.base import SendResult, redact
from pushgw.store.base import NewJob, Store

log = get_logger("pushgw.delivery")


def iso(ts: float) -> str:
    moment = dt.datetime.fromtimestamp(ts, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


async def publish_event(
    store: Store,
    app: PlatformApplication,
    attribute: str,
    payload: Mapping[str, Any],
    *,
    now: float,
) -> Message | None:
    """Publish `payload` to the topic in `app.attributes[attribute]`, if set."""
    topic_arn = app.attributes.get(attribute)
    if not topic_arn:
        return None
    return await publish_to_topic(store, topic_arn, payload, now=now)


async def publish_to_topic(
    store: Store, topic_arn: str, payload: Mapping[str, Any], *, now: float
) -> Message | None:
    """Publish `payload` as JSON to `topic_arn`, if the topic exists: as
    durable as any publish, and fanned out to every kind of subscriber."""
    if await store.get_topic(topic_arn) is None:
        return None
    message = Message(
        id=new_id(),
        body=json.dumps(payload, separators=(",", ":")),
        topic_arn=topic_arn,
        created_at=now,
    )
    await store.enqueue(message, [NewJob(kind="topic", topic_arn=topic_arn)])
    return message


def endpoint_event(
    app: PlatformApplication, endpoint: Endpoint, attribute: str, *, now: float
) -> dict[str, Any]:
    """The JSON of EventEndpointCreated/Updated/Deleted (token not included:
    events travel to devices like any topic message)."""
    payload: dict[str, Any] = {
        "EventType": attribute.removeprefix("Event"),
        "EndpointArn": endpoint.arn,
        "Resource": app.arn,
        "Service": "SNS",
        "Time": iso(now),
        "Type": "Notification",
    }
    if attribute != "EventEndpointDeleted":
        payload["Attributes"] = endpoint.public_attributes() | {"Token": "REDACTED"}
    return payload


def delivery_failure_event(
    app: PlatformApplication,
    endpoint_arn: str,
    message: Message,
    *,
    failure_type: str,
    failure_message: str,
    attempts: int,
    now: float,
) -> dict[str, Any]:
    """The `EventDeliveryFailure` JSON (field names as production consumers use)."""
    return {
        "DeliveryAttempts": attempts,
        "EndpointArn": endpoint_arn,
        "EventType": "DeliveryFailure",
        "FailureMessage": failure_message,
        "FailureType": failure_type,
        "MessageId": message.id,
        "Resource": app.arn,
        "Service": "SNS",
        "Time": iso(now),
    }


def delivery_status(
    *,
    success: bool,
    message: Message,
    endpoint: Endpoint,
    result: SendResult | None,
    attempts: int,
    now: float,
    reason: str = "",
) -> dict[str, Any]:
    """One SNS-shaped delivery-status record (sns-msg-status), token redacted."""
    return {
        "notification": {
            "messageMD5Sum": hashlib.md5(message.body.encode()).hexdigest(),
            "messageId": message.id,
            "timestamp": iso(message.created_at),
        },
        "delivery": {
            "deliveryId": str(uuid.uuid4()),
            "destination": endpoint.arn,
            "providerResponse": result.reason if result else reason,
            "dwellTimeMs": int((now - message.created_at) * 1000),
            "attempts": attempts,
            "device": redact(endpoint.token),
            "statusCode": (result.status if result and result.status else 0),
        },
        "status": "SUCCESS" if success else "FAILURE",
    }


def log_delivery_status(record: Mapping[str, Any]) -> None:
    """At debug: the ledger and `status_topic_arn` keep these records; failures
    are logged (at warning, summarised) by the dispatcher."""
    log.debug(
        "delivery_status",
        status=record["status"],
        notification=record["notification"],
        delivery=record["delivery"],
    )
