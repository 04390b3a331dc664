"""
What the delivery engine tells the rest of the daemon: every send attempt,
every reschedule, and how each (message, endpoint) delivery ended.

The dispatcher calls a `DeliveryObserver` at those three points and nowhere
else; metrics (`pushgw/metrics.py`) and the delivery ledger (`pushgw/ledger.py`)
are observers. Calls are synchronous and must be cheap (they run per send on
the event loop): an observer that writes to the store batches in memory and
flushes on a task of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from pushgw.model import Message

# How one endpoint's delivery of one message ended.
FinalStatus = Literal["delivered", "failed", "expired"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One send to a provider (or to an HTTP subscriber) and its answer."""

    platform: str  # Platform value, or "http" / "https" for subscribers
    outcome: str  # Outcome value, or "error" when our adapter code raised
    status: int | None  # the provider's HTTP status, when there was one
    latency_s: float  # the send itself, request to classified answer
    # The message sent and when the send began (epoch seconds), for the
    # ledger's first and last attempt times; None for a send that delivers no
    # message (an HTTP subscription's confirmation documents).
    message: Message | None = None
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class Finished:
    """A (message, endpoint) delivery that needs nothing more: to a platform
    endpoint, or to an HTTP/HTTPS subscription."""

    message: Message
    platform: str  # Platform value, or "http" / "https" (as `Attempt.platform`)
    endpoint_arn: str  # the endpoint, or the HTTP subscription's ARN
    app_arn: str | None  # the endpoint's application; None for a subscription
    status: FinalStatus
    # SNS's FailureType for failed/expired ones (InvalidPlatformToken,
    # DeliveryFailedPerm, EndpointDisabled, NotificationTTLExpired; for HTTP
    # subscriptions DeliveryPolicyExhausted), else None.
    failure_type: str | None
    reason: str  # the provider's words or ours
    provider_status: int | None
    attempts: int
    at: float  # epoch seconds
    # Successes are recorded one by one only when sampled
    # (SuccessFeedbackSampleRate); counters count every one.
    sampled: bool = False


class DeliveryObserver(Protocol):
    def attempt(self, attempt: Attempt) -> None: ...

    def rescheduled(self, platform: str, reason: str) -> None: ...

    def finished(self, finished: Finished) -> None: ...


class Observers:
    """Several observers as one (the daemon's metrics and ledger)."""

    def __init__(self, observers: Sequence[DeliveryObserver] = ()) -> None:
        self.observers = list(observers)

    def attempt(self, attempt: Attempt) -> None:
        for observer in self.observers:
            observer.attempt(attempt)

    def rescheduled(self, platform: str, reason: str) -> None:
        for observer in self.observers:
            observer.rescheduled(platform, reason)

    def finished(self, finished: Finished) -> None:
        for observer in self.observers:
            observer.finished(finished)


def expired(failure_type: str) -> bool:
    return failure_type == "NotificationTTLExpired"


# An HTTP/HTTPS subscription's delivery dropped once its delivery policy's
# retries are spent (SNS drops it too).
HTTP_POLICY_SPENT = "DeliveryPolicyExhausted"
