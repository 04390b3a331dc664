"""The admin JSON API in-process: the queue, the ledger, replay, the admin scope
(shared-notes/admin-api-contract.md)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer

from pushgw.api.admin_api import ADMIN_ROUTES, parse_time
from pushgw.api.app import make_app
from pushgw.arn import ArnBuilder
from pushgw.config import config_from_mapping
from pushgw.errors import InvalidParameterError
from pushgw.model import (
    Endpoint,
    Message,
    Platform,
    PlatformApplication,
    Subscription,
)
from pushgw.service import Service
from pushgw.store.base import NewJob
from pushgw.store.ledger_model import DeliveryRecord, LedgerBatch, MessageCounts
from pushgw.store.memory import InMemoryStore

ADMIN_KEY = "admin-json-key"
PLAIN_KEY = "all-actions-json-key"
PUBLISH_KEY = "publish-only-json-key"
CONFIG = {
    "auth": {
        "api_keys": [
            {"name": "admin", "key": ADMIN_KEY, "admin": True},
            {"name": "plain", "key": PLAIN_KEY},
            {"name": "publisher", "key": PUBLISH_KEY, "actions": ["Publish"]},
        ]
    },
}
NOW = 1_700_000_040.0  # a minute's first second
APP_ARN = "arn:aws:sns:us-east-1:123456789012:app/GCM/droid"
OTHER_APP = "arn:aws:sns:us-east-1:123456789012:app/APNS/ios"


def endpoint_arn(n: int) -> str:
    return f"arn:aws:sns:us-east-1:123456789012:endpoint/GCM/droid/{n}"


def message(n: int) -> Message:
    return Message(
        id=f"m-{n}", body=f"body {n}", target_arn=endpoint_arn(n), created_at=NOW
    )


async def add_endpoints(store: InMemoryStore, *numbers: int) -> None:
    """The GCM application APP_ARN with the endpoints `endpoint_arn(n)`."""
    await store.put_app(
        PlatformApplication(
            arn=APP_ARN,
            name="droid",
            platform=Platform.GCM,
            principal="",
            credential="k",
        )
    )
    for n in numbers:
        await store.insert_endpoint(
            Endpoint(arn=endpoint_arn(n), app_arn=APP_ARN, token=f"t{n}")
        )


def record(n: int, status: str = "failed", **kw: Any) -> DeliveryRecord:
    fields: dict[str, Any] = {
        "message_id": f"m-{n}",
        "endpoint_arn": endpoint_arn(n),
        "app_arn": APP_ARN,
        "platform": "GCM",
        "status": status,
        "failure_type": {"failed": "InvalidPlatformToken"}.get(
            status, "NotificationTTLExpired" if status == "expired" else None
        ),
        "reason": "NotRegistered",
        "provider_status": 404,
        "attempts": 2,
        "at": NOW + n,
    }
    fields.update(kw)
    return DeliveryRecord(**fields)


class Admin:
    def __init__(self, client: TestClient[Any, Any], store: InMemoryStore) -> None:
        self.client = client
        self.store = store
        self.replayed: list[Message] = []

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = ADMIN_KEY,
        params: Any = None,
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        data = json.dumps(body).encode() if body is not None else None
        response = await self.client.request(
            method, path, data=data, headers=headers, params=params
        )
        text = await response.text()
        return response.status, (json.loads(text) if text else None)

    async def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, payload = await self.call(method, path, body, **kw)
        assert 200 == status, payload
        return payload

    async def error(
        self,
        status: int,
        code: str,
        method: str,
        path: str,
        body: Any = None,
        **kw: Any,
    ) -> str:
        got, payload = await self.call(method, path, body, **kw)
        assert status == got, payload
        assert code == payload["error"]["code"], payload
        return str(payload["error"]["message"])


@pytest.fixture(name="admin")
async def _admin() -> AsyncIterator[Admin]:
    store = InMemoryStore()
    service = Service(
        store=store,
        arns=ArnBuilder("us-east-1", "123456789012"),
        clock=lambda: NOW + 1000,
    )
    replayed: list[Message] = []
    app = make_app(
        config=config_from_mapping(CONFIG), service=service, on_replay=replayed.append
    )
    async with TestClient(TestServer(app)) as client:
        admin = Admin(client, store)
        admin.replayed = replayed
        yield admin


async def test_admin_routes_need_an_admin_key(admin: Admin) -> None:
    """No key: 401; a valid key without the admin scope (even one allowed every
    SNS action): 403 AccessDenied, on every admin route."""
    for method, path in ADMIN_ROUTES:
        path = path.replace("{messageId}", "m-1")
        body = {"ids": [1]} if method == "POST" else None
        await admin.error(401, "Unauthorized", method, path, body, key=None)
        await admin.error(401, "Unauthorized", method, path, body, key="nope")
        for key in (PLAIN_KEY, PUBLISH_KEY):
            message = await admin.error(
                403, "AccessDenied", method, path, body, key=key
            )
            assert "admin" in message


async def test_queue_reports_the_backlog_by_state(admin: Admin) -> None:
    store = admin.store
    await add_endpoints(store, 1)
    await store.enqueue(
        message(1),
        [
            NewJob("endpoint", endpoint_arn=endpoint_arn(1), next_attempt_at=NOW),
            NewJob(
                "endpoint", endpoint_arn=endpoint_arn(1), next_attempt_at=NOW + 5000
            ),
            NewJob("topic", topic_arn="arn:aws:sns:us-east-1:123456789012:t"),
        ],
    )

    queue = await admin.ok("GET", "/v1/queue")

    assert {"due": 2, "leased": 0, "scheduled": 1, "waiting_for_app": 0} == queue[
        "totals"
    ]
    assert [
        {
            "state": "due",
            "kind": "endpoint",
            "appArn": APP_ARN,
            "platform": "GCM",
            "jobs": 1,
        },
        {"state": "due", "kind": "topic", "appArn": None, "platform": None, "jobs": 1},
        {
            "state": "scheduled",
            "kind": "endpoint",
            "appArn": APP_ARN,
            "platform": "GCM",
            "jobs": 1,
        },
    ] == queue["backlog"]


async def test_message_shows_counts_and_totals(admin: Admin) -> None:
    m = message(1)
    await admin.store.record_ledger(
        LedgerBatch(
            messages=[
                MessageCounts(
                    message_id=m.id,
                    topic_arn=None,
                    target_arn=m.target_arn,
                    created_at=NOW,
                    first_at=NOW + 1,
                    last_at=NOW + 3,
                    first_attempt_at=NOW + 1.5,
                    last_attempt_at=NOW + 2,
                    counts={
                        ("GCM", "delivered", None): 7,
                        ("GCM", "failed", "InvalidPlatformToken"): 2,
                        ("GCM", "failed", "DeliveryFailedPerm"): 1,
                    },
                )
            ]
        )
    )

    got = await admin.ok("GET", "/v1/messages/m-1")
    await admin.error(404, "NotFound", "GET", "/v1/messages/m-404")

    assert {
        "messageId": "m-1",
        "topicArn": None,
        "targetArn": m.target_arn,
        "createdAt": "2023-11-14T22:14:00.000Z",
        "firstAttemptAt": "2023-11-14T22:14:01.500Z",
        "lastAttemptAt": "2023-11-14T22:14:02.000Z",
        "pendingJobs": 0,
        "pendingFanout": {"chunks": 0, "subscriptions": 0, "more": False},
        "counts": [
            {"platform": "GCM", "status": "delivered", "failureType": None, "count": 7},
            {
                "platform": "GCM",
                "status": "failed",
                "failureType": "DeliveryFailedPerm",
                "count": 1,
            },
            {
                "platform": "GCM",
                "status": "failed",
                "failureType": "InvalidPlatformToken",
                "count": 2,
            },
        ],
        "totals": {"delivered": 7, "failed": 3, "expired": 0, "pending": 0},
    } == got


async def test_a_queued_message_has_pending_jobs_and_no_attempt(admin: Admin) -> None:
    await admin.store.enqueue(message(3), [NewJob("endpoint", endpoint_arn="e")])

    got = await admin.ok("GET", "/v1/messages/m-3")

    assert (1, None) == (got["pendingJobs"], got["firstAttemptAt"])
    pending = {"platform": None, "status": "pending", "failureType": None, "count": 1}
    assert [pending] == got["counts"]  # the endpoint "e" does not exist
    assert 1 == got["totals"]["pending"]


async def test_message_counts_pending_deliveries_by_platform(
    admin: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message still queued: its deliveries pending by platform next to its
    outcomes, in totals.pending, and its fan-out not expanded yet; past the
    jobs read (PENDING_READ) the platform is not known (null)."""
    store = admin.store
    await add_endpoints(store, 1, 2)
    topic = "arn:aws:sns:us-east-1:123456789012:t"
    for n in (1, 2):
        await store.insert_subscription(
            Subscription(arn=f"{topic}:{n}", topic_arn=topic, endpoint_arn=f"e{n}")
        )
    await store.enqueue(
        message(1),
        [
            *(NewJob("endpoint", endpoint_arn=endpoint_arn(n)) for n in (1, 2)),
            NewJob("topic", topic_arn=topic, next_attempt_at=NOW + 999),
        ],
    )
    await store.record_ledger(
        LedgerBatch(
            messages=[
                MessageCounts(
                    message_id="m-1",
                    topic_arn=None,
                    target_arn=None,
                    created_at=NOW,
                    first_at=NOW + 1,
                    last_at=NOW + 1,
                    first_attempt_at=NOW + 1,
                    last_attempt_at=NOW + 1,
                    counts={},
                )
            ]
        )
    )

    got = await admin.ok("GET", "/v1/messages/m-1")
    monkeypatch.setattr("pushgw.api.admin_api.PENDING_READ", 1)
    capped = await admin.ok("GET", "/v1/messages/m-1")

    assert (3, "2023-11-14T22:14:01.000Z") == (
        got["pendingJobs"],
        got["firstAttemptAt"],
    )
    assert [
        {"platform": "GCM", "status": "pending", "failureType": None, "count": 2}
    ] == got["counts"]
    assert {"delivered": 0, "failed": 0, "expired": 0, "pending": 2} == got["totals"]
    assert {"chunks": 1, "subscriptions": 2, "more": False} == got["pendingFanout"]
    assert [("GCM", 1), (None, 1)] == [
        (c["platform"], c["count"]) for c in capped["counts"]
    ]
    assert 2 == capped["totals"]["pending"]
    assert {"chunks": 1, "subscriptions": 1, "more": True} == capped["pendingFanout"]


