"""
The Store contract: the same tests for every backend (memory, sqlite, postgres).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
import time
from collections.abc import Awaitable, Callable

import aiosqlite
import asyncpg
import pytest

from pushgw.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    StoreUnavailableError,
)
from pushgw.model import (
    HTTP_LANE,
    Endpoint,
    Message,
    MessageAttribute,
    Platform,
    PlatformApplication,
    Subscription,
    Topic,
)
from pushgw.store.base import (
    WAITING_FOR_APP,
    EndpointTarget,
    JobClaim,
    NewJob,
    Store,
)
from pushgw.store.factory import open_store
from pushgw.store.ledger_model import (
    DeliveryFilter,
    DeliveryRecord,
    LedgerBatch,
    LedgerRetention,
    MessageCounts,
    OutcomeCount,
    StatsRow,
)
from pushgw.store.memory import InMemoryStore
from pushgw.store.migrations import load_migrations, quote_ident
from pushgw.store.postgres import PostgresStore
from pushgw.store.sqlite import SqliteStore

APP_ARN = "arn:aws:sns:us-east-1:123456789012:app/GCM/news"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:news"
NOW = 1_700_000_000.0


# Every migration file, in order (the same versions exist for both dialects).
ALL_VERSIONS = [m.version for m in load_migrations("sqlite")]


def make_app(name: str = "news", **kw: object) -> PlatformApplication:
    fields: dict[str, object] = {
        "arn": f"arn:aws:sns:us-east-1:123456789012:app/GCM/{name}",
        "name": name,
        "platform": Platform.GCM,
        "principal": "",
        "credential": "server-key",
        "attributes": {"SuccessFeedbackSampleRate": "100"},
        "created_at": NOW,
    }
    fields.update(kw)
    return PlatformApplication(**fields)  # type: ignore[arg-type]


def make_endpoint(n: int, app_arn: str = APP_ARN, **kw: object) -> Endpoint:
    fields: dict[str, object] = {
        "arn": f"arn:aws:sns:us-east-1:123456789012:endpoint/GCM/news/{n:04d}",
        "app_arn": app_arn,
        "token": f"token-{n}",
        "custom_user_data": f"user {n}",
        "attributes": {"ChannelId": str(n)},
        "created_at": NOW + n,
    }
    fields.update(kw)
    return Endpoint(**fields)  # type: ignore[arg-type]


def make_topic(name: str = "news") -> Topic:
    return Topic(
        arn=f"arn:aws:sns:us-east-1:123456789012:{name}",
        name=name,
        attributes={"DisplayName": name},
        created_at=NOW,
    )


def make_sub(n: int, topic_arn: str = TOPIC_ARN) -> Subscription:
    return Subscription(
        arn=f"{topic_arn}:sub-{n:04d}",
        topic_arn=topic_arn,
        endpoint_arn=make_endpoint(n).arn,
        attributes={"RawMessageDelivery": "false"},
        created_at=NOW + n,
    )


def make_message(n: int = 1, **kw: object) -> Message:
    fields: dict[str, object] = {
        "id": f"00000000-0000-0000-0000-{n:012d}",
        "body": f"hello {n}",
        "created_at": NOW,
    }
    fields.update(kw)
    return Message(**fields)  # type: ignore[arg-type]


async def enqueue_endpoint_jobs(
    store: Store, count: int, *, due: float = NOW, first: int = 1
) -> None:
    for n in range(first, first + count):
        await store.enqueue(
            make_message(n),
            [
                NewJob(
                    "endpoint", endpoint_arn=make_endpoint(n).arn, next_attempt_at=due
                )
            ],
        )


async def claim_one(store: Store, owner: str = "w1", now: float = NOW):
    jobs = await store.claim_jobs(owner=owner, limit=1, lease_s=30, now=now)
    assert len(jobs) == 1
    return jobs[0]


# -- platform applications ----------------------------------------------------
async def test_put_app_roundtrip(store: Store) -> None:
    """A stored app reads back equal, credentials and attributes included."""
    app = make_app()

    await store.put_app(app)

    assert app == await store.get_app(app.arn)
    assert None is await store.get_app(app.arn + "-missing")


async def test_put_app_replace_keeps_endpoints_and_seq(store: Store) -> None:
    """Putting an app with an existing ARN replaces its fields, not its endpoints."""
    first, second = make_app("a"), make_app("b")
    await store.put_app(first)
    await store.put_app(second)
    await store.insert_endpoint(make_endpoint(1, app_arn=first.arn))

    replaced = dataclasses.replace(first, credential="new", enabled=False)
    await store.put_app(replaced)

    page = await store.list_apps(after=0, limit=10)
    assert replaced == await store.get_app(first.arn)
    assert [replaced, second] == page.items
    assert len((await store.list_endpoints(first.arn, after=0, limit=10)).items) == 1


async def test_list_apps_keyset_pages(store: Store) -> None:
    """Pages hold exactly `limit` apps and next_after is None on the last page."""
    apps = [make_app(f"app{n}") for n in range(5)]
    for app in apps:
        await store.put_app(app)

    first = await store.list_apps(after=0, limit=2)
    assert first.next_after is not None
    second = await store.list_apps(after=first.next_after, limit=2)
    assert second.next_after is not None
    third = await store.list_apps(after=second.next_after, limit=2)

    assert apps == first.items + second.items + third.items
    assert len(second.items) == 2
    assert None is third.next_after
    exact = await store.list_apps(after=0, limit=5)
    assert None is exact.next_after
    assert (await store.list_apps(after=0, limit=0)).items == []


async def test_update_app(store: Store) -> None:
    """update_app replaces the fields; an unknown ARN raises NotFoundError."""
    app = make_app()
    await store.put_app(app)
    changed = dataclasses.replace(app, enabled=False, attributes={"A": "b"})

    await store.update_app(changed)

    assert changed == await store.get_app(app.arn)
    with pytest.raises(NotFoundError):
        await store.update_app(make_app("missing"))


async def test_delete_app_removes_its_endpoints(store: Store) -> None:
    """Deleting an app deletes its endpoints and nothing else; again is a no-op."""
    keep = make_app("keep")
    await store.put_app(make_app())
    await store.put_app(keep)
    await store.insert_endpoint(make_endpoint(1))
    await store.insert_endpoint(make_endpoint(2, app_arn=keep.arn))

    await store.delete_app(APP_ARN)
    await store.delete_app(APP_ARN)

    assert None is await store.get_app(APP_ARN)
    assert None is await store.get_endpoint(make_endpoint(1).arn)
    assert keep == await store.get_app(keep.arn)
    assert make_endpoint(2, app_arn=keep.arn) == await store.get_endpoint(
        make_endpoint(2).arn
    )


# -- endpoints ----------------------------------------------------------------
async def test_endpoint_roundtrip_and_lookup_by_token(store: Store) -> None:
    """An endpoint reads back by ARN and by (app, token)."""
    endpoint = make_endpoint(1, custom_user_data=None, enabled=False)

    await store.insert_endpoint(endpoint)

    assert endpoint == await store.get_endpoint(endpoint.arn)
    assert endpoint == await store.get_endpoint_by_token(APP_ARN, "token-1")
    assert None is await store.get_endpoint_by_token(APP_ARN, "token-2")
    assert None is await store.get_endpoint_by_token("other-app", "token-1")


async def test_token_unique_per_app_only(store: Store) -> None:
    """A token may be registered once per app, but in any number of apps."""
    await store.insert_endpoint(make_endpoint(1))

    with pytest.raises(ConflictError):
        await store.insert_endpoint(make_endpoint(2, token="token-1"))
    other = make_endpoint(3, app_arn="other-app", token="token-1")
    await store.insert_endpoint(other)

    assert other == await store.get_endpoint(other.arn)
    assert None is await store.get_endpoint(make_endpoint(2).arn)


async def test_update_endpoint(store: Store) -> None:
    """update_endpoint replaces fields; token clash → Conflict; unknown → NotFound."""
    await store.insert_endpoint(make_endpoint(1))
    await store.insert_endpoint(make_endpoint(2))
    changed = make_endpoint(1, token="new", enabled=False, attributes={})

    await store.update_endpoint(changed)

    assert changed == await store.get_endpoint(changed.arn)
    with pytest.raises(ConflictError):
        await store.update_endpoint(make_endpoint(2, token="new"))
    assert make_endpoint(2) == await store.get_endpoint(make_endpoint(2).arn)
    with pytest.raises(NotFoundError):
        await store.update_endpoint(make_endpoint(9))


async def test_list_endpoints_pages_per_app(store: Store) -> None:
    """Endpoints list per app in creation order, in keyset pages."""
    mine = [make_endpoint(n) for n in range(1, 6)]
    for n, endpoint in enumerate(mine):
        await store.insert_endpoint(endpoint)
        await store.insert_endpoint(make_endpoint(100 + n, app_arn="other"))

    first = await store.list_endpoints(APP_ARN, after=0, limit=3)
    assert first.next_after is not None
    rest = await store.list_endpoints(APP_ARN, after=first.next_after, limit=3)

    assert mine[:3] == first.items
    assert mine[3:] == rest.items
    assert None is rest.next_after


async def test_delete_endpoint_keeps_subscriptions(store: Store) -> None:
    """Deleting an endpoint returns True once and leaves its subscriptions."""
    await store.insert_topic(make_topic())
    await store.insert_endpoint(make_endpoint(1))
    sub = await store.insert_subscription(make_sub(1))

    assert await store.delete_endpoint(make_endpoint(1).arn)
    assert not await store.delete_endpoint(make_endpoint(1).arn)
    assert None is await store.get_endpoint(make_endpoint(1).arn)
    assert sub == await store.get_subscription(sub.arn)


async def test_get_endpoints_skips_missing(store: Store) -> None:
    """get_endpoints maps the ARNs that exist and leaves out the others."""
    for n in range(1, 4):
        await store.insert_endpoint(make_endpoint(n))
    wanted = [make_endpoint(n).arn for n in (3, 1, 7)]

    found = await store.get_endpoints(wanted)

    assert {e.arn: e for e in (make_endpoint(1), make_endpoint(3))} == found
    assert await store.get_endpoints([]) == {}


async def search_all(store: Store, limit: int, **filters: str) -> list[list[str]]:
    """Every page of a search, as lists of tokens, following `next_after`."""
    pages: list[list[str]] = []
    after: str | None = None
    while True:
        page = await store.search_endpoints(
            APP_ARN, after=after, limit=limit, **filters
        )
        pages.append([e.token for e in page.items])
        if page.next_after is None:
            return pages
        assert page.items[-1].token == page.next_after
        after = page.next_after


async def test_search_endpoints_by_token_prefix_in_token_order(store: Store) -> None:
    """A token prefix finds the app's endpoints starting with it (and no
    other app's), in token order, in keyset pages."""
    tokens = ["ab2", "b", "abc", "a", "ab1", "ab", "aB3", "abd9"]
    for n, token in enumerate(tokens):
        await store.insert_endpoint(make_endpoint(n, token=token))
        await store.insert_endpoint(
            make_endpoint(100 + n, app_arn="other", token=token)
        )

    assert [["ab", "ab1"], ["ab2", "abc"], ["abd9"]] == await search_all(
        store, 2, token_prefix="ab"
    )
    assert [["ab", "ab1", "ab2", "abc", "abd9"]] == await search_all(
        store, 5, token_prefix="ab"
    )
    assert [sorted(tokens)] == await search_all(store, 100)
    assert [[]] == await search_all(store, 10, token_prefix="zz")
    found = await store.search_endpoints(APP_ARN, token_prefix="abc", limit=10)
    assert [make_endpoint(2, token="abc")] == found.items


