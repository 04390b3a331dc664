"""
Client input that once made a 500 or was accepted and failed later: deep or
malformed JSON in every place a client can put JSON, bad base64 and unusable
platform payloads. Each case runs through both APIs, in-process, and must get
the same SNS error (status, code, message) from each; only undecodable base64,
refused by each API's wire layer, keeps that API's own error shape.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer
from botocore.exceptions import ClientError

from pushgw.api.app import make_app as make_json_app
from pushgw.config import config_from_mapping
from pushgw.safejson import MAX_DEPTH
from pushgw.store.memory import InMemoryStore
from tests.api.test_json_api import CONFIG, Api, make_service, p256_pem
from tests.api.test_sns_api import Gateway, call, start
from tests.api.test_sns_hostile import post

GCM_APP = {"PlatformCredential": "AIzaSyExampleKey"}
FAILED_TO_PARSE = (
    "Invalid parameter: Message Structure - JSON message body failed to parse"
)
NOT_AN_ARRAY = (
    "The message attribute 'a' with type 'String.Array' must be a JSON array."
)
BAD_POLICY = "Invalid parameter: FilterPolicy: failed to parse JSON"
BAD_SERVICE_ACCOUNT = (
    "Invalid parameter: Attributes Reason: the service account JSON failed to parse"
)
# Past the limit, and past CPython's recursion limit (the old 500).
DEPTHS = [MAX_DEPTH + 1, 1_100]


def arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


def malformed(platform: str) -> str:
    return (
        "Invalid parameter: Message Reason: Invalid notification for protocol"
        f" {platform}: Notification is malformed"
    )


def apns_app() -> dict[str, str]:
    return {
        "PlatformPrincipal": "ABCDE12345",
        "PlatformCredential": p256_pem(),
        "ApplePlatformTeamID": "TEAM123456",
        "ApplePlatformBundleID": "com.example.app",
    }


@dataclass(frozen=True)
class Refused:
    """A client error as either API reports it."""

    status: int
    code: str
    message: str


Result = str | Refused  # an ARN or message id when accepted


class Side(Protocol):
    """The operations these tests need, in one API's wire format."""

    store: InMemoryStore

    async def create_app(self, platform: str, attributes: dict[str, str]) -> Result: ...

    async def endpoint(
        self, app_arn: str, token: str, *, enabled: bool = True
    ) -> str: ...

    async def topic(self) -> str: ...

    async def subscribe(self, topic: str, endpoint: str, policy: str) -> Result: ...

    async def publish(
        self,
        target: str,
        message: str,
        *,
        structure: str | None = None,
        attributes: dict[str, tuple[str, str]] | None = None,
    ) -> Result: ...

    async def publish_binary_text(self, topic: str, value: str) -> Result: ...

    async def batch_failures(self, topic: str, message: str) -> list[Refused]: ...


