"""
Domain model: platform applications, endpoints, topics, subscriptions, messages
and delivery jobs.

Objects are frozen; the service layer builds new ones with `dataclasses.replace`.
Timestamps are float seconds since the epoch (UTC).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal


class Platform(enum.StrEnum):
    """SNS platform names: the `Platform` parameter, ARN segment and JSON key."""

    ADM = "ADM"
    APNS = "APNS"
    APNS_SANDBOX = "APNS_SANDBOX"
    APNS_VOIP = "APNS_VOIP"
    APNS_VOIP_SANDBOX = "APNS_VOIP_SANDBOX"
    MACOS = "MACOS"
    MACOS_SANDBOX = "MACOS_SANDBOX"
    GCM = "GCM"
    BAIDU = "BAIDU"
    MPNS = "MPNS"
    WNS = "WNS"

    @property
    def is_apple(self) -> bool:
        return self in APPLE_PLATFORMS

    @property
    def is_sandbox(self) -> bool:
        return self.value.endswith("_SANDBOX")


APPLE_PLATFORMS = frozenset(
    {
        Platform.APNS,
        Platform.APNS_SANDBOX,
        Platform.APNS_VOIP,
        Platform.APNS_VOIP_SANDBOX,
        Platform.MACOS,
        Platform.MACOS_SANDBOX,
    }
)

# Largest provider payload in bytes, checked at publish time (SNS_API §6.2 step 8)
# and again by each adapter on the rendered wire body.
PAYLOAD_LIMITS: Mapping[Platform, int] = {
    Platform.APNS: 4096,
    Platform.APNS_SANDBOX: 4096,
    Platform.MACOS: 4096,
    Platform.MACOS_SANDBOX: 4096,
    Platform.APNS_VOIP: 5120,
    Platform.APNS_VOIP_SANDBOX: 5120,
    Platform.GCM: 4096,
    Platform.ADM: 6144,
    Platform.BAIDU: 4096,
    Platform.MPNS: 3072,
    Platform.WNS: 5000,
}

# Credential attributes are write-only: never returned, never logged.
CREDENTIAL_ATTRIBUTES = frozenset({"PlatformCredential", "PlatformPrincipal"})

# Attributes a client may set on a platform application (SNS_API §4.2).
APP_SETTABLE_ATTRIBUTES = frozenset(
    {
        "PlatformCredential",
        "PlatformPrincipal",
        "EventEndpointCreated",
        "EventEndpointDeleted",
        "EventEndpointUpdated",
        "EventDeliveryFailure",
        "SuccessFeedbackRoleArn",
        "FailureFeedbackRoleArn",
        "SuccessFeedbackSampleRate",
        "ApplePlatformTeamID",
        "ApplePlatformBundleID",
        "Enabled",
    }
)


@dataclass(frozen=True, slots=True)
class PlatformApplication:
    """One set of provider credentials (SNS `CreatePlatformApplication`)."""

    arn: str
    name: str
    platform: Platform
    principal: str
    credential: str
    enabled: bool = True
    # Public attributes (event topics, feedback settings, Apple team/bundle id,
    # derived read-only ones such as AuthenticationMethod). Never credentials.
    attributes: Mapping[str, str] = field(default_factory=dict)
    created_at: float = 0.0

    def public_attributes(self) -> dict[str, str]:
        """The attributes SNS returns: `Enabled` first, never the credentials."""
        out = {"Enabled": "true" if self.enabled else "false"}
        out.update(self.attributes)
        return out


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A device token registered under a platform application."""

    arn: str
    app_arn: str
    token: str
    enabled: bool = True
    custom_user_data: str | None = None
    # Extra platform attributes (BAIDU ChannelId/UserId).
    attributes: Mapping[str, str] = field(default_factory=dict)
    created_at: float = 0.0

    def public_attributes(self) -> dict[str, str]:
        out = {"Enabled": "true" if self.enabled else "false", "Token": self.token}
        if self.custom_user_data is not None:
            out["CustomUserData"] = self.custom_user_data
        out.update(self.attributes)
        return out


@dataclass(frozen=True, slots=True)
class Topic:
    arn: str
    name: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    created_at: float = 0.0


HTTP_PROTOCOLS = frozenset({"http", "https"})


@dataclass(frozen=True, slots=True)
class Subscription:
    """
    A subscription to a topic: an endpoint (`application`, `endpoint_arn` is its
    ARN) or a URL (`http`/`https`, `endpoint_arn` is the URL).
    """

    arn: str
    topic_arn: str
    endpoint_arn: str
    protocol: str = "application"
    attributes: Mapping[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    # Creation order within the store; keyset for fan-out chunks.
    seq: int = 0
    # The secret half of the confirmation token while the subscription waits
    # for ConfirmSubscription; None once confirmed (application ones never wait).
    confirm_token: str | None = None

    @property
    def pending(self) -> bool:
        return self.confirm_token is not None

    @property
    def is_http(self) -> bool:
        return self.protocol in HTTP_PROTOCOLS


@dataclass(frozen=True, slots=True)
class MessageAttribute:
    data_type: str
    string_value: str | None = None
    binary_value: bytes | None = None

    def size(self, name: str) -> int:
        """Bytes counted towards the 256 KiB message limit (name + type + value)."""
        value = (
            self.binary_value
            if self.binary_value is not None
            else (self.string_value or "").encode()
        )
        return len(name.encode()) + len(self.data_type.encode()) + len(value)


@dataclass(frozen=True, slots=True)
class Message:
    """An accepted publish. Stored before `Publish` returns its id."""

    id: str
    body: str
    structure: Literal["json"] | None = None
    subject: str | None = None
    attributes: Mapping[str, MessageAttribute] = field(default_factory=dict)
    topic_arn: str | None = None
    target_arn: str | None = None
    created_at: float = 0.0
    # Absolute expiry (epoch seconds) from the TTL attribute, or None.
    expires_at: float | None = None


# `http` jobs deliver one message (or a subscription's confirmation) to one
# HTTP/HTTPS subscription; they run in a lane of their own (`lane_of`).
JobKind = Literal["endpoint", "topic", "http"]
PUSH_LANE, HTTP_LANE = 0, 1


def lane_of(kind: JobKind) -> int:
    """The claim lane: HTTP subscribers never take the slots of push delivery."""
    return HTTP_LANE if kind == "http" else PUSH_LANE


@dataclass(frozen=True, slots=True)
class DeliveryJob:
    """
    A unit of delivery work, claimed with a lease.

    `endpoint` jobs deliver one message to one endpoint. `topic` jobs deliver one
    message to the subscriptions of a topic with `seq` in (`cursor`, `range_hi`];
    `cursor` records progress so a retried chunk skips what was already done.
    `http` jobs deliver to the subscription `subscription_arn`: the message
    itself, or, when `payload` is set, the control document it describes (a
    SubscriptionConfirmation or UnsubscribeConfirmation, `sns/http_jobs.py`).
    """

    id: int
    message_id: str
    kind: JobKind
    endpoint_arn: str | None = None
    topic_arn: str | None = None
    cursor: int = 0
    range_hi: int | None = None
    attempts: int = 0
    next_attempt_at: float = 0.0
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    created_at: float = 0.0
    last_error: str | None = None
    # Topic jobs: subscription seqs above `cursor` already done.
    done: tuple[int, ...] = ()
    subscription_arn: str | None = None
    payload: str | None = None