async def test_search_endpoints_compares_code_points_and_takes_wildcards_literally(
    store: Store,
) -> None:
    """Tokens order by code point (upper case before lower, ASCII before
    accented) in every backend, and LIKE's `%` and `_` are plain characters."""
    tokens = ["a%b", "a_b", "axb", "aab", "Zed", "zed", "é1", "éz", "f", "\\x"]
    for n, token in enumerate(tokens):
        await store.insert_endpoint(make_endpoint(n, token=token))

    assert [sorted(tokens)] == await search_all(store, 100)
    assert [["a%b"]] == await search_all(store, 10, token_prefix="a%")
    assert [["a_b"]] == await search_all(store, 10, token_prefix="a_")
    assert [["é1", "éz"]] == await search_all(store, 10, token_prefix="é")
    assert [["\\x"]] == await search_all(store, 10, token_prefix="\\")


async def test_search_endpoints_by_custom_user_data(store: Store) -> None:
    """CustomUserData matches exactly (not as a prefix), alone or with a token
    prefix, in token order and keyset pages."""
    rows = [("t3", "user 1"), ("t1", "user 1"), ("t2", "user 10"), ("s1", "user 1")]
    for n, (token, data) in enumerate(rows):
        await store.insert_endpoint(
            make_endpoint(n, token=token, custom_user_data=data)
        )
    await store.insert_endpoint(make_endpoint(9, token="t9", custom_user_data=None))

    assert [["s1", "t1"], ["t3"]] == await search_all(
        store, 2, custom_user_data="user 1"
    )
    assert [["t1", "t3"]] == await search_all(
        store, 10, token_prefix="t", custom_user_data="user 1"
    )
    assert [[]] == await search_all(store, 10, custom_user_data="user")


async def test_search_endpoints_pages_survive_writes_between_pages(
    store: Store,
) -> None:
    """The position is a token, not an offset: endpoints added or deleted before
    it between two pages neither repeat nor skip the rest."""
    for n in range(6):
        await store.insert_endpoint(make_endpoint(n, token=f"k{n}"))
    first = await store.search_endpoints(APP_ARN, token_prefix="k", limit=3)
    await store.delete_endpoint(make_endpoint(0).arn)
    await store.insert_endpoint(make_endpoint(7, token="k00"))

    rest = await store.search_endpoints(
        APP_ARN, token_prefix="k", after=first.next_after, limit=3
    )

    assert ["k0", "k1", "k2"] == [e.token for e in first.items]
    assert ["k3", "k4", "k5"] == [e.token for e in rest.items]
    assert None is rest.next_after


# -- topics and subscriptions -------------------------------------------------
async def test_topic_crud(store: Store) -> None:
    """Topics insert once, read, list in pages, update and delete idempotently."""
    topics = [make_topic(f"t{n}") for n in range(3)]
    for topic in topics:
        await store.insert_topic(topic)
    with pytest.raises(ConflictError):
        await store.insert_topic(topics[0])
    changed = dataclasses.replace(topics[1], attributes={"DisplayName": "x"})
    await store.update_topic(changed)
    page = await store.list_topics(after=0, limit=2)
    assert page.next_after is not None
    rest = await store.list_topics(after=page.next_after, limit=2)

    await store.delete_topic(topics[0].arn)
    await store.delete_topic(topics[0].arn)

    assert [topics[0], changed, topics[2]] == page.items + rest.items
    assert None is rest.next_after
    assert None is await store.get_topic(topics[0].arn)
    assert changed == await store.get_topic(changed.arn)
    with pytest.raises(NotFoundError):
        await store.update_topic(make_topic("missing"))


async def test_subscription_crud(store: Store) -> None:
    """Subscriptions get increasing seqs, are unique per topic+endpoint and update."""
    await store.insert_topic(make_topic())
    first = await store.insert_subscription(make_sub(1))
    second = await store.insert_subscription(make_sub(2))
    with pytest.raises(ConflictError):
        await store.insert_subscription(
            dataclasses.replace(make_sub(1), arn=f"{TOPIC_ARN}:dup")
        )
    changed = dataclasses.replace(second, attributes={"FilterPolicy": "{}"})
    await store.update_subscription(changed)
    await store.delete_subscription(first.arn)
    await store.delete_subscription(first.arn)

    assert 0 < first.seq < second.seq
    assert changed == await store.get_subscription(second.arn)
    assert changed == await store.find_subscription(TOPIC_ARN, make_endpoint(2).arn)
    assert None is await store.find_subscription(TOPIC_ARN, make_endpoint(1).arn)
    assert None is await store.get_subscription(first.arn)
    with pytest.raises(NotFoundError):
        await store.update_subscription(make_sub(9))


async def test_http_subscription_pending_confirmed_deleted(store: Store) -> None:
    """A pending subscription keeps its token; counts by state; a deletion is
    recorded (with `now`) and returned; purging drops expired pending ones."""
    await store.insert_topic(make_topic())
    url = "https://hooks.example/sns"
    pending = await store.insert_subscription(
        Subscription(
            arn=f"{TOPIC_ARN}:http-1",
            topic_arn=TOPIC_ARN,
            endpoint_arn=url,
            protocol="https",
            created_at=NOW,
            confirm_token="s3cret",
        )
    )
    await store.insert_subscription(make_sub(1))
    gone = await store.insert_subscription(make_sub(2))
    assert (await store.get_subscription(pending.arn)) == pending
    assert pending.pending and pending.is_http
    assert await store.delete_subscription(gone.arn, now=NOW, restore_token="r") == gone
    assert await store.delete_subscription(gone.arn, now=NOW) is None
    kept = await store.get_deleted_subscription(gone.arn)
    assert kept == dataclasses.replace(gone, seq=0, confirm_token="r")
    counts = await store.subscription_counts(TOPIC_ARN)
    assert counts == {"confirmed": 1, "pending": 1, "deleted": 1}

    confirmed = dataclasses.replace(pending, confirm_token=None)
    await store.update_subscription(confirmed)
    assert (await store.get_subscription(pending.arn)) == confirmed
    assert (await store.subscription_counts(TOPIC_ARN))["pending"] == 0

    restored = await store.restore_subscription(
        dataclasses.replace(kept, confirm_token=None)
    )
    assert restored.seq > gone.seq
    assert await store.get_deleted_subscription(gone.arn) is None
    assert (await store.subscription_counts(TOPIC_ARN))["confirmed"] == 3
    await store.delete_subscription(gone.arn, now=NOW)
    await store.update_subscription(pending)  # pending again, created at NOW
    purged = await store.purge_subscriptions(
        pending_before=NOW + 1, deleted_before=NOW + 1
    )
    assert purged == 2
    assert await store.get_subscription(pending.arn) is None
    counts = await store.subscription_counts(TOPIC_ARN)
    assert counts == {"confirmed": 1, "pending": 0, "deleted": 0}


async def test_http_jobs_are_claimed_in_their_own_lane(store: Store) -> None:
    """Push claims never return HTTP jobs and the reverse; each lane has its
    own next due time; an HTTP job keeps its subscription and payload."""
    await store.enqueue(
        make_message(1),
        [
            NewJob("endpoint", endpoint_arn=make_endpoint(1).arn, next_attempt_at=NOW),
            NewJob(
                "http",
                subscription_arn=f"{TOPIC_ARN}:http-1",
                payload='{"Type":"SubscriptionConfirmation"}',
                next_attempt_at=NOW - 5,
            ),
        ],
    )
    assert await store.next_due_at() == NOW
    assert await store.next_due_at(HTTP_LANE) == NOW - 5
    push = await store.claim_jobs(owner="w1", limit=5, lease_s=30, now=NOW)
    http = await store.claim_jobs(
        owner="w1", limit=5, lease_s=30, now=NOW, lane=HTTP_LANE
    )
    assert [j.kind for j in push] == ["endpoint"]
    assert [j.kind for j in http] == ["http"]
    assert http[0].subscription_arn == f"{TOPIC_ARN}:http-1"
    assert http[0].payload == '{"Type":"SubscriptionConfirmation"}'
    assert await store.complete_job(http[0].id, owner="w1")


async def test_backlog_states_are_disjoint_and_by_app(store: Store) -> None:
    """Each job is in one state; endpoint jobs carry their app and platform."""
    app = await store.put_app(make_app())
    for n in (1, 2, 3, 4):
        await store.insert_endpoint(make_endpoint(n, app.arn))
    await enqueue_endpoint_jobs(store, 2, due=NOW - 1)  # due
    await enqueue_endpoint_jobs(store, 1, due=NOW + 60, first=3)  # scheduled
    await store.enqueue(
        make_message(4),
        [
            NewJob(
                "endpoint",
                endpoint_arn=make_endpoint(4).arn,
                next_attempt_at=NOW + 60,
                last_error=WAITING_FOR_APP,
            ),
            NewJob("topic", topic_arn=TOPIC_ARN, next_attempt_at=NOW - 1),
        ],
    )
    claimed = await store.claim_jobs(owner="w1", limit=1, lease_s=30, now=NOW)
    rows = await store.backlog(now=NOW)
    by = {(r.state, r.kind): r for r in rows}
    assert sum(r.jobs for r in rows) == 5
    assert by[("leased", claimed[0].kind)].jobs == 1
    assert by[("scheduled", "endpoint")].jobs == 1
    assert by[("waiting_for_app", "endpoint")].jobs == 1
    assert by[("scheduled", "endpoint")].platform == app.platform.value
    assert by[("scheduled", "endpoint")].app_arn == app.arn
    topic_rows = [r for r in rows if r.kind == "topic"]
    assert all(r.app_arn is None and r.platform is None for r in topic_rows)


async def test_list_subscriptions_all_or_by_topic(store: Store) -> None:
    """Subscriptions list in seq order, for one topic or all, in keyset pages."""
    other = make_topic("other")
    subs = []
    for n in range(1, 5):
        subs.append(await store.insert_subscription(make_sub(n)))
        subs.append(await store.insert_subscription(make_sub(n, other.arn)))

    mine = await store.list_subscriptions(topic_arn=TOPIC_ARN, after=0, limit=3)
    assert mine.next_after is not None
    mine_rest = await store.list_subscriptions(
        topic_arn=TOPIC_ARN, after=mine.next_after, limit=3
    )
    everything = await store.list_subscriptions(topic_arn=None, after=0, limit=100)

    assert subs[0::2] == mine.items + mine_rest.items
    assert None is mine_rest.next_after
    assert subs == everything.items


async def test_delete_topic_removes_subscriptions(store: Store) -> None:
    """Deleting a topic deletes its subscriptions and no others."""
    await store.insert_topic(make_topic())
    mine = await store.insert_subscription(make_sub(1))
    theirs = await store.insert_subscription(make_sub(1, "other"))

    await store.delete_topic(TOPIC_ARN)

    assert None is await store.get_subscription(mine.arn)
    assert theirs == await store.get_subscription(theirs.arn)


async def test_subscriptions_range_bounds(store: Store) -> None:
    """subscriptions_range returns after_seq < seq <= upto_seq, in order, limited."""
    subs = [await store.insert_subscription(make_sub(n)) for n in range(1, 7)]
    await store.insert_subscription(make_sub(1, "other"))

    middle = await store.subscriptions_range(
        TOPIC_ARN, after_seq=subs[0].seq, upto_seq=subs[4].seq, limit=100
    )
    limited = await store.subscriptions_range(
        TOPIC_ARN, after_seq=0, upto_seq=subs[-1].seq, limit=2
    )

    assert subs[1:5] == middle
    assert subs[:2] == limited
    assert (
        await store.subscriptions_range(
            TOPIC_ARN, after_seq=subs[-1].seq, upto_seq=subs[-1].seq + 100, limit=10
        )
        == []
    )


