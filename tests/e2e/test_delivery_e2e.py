"""
Delivery semantics end to end (DESIGN.md, "Delivery semantics"): real `pushgw
serve` processes against real `pushgw mock-providers`, killed, restarted and
faulted for real.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from pushgw.delivery.chunk import PROGRESS_EVERY
from pushgw.store.migrations import quote_ident
from tests.e2e.fleet import (
    Fleet,
    build_fleet,
    endpoint_enabled,
    received_counts,
    wait_until,
)
from tests.e2e.harness import Mocks, Server, free_port, write_config
from tests.e2e.prom import scrape

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PG_DSN_VAR = "PUSHGW_TEST_PG_DSN"

# Fan-out size for the crash tests. Set-up creates 20,000 endpoints and
# subscriptions one request each (no batch API): about 20-35 s with aiohttp.
FANOUT = 20_000
MAX_IN_FLIGHT = 64
CRASH_DELIVERY: dict[str, Any] = {
    "max_in_flight": MAX_IN_FLIGHT,
    "lease_s": 3.0,
    "chunk_size": 1000,
}
# Kill at this share of the fan-out: 6,500 of 20,000 is half-way through a
# 1,000-subscription chunk, not on a chunk boundary (where nothing is unsaved).
KILL_AT = 0.325
# A topic chunk weighs max_in_flight // 2 of a daemon's claim budget, so a
# daemon runs at most this many chunks at once.
CHUNKS_PER_DAEMON = MAX_IN_FLIGHT // max(1, MAX_IN_FLIGHT // 2)
# What a crash may re-send, per daemon killed, when no send straggles: in each
# running chunk, the sends not yet covered by a saved cursor -- up to
# PROGRESS_EVERY completions since the last save, plus the sends in flight then
# and those started since (each at most max_in_flight; the daemon's one send
# limiter makes this conservative). Progress records the seqs finished above a
# straggling send too, so a straggler does not widen it (the last test).
DUPLICATE_BOUND = CHUNKS_PER_DAEMON * (PROGRESS_EVERY + 2 * MAX_IN_FLIGHT)


class Daemons:
    """Starts `pushgw serve` processes for one test; stops them all at teardown."""

    def __init__(self, directory: Path, mocks: Mocks) -> None:
        self.directory = directory
        self.mocks = mocks
        self.started: list[Server] = []

    def config(
        self, store_url: str, delivery: dict[str, Any], name: str
    ) -> tuple[Path, int]:
        port = free_port()
        path = write_config(
            self.directory,
            store_url=store_url,
            mock_ports=self.mocks.ports,
            port=port,
            delivery=delivery,
            # The cluster gauges move to a survivor as fast as the crash
            # tests' job leases do (30 s by default).
            extra={"metrics": {"reporter_lease_s": 3.0}},
            name=f"{name}.toml",
        )
        return path, port

    def start(self, config: Path, port: int, name: str) -> Server:
        server = Server(self.directory, config, port, name=name)
        self.started.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.started:
            if server.process.proc.poll() is None:
                server.stop()


@pytest.fixture(name="daemons")
def _daemons(tmp_path: Path, mocks: Mocks) -> Iterator[Daemons]:
    daemons = Daemons(tmp_path, mocks)
    yield daemons
    daemons.stop_all()


def delivered(mocks: Mocks) -> int:
    return mocks.stats()["APNS"].get("delivered", 0)


def backlog(server: Server) -> int | None:
    """Jobs left in the store (delivered, failed and dropped ones are deleted):
    the states of pushgw_jobs are disjoint, so their sum is the backlog. None
    while another node is the one that reports it (pushgw_cluster_reporter)."""
    found = scrape(server)
    if found.value("pushgw_cluster_reporter") != 1:
        return None
    assert found.has("pushgw_jobs"), found.text
    return int(found.value("pushgw_jobs"))


def sent_by(server: Server) -> int:
    """Deliveries this daemon made (its own attempt counter)."""
    return int(
        scrape(server).value("pushgw_delivery_attempts_total", outcome="delivered")
    )


def publish(server: Server, fleet: Fleet, message: str) -> str:
    r = server.json(
        "POST", "/v1/publish", {"topicArn": fleet.topic_arn, "message": message}
    )
    assert r.status_code == 200, r.text
    return str(r.json()["messageId"])


def kill_mid_fanout(
    mocks: Mocks, total: int, stop: Callable[[], None], fraction: float = 0.3
) -> int:
    """Call `stop` once `fraction` of the fan-out has been delivered; the count then."""
    seen = wait_until(
        lambda: (n := delivered(mocks)) >= fraction * total and n,
        timeout=120,
        interval=0.01,
        what=f"{fraction:.0%} of {total} deliveries",
    )
    stop()
    at_kill = delivered(mocks)
    print(f"stop triggered at {seen}, {at_kill} delivered once stopped")
    assert at_kill < total, "the fan-out finished before the daemon was stopped"
    return at_kill


def finish_and_count(mocks: Mocks, server: Server, fleet: Fleet) -> int:
    """Wait for every device to be reached and the backlog to drain; duplicates."""
    n = len(fleet.endpoints)
    wait_until(
        lambda: delivered(mocks) >= n,
        timeout=150,
        interval=0.2,
        what=f"{n} deliveries after the restart",
    )
    wait_until(
        lambda: backlog(server) == 0,
        timeout=60,
        interval=0.2,
        what="the job backlog to drain",
    )
    counts = received_counts(mocks, fleet.tokens)
    missing = [t for t, c in counts.items() if c == 0]
    assert not missing, f"{len(missing)} devices never received the message"
    total = sum(counts.values())
    assert total == delivered(mocks)
    return total - n


def test_kill9_mid_fanout_sqlite_restart_delivers_everything(
    mocks: Mocks, daemons: Daemons, tmp_path: Path
) -> None:
    """kill -9 mid-way through a topic fan-out on SQLite, then a restart: every
    device gets the message, and duplicates stay within CHUNKS_PER_DAEMON x
    (PROGRESS_EVERY + 2 x max_in_flight) = 2 x (200 + 128) = 656."""
    config, port = daemons.config(
        f"sqlite:///{tmp_path / 'pushgw.db'}", CRASH_DELIVERY, "serve"
    )
    started = time.monotonic()
    server = daemons.start(config, port, "serve-1")
    fleet = build_fleet(server, mocks, valid=FANOUT)
    set_up = time.monotonic()

    publish(server, fleet, "crash-me")
    at_kill = kill_mid_fanout(mocks, FANOUT, server.process.kill9, KILL_AT)

    restarted = daemons.start(config, port, "serve-2")
    duplicates = finish_and_count(mocks, restarted, fleet)
    print(
        f"set-up {set_up - started:.0f} s, delivery {time.monotonic() - set_up:.0f}"
        f" s; killed at {at_kill}/{FANOUT}; {duplicates} duplicates"
    )
    assert duplicates <= DUPLICATE_BOUND


@pytest.mark.postgres
def test_kill9_one_of_two_daemons_on_postgres_other_finishes(
    mocks: Mocks, daemons: Daemons
) -> None:
    """Two daemons share PostgreSQL; kill -9 one mid fan-out and the other takes
    over its leased chunks once the 3 s leases run out: every device gets the
    message, duplicates stay within one daemon's window (DUPLICATE_BOUND)."""
    dsn, schema, store_url = pg_schema()
    try:
        config_a, port_a = daemons.config(store_url, CRASH_DELIVERY, "serve-a")
        config_b, port_b = daemons.config(store_url, CRASH_DELIVERY, "serve-b")
        started = time.monotonic()
        a = daemons.start(config_a, port_a, "serve-a")
        b = daemons.start(config_b, port_b, "serve-b")
        fleet = build_fleet(a, mocks, valid=FANOUT)

        set_up = time.monotonic()
        publish(b, fleet, "crash-one")
        at_kill = kill_mid_fanout(mocks, FANOUT, a.process.kill9, KILL_AT)

        duplicates = finish_and_count(mocks, b, fleet)
        by_b = sent_by(b)
        print(
            f"set-up {set_up - started:.0f} s, delivery {time.monotonic() - set_up:.0f}"
            f" s; daemon A killed at {at_kill}/{FANOUT}; B sent {by_b};"
            f" {duplicates} duplicates"
        )
        assert 0 < by_b < FANOUT + duplicates, "both daemons must have delivered"
        assert duplicates <= DUPLICATE_BOUND
        assert "job_failed" not in b.process.logs()
    finally:
        daemons.stop_all()
        drop_schema(dsn, schema)


