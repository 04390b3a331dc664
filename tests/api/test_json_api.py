"""The JSON API (/v1) in-process: every route, SNS's rules, and hostile input."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import pytest
import structlog
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushgw.api.app import make_app
from pushgw.arn import ArnBuilder
from pushgw.config import config_from_mapping
from pushgw.model import Topic
from pushgw.service import Service
from pushgw.service.types import Listing
from pushgw.store.memory import InMemoryStore

ADMIN_KEY = "admin-json-key"
PUBLISH_KEY = "publish-only-json-key"
MAX_BODY = 400_000
GCM_CREDENTIALS = {"PlatformCredential": "AIzaSyExampleKey"}
CONFIG = {
    "server": {"max_body_bytes": MAX_BODY},
    "auth": {
        "api_keys": [
            {"name": "admin", "key": ADMIN_KEY},
            {"name": "publisher", "key": PUBLISH_KEY, "actions": ["Publish"]},
        ]
    },
}
DIFFERENT = "already exists with the same Token, but different attributes."


class Api:
    """A TestClient that sends the admin bearer key and decodes JSON."""

    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = ADMIN_KEY,
        data: bytes | None = None,
        params: Any = None,
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        response: ClientResponse = await self.client.request(
            method, path, data=data, headers=headers, params=params
        )
        text = await response.text()
        return response.status, (json.loads(text) if text else None)

    async def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, payload = await self.call(method, path, body, **kw)
        assert status < 300, payload
        return payload

    async def gcm_app(self, name: str = "gcm-app") -> str:
        payload = await self.ok(
            "POST",
            "/v1/platform-applications",
            {"name": name, "platform": "GCM", "attributes": GCM_CREDENTIALS},
        )
        return str(payload["platformApplicationArn"])

    async def endpoint(self, app_arn: str, token: str, **body: Any) -> str:
        payload = await self.ok(
            "POST",
            f"/v1/platform-applications/{app_arn}/endpoints",
            {"token": token, **body},
        )
        return str(payload["endpointArn"])

    async def topic(self, name: str = "news") -> str:
        payload = await self.ok("POST", "/v1/topics", {"name": name})
        return str(payload["topicArn"])


def assert_error(status: int, payload: Any, expected_status: int, code: str) -> str:
    """Check the JSON error shape, status and code; return the message."""
    assert expected_status == status, payload
    assert ["error"] == list(payload)
    assert {"code", "message"} == set(payload["error"])
    assert code == payload["error"]["code"]
    assert "Traceback" not in payload["error"]["message"]
    return str(payload["error"]["message"])


def make_service() -> tuple[Service, InMemoryStore]:
    store = InMemoryStore()
    return Service(store=store, arns=ArnBuilder("us-east-1", "123456789012")), store


@pytest.fixture(name="api")
async def _api() -> AsyncIterator[Api]:
    service, _store = make_service()
    app = make_app(config=config_from_mapping(CONFIG), service=service)
    async with TestClient(TestServer(app)) as client:
        yield Api(client)


def p256_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


# -- platform applications ------------------------------------------------------
async def test_app_lifecycle(api: Api) -> None:
    """Create, get, set, list and delete a GCM application."""
    arn = await api.gcm_app("lifecycle")
    assert "arn:aws:sns:us-east-1:123456789012:app/GCM/lifecycle" == arn
    got = await api.ok("GET", f"/v1/platform-applications/{arn}")
    assert arn == got["platformApplicationArn"]
    assert "true" == got["attributes"]["Enabled"]
    assert "PlatformCredential" not in got["attributes"]
    status, body = await api.call(
        "PATCH",
        f"/v1/platform-applications/{arn}",
        {"attributes": {"SuccessFeedbackSampleRate": "50"}},
    )
    assert (204, None) == (status, body)
    got = await api.ok("GET", f"/v1/platform-applications/{arn}")
    assert "50" == got["attributes"]["SuccessFeedbackSampleRate"]
    listed = await api.ok("GET", "/v1/platform-applications")
    assert [arn] == [
        a["platformApplicationArn"] for a in listed["platformApplications"]
    ]
    assert "nextToken" not in listed
    assert 204 == (await api.call("DELETE", f"/v1/platform-applications/{arn}"))[0]
    status, body = await api.call("GET", f"/v1/platform-applications/{arn}")
    message = assert_error(status, body, 404, "NotFound")
    assert "PlatformApplication does not exist" == message


async def test_apns_token_app_and_lowercase_token(api: Api) -> None:
    """An APNs token-auth app accepts a P-256 key; its endpoint tokens are lowercased."""
    created = await api.ok(
        "POST",
        "/v1/platform-applications",
        {
            "name": "ios",
            "platform": "APNS",
            "attributes": {
                "PlatformPrincipal": "ABCDE12345",
                "PlatformCredential": p256_pem(),
                "ApplePlatformTeamID": "TEAM123456",
                "ApplePlatformBundleID": "com.example.app",
            },
        },
    )
    app_arn = created["platformApplicationArn"]
    got = await api.ok("GET", f"/v1/platform-applications/{app_arn}")
    assert "Token" == got["attributes"]["AuthenticationMethod"]
    assert "PlatformCredential" not in got["attributes"]
    upper = "ABCDEF0123456789ABCDEF0123456789"
    arn = await api.endpoint(app_arn, upper)
    attrs = (await api.ok("GET", f"/v1/endpoints/{arn}"))["attributes"]
    assert upper.lower() == attrs["Token"]
    assert arn == await api.endpoint(app_arn, upper.lower())


async def test_app_validation_errors(api: Api) -> None:
    """Bad platform, missing attributes and a bad name give SNS's texts."""
    status, body = await api.call(
        "POST",
        "/v1/platform-applications",
        {"name": "x", "platform": "NOPE", "attributes": GCM_CREDENTIALS},
    )
    message = assert_error(status, body, 400, "InvalidParameter")
    assert "Invalid parameter: Platform Reason: NOPE is not supported" == message
    status, body = await api.call(
        "POST", "/v1/platform-applications", {"name": "x", "platform": "GCM"}
    )
    message = assert_error(status, body, 400, "ValidationError")
    assert message.endswith(
        "Value null at 'attributes' failed to satisfy"
        " constraint: Member must not be null"
    )
    status, body = await api.call(
        "POST",
        "/v1/platform-applications",
        {"name": "bad name", "platform": "GCM", "attributes": GCM_CREDENTIALS},
    )
    assert_error(status, body, 400, "InvalidParameter")