# -- tags -----------------------------------------------------------------------
async def test_tags(store: Store) -> None:
    """set_tags adds and overwrites, remove_tags drops keys, per ARN."""
    await store.set_tags(TOPIC_ARN, {"team": "a", "env": "dev"})
    await store.set_tags(TOPIC_ARN, {"env": "prod"})
    await store.set_tags("other", {"team": "b"})

    await store.remove_tags(TOPIC_ARN, ["team", "absent"])

    assert await store.get_tags(TOPIC_ARN) == {"env": "prod"}
    assert await store.get_tags("other") == {"team": "b"}
    assert await store.get_tags("nothing") == {}


# -- messages and jobs ------------------------------------------------------------
async def test_enqueue_message_roundtrip(store: Store) -> None:
    """A message reads back equal, binary attributes and expiry included."""
    message = make_message(
        structure="json",
        subject="Hi",
        attributes={
            "bin": MessageAttribute("Binary", binary_value=b"\x00\xffraw"),
            "str": MessageAttribute("String", string_value="v"),
            "num": MessageAttribute("Number", string_value="1.5"),
        },
        target_arn=make_endpoint(1).arn,
        expires_at=NOW + 60,
    )

    await store.enqueue(message, [NewJob("endpoint", endpoint_arn=message.target_arn)])

    assert message == await store.get_message(message.id)
    assert None is await store.get_message("missing")


async def test_enqueue_endpoint_job_fields(store: Store) -> None:
    """An endpoint job carries its message, target and schedule, and no lease."""
    await store.enqueue(
        make_message(), [NewJob("endpoint", endpoint_arn="ep", next_attempt_at=NOW)]
    )

    job = await claim_one(store)

    assert (
        job.kind,
        job.endpoint_arn,
        job.range_hi,
        job.attempts,
        job.cursor,
    ) == ("endpoint", "ep", None, 0, 0)
    assert make_message().id == job.message_id
    assert job.next_attempt_at == NOW
    assert (job.lease_owner, job.lease_expires_at) == ("w1", NOW + 30)


class Refused(Exception):
    pass


def checked(
    seen: list[EndpointTarget | None],
) -> Callable[[EndpointTarget | None], None]:
    """A TargetCheck that records what it was given and refuses a missing one."""

    def check(target: EndpointTarget | None) -> None:
        seen.append(target)
        if target is None:
            raise Refused

    return check


async def test_enqueue_endpoint_checks_what_it_reads(store: Store) -> None:
    """enqueue_endpoint hands the check the endpoint and its app's platform and
    state, stores the message with one claimable endpoint job and returns it."""
    await store.put_app(make_app(enabled=False))
    endpoint = await store.insert_endpoint(make_endpoint(1, enabled=False))
    seen: list[EndpointTarget | None] = []

    done = await store.enqueue_endpoint(
        make_message(), endpoint.arn, check=checked(seen)
    )

    assert [EndpointTarget(endpoint, Platform.GCM, False)] == seen
    assert endpoint == done.endpoint
    assert (done.job.kind, done.job.endpoint_arn, done.job.message_id) == (
        "endpoint",
        endpoint.arn,
        make_message().id,
    )
    assert (done.job.lease_owner, done.job.lease_expires_at) == (None, None)
    assert make_message() == await store.get_message(make_message().id)
    assert done.job.id == (await claim_one(store)).id


async def test_enqueue_endpoint_of_an_app_gone_has_no_platform(store: Store) -> None:
    """An endpoint whose application is gone reaches the check with platform None."""
    await store.insert_endpoint(make_endpoint(1))
    seen: list[EndpointTarget | None] = []

    await store.enqueue_endpoint(
        make_message(), make_endpoint(1).arn, check=checked(seen)
    )

    assert [EndpointTarget(make_endpoint(1), None, False)] == seen


async def test_enqueue_endpoint_refused_stores_nothing(store: Store) -> None:
    """A check that raises (here: no such endpoint) leaves no message and no job."""
    seen: list[EndpointTarget | None] = []

    with pytest.raises(Refused):
        await store.enqueue_endpoint(make_message(), "missing", check=checked(seen))

    assert [None] == seen
    assert None is await store.get_message(make_message().id)
    assert (await store.job_counts())["total"] == 0


async def test_enqueue_endpoint_with_a_claim_is_leased_already(store: Store) -> None:
    """With a JobClaim the job is created leased: nobody else claims it while the
    lease lives, its owner completes it (and the message goes), and a lapsed
    lease is taken over like any."""
    await store.put_app(make_app())
    await store.insert_endpoint(make_endpoint(1))
    await store.insert_endpoint(make_endpoint(2))

    first = await store.enqueue_endpoint(
        make_message(1),
        make_endpoint(1).arn,
        check=checked([]),
        claim=JobClaim("node-a/run1", NOW + 30),
    )
    second = await store.enqueue_endpoint(
        make_message(2),
        make_endpoint(2).arn,
        check=checked([]),
        claim=JobClaim("node-a/run1", NOW + 30),
    )

    assert (first.job.lease_owner, first.job.lease_expires_at) == (
        "node-a/run1",
        NOW + 30,
    )
    assert [] == await store.claim_jobs(owner="w2", limit=5, lease_s=30, now=NOW)
    assert await store.complete_job(first.job.id, owner="node-a/run1")
    assert None is await store.get_message(make_message(1).id)
    taken = await claim_one(store, "w2", now=NOW + 30)
    assert second.job.id == taken.id


async def test_topic_job_range_is_fixed_at_enqueue(store: Store) -> None:
    """A topic job covers the subscriptions up to the max seq at enqueue only."""
    await store.insert_subscription(make_sub(1, "other"))
    subs = [await store.insert_subscription(make_sub(n)) for n in (1, 2)]
    await store.enqueue(
        make_message(topic_arn=TOPIC_ARN), [NewJob("topic", topic_arn=TOPIC_ARN)]
    )
    later = await store.insert_subscription(make_sub(3))

    job = await claim_one(store)
    covered = await store.subscriptions_range(
        TOPIC_ARN, after_seq=job.cursor, upto_seq=job.range_hi or 0, limit=100
    )

    assert subs[-1].seq == job.range_hi
    assert subs == covered
    assert later.seq > job.range_hi


async def test_topic_job_without_subscriptions_has_empty_range(store: Store) -> None:
    """A topic job on a topic without subscriptions gets range_hi 0."""
    await store.enqueue(make_message(), [NewJob("topic", topic_arn=TOPIC_ARN)])

    job = await claim_one(store)

    assert job.range_hi == 0


async def test_claim_due_only_oldest_first_with_limit(store: Store) -> None:
    """Claims take due jobs only, oldest due first, at most `limit`."""
    for n, due in enumerate([NOW - 1, NOW + 100, NOW - 3, NOW, NOW - 2], start=1):
        await enqueue_endpoint_jobs(store, 1, due=due, first=n)

    first = await store.claim_jobs(owner="w1", limit=3, lease_s=30, now=NOW)
    second = await store.claim_jobs(owner="w1", limit=3, lease_s=30, now=NOW)

    assert [j.next_attempt_at for j in first] == [NOW - 3, NOW - 2, NOW - 1]
    assert [j.next_attempt_at for j in second] == [NOW]
    assert await store.claim_jobs(owner="w1", limit=0, lease_s=30, now=NOW) == []


async def test_claim_ties_break_by_id(store: Store) -> None:
    """Jobs due at the same time are claimed in creation order."""
    await enqueue_endpoint_jobs(store, 5)

    jobs = await store.claim_jobs(owner="w1", limit=10, lease_s=30, now=NOW)

    assert sorted(j.id for j in jobs) == [j.id for j in jobs]
    assert [make_endpoint(n).arn for n in range(1, 6)] == [j.endpoint_arn for j in jobs]


async def test_live_lease_not_reclaimed_expired_taken_over(store: Store) -> None:
    """A live lease is not claimed again; an expired one goes to another owner."""
    await enqueue_endpoint_jobs(store, 1)
    job = await claim_one(store, "w1")

    assert await store.claim_jobs(owner="w2", limit=5, lease_s=30, now=NOW + 29) == []
    taken = await claim_one(store, "w2", now=NOW + 30)

    assert job.id == taken.id
    assert (taken.lease_owner, taken.lease_expires_at) == ("w2", NOW + 60)
    assert not await store.complete_job(job.id, owner="w1")
    assert await store.complete_job(job.id, owner="w2")


async def test_lease_calls_with_wrong_owner_change_nothing(store: Store) -> None:
    """complete, retry, save_progress, split and extend by another owner do nothing."""
    await store.insert_subscription(make_sub(1))
    await store.insert_subscription(make_sub(2))
    await store.enqueue(make_message(), [NewJob("topic", topic_arn=TOPIC_ARN)])
    job = await claim_one(store, "w1")

    assert not await store.complete_job(job.id, owner="w2")
    assert not await store.retry_job(
        job.id, owner="w2", next_attempt_at=NOW + 5, last_error="x"
    )
    assert not await store.save_progress(job.id, owner="w2", cursor=1)
    assert None is await store.split_topic_job(job.id, owner="w2", at_seq=1)
    assert await store.extend_leases(owner="w2", job_ids=[job.id], until=NOW + 99) == 0
    assert await store.release_jobs(owner="w2") == 0

    assert await store.claim_jobs(owner="w3", limit=5, lease_s=1, now=NOW + 29) == []
    again = await claim_one(store, "w3", now=NOW + 30)
    assert dataclasses.replace(job, lease_owner="w3", lease_expires_at=NOW + 60) == (
        again
    )
    assert make_message() == await store.get_message(job.message_id)


async def test_retry_counts_attempt_and_reschedules(store: Store) -> None:
    """retry_job drops the lease, counts an attempt and sets the next due time."""
    await enqueue_endpoint_jobs(store, 1)
    job = await claim_one(store)

    assert await store.retry_job(
        job.id, owner="w1", next_attempt_at=NOW + 10, last_error="503"
    )
    assert not await store.retry_job(
        job.id, owner="w1", next_attempt_at=NOW + 10, last_error="503"
    )
    assert await store.claim_jobs(owner="w2", limit=5, lease_s=30, now=NOW + 9) == []
    again = await claim_one(store, "w2", now=NOW + 10)

    assert (job.id, 1, NOW + 10, "503") == (
        again.id,
        again.attempts,
        again.next_attempt_at,
        again.last_error,
    )


async def test_complete_deletes_message_with_last_job(store: Store) -> None:
    """The message stays while any of its jobs is left and goes with the last."""
    message = make_message()
    await store.enqueue(
        message,
        [NewJob("endpoint", endpoint_arn=f"ep{n}") for n in range(3)],
    )
    jobs = await store.claim_jobs(owner="w1", limit=5, lease_s=30, now=NOW)

    assert await store.complete_job(jobs[0].id, owner="w1")
    assert await store.complete_job(jobs[1].id, owner="w1")
    assert message == await store.get_message(message.id)
    assert await store.complete_job(jobs[2].id, owner="w1")

    assert None is await store.get_message(message.id)
    assert not await store.complete_job(jobs[2].id, owner="w1")
    assert (await store.job_counts()) == {
        "due": 0,
        "leased": 0,
        "scheduled": 0,
        "total": 0,
    }


async def test_save_progress_survives_retry(store: Store) -> None:
    """A topic job's cursor is kept across a retry."""
    await store.enqueue(make_message(), [NewJob("topic", topic_arn=TOPIC_ARN)])
    job = await claim_one(store)

    assert await store.save_progress(job.id, owner="w1", cursor=42)
    await store.retry_job(job.id, owner="w1", next_attempt_at=NOW, last_error=None)
    again = await claim_one(store, "w2")

    assert again.cursor == 42


