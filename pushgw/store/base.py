"""
The `Store` protocol: the only storage interface.

Rules every backend follows (the contract suite in tests/store checks them):

* Nothing assumes one process. Every invariant (token uniqueness per app, one
  subscription per topic+endpoint, job leases) is enforced by the backend itself,
  so several daemons can share one PostgreSQL database.
* Each table has an integer `seq` in creation order; listings are keyset pages
  (`after` = the last `seq` seen), `Page.next_after` is set when more may follow.
* `enqueue` stores the message and its jobs atomically: when it returns, the
  publish is durable.
* Jobs are claimed with a lease (`lease_owner`, `lease_expires_at`). Ack, retry and
  progress calls name the owner and do nothing (return False) if the lease was
  lost, so a worker whose lease ran out cannot clobber the new owner's work. An
  owner is `{node}/{incarnation}`: a daemon's stable node id and a new suffix per
  start, so a restarted node can take back its previous run's leases at once.
* A transient failure (connection lost, server stalled, disk full, database
  locked) raises StoreUnavailableError; the caller may simply try again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar

from pushgw.model import (
    PUSH_LANE,
    DeliveryJob,
    Endpoint,
    JobKind,
    Message,
    Platform,
    PlatformApplication,
    Subscription,
    Topic,
)
from pushgw.store.ledger_model import (
    DeliveryFilter,
    DeliveryRecord,
    LedgerBatch,
    LedgerRetention,
    MessageLedger,
    PendingDeliveries,
    ReplayResult,
    StatsRow,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    # `seq` to pass as `after` for the next page; None at the end.
    next_after: int | None


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to create with `enqueue`.

    For `topic` jobs the store fills the chunk bound: the job covers the topic's
    subscriptions that exist when the message is committed (seq <= max seq then).
    """

    kind: JobKind
    endpoint_arn: str | None = None
    topic_arn: str | None = None
    next_attempt_at: float = 0.0
    attempts: int = 0  # attempts already made (a retry split off a topic chunk)
    last_error: str | None = None
    subscription_arn: str | None = None  # `http` jobs
    payload: str | None = None  # `http` control documents (DeliveryJob.payload)


@dataclass(frozen=True, slots=True)
class JobClaim:
    """
    A lease given to jobs as they are created (`enqueue_endpoint`): the node
    that stores them runs them at once, with no `claim_jobs` round trip. To
    every other claimer they are leased jobs like any (taken over if the lease
    lapses), so a crash before they finish loses nothing.
    """

    owner: str
    until: float  # lease_expires_at


@dataclass(frozen=True, slots=True)
class EndpointTarget:
    """
    What a publish to an endpoint is checked against, read in the transaction
    that stores it (`enqueue_endpoint`): the endpoint, and its application's
    platform and state (`platform` None: the application is gone).
    """

    endpoint: Endpoint
    platform: Platform | None
    app_enabled: bool


# Refuses a publish (raises) from what `enqueue_endpoint` read; None: no such
# endpoint. Runs inside the store's transaction (for SQLite on its writer
# thread): pure computation, no awaits, no store or event-loop calls.
TargetCheck = Callable[[EndpointTarget | None], None]


@dataclass(frozen=True, slots=True)
class EndpointEnqueued:
    """`enqueue_endpoint`'s answer: the endpoint as read, and the job made."""

    endpoint: Endpoint
    job: DeliveryJob


@dataclass(frozen=True, slots=True)
class TokenPage:
    """
    Endpoints of one application in token order (`search_endpoints`): a keyset
    page whose position is the last token seen, not a `seq`.
    """

    items: list[Endpoint]
    # The token to pass as `after` for the next page; None at the end.
    next_after: str | None


def prefix_upper_bound(prefix: str) -> str | None:
    """
    The least string above every string that starts with `prefix`, in code-point
    order (SQLite's BINARY, PostgreSQL's "C"), so `token >= prefix AND token <
    bound` is the prefix as an index range. None: no bound (prefix "" or only
    U+10FFFF). Surrogates are skipped (they cannot be stored as UTF-8).
    """
    chars = list(prefix)
    while chars:
        last = ord(chars.pop()) + 1
        if 0xD800 <= last <= 0xDFFF:
            last = 0xE000
        if last <= 0x10FFFF:
            return "".join(chars) + chr(last)
    return None


def replay_job(record: DeliveryRecord, now: float) -> NewJob:
    """The job that delivers a dead letter again, due now."""
    if record.subscription:
        return NewJob("http", subscription_arn=record.endpoint_arn, next_attempt_at=now)
    return NewJob("endpoint", endpoint_arn=record.endpoint_arn, next_attempt_at=now)


