"""
The delivery ledger: what happened to every message, kept in the store.

A `DeliveryObserver` (`pushgw/delivery/observe.py`): the dispatcher tells it of
every (message, endpoint) delivery that ended. It aggregates in memory, on the
event loop and cheaply (a few dict updates per delivery):

* per message, counts by platform, status and failure type, and the first and
  last send attempt times (`attempt`: a message still retrying has them);
* per minute, counts by platform and status (the console's overview);
* a delivery record per failure and per sampled success (`Finished.sampled`,
  SuccessFeedbackSampleRate; every success with `[ledger] record_successes`);
* for each failed or expired delivery a *dead letter*: its record plus, once
  per message, what replay needs of the message.

So a fan-out to a million devices adds counters, not a million rows: its sends
and outcomes widen one entry per message. A task of
its own ("ledger-flush", supervised) writes what gathered about every second,
as one `Store.record_ledger` transaction. While the store is unavailable the
write is tried again (doubling back-off, as `Dispatcher.persist`); meanwhile
counters keep aggregating in their dicts, and delivery records wait up to
`BUFFER_ROWS` — beyond that they are dropped, counted, with one warning. On
shutdown the daemon drains the ledger (`drain`) before it closes the store.

A second task ("ledger-prune", every PRUNE_S) applies the `[ledger]` retention:
by age and by the row caps (records, dead letters, messages), oldest first, a bounded number of rows per
transaction so a large prune never holds the store for long.

Counters are added at least once: a flush whose commit was lost with the
connection (the store answered nothing) is written again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pushgw.config import LedgerConfig
from pushgw.delivery.observe import Attempt, Finished
from pushgw.errors import StoreError, StoreUnavailableError
from pushgw.log import get_logger
from pushgw.model import Message
from pushgw.store.base import Store
from pushgw.store.ledger_model import (
    CountKey,
    DeliveryRecord,
    LedgerBatch,
    LedgerRetention,
    MessageCounts,
    RollupKey,
)
from pushgw.supervisor import Pulse

log = get_logger("pushgw.ledger")

FLUSH_TASK = "ledger-flush"
PRUNE_TASK = "ledger-prune"
FLUSH_S = 1.0  # a flush about this often
PRUNE_S = 60.0  # retention applied this often
PRUNE_BATCH = 5_000  # rows of each kind per prune transaction
BUFFER_ROWS = 50_000  # delivery records waiting for the store, at most
ROLLUP_KEEP_S = 86_400.0  # the per-minute rollup is kept this long at most
RETRY_FIRST_S = 0.05  # a flush the store refused is tried again after this,
RETRY_MAX_S = 2.0  # doubling up to this
DRAIN_S = 5.0  # shutdown waits this long for the last flush


@dataclass(slots=True)
class _Message:
    """One message's attempts and outcomes since the last flush."""

    message: Message
    first_at: float  # the earliest attempt or outcome
    last_at: float  # the latest
    counts: collections.Counter[CountKey] = field(default_factory=collections.Counter)
    first_attempt_at: float | None = None
    last_attempt_at: float | None = None

    def saw(self, at: float) -> None:
        if at < self.first_at:
            self.first_at = at
        elif at > self.last_at:
            self.last_at = at

    def attempted(self, at: float) -> None:
        self.saw(at)
        first, last = self.first_attempt_at, self.last_attempt_at
        if first is None or at < first:
            self.first_attempt_at = at
        if last is None or at > last:
            self.last_attempt_at = at