class SnsSide:
    """The SNS Query API through boto3 (raw signed forms where boto3 cannot go)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.store = gateway.store
        self.sns = gateway.client()

    async def _run(self, method: str, key: str, **kwargs: Any) -> Result:
        try:
            result = await call(getattr(self.sns, method), **kwargs)
        except ClientError as exc:
            error = exc.response
            return Refused(
                error["ResponseMetadata"]["HTTPStatusCode"],
                error["Error"]["Code"],
                error["Error"]["Message"],
            )
        return str(result[key])

    async def create_app(self, platform: str, attributes: dict[str, str]) -> Result:
        return await self._run(
            "create_platform_application",
            "PlatformApplicationArn",
            Name="app",
            Platform=platform,
            Attributes=attributes,
        )

    async def endpoint(self, app_arn: str, token: str, *, enabled: bool = True) -> str:
        created = await call(
            self.sns.create_platform_endpoint,
            PlatformApplicationArn=app_arn,
            Token=token,
            Attributes={"Enabled": "true" if enabled else "false"},
        )
        return str(created["EndpointArn"])

    async def topic(self) -> str:
        return str((await call(self.sns.create_topic, Name="news"))["TopicArn"])

    async def subscribe(self, topic: str, endpoint: str, policy: str) -> Result:
        return await self._run(
            "subscribe",
            "SubscriptionArn",
            TopicArn=topic,
            Protocol="application",
            Endpoint=endpoint,
            Attributes={"FilterPolicy": policy},
        )

    async def publish(
        self,
        target: str,
        message: str,
        *,
        structure: str | None = None,
        attributes: dict[str, tuple[str, str]] | None = None,
    ) -> Result:
        kwargs: dict[str, Any] = {"TargetArn": target, "Message": message}
        if structure is not None:
            kwargs["MessageStructure"] = structure
        if attributes:
            kwargs["MessageAttributes"] = {
                name: {"DataType": kind, "StringValue": value}
                for name, (kind, value) in attributes.items()
            }
        return await self._run("publish", "MessageId", **kwargs)

    async def publish_binary_text(self, topic: str, value: str) -> Result:
        # boto3 base64-encodes Binary values itself, so send the form by hand.
        form = {
            "Action": "Publish",
            "TopicArn": topic,
            "Message": "m",
            "MessageAttributes.entry.1.Name": "a",
            "MessageAttributes.entry.1.Value.DataType": "Binary",
            "MessageAttributes.entry.1.Value.BinaryValue": value,
        }
        answer = await post(self.gateway.url, urlencode(form).encode())
        return Refused(answer.status, answer.code, answer.message)

    async def batch_failures(self, topic: str, message: str) -> list[Refused]:
        result = await call(
            self.sns.publish_batch,
            TopicArn=topic,
            PublishBatchRequestEntries=[
                {"Id": "e", "Message": message, "MessageStructure": "json"}
            ],
        )
        return [Refused(400, f["Code"], f["Message"]) for f in result["Failed"]]


class JsonSide:
    """The JSON API (/v1) through the shared `Api` test client."""

    def __init__(self, api: Api, store: InMemoryStore) -> None:
        self.api = api
        self.store = store

    async def _run(self, path: str, key: str, body: dict[str, Any]) -> Result:
        status, payload = await self.api.call("POST", path, body)
        if status < 300:
            return str(payload[key])
        assert ["error"] == list(payload)
        return Refused(status, payload["error"]["code"], payload["error"]["message"])

    async def create_app(self, platform: str, attributes: dict[str, str]) -> Result:
        body = {"name": "app", "platform": platform, "attributes": attributes}
        return await self._run(
            "/v1/platform-applications", "platformApplicationArn", body
        )

    async def endpoint(self, app_arn: str, token: str, *, enabled: bool = True) -> str:
        attributes = {"Enabled": "true" if enabled else "false"}
        return await self.api.endpoint(app_arn, token, attributes=attributes)

    async def topic(self) -> str:
        return await self.api.topic()

    async def subscribe(self, topic: str, endpoint: str, policy: str) -> Result:
        body = {"endpointArn": endpoint, "attributes": {"FilterPolicy": policy}}
        return await self._run(
            f"/v1/topics/{topic}/subscriptions", "subscriptionArn", body
        )

    async def publish(
        self,
        target: str,
        message: str,
        *,
        structure: str | None = None,
        attributes: dict[str, tuple[str, str]] | None = None,
    ) -> Result:
        body: dict[str, Any] = {"targetArn": target, "message": message}
        if structure is not None:
            body["messageStructure"] = structure
        if attributes:
            body["messageAttributes"] = {
                name: {"dataType": kind, "stringValue": value}
                for name, (kind, value) in attributes.items()
            }
        return await self._run("/v1/publish", "messageId", body)

    async def publish_binary_text(self, topic: str, value: str) -> Result:
        attribute = {"dataType": "Binary", "binaryValue": value}
        body = {
            "topicArn": topic,
            "message": "m",
            "messageAttributes": {"a": attribute},
        }
        return await self._run("/v1/publish", "messageId", body)

    async def batch_failures(self, topic: str, message: str) -> list[Refused]:
        entry = {"id": "e", "message": message, "messageStructure": "json"}
        result = await self.api.ok(
            "POST", "/v1/publish-batch", {"topicArn": topic, "entries": [entry]}
        )
        return [Refused(400, f["code"], f["message"]) for f in result["failed"]]


@pytest.fixture(name="side", params=["sns", "json"])
async def _side(request: pytest.FixtureRequest) -> AsyncIterator[Side]:
    if request.param == "sns":
        server, gateway = await start()
        try:
            yield SnsSide(gateway)
        finally:
            await server.close()
        return
    async with json_api() as (api, store):
        yield JsonSide(api, store)


@asynccontextmanager
async def json_api() -> AsyncIterator[tuple[Api, InMemoryStore]]:
    """The JSON API in-process, as test_json_api builds it."""
    service, store = make_service()
    app = make_json_app(config=config_from_mapping(CONFIG), service=service)
    async with TestClient(TestServer(app)) as client:
        yield Api(client), store


async def endpoint_of(side: Side, platform: str, *, enabled: bool = True) -> str:
    attributes = apns_app() if platform.startswith("APNS") else GCM_APP
    app = await side.create_app(platform, attributes)
    assert isinstance(app, str), app
    return await side.endpoint(app, "a1b2c3d4" * 8, enabled=enabled)


# -- deep or malformed JSON wherever a client can put JSON ----------------------
@pytest.mark.parametrize("depth", DEPTHS)
async def test_deep_message_structure(side: Side, depth: int) -> None:
    """A MessageStructure=json body nested too deep fails to parse, as SNS says."""
    topic = await side.topic()
    message = f'{{"default": "d", "x": {arrays(depth - 1)}}}'

    result = await side.publish(topic, message, structure="json")

    assert Refused(400, "InvalidParameter", FAILED_TO_PARSE) == result
    assert {} == side.store.messages


async def test_message_structure_at_the_depth_limit_is_accepted(side: Side) -> None:
    """A body exactly MAX_DEPTH deep is fine."""
    topic = await side.topic()
    message = f'{{"default": "d", "x": {arrays(MAX_DEPTH - 1)}}}'

    result = await side.publish(topic, message, structure="json")

    assert isinstance(result, str), result


@pytest.mark.parametrize(
    "value", [arrays(MAX_DEPTH + 1), arrays(1_100), "[1", '{"a": 1}', "[NaN]"]
)
async def test_bad_string_array_attribute(side: Side, value: str) -> None:
    """A String.Array that is not a JSON array we accept gets SNS's text."""
    topic = await side.topic()

    result = await side.publish(topic, "m", attributes={"a": ("String.Array", value)})

    assert Refused(400, "ParameterValueInvalid", NOT_AN_ARRAY) == result