def pg_schema() -> tuple[str, str, str]:
    """$PUSHGW_TEST_PG_DSN, a new schema's name and the store URL on it (the
    test is skipped without the variable); drop it with `drop_schema`."""
    dsn = os.environ.get(PG_DSN_VAR)
    if not dsn:
        pytest.skip(f"{PG_DSN_VAR} is not set; CI sets it")
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in dsn else "?"
    return dsn, schema, f"{dsn}{sep}schema={schema}"


def drop_schema(dsn: str, schema: str) -> None:
    """Drop a test schema (and everything in it)."""

    async def drop() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        finally:
            await conn.close()

    asyncio.run(drop())


def test_provider_503_then_recovery_loses_nothing_and_honours_retry_after(
    mocks: Mocks, daemons: Daemons, tmp_path: Path
) -> None:
    """APNs answers 503 + Retry-After: 1 to the first 60 sends, then recovers:
    every device gets the message exactly once, none before Retry-After has
    passed, and no endpoint is disabled."""
    delivery = {"app_backoff_s": 1.0, "retry_base_s": 0.2, "retry_max_s": 2.0}
    config, port = daemons.config(
        f"sqlite:///{tmp_path / 'pushgw.db'}", delivery, "serve"
    )
    server = daemons.start(config, port, "serve")
    fleet = build_fleet(server, mocks, valid=50)
    failures = 60  # every first attempt, and some second ones
    mocks.faults("APNS", [{"kind": "unavailable", "count": failures, "retry_after": 1}])

    started = time.monotonic()
    publish(server, fleet, "after-the-outage")
    quick_publish = time.monotonic() - started < 0.8  # room to look before 1 s
    early: list[int] = []  # deliveries seen while no Retry-After can have passed

    def all_delivered() -> bool:
        count = delivered(mocks)
        if time.monotonic() < started + 1.0:
            early.append(count)
        return count >= 50

    wait_until(all_delivered, timeout=60, interval=0.05, what="50 deliveries")
    elapsed = time.monotonic() - started
    wait_until(lambda: backlog(server) == 0, timeout=30, what="an empty backlog")

    stats = mocks.stats()["APNS"]
    assert stats["ServiceUnavailable"] == failures
    assert max(early, default=0) == 0, f"delivered before Retry-After: {early}"
    assert early or not quick_publish, "no look at the mocks in the first second"
    assert elapsed >= 1.0
    counts = received_counts(mocks, fleet.tokens)
    assert set(counts.values()) == {1}, counts
    enabled = endpoint_enabled(server, list(fleet.endpoints.values()))
    assert set(enabled.values()) == {"true"}
    # 60 failed attempts make a few log lines, not 60: the first at once, the
    # rest summed per app and reason (pushgw/logsummary.py).
    lines = [
        json.loads(line)
        for line in server.process.logs().splitlines()
        if '"delivery_retry_scheduled' in line
    ]
    assert 1 <= len(lines) <= 4, lines
    assert lines[0]["level"] == "warning"
    assert lines[0]["logger"] == "pushgw.delivery"
    # A first-occurrence line stands for one attempt, a summary for its repeats.
    assert sum(line.get("repeats", 1) for line in lines) <= failures