class Ledger:
    """The delivery ledger's observer, flusher and pruner. See the module doc."""

    def __init__(
        self,
        store: Store,
        config: LedgerConfig,
        *,
        clock: Callable[[], float] = time.time,
        flush_s: float = FLUSH_S,
        prune_s: float = PRUNE_S,
        buffer_rows: int = BUFFER_ROWS,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.flush_s = flush_s
        self.prune_s = prune_s
        self.buffer_rows = buffer_rows
        self._messages: dict[str, _Message] = {}
        self._rollup: collections.Counter[RollupKey] = collections.Counter()
        self._rows: list[DeliveryRecord] = []
        self._dead: dict[str, Message] = {}
        self._in_flight_rows = 0  # rows of the batch being written
        self._lock = asyncio.Lock()  # one flush at a time
        self._wake = asyncio.Event()
        self._draining_until: float | None = None  # monotonic deadline
        # Counted for metrics and tests.
        self.rows_dropped = 0
        self.flushes = 0
        self.pruned = 0

    # -- the observer (synchronous, per delivery) ------------------------------
    def attempt(self, attempt: Attempt) -> None:
        # Per send: one dict lookup and a few compares.
        if attempt.message is not None:
            self._entry(attempt.message, attempt.at).attempted(attempt.at)

    def _entry(self, message: Message, at: float) -> _Message:
        entry = self._messages.get(message.id)
        if entry is None:
            entry = self._messages[message.id] = _Message(message, at, at)
        return entry

    def rescheduled(self, platform: str, reason: str) -> None:
        return None

    def finished(self, finished: Finished) -> None:
        # Per delivery on the event loop: keep it to a few dict updates.
        message = finished.message
        platform = finished.platform
        status = finished.status
        at = finished.at
        entry = self._entry(message, at)
        entry.saw(at)
        entry.counts[(platform, status, finished.failure_type)] += 1
        self._rollup[(int(at // 60) * 60, platform, status)] += 1
        dead = status != "delivered"
        if not (dead or finished.sampled or self.config.record_successes):
            return
        if len(self._rows) + self._in_flight_rows >= self.buffer_rows:
            if not self.rows_dropped:
                log.warning(
                    "ledger_records_dropped",
                    buffered=self.buffer_rows,
                    hint="the store has not taken the ledger's writes for a while;"
                    " counters are kept, records beyond this are dropped",
                )
            self.rows_dropped += 1
            return
        self._rows.append(
            DeliveryRecord(
                message_id=message.id,
                endpoint_arn=finished.endpoint_arn,
                app_arn=finished.app_arn or "",
                platform=platform,
                status=status,
                failure_type=finished.failure_type,
                reason=finished.reason,
                provider_status=finished.provider_status,
                attempts=finished.attempts,
                at=at,
            )
        )
        if dead:
            self._dead[message.id] = message

    @property
    def pending(self) -> bool:
        """Something gathered that the store does not have yet."""
        return bool(self._messages or self._rollup or self._rows)

    def take(self) -> LedgerBatch:
        """What gathered since the last call, as one batch (and forget it)."""
        batch = LedgerBatch(
            messages=[
                MessageCounts(
                    message_id=message_id,
                    topic_arn=entry.message.topic_arn,
                    target_arn=entry.message.target_arn,
                    created_at=entry.message.created_at,
                    first_at=entry.first_at,
                    last_at=entry.last_at,
                    counts=dict(entry.counts),
                    first_attempt_at=entry.first_attempt_at,
                    last_attempt_at=entry.last_attempt_at,
                )
                for message_id, entry in self._messages.items()
            ],
            rollup=dict(self._rollup),
            deliveries=self._rows,
            dead_messages=list(self._dead.values()),
        )
        self._messages, self._rollup, self._rows, self._dead = (
            {},
            collections.Counter(),
            [],
            {},
        )
        return batch

    # -- flushing ----------------------------------------------------------------
    async def run(self, pulse: Pulse) -> None:
        """The "ledger-flush" task: flush about every `flush_s` until drained."""
        while self._draining_until is None:
            pulse.beat()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_s)
            if self._draining_until is None:
                await self.flush()

    async def flush(self) -> bool:
        """Write what gathered; True once the store has it (or nothing was due)."""
        async with self._lock:
            if not self.pending:
                return True
            batch = self.take()
            self._in_flight_rows = len(batch.deliveries)
            try:
                return await self._write(batch)
            finally:
                self._in_flight_rows = 0

    async def _write(self, batch: LedgerBatch) -> bool:
        delay, failures = RETRY_FIRST_S, 0
        while True:
            try:
                await self.store.record_ledger(batch)
            except StoreUnavailableError as exc:
                failures += 1
                if failures == 1 or failures % 50 == 0:
                    log.warning(
                        "ledger_flush_deferred", error=str(exc), failures=failures
                    )
                if self._give_up():
                    self._lost(batch, "the store is unavailable at shutdown")
                    return False
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            except StoreError as exc:
                # Not transient (a bug, a constraint): trying again would fail
                # forever and hold everything behind it.
                log.exception("ledger_flush_failed", error=str(exc))
                self._lost(batch, "the store refused the write")
                return False
            self.flushes += 1
            if failures:
                log.info("ledger_flush_recovered", failures=failures)
            return True

    def _give_up(self) -> bool:
        until = self._draining_until
        return until is not None and time.monotonic() >= until

    def _lost(self, batch: LedgerBatch, why: str) -> None:
        self.rows_dropped += len(batch.deliveries)
        log.error(
            "ledger_batch_lost",
            reason=why,
            messages=len(batch.messages),
            records=len(batch.deliveries),
        )

    async def drain(self, timeout_s: float = DRAIN_S) -> None:
        """Shutdown: stop the flush task, then write what is left (an
        unavailable store is tried for up to `timeout_s`)."""
        self._draining_until = time.monotonic() + timeout_s
        self._wake.set()
        await self.flush()  # waits for a flush in progress first

    # -- retention ---------------------------------------------------------------
    def retention(self, now: float) -> LedgerRetention:
        config = self.config
        return LedgerRetention(
            before=now - config.retention_s,
            rollup_before=now - min(config.retention_s, ROLLUP_KEEP_S),
            max_deliveries=config.max_deliveries,
            max_dead_letters=config.max_dead_letters,
            max_messages=config.max_messages,
        )

    async def prune(self) -> int:
        """Apply the retention once, in bounded transactions; rows dropped."""
        retention = self.retention(self.clock())
        total = 0
        while True:
            gone = await self.store.prune_ledger(retention, limit=PRUNE_BATCH)
            total += gone
            if gone < PRUNE_BATCH:
                break
            await asyncio.sleep(0)  # let deliveries' writes in between
        if total:
            self.pruned += total
            log.info("ledger_pruned", rows=total)
        return total

    async def prune_loop(self, pulse: Pulse) -> None:
        """The "ledger-prune" task: at start, then every `prune_s`."""
        while True:
            await self.prune()
            pulse.beat()
            await asyncio.sleep(self.prune_s)
