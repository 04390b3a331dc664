"""
The delivery ledger with real processes: a scripted run against the mocks
(deliveries, invalid tokens, a permanent failure, a message retrying through an
outage, an expired message) whose ledger counts equal the mocks' counts
exactly; a dead letter replayed after the mock recovers is delivered once;
SIGTERM keeps what was counted; retention prunes; a publish-only key cannot
read the ledger.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.fleet import build_fleet, wait_until
from tests.e2e.harness import (
    PUBLISH_API_KEY,
    Mocks,
    Server,
    start_server,
)
from tests.e2e.test_delivery_e2e import drop_schema

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

VALID = 20  # devices that take the fan-out
INVALID = 3  # devices the mock reports unregistered (410)
TTL_S = "4"  # the expiring message's AWS.SNS.MOBILE.APNS.TTL
DELIVERY = {"app_backoff_s": 0.2, "retry_base_s": 0.2, "retry_max_s": 1.0}


@pytest.fixture(
    name="store_url",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def _store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The daemons' store: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'pushgw.db'}"
        return
    dsn = os.environ.get("PUSHGW_TEST_PG_DSN")
    if not dsn:
        pytest.skip("PUSHGW_TEST_PG_DSN is not set; CI sets it")
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    yield f"{dsn}{'&' if '?' in dsn else '?'}schema={schema}"
    drop_schema(dsn, schema)


def start(
    tmp_path: Path, mocks: Mocks, store_url: str, name: str, **ledger: Any
) -> Server:
    return start_server(
        tmp_path,
        mocks,
        store_url=store_url,
        name=name,
        delivery=DELIVERY,
        extra={"ledger": ledger} if ledger else None,
    )


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert status == response.status_code, response.text
    return response.json()


def publish(server: Server, body: dict[str, Any]) -> str:
    return str(ok(server.json("POST", "/v1/publish", body))["messageId"])


def ledger_totals(server: Server, message_id: str) -> dict[str, int] | None:
    r = server.json("GET", f"/v1/messages/{message_id}")
    return dict(r.json()["totals"]) if r.status_code == 200 else None


def wait_for_totals(server: Server, message_id: str, what: str, **totals: int) -> None:
    """Until the message's totals are these (none pending) in the ledger."""
    want = {"delivered": 0, "failed": 0, "expired": 0, "pending": 0, **totals}
    wait_until(lambda: ledger_totals(server, message_id) == want, timeout=60, what=what)