def test_invalid_tokens_disable_exactly_the_bad_endpoints(
    mocks: Mocks, daemons: Daemons, tmp_path: Path
) -> None:
    """A topic of 20 valid, 5 unregistered and 5 invalid APNs tokens: exactly the
    10 bad endpoints end up Enabled=false; the 20 good ones stay enabled and
    each receive the message once."""
    config, port = daemons.config(f"sqlite:///{tmp_path / 'pushgw.db'}", {}, "serve")
    server = daemons.start(config, port, "serve")
    fleet = build_fleet(
        server, mocks, valid=20, bad_states=["unregistered"] * 5 + ["invalid"] * 5
    )
    good = fleet.tokens[:20]
    bad = fleet.tokens[20:]

    publish(server, fleet, "hygiene")
    wait_until(lambda: backlog(server) == 0, timeout=60, what="an empty backlog")
    wait_until(lambda: delivered(mocks) >= 20, timeout=30, what="20 deliveries")

    enabled = endpoint_enabled(server, list(fleet.endpoints.values()))
    assert {t for t in bad if enabled[fleet.endpoints[t]] == "false"} == set(bad)
    assert {t for t in good if enabled[fleet.endpoints[t]] == "true"} == set(good)
    counts = received_counts(mocks, fleet.tokens)
    assert all(counts[t] == 1 for t in good), counts
    assert all(counts[t] == 0 for t in bad), counts
    assert delivered(mocks) == 20