async def fill(admin: Admin) -> None:
    await admin.store.record_ledger(
        LedgerBatch(
            deliveries=[
                record(1),
                record(2, "expired"),
                record(3, "delivered", failure_type=None, provider_status=200),
                record(4, app_arn=OTHER_APP, platform="APNS", provider_status=None),
                record(5),
            ],
            dead_messages=[message(n) for n in (1, 2, 4, 5)],
        )
    )


async def test_deliveries_page_newest_first(admin: Admin) -> None:
    await fill(admin)

    first = await admin.ok("GET", "/v1/deliveries", params={"limit": "2"})
    second = await admin.ok(
        "GET", "/v1/deliveries", params={"limit": "2", "nextToken": first["nextToken"]}
    )
    third = await admin.ok(
        "GET", "/v1/deliveries", params={"limit": "2", "nextToken": second["nextToken"]}
    )

    pages = [first, second, third]
    assert [5, 4, 3, 2, 1] == [d["id"] for p in pages for d in p["deliveries"]]
    assert None is third["nextToken"]
    assert {
        "id": 4,
        "messageId": "m-4",
        "endpointArn": endpoint_arn(4),
        "appArn": OTHER_APP,
        "platform": "APNS",
        "status": "failed",
        "failureType": "InvalidPlatformToken",
        "reason": "NotRegistered",
        "providerStatus": None,
        "attempts": 2,
        "at": "2023-11-14T22:14:04.000Z",
        "deadLetter": True,
        "replayedAt": None,
    } == first["deliveries"][1]
    assert [False] == [
        d["deadLetter"]
        for p in pages
        for d in p["deliveries"]
        if d["status"] == "delivered"
    ]