# -- endpoints ------------------------------------------------------------------
async def test_endpoint_lifecycle(api: Api) -> None:
    """Create, get, set, list and delete an endpoint; delete is idempotent."""
    app_arn = await api.gcm_app()
    arn = await api.endpoint(app_arn, "tok-1", customUserData="user-1")
    got = await api.ok("GET", f"/v1/endpoints/{arn}")
    expected = {"Enabled": "true", "Token": "tok-1", "CustomUserData": "user-1"}
    assert expected == got["attributes"]
    status, _ = await api.call(
        "PATCH", f"/v1/endpoints/{arn}", {"attributes": {"Enabled": "false"}}
    )
    assert 204 == status
    got = await api.ok("GET", f"/v1/endpoints/{arn}")
    assert "false" == got["attributes"]["Enabled"]
    listed = await api.ok("GET", f"/v1/platform-applications/{app_arn}/endpoints")
    assert [arn] == [e["endpointArn"] for e in listed["endpoints"]]
    assert 204 == (await api.call("DELETE", f"/v1/endpoints/{arn}"))[0]
    assert 204 == (await api.call("DELETE", f"/v1/endpoints/{arn}"))[0]
    status, body = await api.call("GET", f"/v1/endpoints/{arn}")
    assert "Endpoint does not exist" == assert_error(status, body, 404, "NotFound")


async def test_endpoint_idempotency_rules(api: Api) -> None:
    """SNS_API §5.1: same token → same ARN unless a supplied attribute differs."""
    app_arn = await api.gcm_app()
    arn = await api.endpoint(app_arn, "same-token")
    assert arn == await api.endpoint(app_arn, "same-token")
    assert arn == await api.endpoint(
        app_arn, "same-token", attributes={"Enabled": "true"}
    )
    status, body = await api.call(
        "POST",
        f"/v1/platform-applications/{app_arn}/endpoints",
        {"token": "same-token", "attributes": {"CustomUserData": "other"}},
    )
    message = assert_error(status, body, 400, "InvalidParameter")
    assert f"Invalid parameter: Token Reason: Endpoint {arn} {DIFFERENT}" == message
    status, body = await api.call(
        "POST",
        f"/v1/platform-applications/{app_arn}/endpoints",
        {"token": "same-token", "customUserData": "other"},
    )
    assert DIFFERENT in assert_error(status, body, 400, "InvalidParameter")


async def test_disabled_endpoint_stays_disabled_on_create(api: Api) -> None:
    """Create without attributes on a disabled endpoint returns it, still disabled."""
    app_arn = await api.gcm_app()
    arn = await api.endpoint(app_arn, "tok-d", attributes={"Enabled": "false"})
    assert arn == await api.endpoint(app_arn, "tok-d")
    got = await api.ok("GET", f"/v1/endpoints/{arn}")
    assert "false" == got["attributes"]["Enabled"]
    status, body = await api.call(
        "POST",
        f"/v1/platform-applications/{app_arn}/endpoints",
        {"token": "tok-d", "attributes": {"Enabled": "true"}},
    )
    assert DIFFERENT in assert_error(status, body, 400, "InvalidParameter")


async def test_endpoint_errors(api: Api) -> None:
    """Unknown app, bad attribute names and a missing token are refused."""
    missing = "arn:aws:sns:us-east-1:123456789012:app/GCM/missing"
    status, body = await api.call(
        "POST", f"/v1/platform-applications/{missing}/endpoints", {"token": "t"}
    )
    message = assert_error(status, body, 404, "NotFound")
    assert "PlatformApplication does not exist" == message
    app_arn = await api.gcm_app()
    status, body = await api.call(
        "POST",
        f"/v1/platform-applications/{app_arn}/endpoints",
        {"token": "t", "attributes": {"PlatformCredential": "x"}},
    )
    message = assert_error(status, body, 400, "InvalidParameter")
    expected = "Invalid parameter: Attributes Reason: Invalid attribute name: "
    assert expected + "PlatformCredential" == message
    status, body = await api.call(
        "POST", f"/v1/platform-applications/{app_arn}/endpoints", {}
    )
    assert_error(status, body, 400, "ValidationError")
    status, body = await api.call(
        "PATCH", f"/v1/endpoints/{app_arn.replace('app/', 'endpoint/')}/x", {}
    )
    assert_error(status, body, 400, "ValidationError")


