"""
The delivery ledger with real processes: a scripted run against the mocks
(deliveries, invalid tokens, a permanent failure, an expired message) whose
ledger counts equal the mocks' counts exactly; a dead letter replayed after the
mock recovers is delivered once; SIGTERM keeps what was counted; retention
prunes; a publish-only key cannot read the ledger.
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
        assert {"delivered": 1, "failed": 0, "expired": 0} == ledger_totals(
            server, last
        )
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
    token = mocks.device("APNS")["token"]
    apps = ok(server.json("GET", "/v1/platform-applications"))
    app_arn = apps["platformApplications"][0]["platformApplicationArn"]
    endpoint = ok(
        server.json(
            "POST", f"/v1/platform-applications/{app_arn}/endpoints", {"token": token}
        ),
        201,
    )["endpointArn"]
    return publish(server, {"targetArn": endpoint, "message": label, **body})


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
    wait_until(
        lambda: (
            ledger_totals(server, fan_out)
            == {"delivered": VALID, "failed": INVALID, "expired": 0}
        ),
        timeout=60,
        what="the fan-out's ledger totals",
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

    # An expired message: the device's APNs answers 503 until the TTL runs out.
    token = mocks.device("APNS")["token"]
    mocks.faults("APNS", [{"kind": "unavailable", "token_prefix": token}])
    apps = ok(server.json("GET", "/v1/platform-applications"))
    app_arn = apps["platformApplications"][0]["platformApplicationArn"]
    endpoint = ok(
        server.json(
            "POST", f"/v1/platform-applications/{app_arn}/endpoints", {"token": token}
        ),
        201,
    )["endpointArn"]
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
    wait_until(
        lambda: (
            ledger_totals(server, expiring)
            == {"delivered": 1, "failed": 0, "expired": 1}
        ),
        timeout=30,
        what="the replay in the ledger",
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