@pytest.mark.parametrize(
    ("params", "ids"),
    [
        ({"status": "failed"}, [5, 4, 1]),
        ({"status": "expired"}, [2]),
        ({"app": OTHER_APP}, [4]),
        ({"endpoint": endpoint_arn(2)}, [2]),
        ({"message": "m-3"}, [3]),
        ({"reason": "NotificationTTLExpired"}, [2]),
        ({"since": "2023-11-14T22:14:04Z"}, [5, 4]),
        ({"since": str(NOW + 4)}, [5, 4]),
        ({"since": "2023-11-14T22:14:04"}, [5, 4]),  # no zone: UTC
        ({"deadLetter": "true"}, [5, 4, 2, 1]),
        ({"deadLetter": "false"}, [3]),
        ({"status": "failed", "app": APP_ARN}, [5, 1]),
    ],
)
async def test_deliveries_filters(
    admin: Admin, params: dict[str, str], ids: list[int]
) -> None:
    await fill(admin)

    got = await admin.ok("GET", "/v1/deliveries", params=params)

    assert ids == [d["id"] for d in got["deliveries"]]


@pytest.mark.parametrize(
    "params",
    [
        {"status": "bogus"},
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
        {"deadLetter": "yes"},
        {"replayed": "1"},
        {"since": "yesterday"},
        {"since": "nan"},
        {"nextToken": "forged"},
        {"failureType": "x"},  # unknown: the filter is `reason`
    ],
)
async def test_bad_delivery_filters_are_400(
    admin: Admin, params: dict[str, str]
) -> None:
    message = await admin.error(
        400, "InvalidParameter", "GET", "/v1/deliveries", params=params
    )
    assert message.startswith("Invalid parameter")


