"""
Races and holes of the service layer, on the in-memory and the SQLite store.

A race is reproduced deterministically: `RacingStore` runs a competing request
(another `Service` on the same database) just before the first call of one store
method, i.e. after the service's read found nothing and before its own write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest

from pushgw.arn import ArnBuilder
from pushgw.errors import ApiError
from pushgw.service import Service
from pushgw.service.types import BatchEntry, PublishInput
from pushgw.store.base import Store
from pushgw.store.memory import InMemoryStore
from pushgw.store.sqlite import SqliteStore

REGION = "us-east-1"
ACCOUNT = "123456789012"
FOREIGN = "111111111111"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:news"
FOREIGN_TOPIC = f"arn:aws:sns:{REGION}:{FOREIGN}:news"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
GCM = {"PlatformCredential": "AIzaKey"}
DIFFERENT_ATTRIBUTES = (
    "Invalid parameter: Attributes Reason: Topic already exists with different"
    " attributes"
)
DIFFERENT_TAGS = (
    "Invalid parameter: Tags Reason: Topic already exists with different tags"
)

Competitor = Callable[[Service], Awaitable[object]]


class RacingStore:
    """Delegates to `inner`; runs `competitor` once, before the first `method`."""

    def __init__(self, inner: Store, method: str, competitor: Competitor) -> None:
        self._inner = inner
        self._method = method
        self._competitor = competitor
        self.raced = False

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._inner, name)
        if name != self._method or self.raced:
            return real

        async def raced(*args: Any, **kwargs: Any) -> Any:
            self.raced = True
            await self._competitor(service(self._inner))
            return await real(*args, **kwargs)

        return raced


def service(store: Store | RacingStore) -> Service:
    return Service(store=cast(Store, store), arns=ArnBuilder(REGION, ACCOUNT))


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    made: Store = (
        InMemoryStore()
        if request.param == "memory"
        else SqliteStore(str(tmp_path / "pushgw.db"))
    )
    await made.open()
    yield made
    await made.close()


def racing(store: Store, method: str, competitor: Competitor) -> RacingStore:
    return RacingStore(store, method, competitor)


async def refused(call: Awaitable[object]) -> tuple[str, int, str]:
    with pytest.raises(ApiError) as info:
        await call
    return info.value.code, info.value.status, info.value.message


async def make_endpoint(svc: Service, token: str = "tok") -> str:
    app = await svc.create_platform_application(
        name="app", platform="GCM", attributes=GCM
    )
    return await svc.create_platform_endpoint(
        app_arn=app, token=token, custom_user_data=None, attributes=None
    )


# -- CreateTopic -----------------------------------------------------------------
def create_news(
    attributes: dict[str, str] | None = None, tags: dict[str, str] | None = None
) -> Competitor:
    return lambda svc: svc.create_topic(name="news", attributes=attributes, tags=tags)


async def test_concurrent_create_topic_returns_the_winners_arn(store: Store) -> None:
    """The loser of a CreateTopic race gets the same ARN, not a 500."""
    attrs, tags = {"DisplayName": "News"}, {"team": "push"}
    race = racing(store, "insert_topic", create_news(attrs, tags))

    arn = await service(race).create_topic(name="news", attributes=attrs, tags=tags)

    assert race.raced
    assert TOPIC == arn
    assert [TOPIC] == [
        t.arn for t in (await store.list_topics(after=0, limit=10)).items
    ]
    assert tags == await store.get_tags(TOPIC)


@pytest.mark.parametrize("raced", [True, False], ids=["raced", "sequential"])
@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        (
            {"attributes": {"DisplayName": "A"}},
            {"attributes": {"DisplayName": "B"}},
            DIFFERENT_ATTRIBUTES,
        ),
        ({}, {"attributes": {"DisplayName": "B"}}, DIFFERENT_ATTRIBUTES),
        ({"tags": {"team": "a"}}, {"tags": {"team": "b"}}, DIFFERENT_TAGS),
        ({}, {"tags": {"team": "b"}}, DIFFERENT_TAGS),
    ],
    ids=["other-attribute", "new-attribute", "other-tag", "new-tag"],
)
async def test_create_topic_conflict_is_the_same_answer_raced_or_not(
    store: Store,
    raced: bool,
    first: dict[str, Any],
    second: dict[str, Any],
    message: str,
) -> None:
    """Different attributes or tags give SNS's 400 whether or not the calls raced."""
    race = racing(store, "insert_topic", create_news(**first))
    if not raced:
        await create_news(**first)(service(store))

    error = await refused(
        service(race).create_topic(
            name="news",
            attributes=second.get("attributes"),
            tags=second.get("tags"),
        )
    )

    assert race.raced is raced
    assert ("InvalidParameter", 400, message) == error
    assert 1 == len((await store.list_topics(after=0, limit=10)).items)


