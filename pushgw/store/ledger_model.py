"""
What the delivery ledger stores (`Store` section "delivery ledger"): per-message
counters, the per-minute rollup, delivery records and dead letters.

* A flush of the ledger (`pushgw/ledger.py`) is one `LedgerBatch`: counters
  added to what the store has, records inserted, written in one transaction.
* A delivery record is kept for every failure and every sampled success. A
  failed or expired one is a *dead letter*: the message it belongs to is kept
  once (`LedgerBatch.dead_messages`), so `replay_dead_letters` can queue it
  again as a job of the same message id: an endpoint job, or for an HTTP/HTTPS
  subscription's record (no application) an http job of that subscription.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pushgw.model import Message

LedgerStatus = Literal["delivered", "failed", "expired"]
STATUSES: tuple[LedgerStatus, ...] = ("delivered", "failed", "expired")
# A per-message counter's key: (platform, status, failure_type or None).
CountKey = tuple[str, str, str | None]
# A rollup counter's key: (start of the minute in epoch seconds, platform, status).
RollupKey = tuple[int, str, str]


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One (message, endpoint) delivery that ended; `id` is the store's."""

    message_id: str
    endpoint_arn: str  # the endpoint, or the HTTP/HTTPS subscription's ARN
    app_arn: str  # "" for an HTTP/HTTPS subscription (it has no application)
    platform: str  # Platform value, or "http" / "https"
    status: LedgerStatus
    failure_type: str | None
    reason: str
    provider_status: int | None
    attempts: int
    at: float  # epoch seconds
    id: int = 0
    replayed_at: float | None = None

    @property
    def dead_letter(self) -> bool:
        """Failed or expired: kept with its message, so it can be replayed."""
        return self.status != "delivered"

    @property
    def subscription(self) -> bool:
        """A delivery to an HTTP/HTTPS subscription, not to a platform endpoint."""
        return not self.app_arn


@dataclass(frozen=True, slots=True)
class MessageCounts:
    """What one flush adds to a message's ledger entry."""

    message_id: str
    topic_arn: str | None
    target_arn: str | None
    created_at: float
    first_at: float  # earliest attempt or outcome in the batch
    last_at: float  # latest attempt or outcome in the batch (retention's clock)
    counts: Mapping[CountKey, int]
    # Sends made in the batch (None: none, e.g. only outcomes decided without
    # a send, such as a TTL that ran out in the queue).
    first_attempt_at: float | None = None
    last_attempt_at: float | None = None


@dataclass(frozen=True, slots=True)
class LedgerBatch:
    """One flush: counters to add and rows to insert, in one transaction."""

    messages: Sequence[MessageCounts] = ()
    rollup: Mapping[RollupKey, int] = field(default_factory=dict)
    deliveries: Sequence[DeliveryRecord] = ()
    # The messages of the dead letters in `deliveries` (stored once per id).
    dead_messages: Sequence[Message] = ()

    def __bool__(self) -> bool:
        return bool(self.messages or self.rollup or self.deliveries)


@dataclass(frozen=True, slots=True)
class OutcomeCount:
    platform: str
    status: LedgerStatus
    failure_type: str | None
    count: int


@dataclass(frozen=True, slots=True)
class MessageLedger:
    """What the ledger knows of one message (`get_message_ledger`)."""

    message_id: str
    topic_arn: str | None
    target_arn: str | None
    created_at: float
    first_attempt_at: float | None  # the first send; None: none made yet
    last_attempt_at: float | None  # the latest send
    pending_jobs: int  # jobs of the message still queued (0 once done)
    counts: list[OutcomeCount]


@dataclass(frozen=True, slots=True)
class PendingDeliveries:
    """
    What of one message is still queued (`pending_deliveries`), read from its
    jobs alone, so bounded for a message of any size.

    `deliveries` is exact: every endpoint and http job of the message. The
    platforms (an endpoint's application's, or "http"/"https") are those of
    the jobs read, at most the store's `limit`; None is a platform not known
    (the endpoint or subscription is gone). Jobs beyond the limit count in
    `deliveries` only.

    A topic publish whose fan-out is not done also has topic chunks: each
    covers a range of the topic's subscriptions not reached yet. Those are
    counted up to `limit` per chunk (`subscriptions_more` when a chunk has
    more), and are an upper bound of the deliveries to come: filter policies,
    pending subscriptions and deleted endpoints are only judged when the chunk
    runs.
    """

    deliveries: int = 0
    by_platform: Mapping[str | None, int] = field(default_factory=dict)
    chunks: int = 0
    subscriptions: int = 0
    subscriptions_more: bool = False

    @property
    def uncounted(self) -> int:
        """Queued deliveries whose platform was not read (beyond the limit)."""
        return self.deliveries - sum(self.by_platform.values())


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    """Which delivery records a listing or a replay takes (None: any)."""

    status: LedgerStatus | None = None
    app_arn: str | None = None
    endpoint_arn: str | None = None
    message_id: str | None = None
    failure_type: str | None = None
    since: float | None = None  # at >= since
    dead_letter: bool | None = None
    replayed: bool | None = None  # replayed_at set (True) or not yet (False)
    ids: Sequence[int] | None = None


@dataclass(frozen=True, slots=True)
class StatsRow:
    """Deliveries that ended in one bucket, for one platform and status."""

    start: int  # epoch seconds, a multiple of the bucket size
    platform: str
    status: LedgerStatus
    count: int


@dataclass(frozen=True, slots=True)
class ReplayResult:
    replayed: int  # dead letters queued again (and marked replayed)
    remaining: int  # dead letters the filter still selects, not yet replayed
    # The messages that got jobs, as stored (for the local dispatcher's wake-up).
    messages: list[Message]


@dataclass(frozen=True, slots=True)
class LedgerRetention:
    """What `prune_ledger` keeps."""

    before: float  # records and message counters last touched before: gone
    rollup_before: float  # rollup buckets starting before: gone
    max_deliveries: int  # delivery records that are not dead letters
    max_dead_letters: int  # dead letters
    max_messages: int = 1_000_000  # message counters (the least recent go)


def replayed_message(kept: Message, now: float) -> Message:
    """A dead letter's message stored again by a replay: its TTL counts from now."""
    expires = kept.expires_at
    if expires is not None:
        expires += now - kept.created_at
    return dataclasses.replace(kept, created_at=now, expires_at=expires)