async def test_replay_queues_dead_letters_and_logs_an_audit_line(admin: Admin) -> None:
    """Replay by message (and by ids): jobs queued, records marked replayed,
    the dispatcher told, one audit line per call; a second replay finds none."""
    await fill(admin)

    with structlog.testing.capture_logs() as logs:
        first = await admin.ok("POST", "/v1/deliveries/replay", {"messageId": "m-1"})
        by_ids = await admin.ok(
            "POST", "/v1/deliveries/replay", {"ids": [2, 3], "limit": 5}
        )
        again = await admin.ok("POST", "/v1/deliveries/replay", {"messageId": "m-1"})

    assert {"replayed": 1, "remaining": 0} == first
    assert {
        "replayed": 1,
        "remaining": 0,
    } == by_ids  # 3 is a success, not a dead letter
    assert {"replayed": 0, "remaining": 0} == again
    assert ["m-1", "m-2"] == [m.id for m in admin.replayed]
    assert NOW + 1000 == admin.replayed[0].created_at  # stored anew: a fresh TTL
    audit = [e for e in logs if e["event"] == "dead_letters_replayed"]
    assert [1, 1, 0] == [e["replayed"] for e in audit]
    assert ("admin", "m-1", None) == (
        audit[0]["key"],
        audit[0]["message_id"],
        audit[0]["ids"],
    )
    assert 2 == audit[1]["ids"]
    jobs = await admin.store.claim_jobs(owner="w", limit=10, lease_s=30, now=NOW + 1000)
    assert {endpoint_arn(1), endpoint_arn(2)} == {j.endpoint_arn for j in jobs}
    listed = await admin.ok("GET", "/v1/deliveries", params={"message": "m-1"})
    assert "2023-11-14T22:30:40.000Z" == listed["deliveries"][0]["replayedAt"]
    replayed = await admin.ok("GET", "/v1/deliveries", params={"replayed": "true"})
    waiting = await admin.ok(
        "GET", "/v1/deliveries", params={"deadLetter": "true", "replayed": "false"}
    )
    assert [2, 1] == [d["id"] for d in replayed["deliveries"]]
    assert [5, 4] == [d["id"] for d in waiting["deliveries"]]