async def test_endpoint_pagination(api: Api) -> None:
    """250 endpoints list as 100/100/50; a forged nextToken is InvalidParameter."""
    app_arn = await api.gcm_app()
    created = [await api.endpoint(app_arn, f"token-{i:03d}") for i in range(250)]
    path = f"/v1/platform-applications/{app_arn}/endpoints"
    pages: list[list[str]] = []
    token: str | None = None
    while True:
        params = {"nextToken": token} if token else None
        page = await api.ok("GET", path, params=params)
        pages.append([e["endpointArn"] for e in page["endpoints"]])
        token = page.get("nextToken")
        if token is None:
            break
    assert [100, 100, 50] == [len(p) for p in pages]
    assert sorted(created) == sorted(arn for p in pages for arn in p)
    status, body = await api.call("GET", path, params={"nextToken": "forged!!"})
    message = assert_error(status, body, 400, "InvalidParameter")
    assert "Invalid parameter: NextToken" == message


# -- topics, subscriptions, tags --------------------------------------------------
async def test_topics_subscriptions_and_tags(api: Api) -> None:
    """Every topic, subscription and tag route round-trips."""
    topic = await api.topic("news")
    assert topic == await api.topic("news")
    got = await api.ok("GET", f"/v1/topics/{topic}")
    assert topic == got["attributes"]["TopicArn"]
    status, _ = await api.call(
        "PATCH", f"/v1/topics/{topic}", {"attributes": {"DisplayName": "News"}}
    )
    assert 204 == status
    got = await api.ok("GET", f"/v1/topics/{topic}")
    assert "News" == got["attributes"]["DisplayName"]
    listed = await api.ok("GET", "/v1/topics")
    assert [{"topicArn": topic}] == listed["topics"]

    app_arn = await api.gcm_app()
    endpoint = await api.endpoint(app_arn, "sub-token")
    sub = (
        await api.ok(
            "POST", f"/v1/topics/{topic}/subscriptions", {"endpointArn": endpoint}
        )
    )["subscriptionArn"]
    assert sub.startswith(topic + ":")
    expected = {
        "subscriptionArn": sub,
        "owner": "123456789012",
        "protocol": "application",
        "endpoint": endpoint,
        "topicArn": topic,
    }
    by_topic = await api.ok("GET", f"/v1/topics/{topic}/subscriptions")
    assert [expected] == by_topic["subscriptions"]
    assert [expected] == (await api.ok("GET", "/v1/subscriptions"))["subscriptions"]
    policy = json.dumps({"kind": ["a"]})
    status, _ = await api.call(
        "PATCH", f"/v1/subscriptions/{sub}", {"attributes": {"FilterPolicy": policy}}
    )
    assert 204 == status
    attrs = (await api.ok("GET", f"/v1/subscriptions/{sub}"))["attributes"]
    assert policy == attrs["FilterPolicy"]
    status, body = await api.call(
        "PATCH", f"/v1/subscriptions/{sub}", {"attributes": {"FilterPolicy": "{"}}
    )
    assert_error(status, body, 400, "InvalidParameter")

    status, _ = await api.call(
        "PUT", f"/v1/topics/{topic}/tags", {"tags": {"a": "1", "b": "2"}}
    )
    assert 204 == status
    tags = await api.ok("GET", f"/v1/topics/{topic}/tags")
    assert {"tags": {"a": "1", "b": "2"}} == tags
    status, _ = await api.call(
        "DELETE", f"/v1/topics/{topic}/tags", params=[("key", "a")]
    )
    assert 204 == status
    assert {"b": "2"} == (await api.ok("GET", f"/v1/topics/{topic}/tags"))["tags"]

    assert 204 == (await api.call("DELETE", f"/v1/subscriptions/{sub}"))[0]
    assert 204 == (await api.call("DELETE", f"/v1/subscriptions/{sub}"))[0]
    status, body = await api.call("GET", f"/v1/subscriptions/{sub}")
    message = assert_error(status, body, 404, "NotFound")
    assert "Subscription does not exist" == message
    assert 204 == (await api.call("DELETE", f"/v1/topics/{topic}"))[0]
    status, body = await api.call("GET", f"/v1/topics/{topic}")
    assert "Topic does not exist" == assert_error(status, body, 404, "NotFound")


async def test_topic_errors(api: Api) -> None:
    """Bad names, conflicting attributes and missing endpoints are refused."""
    status, body = await api.call("POST", "/v1/topics", {"name": "bad name"})
    message = assert_error(status, body, 400, "InvalidParameter")
    assert "Invalid parameter: Topic Name" == message
    topic = (
        await api.ok(
            "POST", "/v1/topics", {"name": "t", "attributes": {"DisplayName": "A"}}
        )
    )["topicArn"]
    status, body = await api.call(
        "POST", "/v1/topics", {"name": "t", "attributes": {"DisplayName": "B"}}
    )
    message = assert_error(status, body, 400, "InvalidParameter")
    expected = (
        "Invalid parameter: Attributes Reason: Topic already exists with"
        " different attributes"
    )
    assert expected == message
    missing = "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/nope"
    status, body = await api.call(
        "POST", f"/v1/topics/{topic}/subscriptions", {"endpointArn": missing}
    )
    message = assert_error(status, body, 400, "InvalidParameter")
    expected = "Invalid parameter: Endpoint Reason: Endpoint does not exist for"
    assert f"{expected} endpoint arn{missing}" == message
    status, body = await api.call("PATCH", f"/v1/topics/{topic}", {"attributes": {}})
    assert_error(status, body, 400, "ValidationError")