def deliveries(server: Server, **params: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return list(ok(server.json("GET", f"/v1/deliveries?{query}"))["deliveries"])


def rollup_totals(server: Server) -> dict[str, int]:
    stats = ok(server.json("GET", "/v1/stats/deliveries?since=0&bucketSeconds=86400"))
    totals = {"delivered": 0, "failed": 0, "expired": 0}
    for bucket in stats["buckets"]:
        for status in totals:
            totals[status] += bucket[status]
    return totals


def test_ledger_counts_match_the_mocks_and_replay_delivers_once(
    tmp_path: Path, mocks: Mocks, store_url: str
) -> None:
    server = start(tmp_path, mocks, store_url, "serve")
    try:
        run_the_script(server, mocks)
        # SIGTERM: what the ledger counted is in the store after a restart.
        before = rollup_totals(server)
        last = publish_to_a_new_device(server, mocks, "after-sigterm")
        wait_until(
            lambda: mocks.stats()["APNS"]["delivered"] == before["delivered"] + 1,
            timeout=30,
            what="the last delivery",
        )
    finally:
        server.stop()

    server = start(tmp_path, mocks, store_url, "restarted")
    try:
        after = rollup_totals(server)
        assert {**before, "delivered": before["delivered"] + 1} == after
        assert {
            "delivered": 1,
            "failed": 0,
            "expired": 0,
            "pending": 0,
        } == ledger_totals(server, last)
        assert mocks.stats()["APNS"]["delivered"] == after["delivered"]
    finally:
        server.stop()

    # Retention: a daemon keeping one second prunes the rest at start.
    time.sleep(1.1)
    server = start(tmp_path, mocks, store_url, "pruning", retention_s=1.0)
    try:
        wait_until(lambda: not deliveries(server), timeout=30, what="the prune")
        assert None is ledger_totals(server, last)
        assert "ledger_pruned" in server.process.logs()
    finally:
        server.stop()


def publish_to_a_new_device(
    server: Server, mocks: Mocks, label: str, **body: Any
) -> str:
    endpoint = new_endpoint(server, mocks.device("APNS")["token"])
    return publish(server, {"targetArn": endpoint, "message": label, **body})


def new_endpoint(server: Server, token: str) -> str:
    """An endpoint of the fleet's APNs application for the device `token`."""
    apps = ok(server.json("GET", "/v1/platform-applications"))
    app_arn = apps["platformApplications"][0]["platformApplicationArn"]
    return str(
        ok(
            server.json(
                "POST",
                f"/v1/platform-applications/{app_arn}/endpoints",
                {"token": token},
            ),
            201,
        )["endpointArn"]
    )


def run_the_script(server: Server, mocks: Mocks) -> None:
    # A publish-only key publishes but cannot read the ledger nor replay.
    publisher = {"Authorization": f"Bearer {PUBLISH_API_KEY}"}
    for method, path in (
        ("GET", "/v1/deliveries"),
        ("GET", "/v1/queue"),
        ("GET", "/v1/stats/deliveries"),
        ("GET", "/v1/messages/x"),
        ("POST", "/v1/deliveries/replay"),
    ):
        r = httpx.request(
            method, server.url + path, headers=publisher, json={"ids": [1]}, timeout=10
        )
        assert 403 == r.status_code, (path, r.text)
        assert "AccessDenied" == r.json()["error"]["code"]

    fleet = build_fleet(
        server, mocks, valid=VALID, bad_states=["unregistered"] * INVALID
    )
    fan_out = publish(server, {"topicArn": fleet.topic_arn, "message": "fan-out"})
    wait_for_totals(
        server,
        fan_out,
        "the fan-out's ledger totals",
        delivered=VALID,
        failed=INVALID,
        expired=0,
    )
    stats = mocks.stats()["APNS"]
    assert (VALID, INVALID) == (stats["delivered"], stats["unregistered"])
    counts = ok(server.json("GET", f"/v1/messages/{fan_out}"))["counts"]
    assert [
        {
            "platform": "APNS",
            "status": "delivered",
            "failureType": None,
            "count": VALID,
        },
        {
            "platform": "APNS",
            "status": "failed",
            "failureType": "InvalidPlatformToken",
            "count": INVALID,
        },
    ] == counts
    invalid = deliveries(server, message=fan_out)
    assert INVALID == len(invalid)
    assert {410} == {d["providerStatus"] for d in invalid}
    assert all(d["deadLetter"] for d in invalid)

    # A permanent failure: APNs refuses a collapse id over 64 bytes (400).
    collapse = {"dataType": "String", "stringValue": "c" * 65}
    permanent = publish_to_a_new_device(
        server,
        mocks,
        "refused",
        messageAttributes={"AWS.SNS.MOBILE.APNS.COLLAPSE_ID": collapse},
    )
    wait_until(
        lambda: deliveries(server, message=permanent), timeout=30, what="the refusal"
    )
    (refused,) = deliveries(server, message=permanent)
    assert ("failed", "DeliveryFailedPerm", 400) == (
        refused["status"],
        refused["failureType"],
        refused["providerStatus"],
    )
    assert 1 == mocks.stats()["APNS"]["BadCollapseId"]

    follow_a_message_through_an_outage(server, mocks)

    # An expired message: the device's APNs answers 503 until the TTL runs out.
    token = mocks.device("APNS")["token"]
    mocks.faults("APNS", [{"kind": "unavailable", "token_prefix": token}])
    endpoint = new_endpoint(server, token)
    ttl = {"dataType": "String", "stringValue": TTL_S}
    expiring = publish(
        server,
        {
            "targetArn": endpoint,
            "message": "expiring",
            "messageAttributes": {"AWS.SNS.MOBILE.APNS.TTL": ttl},
        },
    )
    wait_until(
        lambda: deliveries(server, message=expiring, status="expired"),
        timeout=30,
        what="the dead letter",
    )
    assert [] == mocks.received(token)
    assert mocks.stats()["APNS"]["unavailable"] >= 1

    # The mock recovers; the dead letter is replayed, once.
    mocks.faults("APNS", [])
    replay = server.json("POST", "/v1/deliveries/replay", {"messageId": expiring})
    assert {"replayed": 1, "remaining": 0} == ok(replay)
    wait_until(lambda: mocks.received(token), timeout=30, what="the replayed delivery")
    again = server.json("POST", "/v1/deliveries/replay", {"messageId": expiring})
    assert {"replayed": 0, "remaining": 0} == ok(again)
    wait_for_totals(
        server, expiring, "the replay in the ledger", delivered=1, failed=0, expired=1
    )
    time.sleep(1.5)
    assert 1 == len(mocks.received(token))
    (dead,) = deliveries(server, message=expiring)
    assert ("expired", "NotificationTTLExpired") == (
        dead["status"],
        dead["failureType"],
    )
    assert dead["replayedAt"] is not None
    assert "dead_letters_replayed" in server.process.logs()

    # The rollup adds up to what the mock saw, exactly.
    stats = mocks.stats()["APNS"]
    assert {
        "delivered": stats["delivered"],
        "failed": stats["unregistered"] + stats["BadCollapseId"],
        "expired": 1,
    } == rollup_totals(server)
    queue = ok(server.json("GET", "/v1/queue"))
    assert {"due", "leased", "scheduled", "waiting_for_app"} == set(queue["totals"])


def follow_a_message_through_an_outage(server: Server, mocks: Mocks) -> None:
    """While APNs answers 503 the message is pending on APNS, its first send
    made (firstAttemptAt set before any outcome); once APNs is back it is
    delivered and nothing is pending."""
    token = mocks.device("APNS")["token"]
    mocks.faults("APNS", [{"kind": "unavailable", "token_prefix": token}])
    endpoint = new_endpoint(server, token)
    retrying = publish(server, {"targetArn": endpoint, "message": "retrying"})

    def view() -> dict[str, Any]:
        return dict(ok(server.json("GET", f"/v1/messages/{retrying}")))

    wait_until(
        lambda: view()["firstAttemptAt"] is not None,
        timeout=30,
        what="the retrying message's first attempt in the ledger",
    )
    during = view()
    assert [
        {"platform": "APNS", "status": "pending", "failureType": None, "count": 1}
    ] == during["counts"]
    assert {"delivered": 0, "failed": 0, "expired": 0, "pending": 1} == during["totals"]
    assert 1 == during["pendingJobs"]
    assert {"chunks": 0, "subscriptions": 0, "more": False} == during["pendingFanout"]
    assert mocks.stats()["APNS"]["unavailable"] >= 1
    assert [] == mocks.received(token)

    mocks.faults("APNS", [])
    wait_for_totals(
        server,
        retrying,
        "the retried delivery in the ledger",
        delivered=1,
        failed=0,
        expired=0,
    )
    after = view()
    assert 0 == after["pendingJobs"]
    assert after["firstAttemptAt"] == during["firstAttemptAt"]
    assert after["lastAttemptAt"] > after["firstAttemptAt"]
    assert 1 == len(mocks.received(token))