@pytest.mark.parametrize(
    "supplied",
    [{}, {"a": "1"}, {"a": "1", "b": "2"}],
    ids=["no-tags", "subset", "same"],
)
async def test_create_topic_again_with_a_subset_of_its_tags(
    store: Store, supplied: dict[str, str]
) -> None:
    """Tags that are all stored already are idempotent (LocalStack, AWS-validated)."""
    svc = service(store)
    await svc.create_topic(name="news", attributes=None, tags={"a": "1", "b": "2"})

    assert TOPIC == await svc.create_topic(name="news", attributes=None, tags=supplied)
    assert {"a": "1", "b": "2"} == await store.get_tags(TOPIC)


@pytest.mark.parametrize(
    ("tags", "code"),
    [
        ({"": "v"}, "InvalidParameter"),
        ({"k" * 129: "v"}, "InvalidParameter"),
        ({"k": "v" * 257}, "InvalidParameter"),
        ({f"k{n}": "v" for n in range(51)}, "TagLimitExceeded"),
    ],
    ids=["empty-key", "long-key", "long-value", "too-many"],
)
async def test_create_topic_with_bad_tags_creates_nothing(
    store: Store, tags: dict[str, str], code: str
) -> None:
    """Tags are checked before the topic is written: a refusal leaves no topic."""
    error = await refused(
        service(store).create_topic(name="news", attributes=None, tags=tags)
    )

    assert (code, 400) == error[:2]
    assert [] == (await store.list_topics(after=0, limit=10)).items
    assert {} == await store.get_tags(TOPIC)


async def test_create_topic_with_a_bad_attribute_creates_nothing(store: Store) -> None:
    """An unknown attribute is refused before anything is written."""
    error = await refused(
        service(store).create_topic(
            name="news", attributes={"Bogus": "x"}, tags={"team": "a"}
        )
    )

    assert (
        "InvalidParameter",
        400,
        "Invalid parameter: AttributeName Reason: Unknown attribute Bogus",
    ) == error
    assert [] == (await store.list_topics(after=0, limit=10)).items
    assert {} == await store.get_tags(TOPIC)


# -- foreign accounts and regions ------------------------------------------------
def denied(action: str, arn: str) -> tuple[str, int, str]:
    return (
        "AuthorizationError",
        403,
        f"User: {ROOT} is not authorized to perform: SNS:{action} on resource: {arn}"
        f" because no resource-based policy allows the SNS:{action} action",
    )


async def test_delete_topic_of_another_account_is_refused(store: Store) -> None:
    """DeleteTopic on a foreign ARN is a 403, and our same-named topic survives."""
    svc = service(store)
    await svc.create_topic(name="news", attributes=None, tags=None)

    error = await refused(svc.delete_topic(FOREIGN_TOPIC))

    assert denied("DeleteTopic", FOREIGN_TOPIC) == error
    assert await store.get_topic(TOPIC) is not None