async def test_subscribe_an_https_url(api: Api) -> None:
    """Subscribe of an https URL answers SNS's `pending confirmation`, or the
    subscription's ARN with returnSubscriptionArn; both are listed pending."""
    topic = await api.topic("hooks")
    path = f"/v1/topics/{topic}/subscriptions"
    first = {"protocol": "https", "endpointArn": "https://hooks.example/a"}
    second = {"protocol": "https", "endpointArn": "https://hooks.example/b"}

    status, pending = await api.call("POST", path, first)
    assert (201, {"subscriptionArn": "pending confirmation"}) == (status, pending)
    made = await api.ok("POST", path, second | {"returnSubscriptionArn": True})
    arn = made["subscriptionArn"]
    assert arn.startswith(topic + ":")
    attributes = (await api.ok("GET", f"/v1/subscriptions/{arn}"))["attributes"]
    assert ("https", "https://hooks.example/b", "true") == (
        attributes["Protocol"],
        attributes["Endpoint"],
        attributes["PendingConfirmation"],
    )
    listed = (await api.ok("GET", path))["subscriptions"]
    assert [
        ("PendingConfirmation", "https://hooks.example/a"),
        ("PendingConfirmation", "https://hooks.example/b"),
    ] == sorted((s["subscriptionArn"], s["endpoint"]) for s in listed)


# -- publish ----------------------------------------------------------------------
async def test_publish_to_topic_and_endpoint(api: Api) -> None:
    """Publish returns a message id for a topic, an endpoint and the 262144 limit."""
    topic = await api.topic()
    app_arn = await api.gcm_app()
    endpoint = await api.endpoint(app_arn, "pub-token")
    first = await api.ok("POST", "/v1/publish", {"topicArn": topic, "message": "hi"})
    assert 36 == len(first["messageId"])
    status, body = await api.call(
        "POST", "/v1/publish", {"targetArn": endpoint, "message": "hi"}
    )
    assert 200 == status
    assert {"messageId"} == set(body)
    structured = json.dumps({"default": "d", "GCM": json.dumps({"data": {}})})
    body = {"topicArn": topic, "message": structured, "messageStructure": "json"}
    await api.ok("POST", "/v1/publish", body)
    await api.ok("POST", "/v1/publish", {"topicArn": topic, "message": "x" * 262_144})


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"message": ""}, "InvalidParameter", "Invalid parameter: Empty message"),
        (
            {"message": "{not json", "messageStructure": "json"},
            "InvalidParameter",
            "Invalid parameter: Message Structure - JSON message body failed to parse",
        ),
        (
            {"message": json.dumps({"GCM": "x"}), "messageStructure": "json"},
            "InvalidParameter",
            "Invalid parameter: Message Structure - No default entry in JSON message"
            " body",
        ),
        (
            {"message": "x" * 262_145},
            "InvalidParameter",
            "Invalid parameter: Message too long",
        ),
        (
            {"message": "hi", "subject": ""},
            "InvalidParameter",
            "Invalid parameter: Subject",
        ),
        (
            {
                "message": "hi",
                "messageAttributes": {
                    "a^b": {"dataType": "String", "stringValue": "v"}
                },
            },
            "ParameterValueInvalid",
            "Invalid non-alphanumeric character '#x5E' was found in the message"
            " attribute name. Can only include alphanumeric characters, hyphens,"
            " underscores, or dots.",
        ),
        (
            {
                "message": "hi",
                "messageAttributes": {"a": {"dataType": "String", "stringValue": ""}},
            },
            "ParameterValueInvalid",
            "The message attribute 'a' must contain non-empty message attribute value"
            " for message attribute type 'String'.",
        ),
        (
            {
                "message": "hi",
                "messageAttributes": {"a": {"dataType": "Blob", "stringValue": "v"}},
            },
            "ParameterValueInvalid",
            "The message attribute 'a' has an invalid message attribute type, the set"
            " of supported type prefixes is Binary, Number, and String.",
        ),
        (
            {
                "message": "hi",
                "messageAttributes": {"n": {"dataType": "Number", "stringValue": "x"}},
            },
            "ParameterValueInvalid",
            "Could not cast message attribute 'n' value to number.",
        ),
        (
            {"message": "hi", "messageAttributes": {"a": {"stringValue": "v"}}},
            "ValidationError",
            "1 validation error detected: Value null at 'messageAttributes.a.member"
            ".dataType' failed to satisfy constraint: Member must not be null",
        ),
    ],
)
async def test_publish_validation(
    api: Api, body: dict[str, Any], code: str, message: str
) -> None:
    """Invalid publishes to a topic give SNS's exact code and message."""
    topic = await api.topic()
    status, payload = await api.call("POST", "/v1/publish", {"topicArn": topic, **body})
    assert message == assert_error(status, payload, 400, code)


