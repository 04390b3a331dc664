"""
The fault matrix: real `pushgw serve` and `pushgw mock-providers` processes
under store and provider faults, with a topic fan-out and a steady stream of
single-endpoint publishes running before, during and after each fault.

Faults are injected from outside the daemon: PostgreSQL through our TCP fault
proxy (`tests/faults/proxy.py`: cut, stall, refuse), SQLite on a 32 MB tmpfs
filled to ENOSPC (`tests/faults/disk.py`), kill -9, the APNs mock's fault rules
(503 storm), and poison rows written straight into the SQLite file.

Each scenario prints one line (run with -s):

    FAULT-MATRIX fault=<name> accepted=<n> lost=<n> duplicates=<n>
                 recovery_s=<x.x> readyz_503_seen=<bool>

* accepted: device-message deliveries owed -- every fan-out device, plus every
  stream publish answered 200 with a MessageId (a 5xx answer owes nothing);
* lost: owed deliveries that never arrived (checked per device at the mocks),
  after recovery and without restarting the daemon (except kill -9);
* duplicates: extra copies of any message at any device;
* recovery_s: from the fault clearing to the last owed delivery of what was
  accepted up to then (`inf`: never, within the wait);
* readyz_503_seen: `/readyz` answered 503 while the fault lasted.

A scenario records every broken promise and fails once, listing them all.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.e2e.fleet import Fleet, build_fleet
from tests.e2e.harness import Mocks, Server
from tests.e2e.test_delivery_e2e import (
    DUPLICATE_BOUND,
    Daemons,
    backlog,
    drop_schema,
    kill_mid_fanout,
)
from tests.faults.disk import mounted_tmpfs
from tests.faults.load import (
    PublishStream,
    ReadyzProbe,
    Receipts,
    app_enabled,
    delivered_total,
    disabled_endpoints,
    tally,
)
from tests.faults.proxy import FAULT_KINDS, FaultProxy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

T = TypeVar("T")
PG_DSN_VAR = "PUSHGW_TEST_PG_DSN"

MAX_IN_FLIGHT = 64
DELIVERY: dict[str, Any] = {"max_in_flight": MAX_IN_FLIGHT}
FAULT_S = 10.0  # store faults last this long
STORM_S = 15.0  # the APNs 503 storm lasts this long
RECOVERY_LIMIT_S = 10.0  # owed deliveries done this soon after the fault clears
RECOVERY_WAIT_S = 15.0  # hard cap on waiting for them
READY_AGAIN_S = 10.0  # /readyz 200 again this soon after the fault clears
PRE_S = 2.0  # the stream runs this long before the fan-out
POST_S = 3.0  # and this long after the fault clears
STREAM_RATE = 20.0  # publishes a second
STREAM_TARGETS = 100  # endpoints the stream round-robins over
FANOUT_PG = 5_000
FANOUT_DISK = 1_000
FANOUT_STORM = 500
FANOUT_KILL = 2_000  # two 1,000-subscription chunks: both leased when killed
RESUME_LIMIT_S = 5.0  # a restarted daemon delivers again this soon
RESUME_WAIT_S = 15.0  # hard cap on waiting for that (lease_s is 60 s)
POISON_DEPTH = 2_000


# -- reporting ---------------------------------------------------------------
@dataclass
class Matrix:
    fault: str
    accepted: int = 0
    lost: int = 0
    duplicates: int = 0
    recovery_s: float = math.inf
    readyz_503_seen: bool = False
    problems: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"FAULT-MATRIX fault={self.fault} accepted={self.accepted}"
            f" lost={self.lost} duplicates={self.duplicates}"
            f" recovery_s={self.recovery_s:.1f}"
            f" readyz_503_seen={self.readyz_503_seen}"
        )

    def report(self) -> None:
        print()
        print(self.line())
        print(f"FAULT-DETAIL fault={self.fault} {json.dumps(self.details)}")
        assert not self.problems, f"fault={self.fault}: " + "; ".join(self.problems)


def poll(
    check: Callable[[], T | None], *, timeout: float, interval: float = 0.1
) -> T | None:
    """`check()`'s first truthy value within `timeout` s, else None (no raise:
    a timeout here is a finding to report, not a harness error)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def daemon_alive(server: Server, matrix: Matrix) -> bool:
    rc = server.process.proc.poll()
    if rc is not None:
        matrix.problems.append(
            f"the daemon exited (rc {rc}): {server.process.logs()[-800:]!r}"
        )
        return False
    return True