async def test_split_topic_job(store: Store) -> None:
    """A split keeps (cursor, at] and a new unleased job takes (at, range_hi]."""
    subs = [await store.insert_subscription(make_sub(n)) for n in range(1, 5)]
    message = make_message()
    await store.enqueue(message, [NewJob("topic", topic_arn=TOPIC_ARN)])
    job = await claim_one(store)
    at = subs[1].seq

    new = await store.split_topic_job(job.id, owner="w1", at_seq=at)
    assert None is await store.split_topic_job(job.id, owner="w1", at_seq=at)

    assert new is not None
    assert (message.id, "topic", TOPIC_ARN, at, subs[-1].seq, None) == (
        new.message_id,
        new.kind,
        new.topic_arn,
        new.cursor,
        new.range_hi,
        new.lease_owner,
    )
    taken = await claim_one(store, "w2")
    assert new == dataclasses.replace(taken, lease_owner=None, lease_expires_at=None)
    assert await store.complete_job(job.id, owner="w1")
    assert message == await store.get_message(message.id)
    assert await store.complete_job(taken.id, owner="w2")
    assert None is await store.get_message(message.id)


async def test_split_endpoint_job_or_past_range_is_none(store: Store) -> None:
    """Splitting at or past the range end, or an endpoint job, returns None."""
    sub = await store.insert_subscription(make_sub(1))
    await store.enqueue(make_message(1), [NewJob("topic", topic_arn=TOPIC_ARN)])
    await enqueue_endpoint_jobs(store, 1, first=2)
    topic_job, endpoint_job = await store.claim_jobs(
        owner="w1", limit=2, lease_s=30, now=NOW
    )

    assert None is await store.split_topic_job(topic_job.id, owner="w1", at_seq=sub.seq)
    assert None is await store.split_topic_job(endpoint_job.id, owner="w1", at_seq=0)
    assert (await store.job_counts())["total"] == 2


async def test_add_jobs_keeps_message_until_done(store: Store) -> None:
    """add_jobs adds jobs with their attempts and error; the message waits for them."""
    message = make_message()
    await store.enqueue(message, [NewJob("endpoint", endpoint_arn="ep1")])
    first = await claim_one(store)
    await store.add_jobs(
        message.id,
        [
            NewJob(
                "endpoint",
                endpoint_arn="ep2",
                next_attempt_at=NOW + 5,
                attempts=2,
                last_error="429",
            )
        ],
    )

    assert await store.complete_job(first.id, owner="w1")
    assert message == await store.get_message(message.id)
    added = await claim_one(store, "w2", now=NOW + 5)
    assert (
        added.endpoint_arn,
        added.attempts,
        added.last_error,
        added.next_attempt_at,
    ) == ("ep2", 2, "429", NOW + 5)
    assert await store.complete_job(added.id, owner="w2")
    assert None is await store.get_message(message.id)


async def test_extend_leases(store: Store) -> None:
    """extend_leases pushes only the owner's leases and counts them."""
    await enqueue_endpoint_jobs(store, 3)
    mine = await store.claim_jobs(owner="w1", limit=2, lease_s=30, now=NOW)
    theirs = await claim_one(store, "w2")

    count = await store.extend_leases(
        owner="w1", job_ids=[j.id for j in mine] + [theirs.id], until=NOW + 100
    )

    assert count == 2
    later = await store.claim_jobs(owner="w3", limit=5, lease_s=30, now=NOW + 50)
    assert [theirs.id] == [j.id for j in later]


async def test_release_jobs(store: Store) -> None:
    """release_jobs frees the owner's leases so another worker can claim now."""
    await enqueue_endpoint_jobs(store, 3)
    mine = await store.claim_jobs(owner="w1", limit=2, lease_s=30, now=NOW)
    await claim_one(store, "w2")

    assert await store.release_jobs(owner="w1") == 2
    taken = await store.claim_jobs(owner="w3", limit=5, lease_s=30, now=NOW)

    assert [j.id for j in mine] == [j.id for j in taken]
    assert [j.attempts for j in taken] == [0, 0]


async def test_next_due_at(store: Store) -> None:
    """next_due_at is the earliest unleased due time, None when there is none."""
    assert None is await store.next_due_at()
    await enqueue_endpoint_jobs(store, 1, due=NOW + 5)
    await enqueue_endpoint_jobs(store, 1, due=NOW - 5, first=2)
    assert await store.next_due_at() == NOW - 5

    await claim_one(store)

    assert await store.next_due_at() == NOW + 5


async def test_job_counts(store: Store) -> None:
    """job_counts splits the backlog into due, leased and scheduled (wall clock)."""
    now = time.time()
    await enqueue_endpoint_jobs(store, 3, due=now - 10)
    await enqueue_endpoint_jobs(store, 2, due=now + 3600, first=10)
    await store.claim_jobs(owner="w1", limit=1, lease_s=3600, now=now)

    counts = await store.job_counts()

    assert counts == {"due": 2, "leased": 1, "scheduled": 2, "total": 5}


# -- SQL backends only --------------------------------------------------------
async def test_concurrent_claims_never_share_a_job(backend) -> None:
    """Two store instances on one database claiming at once never take a job twice."""
    if not backend.is_sql:
        pytest.skip("needs two store instances on one database")
    first, second = await backend.new(), await backend.new()
    await enqueue_endpoint_jobs(first, 500)

    async def drain(store: Store, owner: str) -> list[int]:
        got: list[int] = []
        while batch := await store.claim_jobs(
            owner=owner, limit=7, lease_s=60, now=NOW
        ):
            got.extend(j.id for j in batch)
        return got

    results = await asyncio.gather(
        drain(first, "a"), drain(first, "b"), drain(second, "c"), drain(second, "d")
    )

    claimed = [job_id for ids in results for job_id in ids]
    assert len(claimed) == 500
    assert len(set(claimed)) == 500


async def test_search_endpoints_is_an_index_range(backend) -> None:
    """Both searches are answered from an index, in its order: the token prefix
    is an index condition (not a filter over the app's endpoints) and no sort
    step follows, so a page costs the same with a million endpoints."""
    if not backend.is_sql:
        pytest.skip("query plans are the SQL backends'")
    store = await backend.new()
    for n in range(200):
        await store.insert_endpoint(make_endpoint(n, token=f"tok{n:03d}"))

    async def searches() -> None:
        await store.search_endpoints(APP_ARN, token_prefix="tok1", limit=10)
        await store.search_endpoints(
            APP_ARN, token_prefix="tok1", custom_user_data="user 150", limit=10
        )
        await store.search_endpoints(
            APP_ARN, custom_user_data="user 7", after="a", limit=5
        )

    seen = await reads_of(store, searches)

    assert 3 == len(seen)
    for sql, params in seen:
        plan = await query_plan(backend.kind, store, sql, params)
        if backend.kind == "sqlite":
            assert "SEARCH endpoints USING INDEX" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
            if "lo" in params:
                assert "token>? AND token<?" in plan, plan
        else:
            assert "Index" in plan and "Seq Scan" not in plan, plan
            assert "Sort" not in plan, plan
            if "lo" in params:
                assert "Index Cond" in plan and "token >=" in plan, plan
    if backend.kind == "postgres":
        # Code-point order whatever the database's collation (this one's may be C).
        collation = await store._read(  # type: ignore[attr-defined]
            "SELECT collation_name FROM information_schema.columns"
            " WHERE table_schema = :schema AND table_name = 'endpoints'"
            " AND column_name = 'token'",
            {"schema": store.schema},  # type: ignore[attr-defined]
        )
        assert [{"collation_name": "C"}] == [dict(r) for r in collation]


async def test_subscription_counts_read_no_subscription_row(backend) -> None:
    """GetTopicAttributes counts on every call: each count is answered from an
    index alone (pending ones from a partial index), never by reading the rows
    of a topic that may have a million subscribers."""
    if not backend.is_sql:
        pytest.skip("query plans are the SQL backends'")
    store = await backend.new()
    await store.insert_subscription(make_sub(1))
    seen = await reads_of(
        store, lambda: store.subscription_counts(TOPIC_ARN), "_read_one"
    )

    ((sql, params),) = seen
    plan = await query_plan(backend.kind, store, sql, params)
    if backend.kind == "sqlite":
        assert "SCAN subscriptions" not in plan, plan
        assert "COVERING INDEX subscriptions_topic_seq" in plan, plan
        assert "INDEX subscriptions_pending" in plan, plan
    else:
        assert "Seq Scan" not in plan, plan
        assert "subscriptions_pending" in plan, plan


async def reads_of(
    store: Store, call: Callable[[], Awaitable[object]], method: str = "_read"
) -> list[tuple[str, dict[str, object]]]:
    """The SQL and parameters of the reads `call` makes through `store.<method>`
    (a SQL backend's), for their query plans."""
    seen: list[tuple[str, dict[str, object]]] = []
    real = getattr(store, method)

    async def spy(sql: str, params: dict[str, object]) -> object:
        seen.append((sql, dict(params)))
        return await real(sql, params)

    setattr(store, method, spy)
    try:
        await call()
    finally:
        setattr(store, method, real)
    return seen


async def query_plan(
    kind: str, store: Store, sql: str, params: dict[str, object]
) -> str:
    if kind == "sqlite":
        rows = await store._read("EXPLAIN QUERY PLAN " + sql, params)  # type: ignore[attr-defined]
        return "\n".join(str(r["detail"]) for r in rows)

    async def explain(tx: object) -> list[object]:
        # A table this small is cheaper to scan: ask what the index path is.
        await tx.execute("SET LOCAL enable_seqscan = off")  # type: ignore[attr-defined]
        return await tx.fetch("EXPLAIN " + sql, params)  # type: ignore[attr-defined, no-any-return]

    rows = await store._transact(explain)  # type: ignore[attr-defined]
    return "\n".join(str(next(iter(dict(r).values()))) for r in rows)


async def test_open_twice_is_a_noop(backend) -> None:
    """Opening a migrated database again applies nothing and keeps the data."""
    if not backend.is_sql:
        pytest.skip("the memory store has no schema")
    first = await backend.new()
    await first.put_app(make_app())

    second = await backend.new()

    assert make_app() == await second.get_app(APP_ARN)
    assert await migration_versions(second) == ALL_VERSIONS


async def migration_versions(store: Store) -> list[int]:
    """The versions in schema_migrations, read on a connection of its own."""
    if isinstance(store, SqliteStore):
        async with aiosqlite.connect(store.path) as conn:
            rows = await conn.execute_fetchall("SELECT version FROM schema_migrations")
            return [r[0] for r in rows]
    assert isinstance(store, PostgresStore)
    conn = await asyncpg.connect(store.dsn)
    try:
        rows = await conn.fetch(
            f"SELECT version FROM {quote_ident(store.schema)}.schema_migrations"
        )
        return [r[0] for r in rows]
    finally:
        await conn.close()


async def test_concurrent_first_open_migrates_once(backend) -> None:
    """Several stores opening a fresh database at once all succeed, migrating once."""
    if not backend.is_sql:
        pytest.skip("the memory store has no schema")

    stores = await asyncio.gather(*(backend.new() for _ in range(3)))

    assert await migration_versions(stores[0]) == ALL_VERSIONS


async def start_listening(
    backend,
) -> tuple[PostgresStore, asyncio.Task[None], asyncio.Event]:
    """A PostgreSQL store listening; returns once its first call (connected)."""
    if backend.kind != "postgres":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL only")
    store = await backend.new()
    assert isinstance(store, PostgresStore)
    woken = asyncio.Event()
    listening = asyncio.create_task(store.listen_forever(woken.set))
    await asyncio.wait_for(woken.wait(), 5)
    return store, listening, woken