async def test_publish_target_errors(api: Api) -> None:
    """No target, an unknown or disabled endpoint and a missing platform key."""
    status, body = await api.call("POST", "/v1/publish", {"message": "hi"})
    expected = (
        "Invalid parameter: TopicArn or TargetArn Reason: no value for required"
        " parameter"
    )
    assert expected == assert_error(status, body, 400, "InvalidParameter")
    app_arn = await api.gcm_app()
    missing = app_arn.replace(":app/", ":endpoint/") + "/nope"
    status, body = await api.call(
        "POST", "/v1/publish", {"targetArn": missing, "message": "hi"}
    )
    expected = (
        "Invalid parameter: TargetArn Reason: No endpoint found for the target arn"
        " specified"
    )
    assert expected == assert_error(status, body, 400, "InvalidParameter")
    endpoint = await api.endpoint(app_arn, "tok", attributes={"Enabled": "false"})
    status, body = await api.call(
        "POST",
        "/v1/publish",
        {"targetArn": endpoint, "message": "msg", "messageStructure": "json"},
    )
    message = assert_error(status, body, 400, "EndpointDisabled")
    assert "Endpoint is disabled" == message
    enabled = await api.endpoint(app_arn, "tok-on")
    status, body = await api.call(
        "POST",
        "/v1/publish",
        {
            "targetArn": enabled,
            "message": json.dumps({"APNS": "x"}),
            "messageStructure": "json",
        },
    )
    expected = "Invalid parameter: JSON must contain an entry for 'default' or 'GCM'."
    assert expected == assert_error(status, body, 400, "InvalidParameter")
    status, body = await api.call(
        "POST",
        "/v1/publish",
        {"topicArn": "arn:aws:sns:us-east-1:123456789012:none", "message": "hi"},
    )
    assert "Topic does not exist" == assert_error(status, body, 404, "NotFound")


async def test_publish_batch(api: Api) -> None:
    """Good entries succeed and bad ones fail per entry with SNS's codes."""
    topic = await api.topic()
    body = {
        "topicArn": topic,
        "entries": [
            {"id": "ok-1", "message": "one"},
            {"id": "empty", "message": ""},
            {
                "id": "attr",
                "message": "x",
                "messageAttributes": {"a": {"dataType": "Blob", "stringValue": "v"}},
            },
            {"id": "ok-2", "message": "two", "subject": "s"},
        ],
    }
    result = await api.ok("POST", "/v1/publish-batch", body)
    assert ["ok-1", "ok-2"] == [x["id"] for x in result["successful"]]
    assert all(36 == len(x["messageId"]) for x in result["successful"])
    failed = {x["id"]: x for x in result["failed"]}
    assert {
        "id": "empty",
        "code": "InvalidParameter",
        "message": "Invalid parameter: Empty message",
        "senderFault": True,
    } == failed["empty"]
    assert "ParameterValueInvalid" == failed["attr"]["code"]


@pytest.mark.parametrize(
    ("entries", "code", "message"),
    [
        ([], "EmptyBatchRequest", "The batch request doesn't contain any entries."),
        (
            [{"id": f"e{i}", "message": "m"} for i in range(11)],
            "TooManyEntriesInBatchRequest",
            "The batch request contains more entries than permissible.",
        ),
        (
            [{"id": "a", "message": "m"}, {"id": "a", "message": "m"}],
            "BatchEntryIdsNotDistinct",
            "Two or more batch entries in the request have the same Id.",
        ),
        (
            [{"id": "a b", "message": "m"}],
            "InvalidBatchEntryId",
            "The Id of a batch entry in the batch request contains an impermissible"
            " character: a b",
        ),
        (
            [
                {"id": "a", "message": "x" * 200_000},
                {"id": "b", "message": "x" * 70_000},
            ],
            "BatchRequestTooLong",
            "The length of all the messages put together is more than the limit.",
        ),
    ],
)
async def test_publish_batch_request_errors(
    api: Api, entries: list[dict[str, Any]], code: str, message: str
) -> None:
    """Whole-batch errors are 400s with SNS's batch codes."""
    topic = await api.topic()
    status, body = await api.call(
        "POST", "/v1/publish-batch", {"topicArn": topic, "entries": entries}
    )
    assert message == assert_error(status, body, 400, code)


async def test_subscribe_names_an_unknown_member(api: Api) -> None:
    """`endpoint` is not Subscribe's member (`endpointArn` is, for URLs too):
    it is refused by name, not read as a missing endpoint."""
    topic = await api.topic("hooks")
    status, body = await api.call(
        "POST",
        f"/v1/topics/{topic}/subscriptions",
        {"protocol": "https", "endpoint": "https://hooks.example/z"},
    )
    message = assert_error(status, body, 400, "InvalidParameter")
    assert (
        "Invalid parameter: endpoint (unknown; the members are"
        " returnSubscriptionArn, protocol, endpointArn, attributes)"
    ) == message
    assert (
        []
        == (await api.ok("GET", f"/v1/topics/{topic}/subscriptions"))["subscriptions"]
    )


@pytest.mark.parametrize(
    ("path", "body", "unknown"),
    [
        ("/v1/topics", {"name": "t", "tags ": {}}, "tags "),
        ("/v1/publish", {"message": "m", "topicARN": "x"}, "topicARN"),
        (
            "/v1/publish-batch",
            {"topicArn": "x", "entries": [{"id": "a", "message": "m", "ttl": 5}]},
            "entries[0].ttl",
        ),
    ],
)
async def test_unknown_members_are_refused_by_name(
    api: Api, path: str, body: dict[str, Any], unknown: str
) -> None:
    """Every operation refuses a body member it does not have (an element's
    too), before it does anything."""
    status, payload = await api.call("POST", path, body)
    message = assert_error(status, payload, 400, "InvalidParameter")
    assert message.startswith(f"Invalid parameter: {unknown} (unknown; the members")
    assert [] == (await api.ok("GET", "/v1/topics"))["topics"]