def check_nothing_disabled(server: Server, fleet: Fleet, matrix: Matrix) -> None:
    try:
        disabled = disabled_endpoints(server, fleet.app_arn)
        enabled = app_enabled(server, fleet.app_arn)
    except (httpx.HTTPError, AssertionError) as exc:
        matrix.problems.append(f"could not read endpoints/app state: {exc!r}")
        return
    if disabled:
        matrix.problems.append(
            f"{len(disabled)} endpoints disabled by a transient fault"
            f" (e.g. {disabled[:3]})"
        )
    if enabled != "true":
        matrix.problems.append(
            f"the platform application is Enabled={enabled} after a transient fault"
        )


def stream_targets(fleet: Fleet, count: int = STREAM_TARGETS) -> list[tuple[str, str]]:
    """`count` endpoints spread over the fleet: (token, endpoint ARN)."""
    items = list(fleet.endpoints.items())
    step = max(1, len(items) // count)
    return items[::step][:count]


def publish_fanout(server: Server, fleet: Fleet, body: str) -> None:
    r = server.json(
        "POST", "/v1/publish", {"topicArn": fleet.topic_arn, "message": body}
    )
    assert r.status_code == 200, f"harness: the fan-out publish failed: {r.text}"


# -- the shared store/provider fault scenario ----------------------------------
@dataclass
class FaultPlan:
    name: str
    start: Callable[[], object]
    heal: Callable[[], object]
    seconds: float = FAULT_S
    # True: publish the fan-out, start the fault once this share of it is
    # delivered. False: start the fault, publish the fan-out 1 s into it.
    fanout_first: bool = True
    fault_at: float = 0.1
    store_fault: bool = True  # /readyz must say 503 during it, 200 after
    detail: Callable[[], Any] | None = None


def run_fault(server: Server, mocks: Mocks, fleet: Fleet, plan: FaultPlan) -> Matrix:
    """Stream + fan-out + fault + heal, then measure; never restarts the daemon."""
    matrix = Matrix(plan.name)
    n = len(fleet.endpoints)
    fanout_body = f"fanout-{plan.name}-{uuid.uuid4().hex[:8]}"
    receipts = Receipts(mocks)
    receipts.expect_all((token, fanout_body) for token in fleet.tokens)
    probe = ReadyzProbe(server.url)
    stream = PublishStream(
        server, stream_targets(fleet), rate=STREAM_RATE, prefix=plan.name
    )
    base = delivered_total(mocks)
    started = healed = finished = False
    t_fault = t_heal = math.nan
    probe.start()
    stream.start()
    try:
        time.sleep(PRE_S)
        if plan.fanout_first:
            publish_fanout(server, fleet, fanout_body)
            fanout_base = base + len(stream.accepted())
            poll(
                lambda: delivered_total(mocks) - fanout_base >= plan.fault_at * n,
                timeout=30,
                interval=0.01,
            )
            t_fault = time.monotonic()
            started = True
            plan.start()
            at_fault = delivered_total(mocks) - fanout_base
            assert at_fault < n, (
                f"harness: the fan-out had finished ({at_fault}/{n}) before the fault"
            )
        else:
            t_fault = time.monotonic()
            started = True
            plan.start()
            time.sleep(1.0)
            publish_fanout(server, fleet, fanout_body)
            at_fault = 0
        matrix.details["fanout_delivered_at_fault"] = f"{at_fault}/{n}"
        # One look during the fault, so the sweeps after it ask about less.
        time.sleep(min(2.0, plan.seconds / 2))
        receipts.expect_all((r.token, r.body) for r in stream.accepted())
        receipts.sweep()
        time.sleep(max(0.0, t_fault + plan.seconds - time.monotonic()))
        if plan.detail is not None:
            matrix.details["during"] = plan.detail()
        plan.heal()
        healed = True
        t_heal = time.monotonic()
        rounds: list[tuple[float, int]] = []
        progress: list[tuple[float, int]] = []
        matrix.details["sweeps_after_heal"] = rounds  # (s after heal, missing)
        matrix.details["delivered_after_heal"] = progress  # (s after heal, count)
        matrix.recovery_s = _wait_recovered(
            mocks, receipts, stream, base, n, t_heal, rounds, progress
        )
        stream.stop()
        finished = True
    finally:
        if started and not healed:
            plan.heal()
        if not finished:  # a harness error: stop the threads, let it show
            stream.halt()
            probe.halt()

    # Stream publishes accepted after the fault cleared are owed too.
    receipts.expect_all((r.token, r.body) for r in stream.accepted())
    poll(lambda: receipts.sweep() == 0, timeout=5.0, interval=0.2)
    if plan.store_fault:
        poll(
            lambda: probe.first_ok_after(t_heal),
            timeout=max(0.0, t_heal + READY_AGAIN_S + 1 - time.monotonic()),
        )
    probe.stop()
    if plan.detail is not None:
        matrix.details["after"] = plan.detail()

    _account(matrix, mocks, fleet, receipts, stream, t_heal)
    matrix.readyz_503_seen = probe.saw(503, t_fault, t_heal)
    matrix.details["readyz_during"] = probe.summary(t_fault, t_heal)
    matrix.details["readyz_during_s"] = [
        (p.status, round(p.finished - p.started, 2))
        for p in probe.between(t_fault, t_heal)
    ]
    matrix.details["readyz_after"] = probe.summary(t_heal, t_heal + READY_AGAIN_S)
    ready_again = probe.first_ok_after(t_heal)
    matrix.details["readyz_ok_after_s"] = ready_again
    if plan.store_fault:
        if not matrix.readyz_503_seen:
            matrix.problems.append(
                "/readyz never answered 503 during the fault"
                f" (answers: {matrix.details['readyz_during']})"
            )
        if ready_again is None or ready_again > READY_AGAIN_S:
            matrix.problems.append(
                f"/readyz not 200 again within {READY_AGAIN_S:g} s of the fault"
                f" clearing (answers: {matrix.details['readyz_after']})"
            )
    if daemon_alive(server, matrix):
        check_nothing_disabled(server, fleet, matrix)
    return matrix


def _wait_recovered(
    mocks: Mocks,
    receipts: Receipts,
    stream: PublishStream,
    base: int,
    n: int,
    t_heal: float,
    rounds: list[tuple[float, int]],
    progress: list[tuple[float, int]],
) -> float:
    """Seconds from the heal until every delivery owed for what was accepted
    by then has arrived (`inf` if not within RECOVERY_WAIT_S). The stream goes
    on for POST_S meanwhile.

    The mocks' delivery counter is the cheap gate; a sweep of the devices still
    owed something confirms. The time reported is when the gate opened on the
    round whose sweep found nothing missing."""
    deadline = t_heal + RECOVERY_WAIT_S
    while True:
        now = time.monotonic()
        if now >= t_heal + POST_S:
            stream.halt()
        owed = stream.accepted(sent_before=t_heal)
        receipts.expect_all((r.token, r.body) for r in owed)
        delivered = delivered_total(mocks) - base
        if not progress or now - t_heal >= progress[-1][0] + 1.0:
            progress.append((round(now - t_heal, 1), delivered))
        if stream.unanswered(sent_before=t_heal) == 0 and delivered >= n + len(owed):
            missing = receipts.sweep()
            rounds.append((round(now - t_heal, 2), missing))
            if missing == 0:
                return now - t_heal
        if now >= deadline:
            return math.inf
        time.sleep(0.1)


def _account(
    matrix: Matrix,
    mocks: Mocks,
    fleet: Fleet,
    receipts: Receipts,
    stream: PublishStream,
    t_heal: float,
) -> None:
    counts = tally(mocks, fleet.tokens)
    owed = [(t, b) for t, bodies in receipts.owed.items() for b in bodies]
    lost = [(t, b) for t, b in owed if counts.get(t, Counter())[b] == 0]
    stream_bodies = {r.body for r in stream.records}
    lost_stream = sum(1 for _, b in lost if b in stream_bodies)
    matrix.accepted = len(owed)
    matrix.lost = len(lost)
    matrix.duplicates = sum(c - 1 for per in counts.values() for c in per.values())
    outcomes = stream.outcomes()
    matrix.details["publishes"] = outcomes
    matrix.details["stream_accepted"] = len(stream.accepted())
    slowest: dict[str, float] = {}
    for r in stream.records:
        if r.done is not None:
            took = round(r.done - r.sent, 2)
            slowest[r.outcome] = max(slowest.get(r.outcome, 0.0), took)
    matrix.details["slowest_publish_answer_s"] = slowest  # by outcome
    unaccepted_delivered = sum(
        1
        for r in stream.records
        if not r.accepted and counts.get(r.token, Counter())[r.body] > 0
    )
    matrix.details["unaccepted_but_delivered"] = unaccepted_delivered
    if matrix.lost:
        matrix.problems.append(
            f"{matrix.lost} of {matrix.accepted} accepted deliveries never arrived"
            f" ({matrix.lost - lost_stream} fan-out devices, {lost_stream} of"
            f" {len(stream.accepted())} accepted stream publishes) by"
            f" {time.monotonic() - t_heal:.0f} s after the fault cleared, without"
            " a restart"
        )
    elif matrix.recovery_s > RECOVERY_LIMIT_S:
        matrix.problems.append(
            f"recovery took {matrix.recovery_s:.1f} s after the fault cleared"
            f" (limit {RECOVERY_LIMIT_S:g} s)"
        )
    if matrix.duplicates > MAX_IN_FLIGHT:
        matrix.problems.append(
            f"{matrix.duplicates} duplicate deliveries > max_in_flight {MAX_IN_FLIGHT}"
        )
    hung = outcomes.get("timeout", 0) + outcomes.get("pending", 0)
    if hung:
        matrix.problems.append(
            f"{hung} publishes got no answer within {stream.timeout_s:g} s"
        )


# -- fixtures and PostgreSQL helpers -------------------------------------------
@pytest.fixture(name="daemons")
def _daemons(tmp_path: Path, mocks: Mocks) -> Iterator[Daemons]:
    daemons = Daemons(tmp_path, mocks)
    yield daemons
    daemons.stop_all()


def pg_dsn() -> str:
    dsn = os.environ.get(PG_DSN_VAR)
    if not dsn:
        pytest.skip(f"{PG_DSN_VAR} is not set; CI sets it")
    return dsn


def upstream_of(dsn: str) -> tuple[str, int]:
    parts = urlsplit(dsn)
    return parts.hostname or "127.0.0.1", parts.port or 5432


def through_proxy(dsn: str, port: int, schema: str) -> str:
    """The DSN pointed at 127.0.0.1:`port`, with `schema=`."""
    parts = urlsplit(dsn)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    query = f"{parts.query}&schema={schema}" if parts.query else f"schema={schema}"
    return urlunsplit(parts._replace(netloc=netloc, query=query))


# -- a, b, c: PostgreSQL cut / stall / refuse ----------------------------------
@pytest.mark.postgres
@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_postgres_fault_loses_nothing_and_recovers(
    kind: str, mocks: Mocks, daemons: Daemons
) -> None:
    """PostgreSQL connections cut / stalled / refused for 10 s mid fan-out of
    5,000 devices, with 20 publishes a second: nothing accepted is lost, all
    of it is delivered within 10 s of the fault clearing (same daemon), /readyz
    says 503 during the fault and 200 after, nothing is disabled."""
    dsn = pg_dsn()
    schema = f"e2e_fault_{uuid.uuid4().hex[:10]}"
    proxy = FaultProxy(upstream_of(dsn))
    try:
        store_url = through_proxy(dsn, proxy.port, schema)
        config, port = daemons.config(store_url, DELIVERY, "serve")
        server = daemons.start(config, port, "serve")
        fleet = build_fleet(server, mocks, valid=FANOUT_PG)
        plan = FaultPlan(
            name=f"pg-{kind}",
            start=lambda: proxy.start_fault(kind),  # type: ignore[arg-type]
            heal=proxy.heal,
            detail=proxy.stats,
        )
        matrix = run_fault(server, mocks, fleet, plan)
    finally:
        daemons.stop_all()
        proxy.close()
        drop_schema(dsn, schema)
    matrix.report()


# -- d: SQLite on a full disk --------------------------------------------------
def truncate_wal(db: Path, attempts: int = 20) -> None:
    """Checkpoint the daemon's WAL into the database and truncate it to 0
    bytes (from a connection of our own; retried while readers are busy)."""
    conn = sqlite3.connect(db, timeout=5.0, isolation_level=None)
    try:
        for _ in range(attempts):
            busy, _log, _done = conn.execute(
                "PRAGMA wal_checkpoint(TRUNCATE)"
            ).fetchone()
            if not busy:
                return
            time.sleep(0.02)
    finally:
        conn.close()
    raise AssertionError(f"harness: could not truncate the WAL of {db}")


def wal_size(db: Path) -> int | None:
    wal = db.with_name(db.name + "-wal")
    return wal.stat().st_size if wal.exists() else None


def test_sqlite_disk_full_loses_nothing_and_recovers(
    mocks: Mocks, daemons: Daemons, tmp_path: Path
) -> None:
    """SQLite on a 32 MB tmpfs, filled to ENOSPC (its WAL truncated first, so
    the next writes need new blocks) right after a fan-out of 1,000 is accepted
    (jobs due), held full for 10 s under 20 publishes a second, then freed:
    same promises as the PostgreSQL faults."""
    with mounted_tmpfs(tmp_path / "disk", size_mb=32) as disk:
        try:
            config, port = daemons.config(
                f"sqlite:///{disk.path / 'pushgw.db'}", DELIVERY, "serve"
            )
            server = daemons.start(config, port, "serve")
            fleet = build_fleet(server, mocks, valid=FANOUT_DISK)
            db = disk.path / "pushgw.db"

            def fill() -> None:
                # An empty WAL first: otherwise SQLite may go on writing into
                # WAL pages it already has, and the full disk never bites.
                truncate_wal(db)
                disk.fill()

            plan = FaultPlan(
                name="sqlite-disk-full",
                start=fill,
                heal=disk.free,
                fault_at=0.0,
                detail=lambda: {
                    "free_bytes": disk.free_bytes(),
                    "wal_bytes": wal_size(db),
                },
            )
            matrix = run_fault(server, mocks, fleet, plan)
        finally:
            daemons.stop_all()  # before the unmount
    matrix.report()


# -- e: kill -9 and restart with the default 60 s leases -----------------------
def test_kill9_restart_resumes_within_5s_with_default_leases(
    mocks: Mocks, daemons: Daemons, tmp_path: Path
) -> None:
    """kill -9 mid fan-out (SQLite, lease_s left at its 60 s default), then the
    same config restarted: the new daemon takes its own old leases back and
    delivers again within 5 s of being started, and the rest of the fan-out
    is delivered, duplicates within DUPLICATE_BOUND."""
    matrix = Matrix("kill9-restart")
    n = FANOUT_KILL
    config, port = daemons.config(
        f"sqlite:///{tmp_path / 'pushgw.db'}", DELIVERY, "serve"
    )
    server = daemons.start(config, port, "serve-1")
    fleet = build_fleet(server, mocks, valid=n)
    body = f"fanout-kill9-{uuid.uuid4().hex[:8]}"
    base = delivered_total(mocks)
    publish_fanout(server, fleet, body)
    kill_mid_fanout(mocks, n, server.process.kill9, fraction=0.3)
    time.sleep(0.5)  # sends the mock had in hand when the process died
    at_kill = delivered_total(mocks) - base
    assert at_kill < n, f"harness: the fan-out finished before the kill ({at_kill})"

    t_restart = time.monotonic()
    restarted = daemons.start(config, port, "serve-2")
    matrix.details["restart_up_s"] = round(time.monotonic() - t_restart, 2)
    first = poll(
        lambda: delivered_total(mocks) - base > at_kill and time.monotonic(),
        timeout=max(0.0, t_restart + RESUME_WAIT_S - time.monotonic()),
        interval=0.02,
    )
    first_s = first - t_restart if first else None
    matrix.details["first_delivery_after_restart_s"] = first_s
    matrix.details["delivered_at_kill"] = f"{at_kill}/{n}"
    drained = None
    if first is not None:
        drained = poll(
            lambda: (
                delivered_total(mocks) - base >= n
                and backlog(restarted) == 0
                and time.monotonic()
            ),
            timeout=max(0.0, t_restart + RECOVERY_WAIT_S + 5 - time.monotonic()),
            interval=0.1,
        )
    matrix.recovery_s = drained - t_restart if drained else math.inf

    counts = tally(mocks, fleet.tokens)
    matrix.accepted = n
    matrix.lost = sum(1 for t in fleet.tokens if counts[t][body] == 0)
    matrix.duplicates = sum(max(0, counts[t][body] - 1) for t in fleet.tokens)
    if first_s is None or first_s > RESUME_LIMIT_S:
        seen = "nothing" if first_s is None else f"the first after {first_s:.1f} s"
        matrix.problems.append(
            f"the restarted daemon delivered {seen} within {RESUME_WAIT_S:g} s of"
            f" being started (limit {RESUME_LIMIT_S:g} s; lease_s is 60 s: it did"
            " not take its own old leases back)"
        )
    if matrix.lost:
        matrix.problems.append(
            f"{matrix.lost} of {n} devices never got the fan-out after the restart"
        )
    elif matrix.recovery_s > RECOVERY_LIMIT_S:
        matrix.problems.append(
            f"the backlog took {matrix.recovery_s:.1f} s to drain after the"
            f" restart (limit {RECOVERY_LIMIT_S:g} s)"
        )
    if matrix.duplicates > DUPLICATE_BOUND:
        matrix.problems.append(
            f"{matrix.duplicates} duplicates > DUPLICATE_BOUND {DUPLICATE_BOUND}"
        )
    if daemon_alive(restarted, matrix):
        check_nothing_disabled(restarted, fleet, matrix)
    daemons.stop_all()
    matrix.report()


# -- f: APNs 503 storm -------------------------------------------------------
def test_apns_503_storm_then_everything_delivered(
    mocks: Mocks, daemons: Daemons, tmp_path: Path
) -> None:
    """APNs answers 503 (Retry-After: 1) to every request for 15 s while the
    stream and a fan-out of 500 arrive; once it stops, everything is delivered
    within 10 s, and no endpoint or application is disabled."""
    config, port = daemons.config(
        f"sqlite:///{tmp_path / 'pushgw.db'}", DELIVERY, "serve"
    )
    server = daemons.start(config, port, "serve")
    fleet = build_fleet(server, mocks, valid=FANOUT_STORM)
    storm = [{"kind": "unavailable", "count": 10**9, "retry_after": 1}]
    plan = FaultPlan(
        name="apns-503-storm",
        start=lambda: mocks.faults("APNS", storm),
        heal=lambda: mocks.faults("APNS", []),
        seconds=STORM_S,
        fanout_first=False,
        store_fault=False,
        detail=lambda: {"apns": mocks.stats()["APNS"]},
    )
    try:
        matrix = run_fault(server, mocks, fleet, plan)
    finally:
        daemons.stop_all()
    matrix.report()


# -- g: poison messages -------------------------------------------------------
# Production-like back-off for the poison test (write_config's test defaults cap
# every pause at retry_max_s = 2 s, which would hide an app that stalls).
POISON_DELIVERY: dict[str, Any] = {
    "max_in_flight": MAX_IN_FLIGHT,
    "app_backoff_s": 5.0,
    "retry_max_s": 30.0,
}
POISONED = 10  # poison messages, one endpoint each: more than a breaker's threshold
NORMAL_EVERY_S = 2.0  # a normal publish this often after the poison is claimed
NORMALS = 3


def inject_poison(db: Path, endpoint_arn: str) -> str:
    """A message whose APNs payload cannot be parsed (2,000-deep JSON) and its
    endpoint job, written as SqliteStore.enqueue / _insert_jobs write them
    (pushgw/store/sqlite.py, migrations/sqlite/). Returns the message id."""
    deep = '{"a":' + "[" * POISON_DEPTH + "]" * POISON_DEPTH + "}"
    body = json.dumps({"APNS": deep, "default": "x"})
    message_id = str(uuid.uuid4())
    now = time.time()
    conn = sqlite3.connect(db, timeout=10.0, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO messages (id, body, structure, subject, attributes,"
            " topic_arn, target_arn, created_at, expires_at, pending_jobs)"
            " VALUES (?, ?, 'json', NULL, '{}', NULL, ?, ?, NULL, 1)",
            (message_id, body, endpoint_arn, now),
        )
        conn.execute(
            "INSERT INTO jobs (message_id, kind, endpoint_arn, topic_arn, cursor,"
            " range_hi, attempts, next_attempt_at, created_at, last_error)"
            " VALUES (?, 'endpoint', ?, NULL, 0, NULL, 0, 0.0, ?, NULL)",
            (message_id, endpoint_arn, now),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return message_id


def poison_jobs(db: Path, message_ids: list[str]) -> list[dict[str, Any]]:
    """The jobs of these messages still in the store."""
    conn = sqlite3.connect(db, timeout=10.0)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(
            "SELECT message_id, attempts, lease_owner, last_error FROM jobs"
            f" WHERE message_id IN ({', '.join('?' * len(message_ids))})",
            message_ids,
        ).fetchall()
    finally:
        conn.close()
    return [dict(row) for row in rows]


def test_poison_messages_do_not_stall_the_app(
    mocks: Mocks, daemons: Daemons, tmp_path: Path
) -> None:
    """Jobs whose APNs payload cannot be built (2,000-deep JSON, written into
    the SQLite file of the running daemon, one per endpoint for 10 endpoints):
    normal publishes to other endpoints of the same app, every 2 s after the
    poison is claimed, each arrive within 5 s; the poisoned endpoints get
    nothing, the app stays enabled, and the poison jobs are dropped as
    permanent failures within 10 s."""
    matrix = Matrix("poison-message")
    db = tmp_path / "pushgw.db"
    config, port = daemons.config(f"sqlite:///{db}", POISON_DELIVERY, "serve")
    server = daemons.start(config, port, "serve")
    fleet = build_fleet(server, mocks, valid=POISONED + 2)
    endpoints = list(fleet.endpoints.items())
    poisoned, healthy = endpoints[:POISONED], endpoints[POISONED:]

    t_poison = time.monotonic()
    ids = [inject_poison(db, arn) for _, arn in poisoned]
    # Let the dispatcher take every poison job first.
    claimed = poll(
        lambda: all(
            j["lease_owner"] is not None or j["attempts"] > 0
            for j in poison_jobs(db, ids)
        ),
        timeout=5.0,
        interval=0.05,
    )
    assert claimed, "harness: the daemon never claimed the injected jobs"
    matrix.details["claimed_after_s"] = round(time.monotonic() - t_poison, 2)

    # Normal publishes on a schedule; poll the mocks for each meanwhile.
    t0 = time.monotonic()
    plan = [
        (
            t0 + k * NORMAL_EVERY_S,
            *healthy[k % len(healthy)],
            f"normal-{k}-{uuid.uuid4().hex[:6]}",
        )
        for k in range(NORMALS)
    ]
    published: dict[str, float] = {}
    arrived: dict[str, float] = {}
    deadline = plan[-1][0] + 2 * RESUME_LIMIT_S
    while len(arrived) < NORMALS and time.monotonic() < deadline:
        for due, _token, arn, body in plan:
            if body not in published and time.monotonic() >= due:
                r = server.json(
                    "POST", "/v1/publish", {"targetArn": arn, "message": body}
                )
                assert r.status_code == 200, (
                    f"harness: a normal publish failed: {r.text}"
                )
                published[body] = time.monotonic()
        for token, _arn in healthy:
            for m in mocks.received(token):
                alert = m["payload"].get("aps", {}).get("alert")
                if alert in published and alert not in arrived:
                    arrived[alert] = time.monotonic()
        time.sleep(0.05)
    latencies = {b: round(arrived[b] - published[b], 2) for b in arrived}
    matrix.details["normal_latency_s"] = latencies
    matrix.accepted = len(published)
    matrix.lost = len(published) - len(arrived)
    matrix.recovery_s = max(latencies.values()) if not matrix.lost else math.inf
    if matrix.lost:
        matrix.problems.append(
            f"{matrix.lost} of {len(published)} normal messages to other endpoints of"
            f" the app did not arrive within {2 * RESUME_LIMIT_S:g} s, behind poison"
            f" messages (latencies of the others: {latencies})"
        )
    elif matrix.recovery_s > RESUME_LIMIT_S:
        matrix.problems.append(
            "a normal message to another endpoint of the app took"
            f" {matrix.recovery_s:.1f} s behind poison messages (limit"
            f" {RESUME_LIMIT_S:g} s; latencies {latencies})"
        )

    gone = poll(
        lambda: not poison_jobs(db, ids),
        timeout=max(0.0, t_poison + 10.0 - time.monotonic()),
        interval=0.1,
    )
    if not gone:
        left = poison_jobs(db, ids)
        matrix.problems.append(
            f"{len(left)} of {POISONED} poison jobs still in the backlog"
            f" {time.monotonic() - t_poison:.0f} s after they were written (e.g."
            f" {left[0]}); expected permanent failures"
        )
    counts = tally(mocks, [t for t, _ in endpoints])
    reached = [t for t, _ in poisoned if sum(counts[t].values())]
    if reached:
        matrix.problems.append(f"{len(reached)} poisoned endpoints received messages")
    matrix.duplicates = sum(c - 1 for per in counts.values() for c in per.values())
    if daemon_alive(server, matrix):
        check_nothing_disabled(server, fleet, matrix)
        metrics = httpx.get(server.url + "/metrics", timeout=10.0).text
        matrix.details["delivery_metrics"] = [
            line for line in metrics.splitlines() if "deliveries_total{" in line
        ]
    daemons.stop_all()
    matrix.report()