def test_sigterm_mid_fanout_then_restart_delivers_everything(
    mocks: Mocks, daemons: Daemons, tmp_path: Path
) -> None:
    """SIGTERM during a fan-out stops the daemon gracefully (in-flight chunks
    finish, leases released); after a restart every device gets the message,
    with duplicates within DUPLICATE_BOUND."""
    n = 3_000
    config, port = daemons.config(
        f"sqlite:///{tmp_path / 'pushgw.db'}", CRASH_DELIVERY, "serve"
    )
    started = time.monotonic()
    server = daemons.start(config, port, "serve-1")
    fleet = build_fleet(server, mocks, valid=n)
    set_up = time.monotonic()

    publish(server, fleet, "graceful")
    at_stop = kill_mid_fanout(mocks, n, lambda: server.stop())
    assert server.process.proc.returncode == 0, server.process.logs()[-3000:]

    restarted = daemons.start(config, port, "serve-2")
    duplicates = finish_and_count(mocks, restarted, fleet)
    print(
        f"set-up {set_up - started:.0f} s, delivery {time.monotonic() - set_up:.0f}"
        f" s; stopped at {at_stop}/{n}; {duplicates} duplicates"
    )
    assert duplicates <= DUPLICATE_BOUND


def test_kill9_with_a_straggling_send_keeps_duplicates_bounded(
    mocks: Mocks, daemons: Daemons, tmp_path: Path
) -> None:
    """One send that never gets an answer must not widen what a crash re-sends:
    duplicates stay within DUPLICATE_BOUND even with a straggler in the chunk."""
    n = 2_000
    config, port = daemons.config(
        f"sqlite:///{tmp_path / 'pushgw.db'}", CRASH_DELIVERY, "serve"
    )
    server = daemons.start(config, port, "serve-1")
    fleet = build_fleet(server, mocks, valid=n)
    straggler = fleet.tokens[4]
    mocks.faults("APNS", [{"kind": "hang", "token_prefix": straggler, "count": 1}])

    publish(server, fleet, "straggler")
    kill_mid_fanout(mocks, n, server.process.kill9, fraction=0.75)

    restarted = daemons.start(config, port, "serve-2")
    duplicates = finish_and_count(mocks, restarted, fleet)
    print(f"{duplicates} duplicates with one straggling send")
    assert duplicates <= DUPLICATE_BOUND