async def test_delete_topic_of_another_region_is_refused(store: Store) -> None:
    """Another region's TopicArn gets what the other topic actions answer."""
    svc = service(store)
    await svc.create_topic(name="news", attributes=None, tags=None)
    other = TOPIC.replace(REGION, "eu-west-1")

    error = await refused(svc.delete_topic(other))

    assert ("InvalidParameter", 400, "Invalid parameter: TopicArn") == error
    assert await store.get_topic(TOPIC) is not None


SUB = f"{FOREIGN_TOPIC}:0f8c5c2a-0000-4000-8000-000000000000"
FOREIGN_CALLS: list[tuple[str, str, Callable[[Service], Awaitable[object]]]] = [
    (
        "GetTopicAttributes",
        FOREIGN_TOPIC,
        lambda s: s.get_topic_attributes(FOREIGN_TOPIC),
    ),
    (
        "SetTopicAttributes",
        FOREIGN_TOPIC,
        lambda s: s.set_topic_attributes(
            arn=FOREIGN_TOPIC, name="DisplayName", value="x"
        ),
    ),
    (
        "Subscribe",
        FOREIGN_TOPIC,
        lambda s: s.subscribe(
            topic_arn=FOREIGN_TOPIC,
            protocol="application",
            endpoint="x",
            attributes=None,
        ),
    ),
    (
        "ListSubscriptionsByTopic",
        FOREIGN_TOPIC,
        lambda s: s.list_subscriptions_by_topic(FOREIGN_TOPIC, None),
    ),
    (
        "Publish",
        FOREIGN_TOPIC,
        lambda s: s.publish(PublishInput(message="m", topic_arn=FOREIGN_TOPIC)),
    ),
    (
        "Publish",
        FOREIGN_TOPIC,
        lambda s: s.publish(PublishInput(message="m", target_arn=FOREIGN_TOPIC)),
    ),
    (
        "Publish",
        FOREIGN_TOPIC,
        lambda s: s.publish_batch(
            topic_arn=FOREIGN_TOPIC, entries=[BatchEntry(id="a", message="m")]
        ),
    ),
    ("TagResource", FOREIGN_TOPIC, lambda s: s.tag_resource(FOREIGN_TOPIC, {"k": "v"})),
    ("UntagResource", FOREIGN_TOPIC, lambda s: s.untag_resource(FOREIGN_TOPIC, ["k"])),
    (
        "ListTagsForResource",
        FOREIGN_TOPIC,
        lambda s: s.list_tags_for_resource(FOREIGN_TOPIC),
    ),
    ("Unsubscribe", SUB, lambda s: s.unsubscribe(SUB)),
    ("GetSubscriptionAttributes", SUB, lambda s: s.get_subscription_attributes(SUB)),
    (
        "SetSubscriptionAttributes",
        SUB,
        lambda s: s.set_subscription_attributes(
            arn=SUB, name="RawMessageDelivery", value="true"
        ),
    ),
]


@pytest.mark.parametrize(
    ("action", "arn", "call"),
    FOREIGN_CALLS,
    ids=[f"{n}-{a}" for n, (a, _, _) in enumerate(FOREIGN_CALLS)],
)
async def test_topic_actions_refuse_another_accounts_arn(
    store: Store,
    action: str,
    arn: str,
    call: Callable[[Service], Awaitable[object]],
) -> None:
    """Every topic, subscription and tag action refuses a foreign ARN alike."""
    svc = service(store)
    await svc.create_topic(name="news", attributes=None, tags={"k": "v"})

    assert denied(action, arn) == await refused(call(svc))
    assert {"k": "v"} == await store.get_tags(TOPIC)


async def test_subscription_id_is_checked_before_the_account(store: Store) -> None:
    """The AWS-validated `…:111111111111:random` case keeps its answer (§7)."""
    error = await refused(
        service(store).unsubscribe(f"arn:aws:sns:{REGION}:{FOREIGN}:random")
    )

    assert ("InvalidParameter", 400, "Invalid parameter: SubscriptionId") == error