async def test_string_array_at_the_depth_limit_is_accepted(side: Side) -> None:
    topic = await side.topic()
    value = arrays(MAX_DEPTH)

    result = await side.publish(topic, "m", attributes={"a": ("String.Array", value)})

    assert isinstance(result, str), result


@pytest.mark.parametrize(
    "policy",
    [f'{{"k": {arrays(MAX_DEPTH)}}}', f'{{"k": {arrays(1_100)}}}', '{"k": ["a"]'],
)
async def test_bad_filter_policy(side: Side, policy: str) -> None:
    """A FilterPolicy too deep or malformed is the usual invalid-policy error."""
    topic = await side.topic()
    endpoint = await endpoint_of(side, "GCM")

    result = await side.subscribe(topic, endpoint, policy)

    assert Refused(400, "InvalidParameter", BAD_POLICY) == result


@pytest.mark.parametrize(
    "credential",
    [
        f'{{"type": "service_account", "x": {arrays(MAX_DEPTH)}}}',
        f'{{"type": "service_account", "x": {arrays(1_100)}}}',
        '{"type": "service_account"',
    ],
)
async def test_bad_service_account_json(side: Side, credential: str) -> None:
    """A GCM service-account credential too deep or malformed fails to parse."""
    result = await side.create_app("GCM", {"PlatformCredential": credential})

    assert Refused(400, "InvalidParameter", BAD_SERVICE_ACCOUNT) == result


@pytest.mark.parametrize("value", ["é", "aGk=\u00e9", "\u0663\u0664==", "*"])
async def test_binary_value_that_is_not_base64(side: Side, value: str) -> None:
    """Non-ASCII or non-base64 Binary values are a 400 naming the attribute."""
    topic = await side.topic()

    result = await side.publish_binary_text(topic, value)

    expected = {
        SnsSide: Refused(
            400,
            "ParameterValueInvalid",
            "The message attribute 'a' with type 'Binary' must use field 'Binary'"
            " with a base64-encoded value.",
        ),
        JsonSide: Refused(
            400, "ValidationError", "messageAttributes.a.binaryValue: expected base64"
        ),
    }
    assert expected[type(side)] == result


async def test_deep_json_api_body() -> None:
    """A valid JSON API body nested past the limit is the body-not-JSON 400."""
    deep = f'{{"name": "t", "tags": {arrays(MAX_DEPTH)}}}'
    brackets_in_strings = {"name": "t", "tags": {"k": "[{" * 100}}

    async with json_api() as (api, _):
        refused = await api.call("POST", "/v1/topics", data=deep.encode())
        accepted = await api.call("POST", "/v1/topics", brackets_in_strings)

    error = {"code": "ValidationError", "message": "Body is not valid JSON"}
    assert (400, {"error": error}) == refused
    assert 201 == accepted[0], accepted