# -- hostile input ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "Body is not valid JSON"),
        (b"\xff\xfe", "Body is not valid JSON"),
        (b"[1, 2]", "Body must be a JSON object"),
        (b'"name"', "Body must be a JSON object"),
    ],
)
async def test_malformed_body(api: Api, data: bytes, message: str) -> None:
    """A body that is not a JSON object is a 400 ValidationError."""
    status, body = await api.call("POST", "/v1/topics", data=data)
    assert message == assert_error(status, body, 400, "ValidationError")


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/v1/topics", {"name": 5}, "name: expected string"),
        ("/v1/topics", {"name": True}, "name: expected string"),
        ("/v1/topics", {"name": "t", "tags": ["a"]}, "tags: expected object"),
        ("/v1/topics", {"name": "t", "tags": {"a": 1}}, "tags.a: expected string"),
        (
            "/v1/platform-applications",
            {"name": "a", "platform": "GCM", "attributes": "x"},
            "attributes: expected object",
        ),
        ("/v1/publish", {"message": ["x"]}, "message: expected string"),
        (
            "/v1/publish",
            {"message": "m", "messageAttributes": {"a": "v"}},
            "messageAttributes.a: expected object",
        ),
        (
            "/v1/publish",
            {
                "message": "m",
                "messageAttributes": {"a": {"dataType": "Binary", "binaryValue": "*"}},
            },
            "messageAttributes.a.binaryValue: expected base64",
        ),
        ("/v1/publish-batch", {"entries": "x"}, "entries: expected array"),
        ("/v1/publish-batch", {"entries": [1]}, "entries[0]: expected object"),
    ],
)
async def test_wrong_types(
    api: Api, path: str, body: dict[str, Any], message: str
) -> None:
    """A field of the wrong JSON type is a 400 ValidationError naming the field."""
    status, payload = await api.call("POST", path, body)
    assert message == assert_error(status, payload, 400, "ValidationError")


async def test_body_too_large(api: Api) -> None:
    """A body over max_body_bytes is a 413 JSON error."""
    status, body = await api.call(
        "POST", "/v1/publish", {"message": "x" * (MAX_BODY + 1)}
    )
    assert_error(status, body, 413, "RequestTooLarge")


async def test_unknown_route_and_wrong_method(api: Api) -> None:
    """Unknown routes are 404 and wrong methods 405, both as JSON errors."""
    status, body = await api.call("GET", "/v1/nope")
    assert "No route for /v1/nope" == assert_error(status, body, 404, "NotFound")
    status, body = await api.call("PUT", "/v1/topics")
    assert_error(status, body, 405, "MethodNotAllowed")
    status, body = await api.call("POST", "/v1/subscriptions", {})
    assert_error(status, body, 405, "MethodNotAllowed")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/v1/topics", {"GET", "POST"}),
        ("POST", "/v1/subscriptions", {"GET"}),
        (
            "PUT",
            "/v1/topics/arn:aws:sns:us-east-1:123456789012:t",
            {"DELETE", "GET", "PATCH"},
        ),
        ("DELETE", "/v1/publish", {"POST"}),
    ],
)
async def test_wrong_method_names_the_allowed_ones(
    api: Api, method: str, path: str, allow: set[str]
) -> None:
    """A 405 JSON error carries Allow with the methods the path takes."""
    response = await api.client.request(
        method, path, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    )
    body = await response.json()

    assert_error(response.status, body, 405, "MethodNotAllowed")
    assert allow == {m.strip() for m in response.headers["Allow"].split(",")}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Missing bearer key: send Authorization: Bearer <key>"),
        ({"Authorization": "Bearer wrong"}, "Invalid bearer key"),
        ({"Authorization": f"Basic {ADMIN_KEY}"}, "Missing bearer key: send"),
        ({"Authorization": "Bearer"}, "Missing bearer key: send"),
    ],
)
async def test_unauthorized(api: Api, headers: dict[str, str], message: str) -> None:
    """A missing, malformed or wrong bearer key is a 401 before anything runs."""
    response = await api.client.post(
        "/v1/topics", data=json.dumps({"name": "t"}), headers=headers
    )
    body = await response.json()
    assert assert_error(response.status, body, 401, "Unauthorized").startswith(message)
    listed = await api.ok("GET", "/v1/topics")
    assert [] == listed["topics"]


async def test_action_limited_key(api: Api) -> None:
    """A Publish-only key may publish but not create topics (403)."""
    topic = await api.topic()
    status, body = await api.call(
        "POST", "/v1/topics", {"name": "other"}, key=PUBLISH_KEY
    )
    message = assert_error(status, body, 403, "AuthorizationError")
    assert "Key publisher may not perform CreateTopic" == message
    status, body = await api.call(
        "POST", "/v1/publish", {"topicArn": topic, "message": "m"}, key=PUBLISH_KEY
    )
    assert 200 == status
    status, body = await api.call(
        "POST",
        "/v1/publish-batch",
        {"topicArn": topic, "entries": [{"id": "a", "message": "m"}]},
        key=PUBLISH_KEY,
    )
    assert_error(status, body, 403, "AuthorizationError")