# -- CreatePlatformEndpoint, Subscribe, CreatePlatformApplication ------------------
async def test_concurrent_create_endpoint_same_attributes(store: Store) -> None:
    """The loser of a same-token race gets the winner's ARN (§5.1 rule 2)."""
    svc = service(store)
    app = await svc.create_platform_application(
        name="app", platform="GCM", attributes=GCM
    )
    winner: list[str] = []

    async def compete(other: Service) -> None:
        winner.append(
            await other.create_platform_endpoint(
                app_arn=app, token="tok", custom_user_data="u", attributes=None
            )
        )

    race = racing(store, "insert_endpoint", compete)
    arn = await service(race).create_platform_endpoint(
        app_arn=app, token="tok", custom_user_data="u", attributes=None
    )

    assert race.raced
    assert winner == [arn]
    assert [arn] == [
        e.arn for e in (await store.list_endpoints(app, after=0, limit=10)).items
    ]


async def test_concurrent_create_endpoint_different_attributes(store: Store) -> None:
    """A same-token race with different attributes is §5.1 rule 3, not a 500."""
    svc = service(store)
    app = await svc.create_platform_application(
        name="app", platform="GCM", attributes=GCM
    )
    winner: list[str] = []

    async def compete(other: Service) -> None:
        winner.append(
            await other.create_platform_endpoint(
                app_arn=app,
                token="tok",
                custom_user_data=None,
                attributes={"Enabled": "false"},
            )
        )

    race = racing(store, "insert_endpoint", compete)
    error = await refused(
        service(race).create_platform_endpoint(
            app_arn=app,
            token="tok",
            custom_user_data=None,
            attributes={"Enabled": "true"},
        )
    )

    assert race.raced
    assert (
        "InvalidParameter",
        400,
        f"Invalid parameter: Token Reason: Endpoint {winner[0]} already exists with"
        " the same Token, but different attributes.",
    ) == error


@pytest.mark.parametrize(
    ("theirs", "ours", "message"),
    [
        ({"RawMessageDelivery": "true"}, {"RawMessageDelivery": "true"}, None),
        (
            {"RawMessageDelivery": "true"},
            {"RawMessageDelivery": "false"},
            "Invalid parameter: Attributes Reason: Subscription already exists with"
            " different attributes",
        ),
    ],
    ids=["same", "different"],
)
async def test_concurrent_subscribe(
    store: Store,
    theirs: dict[str, str],
    ours: dict[str, str],
    message: str | None,
) -> None:
    """Subscribing one endpoint twice at once: one subscription, §7's answers."""
    svc = service(store)
    endpoint = await make_endpoint(svc)
    await svc.create_topic(name="news", attributes=None, tags=None)
    winner: list[str] = []

    async def compete(other: Service) -> None:
        winner.append(
            await other.subscribe(
                topic_arn=TOPIC,
                protocol="application",
                endpoint=endpoint,
                attributes=theirs,
            )
        )

    race = racing(store, "insert_subscription", compete)
    ours_call = service(race).subscribe(
        topic_arn=TOPIC, protocol="application", endpoint=endpoint, attributes=ours
    )
    if message is None:
        assert winner == [await ours_call]
    else:
        assert ("InvalidParameter", 400, message) == await refused(ours_call)

    assert race.raced
    subs = (await store.list_subscriptions(topic_arn=TOPIC, after=0, limit=10)).items
    assert winner == [s.arn for s in subs]


async def test_concurrent_create_platform_application(store: Store) -> None:
    """Same Name+Platform at once: one app, one ARN (an upsert cannot conflict)."""
    winner: list[str] = []

    async def compete(other: Service) -> None:
        winner.append(
            await other.create_platform_application(
                name="app", platform="GCM", attributes=GCM
            )
        )

    race = racing(store, "put_app", compete)
    arn = await service(race).create_platform_application(
        name="app", platform="GCM", attributes={"PlatformCredential": "AIzaOther"}
    )

    assert race.raced
    assert winner == [arn]
    apps = (await store.list_apps(after=0, limit=10)).items
    assert [(arn, "AIzaOther")] == [(a.arn, a.credential) for a in apps]
