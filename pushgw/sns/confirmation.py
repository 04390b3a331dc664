"""
Confirmation tokens and the control documents of HTTP/HTTPS subscriptions.

A `Token` (SubscriptionConfirmation, UnsubscribeConfirmation) is the
subscription's id (its UUID as 32 hex digits) followed by a 64-hex-digit secret:
ConfirmSubscription finds the subscription from the token alone, without a scan
of the topic, and compares the secret in constant time. SNS's own tokens are
opaque hex strings too; clients never parse them.

The secret of a pending subscription is stored with it (`confirm_token`) and
expires with the token, three days after Subscribe (SNS: "Confirmation tokens
are valid for three days"). An UnsubscribeConfirmation carries a fresh secret,
kept with the deletion record, so its SubscribeURL can restore the subscription.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import uuid

from pushgw.arn import new_id
from pushgw.model import Message, Subscription
from pushgw.sns.http_messages import (
    SUBSCRIPTION_CONFIRMATION,
    subscription_confirmation_text,
    unsubscribe_confirmation_text,
)
from pushgw.store.base import NewJob

TOKEN_TTL_S = 3 * 24 * 3600.0

_TOKEN = re.compile(r"^([0-9a-f]{32})([0-9a-f]{64})$")


def new_secret() -> str:
    return secrets.token_hex(32)


def token_for(sub: Subscription) -> str:
    """The Token of `sub`'s current confirmation secret."""
    assert sub.confirm_token is not None
    return uuid.UUID(sub.arn.rsplit(":", 1)[1]).hex + sub.confirm_token


def parse_token(token: str, topic_arn: str) -> tuple[str, str] | None:
    """(subscription ARN, secret) of a Token for `topic_arn`, or None."""
    match = _TOKEN.match(token)
    if match is None:
        return None
    return f"{topic_arn}:{uuid.UUID(hex=match[1])}", match[2]


def same_secret(stored: str, given: str) -> bool:
    return hmac.compare_digest(stored.encode(), given.encode())


def expired(sub: Subscription, *, now: float) -> bool:
    return now - sub.created_at > TOKEN_TTL_S


def control_job(sub: Subscription, kind: str, *, now: float) -> tuple[Message, NewJob]:
    """
    The message and HTTP job of a SubscriptionConfirmation or
    UnsubscribeConfirmation. The job's payload holds what the document needs
    even once the subscription is gone (an unsubscribe): its URL, protocol and
    token; the message holds its MessageId, text and Timestamp.
    """
    text = (
        subscription_confirmation_text(sub.topic_arn)
        if kind == SUBSCRIPTION_CONFIRMATION
        else unsubscribe_confirmation_text(sub.arn)
    )
    message = Message(id=new_id(), body=text, topic_arn=sub.topic_arn, created_at=now)
    payload = {
        "type": kind,
        "url": sub.endpoint_arn,
        "protocol": sub.protocol,
        "token": token_for(sub),
    }
    job = NewJob(
        kind="http",
        subscription_arn=sub.arn,
        payload=json.dumps(payload, separators=(",", ":")),
        next_attempt_at=now,
    )
    return message, job