async def test_unexpected_exception_is_json_500() -> None:
    """A crash inside a handler is a bare JSON 500 without the exception text."""

    class Exploding(Service):
        async def list_topics(self, next_token: str | None) -> Listing[Topic]:
            raise RuntimeError("boom: secret detail")

    store = InMemoryStore()
    service = Exploding(store=store, arns=ArnBuilder("us-east-1", "123456789012"))
    app = make_app(config=config_from_mapping(CONFIG), service=service)
    async with TestClient(TestServer(app)) as client:
        status, body = await Api(client).call("GET", "/v1/topics")
    assert "Internal error" == assert_error(status, body, 500, "InternalError")


async def test_request_id_echoed_on_errors(api: Api) -> None:
    """An error response carries the client's x-request-id."""
    response = await api.client.get(
        "/v1/nope",
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "x-request-id": "req-42"},
    )
    assert 404 == response.status
    assert "req-42" == response.headers["x-request-id"]


async def test_deeply_nested_body_is_400(api: Api) -> None:
    """A body nested past the parser's depth is a 400, not a 500."""
    status, body = await api.call("POST", "/v1/topics", data=b"[" * 100_000)
    assert_error(status, body, 400, "ValidationError")


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/v1/publish", b'{"topicArn": "%s", "message": "\\ud800"}'),
        (
            "/v1/publish",
            b'{"topicArn": "%s", "message": "m", "messageAttributes":'
            b' {"a": {"dataType": "String", "stringValue": "\\ud800"}}}',
        ),
        ("endpoints", b'{"token": "t-%s", "customUserData": "\\ud800"}'),
    ],
)
async def test_lone_surrogates_are_400(api: Api, path: str, raw: bytes) -> None:
    """Strings with lone surrogates (not encodable as UTF-8) are refused with a 400."""
    topic = await api.topic()
    if path == "endpoints":
        path = f"/v1/platform-applications/{await api.gcm_app()}/endpoints"
    status, body = await api.call("POST", path, data=raw % topic.encode())
    assert 400 == status, body


# -- the exact shape of every answer ------------------------------------------------
def encoded(arn: str) -> str:
    """An ARN as generated clients put it in a path: every reserved byte escaped."""
    return quote(arn, safe="")


def lower_encoded(arn: str) -> str:
    """Percent-escapes with lowercase hex digits, which RFC 3986 allows too."""
    return quote(arn, safe="").replace("%2F", "%2f").replace("%3A", "%3a")


@pytest.mark.parametrize("in_path", [str, encoded, lower_encoded])
async def test_every_operation_answers_with_its_shape(
    api: Api, in_path: Callable[[str], str]
) -> None:
    """
    Each of the 26 operations answers with its status and exactly its keys, with
    the ARNs in the path raw or percent-encoded.
    """
    app = await api.gcm_app("shapes")
    app_path = f"/v1/platform-applications/{in_path(app)}"
    shapes: list[tuple[int, Any]] = [
        await api.call("GET", "/v1/platform-applications"),
        await api.call("GET", app_path),
        await api.call("PATCH", app_path, {"attributes": {"Enabled": "true"}}),
        await api.call("POST", f"{app_path}/endpoints", {"token": "t-1"}),
        await api.call("GET", f"{app_path}/endpoints"),
    ]
    endpoint = shapes[3][1]["endpointArn"]
    ep_path = f"/v1/endpoints/{in_path(endpoint)}"
    shapes += [
        await api.call("GET", ep_path),
        await api.call("PATCH", ep_path, {"attributes": {"CustomUserData": "u"}}),
        await api.call("POST", "/v1/topics", {"name": "shapes"}),
    ]
    topic = shapes[-1][1]["topicArn"]
    topic_path = f"/v1/topics/{in_path(topic)}"
    shapes += [
        await api.call("GET", "/v1/topics"),
        await api.call("GET", topic_path),
        await api.call("PATCH", topic_path, {"attributes": {"DisplayName": "S"}}),
        await api.call(
            "POST",
            f"{topic_path}/subscriptions",
            {"endpointArn": endpoint, "protocol": "application"},
        ),
    ]
    sub = shapes[-1][1]["subscriptionArn"]
    sub_path = f"/v1/subscriptions/{in_path(sub)}"
    shapes += [
        await api.call("GET", f"{topic_path}/subscriptions"),
        await api.call("GET", "/v1/subscriptions"),
        await api.call("GET", sub_path),
        await api.call(
            "PATCH", sub_path, {"attributes": {"RawMessageDelivery": "true"}}
        ),
        await api.call("PUT", f"{topic_path}/tags", {"tags": {"a": "1", "b": "2"}}),
        await api.call("GET", f"{topic_path}/tags"),
        await api.call("DELETE", f"{topic_path}/tags", params=[("key", "a")]),
        await api.call("POST", "/v1/publish", {"targetArn": endpoint, "message": "m"}),
        await api.call(
            "POST",
            "/v1/publish-batch",
            {"topicArn": topic, "entries": [{"id": "1", "message": "m"}]},
        ),
        await api.call("DELETE", sub_path),
        await api.call("DELETE", topic_path),
        await api.call("DELETE", ep_path),
        await api.call("DELETE", app_path),
    ]
    statuses = [status for status, _ in shapes]
    keys = [sorted(body) if isinstance(body, dict) else body for _, body in shapes]

    assert [200, 200, 204, 201, 200, 200, 204, 201, 200, 200, 204, 201] == statuses[:12]
    assert [200, 200, 200, 204, 204, 200, 204, 200, 200, 204, 204, 204, 204] == (
        statuses[12:]
    )
    assert [
        ["platformApplications"],
        ["attributes", "platformApplicationArn"],
        None,
        ["endpointArn"],
        ["endpoints"],
        ["attributes", "endpointArn"],
        None,
        ["topicArn"],
        ["topics"],
        ["attributes", "topicArn"],
        None,
        ["subscriptionArn"],
        ["subscriptions"],
        ["subscriptions"],
        ["attributes", "subscriptionArn"],
        None,
        None,
        ["tags"],
        None,
        ["messageId"],
        ["failed", "successful"],
        None,
        None,
        None,
        None,
    ] == keys
    listed_app = shapes[0][1]["platformApplications"][0]
    assert app == listed_app["platformApplicationArn"]
    assert "true" == listed_app["attributes"]["Enabled"]
    assert {
        "endpointArn": endpoint,
        "attributes": {"Enabled": "true", "Token": "t-1"},
    } == shapes[4][1]["endpoints"][0]
    assert [{"topicArn": topic}] == shapes[8][1]["topics"]
    assert {"tags": {"a": "1", "b": "2"}} == shapes[17][1]
    assert [{"id": "1", "messageId": shapes[20][1]["successful"][0]["messageId"]}] == (
        shapes[20][1]["successful"]
    )
    assert [] == shapes[20][1]["failed"]
    echoed = [shapes[i][1][key] for i, key in ECHOES]
    assert [app, endpoint, topic, sub] == echoed