async def test_listen_wakes_on_enqueue_and_retry(backend) -> None:
    """PostgreSQL listeners are called once connected, after enqueue and after a
    retry."""
    store, listening, woken = await start_listening(backend)
    try:
        woken.clear()
        await enqueue_endpoint_jobs(store, 1)
        await asyncio.wait_for(woken.wait(), 2)
        woken.clear()
        job = await claim_one(store)
        await store.retry_job(job.id, owner="w1", next_attempt_at=NOW, last_error=None)

        await asyncio.wait_for(woken.wait(), 2)
    finally:
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening

    assert woken.is_set()


async def test_listen_raises_when_its_connection_is_lost(backend) -> None:
    """A LISTEN connection killed by the server ends `listen_forever` with
    StoreUnavailableError (the supervisor then starts it again)."""
    store, listening, _ = await start_listening(backend)
    conn = await asyncpg.connect(store.dsn)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE query LIKE 'LISTEN%' AND application_name = $1",
            store.application_name,
        )
    finally:
        await conn.close()

    with pytest.raises(StoreUnavailableError):
        await asyncio.wait_for(listening, 10)


# -- fault tolerance and lease takeover ----------------------------------------
async def test_release_node_jobs_frees_every_incarnation_but_kept_ones(
    store: Store,
) -> None:
    """A node's leases from any incarnation are freed at once, except `keep`;
    other nodes' leases (even with a name that starts alike) are untouched."""
    await enqueue_endpoint_jobs(store, 4)
    old = await claim_one(store, owner="node-a/run1")
    current = await claim_one(store, owner="node-a/run2")
    other = await claim_one(store, owner="node-ab/run1")
    bare = await claim_one(store, owner="node-a")

    released = await store.release_node_jobs(node="node-a", keep=[current.id])

    assert 2 == released
    again = await store.claim_jobs(owner="w9", limit=10, lease_s=30, now=NOW)
    assert {old.id, bare.id} == {j.id for j in again}
    assert not await store.complete_job(other.id, owner="w9")
    assert await store.complete_job(current.id, owner="node-a/run2")


async def test_disable_endpoint_is_conditional_on_the_token(store: Store) -> None:
    """Disabling applies only while the endpoint is enabled with the token the
    failed send used: a re-registration in between is not overwritten."""
    await store.insert_endpoint(make_endpoint(1))
    arn = make_endpoint(1).arn

    assert await store.disable_endpoint(arn, token="token-old") is None
    disabled = await store.disable_endpoint(arn, token="token-1")
    assert disabled is not None and not disabled.enabled
    assert await store.disable_endpoint(arn, token="token-1") is None  # already
    stored = await store.get_endpoint(arn)
    assert stored is not None and not stored.enabled
    assert await store.disable_endpoint(make_endpoint(2).arn, token="t") is None


async def test_replace_endpoint_token_is_conditional(store: Store) -> None:
    """A canonical token replaces the old one only if it is still the old one;
    a token another endpoint of the app has is a ConflictError."""
    await store.insert_endpoint(make_endpoint(1))
    await store.insert_endpoint(make_endpoint(2))
    arn = make_endpoint(1).arn

    assert (
        await store.replace_endpoint_token(arn, old_token="stale", new_token="n")
        is None
    )
    with pytest.raises(ConflictError):
        await store.replace_endpoint_token(
            arn, old_token="token-1", new_token="token-2"
        )
    updated = await store.replace_endpoint_token(
        arn, old_token="token-1", new_token="token-new"
    )
    assert updated is not None and "token-new" == updated.token
    assert (await store.get_endpoint_by_token(APP_ARN, "token-new")) == updated


async def test_probe_writes(store: Store) -> None:
    """The readiness probe is a write the store accepts, repeatedly: one row
    per node, holding the latest time."""
    await store.probe(node="node-a", now=NOW)
    await store.probe(node="node-a", now=NOW + 1)
    await store.probe(node="node-b", now=NOW)

    if isinstance(store, InMemoryStore):
        seen = dict(store.nodes)
    else:
        rows = await store._read("SELECT id, seen_at FROM nodes")  # type: ignore[attr-defined]
        seen = {r["id"]: r["seen_at"] for r in rows}
    assert {"node-a": NOW + 1, "node-b": NOW} == seen


async def test_a_lease_has_one_holder_until_it_runs_out(backend) -> None:
    """Two stores on one database (two nodes) ask for one lease: the first
    takes it, renews it, and the other gets it only once it ran out."""
    a, b = await backend.new(), await backend.new()
    lease = {"name": "cluster-metrics", "lease_s": 10.0}

    assert await a.hold_lease(owner="node-a", now=NOW, **lease)
    assert not await b.hold_lease(owner="node-b", now=NOW + 1, **lease)
    assert await a.hold_lease(owner="node-a", now=NOW + 9, **lease)  # renewed
    assert not await b.hold_lease(owner="node-b", now=NOW + 19, **lease)
    assert await b.hold_lease(owner="node-b", now=NOW + 19.5, **lease)  # ran out
    assert not await a.hold_lease(owner="node-a", now=NOW + 20, **lease)
    # Another name is another election.
    assert await a.hold_lease(name="other", owner="node-a", lease_s=1.0, now=NOW + 20)


async def test_a_released_lease_is_free_at_once(backend) -> None:
    """Release frees the lease for the next asker; a release by a node that
    does not hold it changes nothing."""
    a, b = await backend.new(), await backend.new()
    lease = {"name": "cluster-metrics", "lease_s": 60.0}
    assert await a.hold_lease(owner="node-a", now=NOW, **lease)

    await b.release_lease(name="cluster-metrics", owner="node-b")
    assert not await b.hold_lease(owner="node-b", now=NOW + 1, **lease)

    await a.release_lease(name="cluster-metrics", owner="node-a")
    assert await b.hold_lease(owner="node-b", now=NOW + 1, **lease)
    await a.release_lease(name="never-held", owner="node-a")  # a no-op


async def test_concurrent_lease_requests_elect_one_holder(backend) -> None:
    """Nodes asking at the same moment: exactly one holds the lease."""
    stores = [await backend.new() for _ in range(2)]

    won = await asyncio.gather(
        *(
            stores[i % 2].hold_lease(
                name="cluster-metrics", owner=f"node-{i}", lease_s=30.0, now=NOW
            )
            for i in range(8)
        )
    )

    assert 1 == sum(won)


async def test_sqlite_full_database_is_unavailable_then_recovers(tmp_path) -> None:
    """A full SQLite database (max_page_count stands in for a full disk) gives
    StoreUnavailableError — the error the dispatcher and the API treat as a
    transient state — and takes writes again once there is room, without a
    reopen."""
    store = SqliteStore(str(tmp_path / "full.db"))
    await store.open()
    writer = store._writer
    assert writer is not None

    def limit_pages(pages: int) -> Callable[[sqlite3.Connection], None]:
        return lambda conn: conn.execute(f"PRAGMA max_page_count = {pages}")

    try:
        used = (await store._read_one("PRAGMA page_count"))[0]
        await writer.run(limit_pages(used + 2))
        with pytest.raises(StoreUnavailableError, match="full"):
            for n in range(1, 200):
                await store.enqueue(
                    make_message(n, body="x" * 4000),
                    [NewJob("endpoint", endpoint_arn=make_endpoint(n).arn)],
                )
        with pytest.raises(StoreUnavailableError):
            await store.enqueue(
                make_message(999, body="y" * 8000),
                [NewJob("endpoint", endpoint_arn=make_endpoint(999).arn)],
            )

        await writer.run(limit_pages(1_000_000))
        await store.enqueue(
            make_message(999, body="y" * 8000),
            [NewJob("endpoint", endpoint_arn=make_endpoint(999).arn)],
        )
        await store.probe(node="n", now=NOW)
        assert await store.get_message(make_message(999).id) is not None
    finally:
        await store.close()


async def test_concurrent_writes_fail_alone(store: Store) -> None:
    """Among concurrent inserts, only the one with a token clash fails."""
    await store.insert_endpoint(make_endpoint(7))
    endpoints = [make_endpoint(n) for n in range(1, 21) if n != 7]
    clash = make_endpoint(99, token="token-7")

    results = await asyncio.gather(
        *(store.insert_endpoint(e) for e in [*endpoints, clash]),
        return_exceptions=True,
    )

    assert endpoints == results[:-1]
    assert isinstance(results[-1], ConflictError)
    stored = (await store.list_endpoints(APP_ARN, after=0, limit=50)).items
    assert sorted([*endpoints, make_endpoint(7)], key=lambda e: e.arn) == sorted(
        stored, key=lambda e: e.arn
    )


async def test_concurrent_completions(store: Store) -> None:
    """Many completions at once each get their own answer, wrong owners False."""
    await enqueue_endpoint_jobs(store, 30)
    jobs = await store.claim_jobs(owner="w1", limit=30, lease_s=30, now=NOW)

    results = await asyncio.gather(
        *(store.complete_job(j.id, owner="w1") for j in jobs[:20]),
        *(store.complete_job(j.id, owner="w2") for j in jobs[20:]),
        store.complete_job(jobs[0].id, owner="w1"),
    )

    assert [True] * 20 + [False] * 11 == results
    assert 10 == (await store.job_counts())["total"]
    assert None is await store.get_message(jobs[0].message_id)
    assert make_message(30) == await store.get_message(jobs[29].message_id)


@pytest.mark.parametrize(
    ("url", "kind", "where"),
    [
        ("memory:", InMemoryStore, None),
        (
            "sqlite:///var/lib/pushgw/db.sqlite",
            SqliteStore,
            "/var/lib/pushgw/db.sqlite",
        ),
        ("sqlite:state/pushgw.db", SqliteStore, "state/pushgw.db"),
        ("postgresql://u@h:5432/db", PostgresStore, "postgresql://u@h:5432/db"),
        (
            "postgres://u@h/db?schema=s1&sslmode=require",
            PostgresStore,
            "postgres://u@h/db?sslmode=require",
        ),
    ],
)
def test_open_store_urls(url: str, kind: type, where: str | None) -> None:
    """open_store picks the backend and its location from the URL."""
    store = open_store(url)

    assert isinstance(store, kind)
    if isinstance(store, SqliteStore):
        assert where == store.path
    if isinstance(store, PostgresStore):
        assert where == store.dsn
        assert ("s1" if "schema=" in url else "public") == store.schema


@pytest.mark.parametrize("url", ["mysql://x", "sqlite:", "sqlite://host/x", "memory:x"])
def test_open_store_rejects_bad_urls(url: str) -> None:
    """Unknown schemes and empty or host-style SQLite URLs are config errors."""
    with pytest.raises(ConfigError):
        open_store(url)


async def test_save_progress_keeps_done_seqs_above_the_cursor(store: Store) -> None:
    """A topic job's progress records the cursor and the finished seqs above it."""
    await store.enqueue(
        make_message(topic_arn=TOPIC_ARN), [NewJob("topic", topic_arn=TOPIC_ARN)]
    )
    job = await claim_one(store)

    assert await store.save_progress(job.id, owner="w1", cursor=3, done=[9, 5])
    await store.release_jobs(owner="w1")
    again = await claim_one(store)

    assert (3, (5, 9)) == (again.cursor, again.done)


