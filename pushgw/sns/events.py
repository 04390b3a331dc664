"""
Application events and delivery-status records (SNS_API §8.4).

Events are published to the topic named in the application attribute
(`EventEndpointCreated`, …) as an ordinary topic message, so they are as durable
as any publish. Delivery-status records are in the shape of SNS's CloudWatch
delivery-status logs for platform endpoints (developer guide, "Amazon SNS mobile
app attributes", sns-msg-status) and are published to
`delivery.status_topic_arn` when one is configured; the debug log line of each
carries the token redacted.
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
    return _utc(ts, "%Y-%m-%dT%H:%M:%S.") + "Z"


def status_time(ts: float) -> str:
    """A delivery-status record's timestamp as SNS writes it: UTC, a space,
    milliseconds, no zone (`2016-06-28 20:24:29.787`)."""
    return _utc(ts, "%Y-%m-%d %H:%M:%S.")


def _utc(ts: float, layout: str) -> str:
    """`ts` in UTC as `layout`, then its milliseconds (three digits)."""
    moment = dt.datetime.fromtimestamp(ts, tz=dt.UTC)
    return moment.strftime(layout) + f"{moment.microsecond // 1000:03d}"


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
    """
    One delivery-status record, with SNS's members: `notification`
    (`messageMD5Sum`, `messageId`, `topicArn` when the message was published to
    a topic, `timestamp` of the publish), `delivery` (`deliveryId`,
    `destination` the endpoint ARN, `providerResponse`, `dwellTimeMs`,
    `attempts`, `token`, `statusCode`: the provider's HTTP status, 0 if none)
    and `status` SUCCESS or FAILURE.

    `token` is the endpoint's device token, as in SNS's records: the record
    goes to the topic the operator named for it (`delivery.status_topic_arn`),
    whose subscribers are theirs to choose. Log lines never carry it
    (`log_delivery_status`).
    """
    notification: dict[str, Any] = {
        "messageMD5Sum": hashlib.md5(message.body.encode()).hexdigest(),
        "messageId": message.id,
    }
    if message.topic_arn:
        notification["topicArn"] = message.topic_arn
    notification["timestamp"] = status_time(message.created_at)
    return {
        "notification": notification,
        "delivery": {
            "deliveryId": str(uuid.uuid4()),
            "destination": endpoint.arn,
            "providerResponse": result.reason if result else reason,
            "dwellTimeMs": int((now - message.created_at) * 1000),
            "attempts": attempts,
            "token": endpoint.token,
            "statusCode": (result.status if result and result.status else 0),
        },
        "status": "SUCCESS" if success else "FAILURE",
    }


def log_delivery_status(record: Mapping[str, Any]) -> None:
    """At debug, the token redacted (tokens never reach a log line):
    `status_topic_arn` receives the records whole; failures are logged (at
    warning, summarised) by the dispatcher."""
    delivery = dict(record["delivery"])
    delivery["token"] = redact(delivery["token"])
    log.debug(
        "delivery_status",
        status=record["status"],
        notification=record["notification"],
        delivery=delivery,
    )