def chunk_left(counted: int, chunk: DeliveryJob, limit: int) -> tuple[int, bool]:
    """
    The subscriptions a topic chunk has still to reach, from `counted`: those
    in its range (cursor, range_hi], read up to `limit` + 1. Those finished
    above the cursor are not left; True when the range has more than `limit`.
    """
    if counted > limit:
        return limit, True
    return max(0, counted - len(chunk.done)), False


# The last_error of a job that waits for its application (disabled, or paused
# by the circuit breaker): what `backlog` counts as "waiting_for_app".
WAITING_FOR_APP = "application paused or disabled"
BacklogState = Literal["due", "leased", "scheduled", "waiting_for_app"]


@dataclass(frozen=True, slots=True)
class BacklogRow:
    """
    Jobs in one disjoint state, of one kind, for one platform application.
    `app_arn`/`platform` are set for endpoint jobs whose endpoint still exists
    (topic and http jobs belong to no app).
    """

    state: BacklogState
    kind: JobKind
    app_arn: str | None
    platform: str | None
    jobs: int


class Store(Protocol):
    """Async storage for pushgw. See the module docstring for the rules."""

    async def open(self) -> None:
        """Connect and apply pending schema migrations."""

    async def close(self) -> None: ...

    # -- platform applications -------------------------------------------------
    async def put_app(self, app: PlatformApplication) -> PlatformApplication:
        """Insert, or replace the app with the same ARN (its endpoints stay)."""

    async def get_app(self, arn: str) -> PlatformApplication | None: ...

    async def list_apps(
        self, *, after: int, limit: int
    ) -> Page[PlatformApplication]: ...

    async def update_app(self, app: PlatformApplication) -> None:
        """Replace an existing app's fields. Raises NotFoundError."""

    async def delete_app(self, arn: str) -> None:
        """Delete the app and its endpoints. Idempotent."""

    # -- endpoints -------------------------------------------------------------
    async def insert_endpoint(self, endpoint: Endpoint) -> Endpoint:
        """Insert. Raises ConflictError if the app already has this token."""

    async def get_endpoint(self, arn: str) -> Endpoint | None: ...

    async def get_endpoint_by_token(
        self, app_arn: str, token: str
    ) -> Endpoint | None: ...

    async def list_endpoints(
        self, app_arn: str, *, after: int, limit: int
    ) -> Page[Endpoint]: ...

    async def update_endpoint(self, endpoint: Endpoint) -> None:
        """Replace an endpoint's fields. NotFoundError; ConflictError on token clash."""

    async def disable_endpoint(self, arn: str, *, token: str) -> Endpoint | None:
        """
        Set Enabled=false only if the endpoint is enabled and still has `token`
        (one conditional write: a re-registration meanwhile is not overwritten).
        Returns the updated endpoint, or None if nothing matched.
        """

    async def replace_endpoint_token(
        self, arn: str, *, old_token: str, new_token: str
    ) -> Endpoint | None:
        """
        Replace the token only if it is still `old_token` (conditional write).
        Returns the updated endpoint or None; ConflictError if the app already
        has `new_token`.
        """

    async def delete_endpoint(self, arn: str) -> bool:
        """Delete; True if it existed. Subscriptions are kept (SNS_API §5.4)."""

    async def get_endpoints(self, arns: Sequence[str]) -> dict[str, Endpoint]:
        """Endpoints by ARN (missing ones are absent from the result)."""

    async def search_endpoints(
        self,
        app_arn: str,
        *,
        token_prefix: str = "",
        custom_user_data: str | None = None,
        after: str | None = None,
        limit: int,
    ) -> TokenPage:
        """
        An application's endpoints whose token starts with `token_prefix` (""
        = any) and, when given, whose CustomUserData equals `custom_user_data`,
        in token order (code points) after the token `after`: a keyset page,
        answered from an index ((app_arn, token) or (app_arn, custom_user_data,
        token)) however many endpoints the app has.
        """

    # -- topics ----------------------------------------------------------------
    async def insert_topic(
        self, topic: Topic, tags: Mapping[str, str] | None = None
    ) -> Topic:
        """Insert with its tags, in one transaction. ConflictError if the ARN
        exists (and then nothing is written)."""

    async def get_topic(self, arn: str) -> Topic | None: ...

    async def list_topics(self, *, after: int, limit: int) -> Page[Topic]: ...

    async def update_topic(self, topic: Topic) -> None: ...

    async def delete_topic(self, arn: str) -> None:
        """Delete the topic and its subscriptions. Idempotent."""

    # -- subscriptions ---------------------------------------------------------
    async def insert_subscription(self, sub: Subscription) -> Subscription:
        """Insert and return it with its `seq`. ConflictError on topic+endpoint."""

    async def get_subscription(self, arn: str) -> Subscription | None: ...

    async def find_subscription(
        self, topic_arn: str, endpoint_arn: str
    ) -> Subscription | None: ...

    async def list_subscriptions(
        self, *, topic_arn: str | None, after: int, limit: int
    ) -> Page[Subscription]: ...

    async def update_subscription(self, sub: Subscription) -> None: ...

    async def delete_subscription(
        self, arn: str, *, now: float | None = None, restore_token: str | None = None
    ) -> Subscription | None:
        """
        Delete and return it (None if absent). With `now`, the deletion is
        recorded: it counts in the topic's SubscriptionsDeleted, and
        `get_deleted_subscription` returns it with `restore_token` as its
        confirm_token (the secret of an UnsubscribeConfirmation's SubscribeURL).
        """

    async def get_deleted_subscription(self, arn: str) -> Subscription | None:
        """A recorded deletion (seq 0), until purged or restored."""

    async def restore_subscription(self, sub: Subscription) -> Subscription:
        """Insert `sub` again and forget its deletion, in one transaction.
        ConflictError if the topic has a subscription of that endpoint again."""

    async def subscription_counts(self, topic_arn: str) -> dict[str, int]:
        """{"confirmed": ..., "pending": ..., "deleted": ...} for one topic."""

    async def purge_subscriptions(
        self, *, pending_before: float, deleted_before: float
    ) -> int:
        """Housekeeping: drop subscriptions still pending that were created
        before `pending_before` (their token expired) and deletion records
        older than `deleted_before`. Returns how many rows went."""

    async def subscriptions_range(
        self, topic_arn: str, *, after_seq: int, upto_seq: int, limit: int
    ) -> list[Subscription]:
        """Subscriptions with after_seq < seq <= upto_seq, in seq order."""

    # -- tags ------------------------------------------------------------------
    async def get_tags(self, arn: str) -> dict[str, str]: ...

    async def set_tags(self, arn: str, tags: Mapping[str, str]) -> None: ...

    async def remove_tags(self, arn: str, keys: Sequence[str]) -> None: ...

    # -- delivery ledger -------------------------------------------------------
    async def record_ledger(self, batch: LedgerBatch) -> None:
        """
        One ledger flush in one transaction: add the message counters (their
        first and last seen and attempt times widened) and the rollup counters to what is
        stored, insert the delivery records, and keep each dead letter's
        message once (a message already kept is left as it is).
        """

    async def get_message_ledger(self, message_id: str) -> MessageLedger | None:
        """
        The message's counters and its jobs still queued; a message queued but
        with no outcome yet has empty counts. None when neither is known.
        """

    async def pending_deliveries(
        self, message_id: str, *, limit: int
    ) -> PendingDeliveries:
        """
        What of the message is still queued (`PendingDeliveries`), from its
        jobs alone: its endpoint and http jobs (their platforms read for at
        most `limit` of them) and its topic chunks with the subscriptions each
        still covers (counted up to `limit` per chunk). Empty when the message
        has no jobs left.
        """

    async def list_deliveries(
        self, where: DeliveryFilter, *, before: int | None, limit: int
    ) -> Page[DeliveryRecord]:
        """
        Delivery records newest first (by id); `before` = the last id seen.
        `next_after` is the id to pass as `before` for the next page.
        """

    async def delivery_stats(self, *, since: float, bucket_s: int) -> list[StatsRow]:
        """The rollup from `since`, summed into buckets of `bucket_s` (a
        multiple of 60), by platform and status, oldest first."""

    async def replay_dead_letters(
        self, where: DeliveryFilter, *, limit: int, now: float
    ) -> ReplayResult:
        """
        Queue again up to `limit` dead letters `where` selects that were not
        replayed yet (oldest first), in one transaction: each becomes a job
        (due now) of its message id, an endpoint job or for an HTTP/HTTPS
        subscription's record an http job (`replay_job`), and is marked replayed at
        `now`. A message still queued gets the jobs (its TTL unchanged); one
        that is gone is stored again from the dead letter's copy with
        `created_at = now`, so its TTL counts from the replay.
        """

    async def prune_ledger(self, retention: LedgerRetention, *, limit: int) -> int:
        """
        Drop what `retention` does not keep, oldest first: records finished
        and message counters last touched before `retention.before`, rollup
        buckets before `rollup_before`, records beyond the two caps, message
        counters beyond `max_messages` (least recently touched first), and
        dead-letter messages no record needs. At most `limit` rows of each
        kind per call; returns how many rows went (call again while it is
        `limit` or more).
        """

    # -- messages and delivery jobs -------------------------------------------
    async def enqueue(self, message: Message, jobs: Sequence[NewJob]) -> None:
        """Store the message and its jobs in one transaction."""

    async def enqueue_endpoint(
        self,
        message: Message,
        endpoint_arn: str,
        *,
        check: TargetCheck,
        claim: JobClaim | None = None,
    ) -> EndpointEnqueued:
        """
        A publish to one endpoint in one transaction: read the endpoint and its
        application, `check(target)` (None when the endpoint does not exist),
        then store the message with one endpoint job, due now. If `check`
        raises, nothing is stored and its error is raised. With `claim` the
        job is created leased to `claim.owner` until `claim.until` (the caller
        runs it itself; no dispatcher is woken), else it is claimable at once.
        """

    async def add_jobs(self, message_id: str, jobs: Sequence[NewJob]) -> None:
        """Add jobs to a stored message (retries split off a topic chunk)."""

    async def get_message(self, message_id: str) -> Message | None: ...

    async def claim_jobs(
        self,
        *,
        owner: str,
        limit: int,
        lease_s: float,
        now: float,
        lane: int = PUSH_LANE,
    ) -> list[DeliveryJob]:
        """
        Lease up to `limit` due jobs of `lane` (`model.lane_of`): next_attempt_at
        <= now and no live lease. Expired leases are taken over. Oldest due first.
        """

    async def extend_leases(
        self, *, owner: str, job_ids: Sequence[int], until: float
    ) -> int:
        """Push the lease of the owner's jobs to `until`; returns how many."""

    async def complete_job(self, job_id: int, *, owner: str) -> bool:
        """Delete a finished job (and its message once no job is left)."""

    async def retry_job(
        self,
        job_id: int,
        *,
        owner: str,
        next_attempt_at: float,
        last_error: str | None,
        count_attempt: bool = True,
    ) -> bool:
        """Release the lease, count an attempt (unless `count_attempt` is False:
        a postponement) and schedule the next one."""

    async def save_progress(
        self, job_id: int, *, owner: str, cursor: int, done: Sequence[int] = ()
    ) -> bool:
        """
        Record that a topic job is done up to subscription `seq` = cursor, plus the
        seqs in `done` above it (finished while an earlier send was in flight).
        """

    async def split_topic_job(
        self, job_id: int, *, owner: str, at_seq: int
    ) -> DeliveryJob | None:
        """
        Cut a topic job at `at_seq`: it keeps (cursor, at_seq] and a new, unleased
        job takes (at_seq, old range_hi]. Returns the new job, or None if the lease
        was lost or there is nothing past `at_seq`.
        """

    async def release_jobs(self, *, owner: str) -> int:
        """Drop the owner's leases so others may take the jobs now (shutdown)."""

    async def release_node_jobs(self, *, node: str, keep: Sequence[int] = ()) -> int:
        """
        Drop the leases held by any incarnation of `node` (owner `node` or
        `node/...`) except jobs in `keep`: at start, what this node's previous
        run held; after a store fault, claims whose answer was lost.
        """

    async def probe(self, *, node: str, now: float) -> None:
        """A cheap write (the node's `seen_at`): proves the store takes writes."""

    async def hold_lease(
        self, *, name: str, owner: str, lease_s: float, now: float
    ) -> bool:
        """
        Take or renew the named lease for `owner` until `now + lease_s`: when
        nobody holds it, its holder's time ran out (expires_at < now), or
        `owner` holds it already. True when `owner` holds it now; one owner
        at a time, whichever node asks (an election, e.g. the metrics reporter).
        """

    async def release_lease(self, *, name: str, owner: str) -> None:
        """Give up `owner`'s lease `name` (if it holds it): others may take it now."""

    async def next_due_at(self, lane: int = PUSH_LANE) -> float | None:
        """
        When the next job of `lane` becomes claimable: the earliest next_attempt_at of an
        unleased job or lease expiry of a leased one; None when there are no jobs.
        """

    async def job_counts(self) -> dict[str, int]:
        """Backlog: {"due": ..., "leased": ..., "scheduled": ..., "total": ...}."""

    async def backlog(self, *, now: float) -> list[BacklogRow]:
        """
        The queue in disjoint states (a job is in exactly one): leased (a live
        lease), due (claimable now), waiting_for_app (scheduled because its
        application is disabled or paused: last_error WAITING_FOR_APP), else
        scheduled; grouped by kind and, for endpoint jobs, application.
        """