# -- list parameters, transactions and wake-ups (coverage for the SQL layer) ----
async def test_get_endpoints_many_and_repeated_arns(store: Store) -> None:
    """get_endpoints takes more ARNs than one SQL statement's parameter list and
    repeated ARNs, and still maps each existing endpoint once."""
    for n in range(1, 1201):
        await store.insert_endpoint(make_endpoint(n))
    wanted = [make_endpoint(n).arn for n in range(1, 1301)] + [make_endpoint(5).arn]

    found = await store.get_endpoints(wanted)

    assert 1200 == len(found)
    assert make_endpoint(1200) == found[make_endpoint(1200).arn]


async def test_extend_leases_many_or_none(store: Store) -> None:
    """extend_leases counts every one of many leases and does nothing for none."""
    await enqueue_endpoint_jobs(store, 700)
    jobs = await store.claim_jobs(owner="w1", limit=700, lease_s=30, now=NOW)

    assert 0 == await store.extend_leases(owner="w1", job_ids=[], until=NOW + 99)
    assert 700 == await store.extend_leases(
        owner="w1", job_ids=[j.id for j in jobs], until=NOW + 99
    )
    assert [] == await store.claim_jobs(owner="w2", limit=5, lease_s=1, now=NOW + 98)


async def test_add_jobs_to_a_missing_message_adds_nothing(store: Store) -> None:
    """add_jobs for an unknown message raises NotFoundError and adds no job."""
    with pytest.raises(NotFoundError):
        await store.add_jobs("missing", [NewJob("endpoint", endpoint_arn="ep")])

    assert 0 == (await store.job_counts())["total"]


async def test_concurrent_transactions_fail_alone(store: Store) -> None:
    """Among concurrent multi-statement writes, the failing one leaves no trace
    and the others are all stored."""
    await enqueue_endpoint_jobs(store, 10)
    ids = [make_message(n).id for n in range(1, 11)]

    results = await asyncio.gather(
        *(store.add_jobs(i, [NewJob("endpoint", endpoint_arn="more")]) for i in ids),
        store.add_jobs("missing", [NewJob("endpoint", endpoint_arn="none")]),
        return_exceptions=True,
    )

    assert [None] * 10 == results[:-1]
    assert isinstance(results[-1], NotFoundError)
    jobs = await store.claim_jobs(owner="w1", limit=100, lease_s=30, now=NOW)
    assert 20 == len(jobs)
    assert 10 == sum(j.endpoint_arn == "more" for j in jobs)


async def test_topic_jobs_get_their_own_topic_bound(store: Store) -> None:
    """Several topic jobs in one enqueue or add_jobs each get their topic's max
    subscription seq at that moment."""
    other = make_topic("other").arn
    mine = [await store.insert_subscription(make_sub(n)) for n in (1, 2)]
    theirs = await store.insert_subscription(make_sub(1, other))
    await store.enqueue(
        make_message(),
        [NewJob("topic", topic_arn=TOPIC_ARN), NewJob("topic", topic_arn=other)],
    )
    later = await store.insert_subscription(make_sub(3))
    await store.add_jobs(make_message().id, [NewJob("topic", topic_arn=TOPIC_ARN)])

    jobs = await store.claim_jobs(owner="w1", limit=5, lease_s=30, now=NOW)

    assert [mine[-1].seq, theirs.seq, later.seq] == [j.range_hi for j in jobs]
    assert [TOPIC_ARN, other, TOPIC_ARN] == [j.topic_arn for j in jobs]


async def test_empty_tag_calls_are_noops(store: Store) -> None:
    """set_tags with no tags and remove_tags with no keys change nothing."""
    await store.set_tags(TOPIC_ARN, {"team": "a"})

    await store.set_tags(TOPIC_ARN, {})
    await store.remove_tags(TOPIC_ARN, [])

    assert {"team": "a"} == await store.get_tags(TOPIC_ARN)


async def test_release_node_jobs_without_keep(store: Store) -> None:
    """With nothing to keep, every lease of the node is released."""
    await enqueue_endpoint_jobs(store, 2)
    await claim_one(store, owner="node-a/run1")
    await claim_one(store, owner="node-a")

    assert 2 == await store.release_node_jobs(node="node-a")
    assert 0 == await store.release_node_jobs(node="node-a")


async def test_listen_wakes_on_add_split_and_release(backend) -> None:
    """PostgreSQL listeners are called after add_jobs, a split, release_jobs,
    release_node_jobs and an unclaimed enqueue_endpoint: each makes jobs
    claimable."""
    store, listening, woken = await start_listening(backend)

    async def wakes(call: Callable[[], Awaitable[object]]) -> None:
        woken.clear()
        await call()
        await asyncio.wait_for(woken.wait(), 2)

    try:
        sub = await store.insert_subscription(make_sub(1))
        await store.insert_subscription(make_sub(2))
        message = make_message()
        await wakes(
            lambda: store.enqueue(message, [NewJob("topic", topic_arn=TOPIC_ARN)])
        )
        job = await claim_one(store, owner="node-a/run1")

        await wakes(lambda: store.add_jobs(message.id, [NewJob("endpoint")]))
        await wakes(
            lambda: store.split_topic_job(job.id, owner="node-a/run1", at_seq=sub.seq)
        )
        await wakes(lambda: store.release_jobs(owner="node-a/run1"))
        await claim_one(store, owner="node-a/run2")
        await wakes(lambda: store.release_node_jobs(node="node-a"))
        await store.insert_endpoint(make_endpoint(1))
        await wakes(
            lambda: store.enqueue_endpoint(
                make_message(2), make_endpoint(1).arn, check=lambda _target: None
            )
        )
    finally:
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening

    assert woken.is_set()


async def test_postgres_stall_is_unavailable_then_recovers(backend) -> None:
    """A statement stalled past timeout_s (a table locked by another session)
    raises StoreUnavailableError; once the lock is gone the same store answers."""
    if backend.kind != "postgres":
        pytest.skip("PostgreSQL statement timeouts")
    first = await backend.new()
    assert isinstance(first, PostgresStore)
    store = PostgresStore(first.dsn, schema=first.schema, timeout_s=0.5)
    await store.open()
    locker = await asyncpg.connect(first.dsn)
    try:
        async with locker.transaction():
            await locker.execute(
                f"LOCK TABLE {quote_ident(first.schema)}.jobs IN ACCESS EXCLUSIVE MODE"
            )
            with pytest.raises(StoreUnavailableError):
                await store.job_counts()

        assert 0 == (await store.job_counts())["total"]
    finally:
        await locker.close()
        await store.close()


async def test_insert_topic_writes_its_tags_in_the_same_transaction(
    store: Store,
) -> None:
    """A topic is created with its tags at once; a clashing insert writes
    neither (so a concurrent CreateTopic never sees a half-made topic)."""
    topic = make_topic("tagged")
    await store.insert_topic(topic, {"team": "ios", "env": "prod"})

    with pytest.raises(ConflictError):
        await store.insert_topic(topic, {"team": "android", "new": "x"})

    assert {"team": "ios", "env": "prod"} == await store.get_tags(topic.arn)
    assert topic.arn == (await store.get_topic(topic.arn)).arn  # type: ignore[union-attr]


# -- delivery ledger -------------------------------------------------------------
def make_record(n: int = 1, status: str = "failed", **kw: object) -> DeliveryRecord:
    failure = {"failed": "InvalidPlatformToken", "expired": "NotificationTTLExpired"}
    fields: dict[str, object] = {
        "message_id": make_message(n).id,
        "endpoint_arn": make_endpoint(n).arn,
        "app_arn": APP_ARN,
        "platform": "GCM",
        "status": status,
        "failure_type": failure.get(status),
        "reason": "NotRegistered" if status != "delivered" else "delivered",
        "provider_status": 404 if status == "failed" else 200,
        "attempts": 1,
        "at": NOW + n,
    }
    fields.update(kw)
    return DeliveryRecord(**fields)  # type: ignore[arg-type]


def counts_of(
    message: Message,
    *pairs: tuple[tuple[str, str, str | None], int],
    at: float = NOW,
    sent: bool = False,
) -> MessageCounts:
    """A flush's counts of `message` at `at`; `sent`: a send made then too."""
    return MessageCounts(
        message_id=message.id,
        topic_arn=message.topic_arn,
        target_arn=message.target_arn,
        created_at=message.created_at,
        first_at=at,
        last_at=at,
        counts=dict(pairs),
        first_attempt_at=at if sent else None,
        last_attempt_at=at if sent else None,
    )


def dead_letters(*records: DeliveryRecord) -> LedgerBatch:
    """A batch of records, with the messages of the dead letters among them."""
    messages = {r.message_id: r for r in records if r.dead_letter}
    return LedgerBatch(
        deliveries=records,
        dead_messages=[make_message(int(m.rsplit("-", 1)[1])) for m in messages],
    )


async def all_deliveries(store: Store, **where: object) -> list[DeliveryRecord]:
    page = await store.list_deliveries(
        DeliveryFilter(**where),  # type: ignore[arg-type]
        before=None,
        limit=1000,
    )
    return page.items