async def test_replay_by_app_reason_and_since_in_limited_calls(admin: Admin) -> None:
    """A client replays many by calling until nothing remains."""
    await fill(admin)
    body = {"app": APP_ARN, "reason": "InvalidPlatformToken", "since": 0, "limit": 1}

    calls = []
    while not calls or calls[-1]["remaining"]:
        calls.append(await admin.ok("POST", "/v1/deliveries/replay", body))

    assert [{"replayed": 1, "remaining": 1}, {"replayed": 1, "remaining": 0}] == calls
    assert ["m-1", "m-5"] == [m.id for m in admin.replayed]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"limit": 10},
        {"ids": "1"},
        {"ids": [1, "2"]},
        {"ids": [True]},
        {"messageId": 5},
        {"app": ""},
        {"since": "soon"},
        {"ids": [1], "limit": 0},
        {"ids": [1], "limit": 10_001},
        {"ids": [1], "status": "failed"},
    ],
)
async def test_bad_replays_are_400(admin: Admin, body: dict[str, Any]) -> None:
    await fill(admin)

    await admin.error(400, "InvalidParameter", "POST", "/v1/deliveries/replay", body)

    assert [] == admin.replayed


async def test_replay_body_must_be_a_json_object(admin: Admin) -> None:
    status, payload = await admin.call("POST", "/v1/deliveries/replay", [1, 2])
    assert 400 == status, payload


async def test_stats_sum_the_rollup_into_buckets(admin: Admin) -> None:
    minute = int(NOW)
    await admin.store.record_ledger(
        LedgerBatch(
            rollup={
                (minute, "GCM", "delivered"): 5,
                (minute + 60, "GCM", "failed"): 2,
                (minute + 120, "APNS", "expired"): 1,
                (minute - 3600, "GCM", "delivered"): 99,
            }
        )
    )

    default = await admin.ok("GET", "/v1/stats/deliveries")  # the last hour
    wide = await admin.ok(
        "GET",
        "/v1/stats/deliveries",
        params={"since": str(minute), "bucketSeconds": "300"},
    )

    assert [
        {
            "start": "2023-11-14T22:14:00.000Z",
            "platform": "GCM",
            "delivered": 5,
            "failed": 0,
            "expired": 0,
        },
        {
            "start": "2023-11-14T22:15:00.000Z",
            "platform": "GCM",
            "delivered": 0,
            "failed": 2,
            "expired": 0,
        },
        {
            "start": "2023-11-14T22:16:00.000Z",
            "platform": "APNS",
            "delivered": 0,
            "failed": 0,
            "expired": 1,
        },
    ] == default["buckets"]
    assert [
        ("2023-11-14T22:10:00.000Z", "GCM", 5, 0),
        ("2023-11-14T22:15:00.000Z", "APNS", 0, 1),
        ("2023-11-14T22:15:00.000Z", "GCM", 0, 0),
    ] == [
        (b["start"], b["platform"], b["delivered"], b["expired"])
        for b in wide["buckets"]
    ]


@pytest.mark.parametrize(
    "params",
    [{"bucketSeconds": "90"}, {"bucketSeconds": "0"}, {"since": "x"}, {"bucket": "60"}],
)
async def test_bad_stats_queries_are_400(admin: Admin, params: dict[str, str]) -> None:
    await admin.error(
        400, "InvalidParameter", "GET", "/v1/stats/deliveries", params=params
    )


async def test_admin_routes_answer_405_for_other_methods(admin: Admin) -> None:
    await admin.error(405, "MethodNotAllowed", "DELETE", "/v1/deliveries")
    await admin.error(405, "MethodNotAllowed", "GET", "/v1/deliveries/replay")


def test_parse_time_forms() -> None:
    assert NOW == parse_time("2023-11-14T22:14:00Z")
    assert NOW == parse_time("2023-11-14T23:14:00+01:00")
    assert NOW == parse_time(NOW)
    assert NOW == parse_time(str(int(NOW)))
    for bad in ("", "inf", True, None, [1]):
        with pytest.raises(InvalidParameterError):
            parse_time(bad)