# -- platform payloads are checked when the publish is accepted ------------------
@pytest.mark.parametrize(
    ("platform", "message"),
    [
        ("GCM", {"GCM": "x"}),
        ("GCM", {"GCM": "[1]"}),
        ("GCM", {"GCM": '"a string"', "default": "d"}),
        ("GCM", {"GCM": json.dumps({"data": arrays(3)})[:-1]}),
        ("APNS", {"APNS": "not json"}),
        ("APNS", {"APNS": "[]"}),
        ("APNS_SANDBOX", {"APNS_SANDBOX": "{", "default": "d"}),
        ("APNS", {"APNS": '{"aps": ' + arrays(MAX_DEPTH) + "}"}),
    ],
)
async def test_unusable_payload_to_endpoint(
    side: Side, platform: str, message: dict[str, str]
) -> None:
    """The endpoint's own platform payload must be a JSON object."""
    endpoint = await endpoint_of(side, platform)

    result = await side.publish(endpoint, json.dumps(message), structure="json")

    assert Refused(400, "InvalidParameter", malformed(platform)) == result
    assert {} == side.store.messages


@pytest.mark.parametrize(
    "message",
    [
        {"GCM": json.dumps({"data": {"k": "v"}})},
        # Only the payload that will be used is checked; others are ignored.
        {"default": "d", "APNS": "not json", "WNS": "<toast/>"},
        # Non-string values are ignored (SNS_API §6.3): the default is sent.
        {"default": "d", "GCM": {"data": {}}},
    ],
)
async def test_usable_payload_to_endpoint(side: Side, message: dict[str, Any]) -> None:
    endpoint = await endpoint_of(side, "GCM")

    result = await side.publish(endpoint, json.dumps(message), structure="json")

    assert isinstance(result, str), result


async def test_deep_apns_payload_is_refused_at_publish(side: Side) -> None:
    """A 2,000-deep APNS value to an endpoint never reaches the delivery engine."""
    endpoint = await endpoint_of(side, "APNS")
    message = json.dumps({"APNS": arrays(2_000)})
    assert len(arrays(2_000)) <= 4_096  # under APNs' limit: only the depth refuses it

    result = await side.publish(endpoint, message, structure="json")

    assert Refused(400, "InvalidParameter", malformed("APNS")) == result
    assert {} == side.store.messages


async def test_endpoint_state_precedes_payload_check(side: Side) -> None:
    """SNS_API §6.2: a disabled endpoint is reported before the bad payload."""
    endpoint = await endpoint_of(side, "GCM", enabled=False)

    result = await side.publish(endpoint, '{"GCM": "x"}', structure="json")

    assert Refused(400, "EndpointDisabled", "Endpoint is disabled") == result


@pytest.mark.parametrize(
    ("message", "platform"),
    [
        ({"default": "d", "ADM": "x"}, "ADM"),
        ({"default": "d", "BAIDU": "[]"}, "BAIDU"),
        ({"default": "d", "GCM": json.dumps({"data": {}}), "MACOS": "x"}, "MACOS"),
        ({"default": "d", "APNS_VOIP": arrays(2_000)}, "APNS_VOIP"),
    ],
)
async def test_unusable_payload_to_topic(
    side: Side, message: dict[str, str], platform: str
) -> None:
    """A topic publish checks every JSON platform payload present."""
    topic = await side.topic()

    result = await side.publish(topic, json.dumps(message), structure="json")
    failures = await side.batch_failures(topic, json.dumps(message))

    assert Refused(400, "InvalidParameter", malformed(platform)) == result
    assert [Refused(400, "InvalidParameter", malformed(platform))] == failures


async def test_topic_payload_checks_keep_their_order(side: Side) -> None:
    """No default is reported first; WNS/MPNS values are not parsed."""
    topic = await side.topic()
    no_default = json.dumps({"GCM": "x"})
    xml_only = json.dumps({"default": "d", "WNS": "<toast/>", "MPNS": "raw text"})

    first = await side.publish(topic, no_default, structure="json")
    accepted = await side.publish(topic, xml_only, structure="json")

    message = (
        "Invalid parameter: Message Structure - No default entry in JSON message body"
    )
    assert Refused(400, "InvalidParameter", message) == first
    assert isinstance(accepted, str), accepted