async def test_ledger_counters_add_up_across_flushes(store: Store) -> None:
    """Counters of one message are added flush after flush; the first and last
    attempt times widen (a flush without sends leaves them); the rollup adds
    up per minute, platform and status."""
    message = make_message(1, topic_arn=TOPIC_ARN)
    delivered, invalid = ("GCM", "delivered", None), ("GCM", "failed", "Invalid")
    await store.record_ledger(
        LedgerBatch(
            messages=[
                dataclasses.replace(
                    counts_of(message, (delivered, 5), (invalid, 1), at=NOW + 10),
                    first_attempt_at=NOW + 9,
                    last_attempt_at=NOW + 10,
                )
            ],
            rollup={(int(NOW // 60 * 60), "GCM", "delivered"): 5},
        )
    )
    await store.record_ledger(
        LedgerBatch(
            messages=[
                dataclasses.replace(
                    counts_of(message, (delivered, 3), (("APNS", "expired", "TTL"), 2)),
                    first_at=NOW + 5,
                    last_at=NOW + 20,
                    first_attempt_at=NOW + 5,
                    last_attempt_at=NOW + 20,
                ),
            ],
            rollup={(int(NOW // 60 * 60), "GCM", "delivered"): 3},
        )
    )
    # Outcomes decided without a send (a TTL run out in the queue).
    await store.record_ledger(LedgerBatch(messages=[counts_of(message, at=NOW + 30)]))

    ledger = await store.get_message_ledger(message.id)

    assert ledger is not None
    assert (TOPIC_ARN, None, NOW) == (
        ledger.topic_arn,
        ledger.target_arn,
        ledger.created_at,
    )
    assert (NOW + 5, NOW + 20) == (ledger.first_attempt_at, ledger.last_attempt_at)
    assert 0 == ledger.pending_jobs
    assert [
        OutcomeCount("APNS", "expired", "TTL", 2),
        OutcomeCount("GCM", "delivered", None, 8),
        OutcomeCount("GCM", "failed", "Invalid", 1),
    ] == ledger.counts
    stats = await store.delivery_stats(since=NOW - 60, bucket_s=60)
    assert [StatsRow(int(NOW // 60 * 60), "GCM", "delivered", 8)] == stats
    assert None is await store.get_message_ledger(make_message(2).id)


async def test_ledger_attempt_times_without_outcomes_and_the_reverse(
    store: Store,
) -> None:
    """A message still retrying (sends, no outcome yet) has its attempt times
    and no counts; one whose deliveries ended without a send has none."""
    retrying, expired = make_message(1), make_message(2)
    await store.record_ledger(
        LedgerBatch(
            messages=[
                counts_of(retrying, at=NOW + 1, sent=True),
                counts_of(expired, (("GCM", "expired", "TTL"), 1), at=NOW + 2),
            ]
        )
    )
    await store.record_ledger(
        LedgerBatch(messages=[counts_of(retrying, at=NOW + 4, sent=True)])
    )

    got = await store.get_message_ledger(retrying.id)
    none = await store.get_message_ledger(expired.id)

    assert got is not None and none is not None
    assert (NOW + 1, NOW + 4, []) == (
        got.first_attempt_at,
        got.last_attempt_at,
        got.counts,
    )
    assert (None, None) == (none.first_attempt_at, none.last_attempt_at)
    assert [OutcomeCount("GCM", "expired", "TTL", 1)] == none.counts


async def test_message_ledger_counts_pending_jobs(store: Store) -> None:
    """A queued message with no outcome yet is known, with its pending jobs; one
    with outcomes shows the jobs it still has queued."""
    message = make_message(1, target_arn=make_endpoint(1).arn)
    await store.enqueue(
        message,
        [NewJob("endpoint", endpoint_arn=make_endpoint(n).arn) for n in (1, 2)],
    )

    queued = await store.get_message_ledger(message.id)
    await store.record_ledger(
        LedgerBatch(messages=[counts_of(message, (("GCM", "delivered", None), 1))])
    )
    counted = await store.get_message_ledger(message.id)

    assert queued is not None and counted is not None
    assert (2, [], None) == (
        queued.pending_jobs,
        queued.counts,
        queued.first_attempt_at,
    )
    assert message.target_arn == queued.target_arn
    assert 2 == counted.pending_jobs
    assert [OutcomeCount("GCM", "delivered", None, 1)] == counted.counts


async def pending_setup(store: Store) -> tuple[Message, Subscription]:
    """A message with two live GCM endpoint jobs, one of an endpoint gone, one
    http job of an HTTPS subscription, and a topic chunk over five push
    subscriptions and that one."""
    await store.put_app(make_app())
    for n in (1, 2):
        await store.insert_endpoint(make_endpoint(n))
    await store.insert_topic(make_topic())
    hook = await store.insert_subscription(
        Subscription(
            arn=f"{TOPIC_ARN}:http-1",
            topic_arn=TOPIC_ARN,
            endpoint_arn="https://hooks.example/sns",
            protocol="https",
            created_at=NOW,
        )
    )
    for n in range(1, 6):
        await store.insert_subscription(make_sub(n))
    await store.insert_subscription(make_sub(9, "arn:aws:sns:us-east-1:1:other"))
    message = make_message(1, topic_arn=TOPIC_ARN)
    await store.enqueue(
        message,
        [
            *(NewJob("endpoint", endpoint_arn=make_endpoint(n).arn) for n in (1, 2, 3)),
            NewJob("http", subscription_arn=hook.arn),
            NewJob("topic", topic_arn=TOPIC_ARN, next_attempt_at=NOW + 999),
        ],
    )
    return message, hook


async def test_pending_deliveries_by_platform_and_unexpanded_fanout(
    store: Store,
) -> None:
    """A message's queued deliveries by platform (the app's, the subscription's
    protocol, None for an endpoint gone), and its topic chunk with the
    subscriptions it still covers: fewer as the chunk records progress, none
    once the message is done."""
    message, _ = await pending_setup(store)

    queued = await store.pending_deliveries(message.id, limit=100)
    for job in await store.claim_jobs(owner="w", limit=10, lease_s=30, now=NOW):
        assert await store.complete_job(job.id, owner="w")
    (chunk,) = await store.claim_jobs(owner="w", limit=10, lease_s=30, now=NOW + 999)
    subs = await store.subscriptions_range(
        TOPIC_ARN, after_seq=0, upto_seq=chunk.range_hi or 0, limit=10
    )
    await store.save_progress(
        chunk.id, owner="w", cursor=subs[1].seq, done=[subs[3].seq]
    )
    progressed = await store.pending_deliveries(message.id, limit=100)
    http = await store.claim_jobs(
        owner="w", limit=10, lease_s=30, now=NOW, lane=HTTP_LANE
    )
    assert [job.kind for job in http] == ["http"]
    assert await store.complete_job(http[0].id, owner="w")
    assert await store.complete_job(chunk.id, owner="w")
    done = await store.pending_deliveries(message.id, limit=100)

    assert (4, {"GCM": 2, None: 1, "https": 1}) == (
        queued.deliveries,
        queued.by_platform,
    )
    assert (1, 6, False, 0) == (
        queued.chunks,
        queued.subscriptions,
        queued.subscriptions_more,
        queued.uncounted,
    )
    assert (1, {"https": 1}) == (progressed.deliveries, progressed.by_platform)
    assert (1, 3) == (progressed.chunks, progressed.subscriptions)
    assert (0, {}, 0, 0) == (
        done.deliveries,
        done.by_platform,
        done.chunks,
        done.subscriptions,
    )
    assert done == await store.pending_deliveries("no-such-message", limit=100)


async def test_pending_deliveries_read_at_most_limit(store: Store) -> None:
    """Past `limit` the platforms of the other jobs are not read (they count in
    `deliveries`, as `uncounted`) and a chunk's subscriptions are counted up
    to `limit` (`subscriptions_more`)."""
    message, _ = await pending_setup(store)

    got = await store.pending_deliveries(message.id, limit=2)

    assert (4, 2, 2) == (got.deliveries, sum(got.by_platform.values()), got.uncounted)
    assert (1, 2, True) == (got.chunks, got.subscriptions, got.subscriptions_more)


async def test_pending_deliveries_read_one_message_s_jobs(backend) -> None:
    """Every read of `pending_deliveries` goes through an index: the message's
    jobs by (message_id, kind), a chunk's subscriptions by (topic_arn, seq),
    so a message with a million jobs or subscribers costs what `limit` reads."""
    if not backend.is_sql:
        pytest.skip("query plans are the SQL backends'")
    store = await backend.new()
    message, _ = await pending_setup(store)
    seen = await reads_of(
        store, lambda: store.pending_deliveries(message.id, limit=100)
    )

    assert 4 == len(seen)  # the message, by platform, the chunks, one chunk's count
    for sql, params in seen:
        plan = await query_plan(backend.kind, store, sql, params)
        if backend.kind == "sqlite":
            assert "SCAN jobs" not in plan and "SCAN subscriptions" not in plan, plan
        else:
            assert "Seq Scan on jobs" not in plan, plan
            assert "Seq Scan on subscriptions" not in plan, plan
        if "FROM jobs " in sql:
            assert "jobs_message_kind" in plan, plan
        if "FROM subscriptions " in sql:
            assert "subscriptions_topic_seq" in plan, plan


async def test_deliveries_list_newest_first_in_keyset_pages(store: Store) -> None:
    """Records come newest first; a page's `next_after` is the id to pass as
    `before`; the last page has none."""
    await store.record_ledger(dead_letters(*(make_record(n) for n in range(1, 6))))

    first = await store.list_deliveries(DeliveryFilter(), before=None, limit=2)
    second = await store.list_deliveries(
        DeliveryFilter(), before=first.next_after, limit=2
    )
    third = await store.list_deliveries(
        DeliveryFilter(), before=second.next_after, limit=2
    )

    ids = [d.id for page in (first, second, third) for d in page.items]
    assert 5 == len(set(ids))
    assert sorted(ids, reverse=True) == ids
    assert [5, 4, 3, 2, 1] == [
        int(d.message_id.rsplit("-", 1)[1])
        for page in (first, second, third)
        for d in page.items
    ]
    assert None is third.next_after
    assert make_record(1) == dataclasses.replace(third.items[-1], id=0)


async def test_deliveries_filters(store: Store) -> None:
    """Each filter selects what it names; filters combine with AND."""
    other_app = "arn:aws:sns:us-east-1:123456789012:app/GCM/other"
    await store.record_ledger(
        dead_letters(
            make_record(1, "failed"),
            make_record(2, "expired"),
            make_record(3, "delivered"),
            make_record(
                4, "failed", app_arn=other_app, failure_type="DeliveryFailedPerm"
            ),
            make_record(5, "failed", at=NOW - 100),
        )
    )

    def numbers(records: list[DeliveryRecord]) -> list[int]:
        return sorted(int(r.message_id.rsplit("-", 1)[1]) for r in records)

    assert [1, 4, 5] == numbers(await all_deliveries(store, status="failed"))
    assert [4] == numbers(await all_deliveries(store, app_arn=other_app))
    assert [2] == numbers(
        await all_deliveries(store, endpoint_arn=make_endpoint(2).arn)
    )
    assert [3] == numbers(await all_deliveries(store, message_id=make_message(3).id))
    assert [4] == numbers(
        await all_deliveries(store, failure_type="DeliveryFailedPerm")
    )
    assert [1, 2, 3, 4] == numbers(await all_deliveries(store, since=NOW))
    assert [1, 2, 4, 5] == numbers(await all_deliveries(store, dead_letter=True))
    assert [3] == numbers(await all_deliveries(store, dead_letter=False))
    assert [1, 5] == numbers(
        await all_deliveries(store, status="failed", app_arn=APP_ARN)
    )
    everything = await all_deliveries(store)
    chosen = [everything[0].id, everything[2].id]
    assert sorted(chosen) == sorted(
        d.id for d in await all_deliveries(store, ids=chosen)
    )
    assert [] == await all_deliveries(store, ids=[])
    assert [True, True, False, True, True] == [
        d.dead_letter for d in sorted(everything, key=lambda d: d.id)
    ]


async def test_delivery_stats_sum_into_buckets(store: Store) -> None:
    """Minutes are summed into buckets of the asked size, by platform and status,
    oldest first; buckets before `since` are left out."""
    hour = int(NOW // 3600) * 3600
    await store.record_ledger(
        LedgerBatch(
            rollup={
                (hour, "GCM", "delivered"): 3,
                (hour + 60, "GCM", "delivered"): 4,
                (hour + 120, "GCM", "failed"): 1,
                (hour + 300, "APNS", "expired"): 2,
                (hour - 60, "GCM", "delivered"): 100,
            }
        )
    )

    five = await store.delivery_stats(since=hour, bucket_s=300)
    minutes = await store.delivery_stats(since=hour + 60, bucket_s=60)

    assert [
        StatsRow(hour, "GCM", "delivered", 7),
        StatsRow(hour, "GCM", "failed", 1),
        StatsRow(hour + 300, "APNS", "expired", 2),
    ] == five
    assert [hour + 60, hour + 120, hour + 300] == [r.start for r in minutes]


async def test_replay_renews_a_message_still_stored_but_expired(
    store: Store,
) -> None:
    """A dead letter's message may still be stored when it is replayed (another
    of its jobs queued, or its row not yet cleaned up). Expired, it takes the
    replay's times, as a message stored anew would: the replay is not lost to
    the cleanup's timing. Not yet expired, it keeps its own."""
    expiring = make_message(1, expires_at=NOW + 4)
    lasting = make_message(2, expires_at=NOW + 600)
    for message in (expiring, lasting):
        await store.enqueue(
            message,
            [NewJob("endpoint", endpoint_arn=make_endpoint(n).arn) for n in (1, 2)],
        )
    await store.record_ledger(
        LedgerBatch(
            deliveries=[make_record(1, "expired"), make_record(2, "expired")],
            dead_messages=[expiring, lasting],
        )
    )
    later = NOW + 10

    result = await store.replay_dead_letters(DeliveryFilter(), limit=10, now=later)

    renewed = {m.id: m for m in result.messages}
    assert (later, later + 4) == (
        renewed[expiring.id].created_at,
        renewed[expiring.id].expires_at,
    )
    assert renewed[expiring.id] == await store.get_message(expiring.id)
    assert (NOW, NOW + 600) == (
        renewed[lasting.id].created_at,
        renewed[lasting.id].expires_at,
    )


async def test_replay_stores_a_gone_message_again_with_a_fresh_ttl(
    store: Store,
) -> None:
    """A dead letter whose message is gone is queued again: the message is
    stored anew under its id (created now, so its TTL counts from the replay)
    with an endpoint job due now; the record is marked replayed, once."""
    ttl = {"AWS.SNS.MOBILE.GCM.TTL": MessageAttribute("String", "60")}
    kept = make_message(1, attributes=ttl, subject="s", expires_at=NOW + 60)
    record = make_record(1, "expired")
    await store.record_ledger(LedgerBatch(deliveries=[record], dead_messages=[kept]))
    later = NOW + 3600

    result = await store.replay_dead_letters(
        DeliveryFilter(message_id=kept.id), limit=10, now=later
    )
    again = await store.replay_dead_letters(
        DeliveryFilter(message_id=kept.id), limit=10, now=later + 1
    )

    assert (1, 0) == (result.replayed, result.remaining)
    assert (0, 0) == (again.replayed, again.remaining)
    fresh = dataclasses.replace(kept, created_at=later, expires_at=later + 60)
    assert [fresh] == result.messages
    assert fresh == await store.get_message(kept.id)
    (job,) = await store.claim_jobs(owner="w", limit=10, lease_s=30, now=later)
    assert ("endpoint", record.endpoint_arn, kept.id) == (
        job.kind,
        job.endpoint_arn,
        job.message_id,
    )
    (replayed,) = await all_deliveries(store)
    assert later == replayed.replayed_at
    assert await store.complete_job(job.id, owner="w")
    assert None is await store.get_message(kept.id)


async def test_replay_adds_jobs_to_a_message_still_queued(store: Store) -> None:
    """A dead letter of a message still queued adds its job to that message
    (its TTL unchanged); the message goes once every job is done."""
    message = make_message(1)
    await store.enqueue(
        message, [NewJob("endpoint", endpoint_arn="other", next_attempt_at=NOW + 999)]
    )
    await store.record_ledger(
        dead_letters(make_record(1), make_record(1, endpoint_arn="e2"))
    )

    result = await store.replay_dead_letters(DeliveryFilter(), limit=10, now=NOW + 5)

    assert 2 == result.replayed
    assert [message] == result.messages
    ledger = await store.get_message_ledger(message.id)
    assert ledger is not None and 3 == ledger.pending_jobs
    jobs = await store.claim_jobs(owner="w", limit=10, lease_s=30, now=NOW + 5)
    assert {make_endpoint(1).arn, "e2"} == {j.endpoint_arn for j in jobs}
    for job in jobs:
        assert await store.complete_job(job.id, owner="w")
    assert message == await store.get_message(message.id)  # "other" is still queued


async def test_replay_of_an_http_dead_letter_queues_an_http_job(store: Store) -> None:
    """A subscription's dead letter (no application; the record's endpoint is
    the subscription) is queued again as an http job of that subscription, in
    the HTTP lane, with the message stored anew."""
    hook = f"{TOPIC_ARN}:http-1"
    kept = make_message(1, topic_arn=TOPIC_ARN)
    record = make_record(
        1,
        endpoint_arn=hook,
        app_arn="",
        platform="https",
        failure_type="DeliveryPolicyExhausted",
        provider_status=500,
    )
    await store.record_ledger(LedgerBatch(deliveries=[record], dead_messages=[kept]))

    result = await store.replay_dead_letters(DeliveryFilter(), limit=10, now=NOW + 9)

    assert 1 == result.replayed
    assert [] == await store.claim_jobs(owner="w", limit=10, lease_s=30, now=NOW + 9)
    (job,) = await store.claim_jobs(
        owner="w", limit=10, lease_s=30, now=NOW + 9, lane=HTTP_LANE
    )
    assert ("http", hook, None, kept.id) == (
        job.kind,
        job.subscription_arn,
        job.payload,
        job.message_id,
    )
    (listed,) = await all_deliveries(store)
    assert ("", "https", True) == (listed.app_arn, listed.platform, listed.subscription)


async def test_replay_selects_oldest_first_within_its_limit(store: Store) -> None:
    """Only dead letters are replayed (not sampled successes), those the filter
    selects, oldest first up to the limit; `remaining` counts what is left."""
    other_app = "arn:aws:sns:us-east-1:123456789012:app/GCM/other"
    await store.record_ledger(
        dead_letters(
            *(make_record(n) for n in range(1, 6)),
            make_record(6, "delivered"),
            make_record(7, "expired", app_arn=other_app),
        )
    )

    first = await store.replay_dead_letters(
        DeliveryFilter(app_arn=APP_ARN), limit=2, now=NOW
    )
    # A listing tells replayed dead letters from the others (the console's
    # "hide replayed" is this filter, so its pages stay full).
    replayed_now = await all_deliveries(store, replayed=True)
    not_yet = await all_deliveries(store, dead_letter=True, replayed=False)
    assert sorted(m.id for m in first.messages) == sorted(
        d.message_id for d in replayed_now
    )
    assert [make_message(n).id for n in (3, 4, 5, 7)] == sorted(
        d.message_id for d in not_yet
    )
    by_id = await store.replay_dead_letters(
        DeliveryFilter(ids=[(await all_deliveries(store, app_arn=other_app))[0].id]),
        limit=10,
        now=NOW,
    )
    rest = await store.replay_dead_letters(DeliveryFilter(since=0), limit=10, now=NOW)

    assert (2, 3) == (first.replayed, first.remaining)
    assert [make_message(1).id, make_message(2).id] == [m.id for m in first.messages]
    assert (1, 0) == (by_id.replayed, by_id.remaining)
    assert (3, 0) == (rest.replayed, rest.remaining)
    replayed = [d for d in await all_deliveries(store) if d.replayed_at is not None]
    assert 6 == len(replayed)
    assert 6 == len(await store.claim_jobs(owner="w", limit=20, lease_s=30, now=NOW))


async def test_concurrent_replays_queue_a_dead_letter_once(backend) -> None:
    """Replays at once (two store instances on SQL) never queue one dead
    letter twice (one may find its choice taken and replay fewer); calling
    until nothing remains replays every one."""
    first = await backend.new()
    second = await backend.new() if backend.is_sql else first
    await first.record_ledger(dead_letters(*(make_record(n) for n in range(1, 41))))

    results = await asyncio.gather(
        *(
            store.replay_dead_letters(DeliveryFilter(), limit=7, now=NOW)
            for store in (first, second, first, second, first, second, first, second)
        )
    )
    while (
        await first.replay_dead_letters(DeliveryFilter(), limit=7, now=NOW)
    ).replayed:
        pass

    assert sum(r.replayed for r in results) <= 40
    jobs = await first.claim_jobs(owner="w", limit=100, lease_s=30, now=NOW)
    assert 40 == len(jobs)
    assert 40 == len({j.endpoint_arn for j in jobs})


async def test_prune_ledger_by_age_and_by_caps(store: Store) -> None:
    """Records and message counters older than the retention go, records beyond
    each cap go oldest first, and dead-letter messages go with their last
    dead letter; the rollup has its own age."""
    old, recent = make_message(1), make_message(2)
    await store.record_ledger(
        LedgerBatch(
            messages=[
                counts_of(old, (("GCM", "failed", "X"), 1), at=NOW - 1000),
                counts_of(recent, (("GCM", "delivered", None), 1), at=NOW),
            ],
            rollup={(int(NOW // 60 * 60) - 7200, "GCM", "failed"): 1},
        )
    )
    await store.record_ledger(
        dead_letters(
            make_record(1, at=NOW - 1000),
            *(make_record(n, at=NOW + n) for n in range(2, 6)),
            *(make_record(n, "delivered", at=NOW + n) for n in range(6, 9)),
        )
    )
    retention = LedgerRetention(
        before=NOW - 10,
        rollup_before=NOW - 3600,
        max_deliveries=2,
        max_dead_letters=3,
    )

    gone = await store.prune_ledger(retention, limit=1000)

    left = sorted(
        int(d.message_id.rsplit("-", 1)[1]) for d in await all_deliveries(store)
    )
    assert [3, 4, 5, 7, 8] == left
    assert None is await store.get_message_ledger(old.id)
    assert None is not await store.get_message_ledger(recent.id)
    assert [] == await store.delivery_stats(since=0, bucket_s=60)
    # Messages 1 and 2 lost their dead letters: nothing is left to replay.
    replay = await store.replay_dead_letters(
        DeliveryFilter(message_id=make_message(2).id), limit=10, now=NOW
    )
    assert 0 == replay.replayed
    assert gone >= 1 + 1 + 1 + 1 + 1  # records, counters, rollup, messages
    assert 0 == await store.prune_ledger(retention, limit=1000)


async def test_prune_ledger_caps_message_counters(store: Store) -> None:
    """Past `max_messages` the least recently seen messages go with their
    counters (ties in seen time go by id), a bounded number per call; the age
    applies too."""
    await store.record_ledger(
        LedgerBatch(
            messages=[
                counts_of(make_message(n), (("GCM", "delivered", None), n), at=at)
                for n, at in (
                    (1, NOW - 1000),
                    (2, NOW + 1),
                    (3, NOW + 2),
                    (4, NOW + 2),
                    (5, NOW + 5),
                    (6, NOW + 6),
                )
            ]
        )
    )
    retention = LedgerRetention(
        before=NOW,
        rollup_before=0,
        max_deliveries=100,
        max_dead_letters=100,
        max_messages=2,
    )

    first = await store.prune_ledger(retention, limit=2)
    while await store.prune_ledger(retention, limit=2) >= 2:
        pass

    left = [
        n
        for n in range(1, 7)
        if await store.get_message_ledger(make_message(n).id) is not None
    ]
    assert [5, 6] == left
    assert 3 == first  # one by age, two past the cap
    counts = await store.get_message_ledger(make_message(6).id)
    assert counts is not None
    assert [OutcomeCount("GCM", "delivered", None, 6)] == counts.counts
    # A message counted again is kept with fresh counters.
    await store.record_ledger(
        LedgerBatch(messages=[counts_of(make_message(3), at=NOW + 9)])
    )
    assert 1 == await store.prune_ledger(retention, limit=100)
    again = await store.get_message_ledger(make_message(3).id)
    assert again is not None and [] == again.counts


async def test_prune_ledger_is_bounded_per_call(store: Store) -> None:
    """A call drops at most `limit` rows of each kind; calling again goes on."""
    await store.record_ledger(
        dead_letters(*(make_record(n, at=NOW - 100) for n in range(1, 8)))
    )
    retention = LedgerRetention(
        before=NOW, rollup_before=0, max_deliveries=100, max_dead_letters=100
    )

    first = await store.prune_ledger(retention, limit=3)
    left = len(await all_deliveries(store))
    while await store.prune_ledger(retention, limit=3) >= 3:
        pass

    assert first >= 3
    assert 4 == left
    assert [] == await all_deliveries(store)


async def test_dead_letter_message_is_kept_once(store: Store) -> None:
    """A message with several dead letters is kept once; the first copy stays."""
    first = make_message(1)
    await store.record_ledger(
        LedgerBatch(deliveries=[make_record(1)], dead_messages=[first])
    )
    await store.record_ledger(
        LedgerBatch(
            deliveries=[make_record(1, endpoint_arn="e2")],
            dead_messages=[dataclasses.replace(first, body="changed")],
        )
    )

    result = await store.replay_dead_letters(DeliveryFilter(), limit=10, now=NOW)

    assert 2 == result.replayed
    assert ["hello 1"] == [m.body for m in result.messages]