# Where test_every_operation_answers_with_its_shape's Get*Attributes answers are.
ECHOES = [
    (1, "platformApplicationArn"),
    (5, "endpointArn"),
    (9, "topicArn"),
    (14, "subscriptionArn"),
]


@pytest.mark.parametrize("member", ["messageGroupId", "messageDeduplicationId"])
async def test_publish_carries_fifo_members(api: Api, member: str) -> None:
    """JSON Publish passes MessageGroupId/MessageDeduplicationId on, as SNS Query does."""
    topic = await api.topic()

    status, body = await api.call(
        "POST", "/v1/publish", {"topicArn": topic, "message": "m", member: "g-1"}
    )

    expected = (
        "Invalid parameter: The request includes MessageGroupId parameter that is"
        " not valid for this topic type"
    )
    assert expected == assert_error(status, body, 400, "InvalidParameter")


async def test_publish_fifo_member_of_wrong_type(api: Api) -> None:
    """A MessageGroupId that is not a string is a ValidationError naming it."""
    status, body = await api.call(
        "POST", "/v1/publish", {"message": "m", "messageGroupId": 1}
    )

    expected = "messageGroupId: expected string"
    assert expected == assert_error(status, body, 400, "ValidationError")


# -- the access log -----------------------------------------------------------------
async def test_access_log_has_one_line_per_request() -> None:
    """`[logging] access_log = true`: one http_request line per request, with
    its status (errors, unknown paths and redirects too) and request id; none
    without it."""
    service, _ = make_service()
    on = config_from_mapping({**CONFIG, "logging": {"access_log": True}})
    requests = (
        ("GET", "/v1/topics", 200),
        ("GET", "/v1/topics/arn:aws:sns:us-east-1:123456789012:x", 404),
        ("GET", "/nowhere", 404),
        ("GET", "/console", 308),
    )
    headers = {"Authorization": f"Bearer {ADMIN_KEY}", "X-Request-ID": "req-7"}
    for config, expected in ((on, requests), (config_from_mapping(CONFIG), ())):
        app = make_app(config=config, service=service)
        async with TestClient(TestServer(app)) as client:
            with structlog.testing.capture_logs() as logs:
                for method, path, status in requests:
                    response = await client.request(
                        method, path, headers=headers, allow_redirects=False
                    )
                    assert status == response.status
        lines = [e for e in logs if e["event"] == "http_request"]
        assert [(m, p, s) for m, p, s in expected] == [
            (e["method"], e["path"], e["status"]) for e in lines
        ]
        assert all(e["log_level"] == "info" and "duration_ms" in e for e in lines)


# -- request ids --------------------------------------------------------------------
async def test_request_id_is_honoured_and_echoed(api: Api) -> None:
    """A client's X-Request-ID comes back on success and on errors, in both APIs;
    an unusable one is replaced by a fresh id."""
    given = "3f2c9a1e-7b1d-4c55-9a57-2b1f0f3a9c11"
    headers = {"Authorization": f"Bearer {ADMIN_KEY}", "X-Request-ID": given}
    ok = await api.client.get("/v1/topics", headers=headers)
    missing = await api.client.get(
        "/v1/topics/arn:aws:sns:us-east-1:123456789012:x", headers=headers
    )
    sns = await api.client.post(
        "/",
        data=b"Action=ListTopics",
        headers={
            "X-Request-ID": given,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    odd = await api.client.get(
        "/v1/topics", headers={**headers, "X-Request-ID": "two words"}
    )
    assert ok.status == 200 and missing.status == 404 and sns.status == 403
    assert ok.headers["x-request-id"] == missing.headers["x-request-id"] == given
    assert sns.headers["x-request-id"] == sns.headers["x-amzn-RequestId"] == given
    assert given in await sns.text()  # SNS's RequestId in the error document
    assert odd.headers["x-request-id"] not in ("two words", given)
