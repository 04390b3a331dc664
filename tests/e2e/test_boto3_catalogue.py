"""
boto3 against one real `pushgw serve` (SQLite) and `pushgw mock-providers`:
every implemented action, the CreatePlatformEndpoint idempotency rules, paging,
disabled endpoints and applications, and the error catalogue (SNS_API §3–§9).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.e2e.harness import Mocks, Server, free_port, mock_ports, write_config
from tests.e2e.test_boto3_e2e import REGION, client, eventually

pytestmark = pytest.mark.e2e

ACCOUNT = "123456789012"
PREFIX = f"arn:aws:sns:{REGION}:{ACCOUNT}"
DISABLE_TIMEOUT_S = 15.0
NULL_ATTRIBUTES = (
    "1 validation error detected: Value null at 'attributes' failed to satisfy"
    " constraint: Member must not be null"
)
NO_ENDPOINT = (
    "Invalid parameter: TargetArn Reason: No endpoint found for the target arn"
    " specified"
)
CONFLICT = (
    "Invalid parameter: Token Reason: Endpoint {arn} already exists with the same"
    " Token, but different attributes."
)
LONG_NAME = "a" * 257
UNKNOWN_ID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Stack:
    mocks: Mocks
    server: Server


@pytest.fixture(scope="module", name="stack")
def _stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One mocks process and one `pushgw serve` on SQLite for the whole module."""
    directory: Path = tmp_path_factory.mktemp("catalogue")
    ports = mock_ports()
    mocks_config = write_config(
        directory, store_url="memory:", mock_ports=ports, name="mocks.toml"
    )
    mocks = Mocks(directory, ports, mocks_config)
    try:
        port = free_port()
        config = write_config(
            directory,
            store_url=f"sqlite:///{directory / 'pushgw.db'}",
            mock_ports=ports,
            port=port,
        )
        server = Server(directory, config, port)
        try:
            yield Stack(mocks, server)
        finally:
            server.stop()
    finally:
        mocks.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def unvalidated(server: Server, **keys: str) -> Any:
    """A client that sends what it is given (no client-side parameter checks)."""
    return boto3.session.Session().client(
        "sns",
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id=keys.get("key", server.access_key),
        aws_secret_access_key=keys.get("secret", server.secret_key),
        config=Config(
            retries={"total_max_attempts": 1},
            read_timeout=30,
            parameter_validation=False,
        ),
    )


def refusal(call: Callable[[], object]) -> tuple[str, str, int, str]:
    """(boto3 exception class name, code, HTTP status, message) of a failing call."""
    with pytest.raises(ClientError) as info:
        call()
    response = info.value.response
    return (
        type(info.value).__name__,
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def adm_app(sns: Any, mocks: Mocks, name: str | None = None) -> str:
    arn: str = sns.create_platform_application(
        Name=name or unique("cat"),
        Platform="ADM",
        Attributes=mocks.credentials("ADM"),
    )["PlatformApplicationArn"]
    return arn


def endpoint(sns: Any, app: str, token: str | None = None, **extra: Any) -> str:
    arn: str = sns.create_platform_endpoint(
        PlatformApplicationArn=app, Token=token or unique("tok"), **extra
    )["EndpointArn"]
    return arn


def device_endpoint(sns: Any, mocks: Mocks, app: str) -> tuple[str, str]:
    """A simulated ADM device and its endpoint: (token, EndpointArn)."""
    token = str(mocks.device("ADM")["token"])
    return token, endpoint(sns, app, token)


@dataclass(frozen=True)
class World:
    """Shared resources the catalogue cases refer to (messages may name them)."""

    sns: Any
    validated: Any
    publisher: Any
    app: str
    endpoint: str
    disabled: str
    topic: str
    subscription: str


@pytest.fixture(scope="module", name="world")
def _world(stack: Stack) -> World:
    sns = unvalidated(stack.server)
    app = adm_app(sns, stack.mocks)
    target = endpoint(sns, app)
    disabled = endpoint(sns, app, Attributes={"Enabled": "false"})
    topic = sns.create_topic(Name=unique("cat-topic"))["TopicArn"]
    subscription = sns.subscribe(
        TopicArn=topic, Protocol="application", Endpoint=disabled
    )["SubscriptionArn"]
    publisher = unvalidated(
        stack.server, key="AKIAPUBLISHONLY00001", secret="publish-only-secret"
    )
    return World(
        sns, client(stack.server), publisher, app, target, disabled, topic, subscription
    )


def _attr(data_type: str | None = "String", **value: Any) -> dict[str, Any]:
    out = dict(value)
    if data_type is not None:
        out["DataType"] = data_type
    return out


def _entries(count: int, **overrides: Any) -> list[dict[str, Any]]:
    return [{"Id": f"e{n}", "Message": "m", **overrides} for n in range(count)]


Case = Callable[[World], object]
IP = "InvalidParameterException"
NF = "NotFoundException"
PVI = "InvalidParameterValueException"
CATALOGUE: list[Any] = [
    # -- §4 platform applications ---------------------------------------------
    pytest.param(
        lambda w: w.sns.create_platform_application(
            Name="x", Platform="ADM", Attributes={}
        ),
        ("ClientError", "ValidationError", 400, NULL_ATTRIBUTES),
        id="create-app-null-attributes",
    ),
    pytest.param(
        lambda w: w.sns.create_platform_application(
            Name="x", Platform="AAA", Attributes={"PlatformCredential": "c"}
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: Platform Reason: AAA is not supported",
        ),
        id="create-app-bad-platform",
    ),
    pytest.param(
        lambda w: w.sns.create_platform_application(
            Name="", Platform="ADM", Attributes={"PlatformCredential": "c"}
        ),
        (IP, "InvalidParameter", 400, "Invalid parameter:  Reason: cannot be empty"),
        id="create-app-empty-name",
    ),
    pytest.param(
        lambda w: w.sns.create_platform_application(
            Name=LONG_NAME, Platform="ADM", Attributes={"PlatformCredential": "c"}
        ),
        (
            IP,
            "InvalidParameter",
            400,
            f"Invalid parameter: {LONG_NAME} Reason: must be at most 256 characters long",
        ),
        id="create-app-long-name",
    ),
    pytest.param(
        lambda w: w.sns.create_platform_application(
            Name="bad name!", Platform="ADM", Attributes={"PlatformCredential": "c"}
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: bad name! Reason: must contain only characters"
            " 'a'-'z', 'A'-'Z', '0'-'9', '_', '-', and '.'",
        ),
        id="create-app-bad-name-char",
    ),
    pytest.param(
        lambda w: w.sns.create_platform_application(
            Name="x", Platform="ADM", Attributes={"PlatformPrincipal": "p"}
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: Attributes Reason: PlatformPrincipal attribute"
            " provided without PlatformCredential",
        ),
        id="create-app-principal-only",
    ),
    pytest.param(
        lambda w: w.sns.create_platform_application(
            Name="x", Platform="ADM", Attributes={"PlatformCredential": "c"}
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: Attributes Reason: PlatformCredential attribute"
            " provided without PlatformPrincipal",
        ),
        id="create-app-credential-only",
    ),
    pytest.param(
        lambda w: w.sns.create_platform_application(
            Name="x",
            Platform="ADM",
            Attributes={"PlatformPrincipal": " ", "PlatformCredential": "c"},
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: Attributes Reason: Platform credentials are invalid",
        ),
        id="create-app-invalid-credentials",
    ),
    pytest.param(
        lambda w: w.sns.create_platform_application(
            Name="x", Platform="GCM", Attributes={"PlatformCredential": "not a key"}
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: Attributes Reason: Platform credentials are invalid",
        ),
        id="create-gcm-app-invalid-credentials",
    ),
    pytest.param(
        lambda w: w.sns.get_platform_application_attributes(
            PlatformApplicationArn="foo"
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: PlatformApplicationArn Reason: An ARN must have at"
            " least 6 elements, not 1",
        ),
        id="get-app-not-an-arn",
    ),
    pytest.param(
        lambda w: w.sns.get_platform_application_attributes(
            PlatformApplicationArn=f"{PREFIX}:app/ADM"
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: PlatformApplicationArn Reason: Wrong number of slashes"
            " in relative portion of the ARN.",
        ),
        id="get-app-wrong-slashes",
    ),
    pytest.param(
        lambda w: w.sns.set_platform_application_attributes(
            PlatformApplicationArn="a:b:c", Attributes={}
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: PlatformApplicationArn Reason: An ARN must have at"
            " least 6 elements, not 3",
        ),
        id="set-app-arn-checked-before-attributes",
    ),
    pytest.param(
        lambda w: w.sns.set_platform_application_attributes(
            PlatformApplicationArn=f"{PREFIX}:app/ADM/missing", Attributes={}
        ),
        ("ClientError", "ValidationError", 400, NULL_ATTRIBUTES),
        id="set-app-null-attributes-unknown-app",
    ),
    pytest.param(
        lambda w: w.sns.get_platform_application_attributes(
            PlatformApplicationArn=f"{PREFIX}:app/ADM/missing"
        ),
        (NF, "NotFound", 404, "PlatformApplication does not exist"),
        id="get-app-unknown",
    ),
    pytest.param(
        lambda w: w.sns.set_platform_application_attributes(
            PlatformApplicationArn=f"{PREFIX}:app/ADM/missing",
            Attributes={"SuccessFeedbackSampleRate": "50"},
        ),
        (NF, "NotFound", 404, "PlatformApplication does not exist"),
        id="set-app-unknown",
    ),
    pytest.param(
        lambda w: w.sns.list_endpoints_by_platform_application(
            PlatformApplicationArn=f"{PREFIX}:app/ADM/missing"
        ),
        (NF, "NotFound", 404, "PlatformApplication does not exist"),
        id="list-endpoints-unknown-app",
    ),
    pytest.param(
        lambda w: w.sns.list_endpoints_by_platform_application(
            PlatformApplicationArn=w.app, NextToken="forged"
        ),
        (IP, "InvalidParameter", 400, "Invalid parameter: NextToken"),
        id="list-endpoints-forged-next-token",
    ),
    # -- §5 platform endpoints ------------------------------------------------
    pytest.param(
        lambda w: w.sns.create_platform_endpoint(
            PlatformApplicationArn=f"{PREFIX}:app/ADM/missing", Token="t"
        ),
        (NF, "NotFound", 404, "PlatformApplication does not exist"),
        id="create-endpoint-unknown-app",
    ),
    pytest.param(
        lambda w: w.sns.create_platform_endpoint(
            PlatformApplicationArn="foo", Token="t"
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: PlatformApplicationArn Reason: An ARN must have at"
            " least 6 elements, not 1",
        ),
        id="create-endpoint-app-not-an-arn",
    ),
    pytest.param(
        lambda w: w.sns.create_platform_endpoint(
            PlatformApplicationArn=w.app,
            Token=unique("tok"),
            Attributes={"PlatformPrincipal": "p"},
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: Attributes Reason: Invalid attribute name:"
            " PlatformPrincipal",
        ),
        id="create-endpoint-bad-attribute-name",
    ),
    pytest.param(
        lambda w: w.sns.set_endpoint_attributes(
            EndpointArn=w.endpoint, Attributes={"InvalidKey": "v"}
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: Attributes Reason: Invalid attribute name: InvalidKey",
        ),
        id="set-endpoint-bad-attribute-name",
    ),
    pytest.param(
        lambda w: w.sns.create_platform_endpoint(
            PlatformApplicationArn=w.app,
            Token=unique("tok"),
            CustomUserData="é" * 1025,
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: Attributes Reason: Invalid value for attribute:"
            " CustomUserData: must be at most 2048 bytes long in UTF-8 encoding",
        ),
        id="create-endpoint-custom-user-data-too-long",
    ),
    pytest.param(
        lambda w: w.sns.set_endpoint_attributes(
            EndpointArn=w.endpoint, Attributes={"CustomUserData": "x" * 2049}
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: Attributes Reason: Invalid value for attribute:"
            " CustomUserData: must be at most 2048 bytes long in UTF-8 encoding",
        ),
        id="set-endpoint-custom-user-data-too-long",
    ),
    pytest.param(
        lambda w: w.sns.set_endpoint_attributes(EndpointArn=w.endpoint, Attributes={}),
        ("ClientError", "ValidationError", 400, NULL_ATTRIBUTES),
        id="set-endpoint-null-attributes",
    ),
    pytest.param(
        lambda w: w.sns.get_endpoint_attributes(
            EndpointArn=f"{PREFIX}:endpoint/ADM/fakeapp"
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: EndpointArn Reason: Wrong number of slashes in"
            " relative portion of the ARN.",
        ),
        id="get-endpoint-wrong-slashes",
    ),
    pytest.param(
        lambda w: w.sns.get_endpoint_attributes(EndpointArn="foo"),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: EndpointArn Reason: An ARN must have at least 6"
            " elements, not 1",
        ),
        id="get-endpoint-not-an-arn",
    ),
    pytest.param(
        lambda w: w.sns.get_endpoint_attributes(
            EndpointArn=f"{PREFIX}:endpoint/ADM/missing/{UNKNOWN_ID}"
        ),
        (NF, "NotFound", 404, "Endpoint does not exist"),
        id="get-endpoint-unknown",
    ),
    pytest.param(
        lambda w: w.sns.set_endpoint_attributes(
            EndpointArn=f"{PREFIX}:endpoint/ADM/missing/{UNKNOWN_ID}",
            Attributes={"Enabled": "true"},
        ),
        (NF, "NotFound", 404, "Endpoint does not exist"),
        id="set-endpoint-unknown",
    ),
    # -- §6 publish -----------------------------------------------------------
    pytest.param(
        lambda w: w.sns.publish(
            TargetArn=f"{PREFIX}:endpoint/ADM/missing/{UNKNOWN_ID}", Message="m"
        ),
        (IP, "InvalidParameter", 400, NO_ENDPOINT),
        id="publish-unknown-endpoint",
    ),
    pytest.param(
        lambda w: w.sns.publish(TargetArn=w.disabled, Message="m"),
        ("EndpointDisabledException", "EndpointDisabled", 400, "Endpoint is disabled"),
        id="publish-disabled-endpoint",
    ),
    pytest.param(
        lambda w: w.sns.publish(
            TargetArn=w.disabled, Message="msg", MessageStructure="json"
        ),
        ("EndpointDisabledException", "EndpointDisabled", 400, "Endpoint is disabled"),
        id="publish-disabled-endpoint-before-json-check",
    ),
    pytest.param(
        lambda w: w.sns.publish(
            TargetArn=w.endpoint,
            Message=json.dumps({"GCM": "x", "adm": "y"}),
            MessageStructure="json",
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: JSON must contain an entry for 'default' or 'ADM'.",
        ),
        id="json-endpoint-without-default-or-platform",
    ),
    pytest.param(
        lambda w: w.sns.publish(
            TargetArn=w.endpoint,
            Message=json.dumps({"ADM": {"data": {"k": "v"}}}),
            MessageStructure="json",
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: JSON must contain an entry for 'default' or 'ADM'.",
        ),
        id="json-endpoint-platform-key-not-a-string",
    ),
    pytest.param(
        lambda w: w.sns.publish(
            TopicArn=w.topic, Message=json.dumps({"ADM": "x"}), MessageStructure="json"
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: Message Structure - No default entry in JSON message"
            " body",
        ),
        id="json-topic-without-default",
    ),
    pytest.param(
        lambda w: w.sns.publish(
            TopicArn=w.topic,
            Message=json.dumps({"default": {"a": "b"}}),
            MessageStructure="json",
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: Message Structure - No default entry in JSON message"
            " body",
        ),
        id="json-topic-default-not-a-string",
    ),
    pytest.param(
        lambda w: w.sns.publish(
            TopicArn=w.topic, Message="{not json", MessageStructure="json"
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: Message Structure - JSON message body failed to parse",
        ),
        id="json-topic-bad-json",
    ),
    pytest.param(
        lambda w: w.sns.publish(
            TargetArn=w.endpoint, Message='["default"]', MessageStructure="json"
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: Message Structure - JSON message body failed to parse",
        ),
        id="json-endpoint-not-an-object",
    ),
    pytest.param(
        lambda w: w.sns.publish(TopicArn=w.topic, Message="x" * 262_145),
        (IP, "InvalidParameter", 400, "Invalid parameter: Message too long"),
        id="publish-message-too-long",
    ),
    pytest.param(
        lambda w: w.sns.publish(
            TopicArn=w.topic,
            Message="x" * 262_130,
            MessageAttributes={"attr": _attr(StringValue="0123456789")},
        ),
        (IP, "InvalidParameter", 400, "Invalid parameter: Message too long"),
        id="publish-too-long-with-attributes",
    ),
    pytest.param(
        lambda w: w.sns.publish(TopicArn=w.topic, Message=""),
        (IP, "InvalidParameter", 400, "Invalid parameter: Empty message"),
        id="publish-empty-message",
    ),
    pytest.param(
        lambda w: w.sns.publish(TopicArn=w.topic, Message="m", Subject=""),
        (IP, "InvalidParameter", 400, "Invalid parameter: Subject"),
        id="publish-empty-subject",
    ),
    pytest.param(
        lambda w: w.sns.publish(Message="m"),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: TopicArn or TargetArn Reason: no value for required"
            " parameter",
        ),
        id="publish-no-target",
    ),
    pytest.param(
        lambda w: w.sns.publish(TopicArn="foo", Message="m"),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: TopicArn Reason: An ARN must have at least 6"
            " elements, not 1",
        ),
        id="publish-topic-not-an-arn",
    ),
    pytest.param(
        lambda w: w.sns.publish(
            TopicArn=w.topic.replace(REGION, "eu-west-1"), Message="m"
        ),
        (IP, "InvalidParameter", 400, "Invalid parameter: TopicArn"),
        id="publish-topic-other-region",
    ),
    pytest.param(
        lambda w: w.sns.publish(TopicArn=f"{PREFIX}:missing-topic", Message="m"),
        (NF, "NotFound", 404, "Topic does not exist"),
        id="publish-unknown-topic",
    ),
    # -- §6.4 message attributes ----------------------------------------------
    pytest.param(
        lambda w: w.sns.publish(
            TopicArn=w.topic,
            Message="m",
            MessageAttributes={"a^b": _attr(StringValue="v")},
        ),
        (
            PVI,
            "ParameterValueInvalid",
            400,
            "Invalid non-alphanumeric character '#x5E' was found in the message"
            " attribute name. Can only include alphanumeric characters, hyphens,"
            " underscores, or dots.",
        ),
        id="attribute-name-bad-char",
    ),
    pytest.param(
        lambda w: w.sns.publish(
            TopicArn=w.topic,
            Message="m",
            MessageAttributes={".a": _attr(StringValue="v")},
        ),
        (
            PVI,
            "ParameterValueInvalid",
            400,
            "Invalid message attribute name starting with character '.' was found.",
        ),
        id="attribute-name-leading-dot",
    ),
    pytest.param(
        lambda w: w.sns.publish(
            TopicArn=w.topic,
            Message="m",
            MessageAttributes={"a.": _attr(StringValue="v")},
        ),
        (
            PVI,
            "ParameterValueInvalid",
            400,
            "Invalid message attribute name ending with character '.' was found.",
        ),
        id="attribute-name-trailing-dot",
    ),
    pytest.param(
        lambda w: w.sns.publish(
            TopicArn=w.topic,
            Message="m",
            MessageAttributes={"a..b": _attr(StringValue="v")},
        ),
        (
            PVI,
            "ParameterValueInvalid",
            400,
            "Message attribute name can not have successive '.' character.",
        ),
        id="attribute-name-double-dot",
    ),
    pytest.param(
        lambda w: w.sns.publish(
            TopicArn=w.topic,
            Message="m",
            MessageAttributes={"n" * 256: _attr(StringValue="v")},
        ),
        (
            PVI,
            "ParameterValueInvalid",
            400,
            "Length of message attribute name must be less than 256 bytes.",
        ),
        id="attribute-name-too-long",
    ),
    pytest.param(
        lambda w: w.sns.publish(
            TopicArn=w.topic,
            Message="m",
            MessageAttributes={"n": _attr("Foo", StringValue="v")},
        ),
        (
            PVI,
            "ParameterValueInvalid",
            400,
            "The message attribute 'n' has an invalid message attribute type, the set"
            " of supported type prefixes is Binary, Number, and String.",
        ),
        id="attribute-bad-type",
    ),
    pytest.param(
        lambda w: w.sns.publish(
            TopicArn=w.topic,
            Message="m",
            MessageAttributes={"n": _attr(StringValue="")},
        ),
        (
            PVI,
            "ParameterValueInvalid",
            400,
            "The message attribute 'n' must contain non-empty message attribute value"
            " for message attribute type 'String'.",
        ),
        id="attribute-empty-value",
    ),
    pytest.param(
        lambda w: w.sns.publish(
            TopicArn=w.topic,
            Message="m",
            MessageAttributes={"n": _attr(BinaryValue=b"v")},
        ),
        (
            PVI,
            "ParameterValueInvalid",
            400,
            "The message attribute 'n' with type 'String' must use field 'String'.",
        ),
        id="attribute-wrong-field",
    ),
    pytest.param(
        lambda w: w.sns.publish(
            TopicArn=w.topic,
            Message="m",
            MessageAttributes={"n": _attr(None, StringValue="v")},
        ),
        (
            "ClientError",
            "ValidationError",
            400,
            "1 validation error detected: Value null at"
            " 'messageAttributes.n.member.dataType' failed to satisfy constraint:"
            " Member must not be null",
        ),
        id="attribute-missing-data-type",
    ),
    # -- §6.5 PublishBatch ----------------------------------------------------
    pytest.param(
        lambda w: w.sns.publish_batch(
            TopicArn=w.topic, PublishBatchRequestEntries=_entries(11)
        ),
        (
            "TooManyEntriesInBatchRequestException",
            "TooManyEntriesInBatchRequest",
            400,
            "The batch request contains more entries than permissible.",
        ),
        id="batch-too-many-entries",
    ),
    pytest.param(
        lambda w: w.sns.publish_batch(
            TopicArn=w.topic, PublishBatchRequestEntries=_entries(2, Id="same")
        ),
        (
            "BatchEntryIdsNotDistinctException",
            "BatchEntryIdsNotDistinct",
            400,
            "Two or more batch entries in the request have the same Id.",
        ),
        id="batch-ids-not-distinct",
    ),
    pytest.param(
        lambda w: w.sns.publish_batch(
            TopicArn=w.topic, PublishBatchRequestEntries=_entries(1, Id="i" * 81)
        ),
        (
            "InvalidBatchEntryIdException",
            "InvalidBatchEntryId",
            400,
            f"The Id of a batch entry in the batch request is too long: {'i' * 81}",
        ),
        id="batch-id-too-long",
    ),
    pytest.param(
        lambda w: w.sns.publish_batch(
            TopicArn=w.topic, PublishBatchRequestEntries=_entries(1, Id="a.b")
        ),
        (
            "InvalidBatchEntryIdException",
            "InvalidBatchEntryId",
            400,
            "The Id of a batch entry in the batch request contains an impermissible"
            " character: a.b",
        ),
        id="batch-id-bad-char",
    ),
    pytest.param(
        lambda w: w.sns.publish_batch(
            TopicArn=w.topic,
            PublishBatchRequestEntries=_entries(2, Message="x" * 131_073),
        ),
        (
            "BatchRequestTooLongException",
            "BatchRequestTooLong",
            400,
            "The length of all the messages put together is more than the limit.",
        ),
        id="batch-too-long",
    ),
    pytest.param(
        lambda w: w.validated.publish_batch(
            TopicArn=w.topic, PublishBatchRequestEntries=[]
        ),
        (
            "EmptyBatchRequestException",
            "EmptyBatchRequest",
            400,
            "The batch request doesn't contain any entries.",
        ),
        id="batch-empty",
    ),
    pytest.param(
        lambda w: w.sns.publish_batch(
            TopicArn=f"{PREFIX}:missing-topic", PublishBatchRequestEntries=_entries(1)
        ),
        (NF, "NotFound", 404, "Topic does not exist"),
        id="batch-unknown-topic",
    ),
    # -- §7 topics and subscriptions ------------------------------------------
    pytest.param(
        lambda w: w.sns.create_topic(Name="bad name"),
        (IP, "InvalidParameter", 400, "Invalid parameter: Topic Name"),
        id="create-topic-bad-name",
    ),
    pytest.param(
        lambda w: w.sns.create_topic(
            Name=w.topic.rsplit(":", 1)[1], Attributes={"DisplayName": "other"}
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: Attributes Reason: Topic already exists with different"
            " attributes",
        ),
        id="create-topic-different-attributes",
    ),
    pytest.param(
        lambda w: w.sns.get_topic_attributes(TopicArn=f"{PREFIX}:missing-topic"),
        (NF, "NotFound", 404, "Topic does not exist"),
        id="get-topic-unknown",
    ),
    pytest.param(
        lambda w: w.sns.list_subscriptions_by_topic(TopicArn=f"{PREFIX}:missing-topic"),
        (NF, "NotFound", 404, "Topic does not exist"),
        id="list-subscriptions-unknown-topic",
    ),
    pytest.param(
        lambda w: w.sns.subscribe(
            TopicArn=w.topic,
            Protocol="application",
            Endpoint=f"{PREFIX}:endpoint/ADM/missing/{UNKNOWN_ID}",
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: Endpoint Reason: Endpoint does not exist for endpoint"
            f" arn{PREFIX}:endpoint/ADM/missing/{UNKNOWN_ID}",
        ),
        id="subscribe-unknown-endpoint",
    ),
    pytest.param(
        lambda w: w.sns.subscribe(
            TopicArn=w.topic, Protocol="carrier-pigeon", Endpoint=w.endpoint
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: Amazon SNS does not support this protocol string:"
            " carrier-pigeon",
        ),
        id="subscribe-unsupported-protocol",
    ),
    pytest.param(
        lambda w: w.sns.subscribe(
            TopicArn=w.topic,
            Protocol="application",
            Endpoint=w.disabled,
            Attributes={"RawMessageDelivery": "true"},
        ),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: Attributes Reason: Subscription already exists with"
            " different attributes",
        ),
        id="subscribe-different-attributes",
    ),
    pytest.param(
        lambda w: w.sns.unsubscribe(SubscriptionArn="foo"),
        (
            IP,
            "InvalidParameter",
            400,
            "Invalid parameter: SubscriptionArn Reason: An ARN must have at least 6"
            " elements, not 1",
        ),
        id="unsubscribe-not-an-arn",
    ),
    pytest.param(
        lambda w: w.sns.unsubscribe(
            SubscriptionArn="arn:aws:sns:us-east-1:111111111111:random"
        ),
        (IP, "InvalidParameter", 400, "Invalid parameter: SubscriptionId"),
        id="unsubscribe-no-subscription-id",
    ),
    pytest.param(
        lambda w: w.sns.get_subscription_attributes(
            SubscriptionArn=f"{w.topic}:{UNKNOWN_ID}"
        ),
        (NF, "NotFound", 404, "Subscription does not exist"),
        id="get-subscription-unknown",
    ),
    pytest.param(
        lambda w: w.sns.set_subscription_attributes(
            SubscriptionArn=f"{w.topic}:{UNKNOWN_ID}",
            AttributeName="RawMessageDelivery",
            AttributeValue="true",
        ),
        (NF, "NotFound", 404, "Subscription does not exist"),
        id="set-subscription-unknown",
    ),
    pytest.param(
        lambda w: w.sns.list_tags_for_resource(ResourceArn=f"{PREFIX}:missing-topic"),
        (
            "ResourceNotFoundException",
            "ResourceNotFound",
            404,
            "Resource does not exist",
        ),
        id="tags-unknown-resource",
    ),
    # -- access and unimplemented actions -------------------------------------
    pytest.param(
        lambda w: w.publisher.create_topic(Name="nope"),
        (
            "AuthorizationErrorException",
            "AuthorizationError",
            403,
            f"User: arn:aws:iam::{ACCOUNT}:user/AKIAPUBLISHONLY00001 is not"
            " authorized to perform: SNS:CreateTopic on resource: *",
        ),
        id="authorization-error",
    ),
    pytest.param(
        lambda w: w.publisher.get_topic_attributes(TopicArn=w.topic),
        (
            "AuthorizationErrorException",
            "AuthorizationError",
            403,
            f"User: arn:aws:iam::{ACCOUNT}:user/AKIAPUBLISHONLY00001 is not"
            " authorized to perform: SNS:GetTopicAttributes on resource: {topic}",
        ),
        id="authorization-error-names-resource",
    ),
    pytest.param(
        lambda w: w.sns.list_phone_numbers_opted_out(),
        (
            "ClientError",
            "InvalidAction",
            400,
            "The action ListPhoneNumbersOptedOut is not valid for this web service.",
        ),
        id="unimplemented-action",
    ),
]


@pytest.mark.e2e
@pytest.mark.parametrize(("call", "expected"), CATALOGUE)
def test_error_catalogue(
    world: World, call: Case, expected: tuple[str, str, int, str]
) -> None:
    """Each error pushgw can produce has SNS's code, HTTP status, text and class."""
    name, code, status, message = expected
    message = message.replace("{topic}", world.topic)

    assert (name, code, status, message) == refusal(lambda: call(world))


@pytest.mark.e2e
def test_platform_application_actions(stack: Stack) -> None:
    """Create, Get, Set, List and Delete of a platform application behave as SNS."""
    sns = client(stack.server)
    name = unique("cat-app")
    credentials = stack.mocks.credentials("ADM")
    app = sns.create_platform_application(
        Name=name, Platform="ADM", Attributes=credentials
    )["PlatformApplicationArn"]
    again = sns.create_platform_application(
        Name=name, Platform="ADM", Attributes=credentials
    )["PlatformApplicationArn"]
    created = sns.get_platform_application_attributes(PlatformApplicationArn=app)
    sns.set_platform_application_attributes(
        PlatformApplicationArn=app, Attributes={"SuccessFeedbackSampleRate": "50"}
    )
    after_set = sns.get_platform_application_attributes(PlatformApplicationArn=app)
    listed = {
        a["PlatformApplicationArn"]: a["Attributes"]
        for page in sns.get_paginator("list_platform_applications").paginate()
        for a in page["PlatformApplications"]
    }
    target = endpoint(sns, app)
    sns.delete_platform_application(PlatformApplicationArn=app)
    sns.delete_platform_application(PlatformApplicationArn=app)  # idempotent

    assert f"{PREFIX}:app/ADM/{name}" == app
    assert app == again
    assert {"Enabled": "true"} == created["Attributes"]
    assert {"Enabled": "true", "SuccessFeedbackSampleRate": "50"} == after_set[
        "Attributes"
    ]
    assert after_set["Attributes"] == listed[app]
    assert ("NotFoundException", "PlatformApplication does not exist") == _nf(
        lambda: sns.get_platform_application_attributes(PlatformApplicationArn=app)
    )
    assert ("NotFoundException", "PlatformApplication does not exist") == _nf(
        lambda: sns.list_endpoints_by_platform_application(PlatformApplicationArn=app)
    )
    assert ("NotFoundException", "Endpoint does not exist") == _nf(
        lambda: sns.get_endpoint_attributes(EndpointArn=target)
    )


def _nf(call: Callable[[], object]) -> tuple[str, str]:
    name, _, status, message = refusal(call)
    assert 404 == status
    return name, message


@pytest.mark.e2e
def test_endpoint_actions(stack: Stack) -> None:
    """Create, Get, Set, List, Publish and Delete of an endpoint, with delivery."""
    sns = client(stack.server)
    app = adm_app(sns, stack.mocks)
    token, target = device_endpoint(sns, stack.mocks, app)
    other = endpoint(
        sns,
        app,
        CustomUserData="bar",
        Attributes={"CustomUserData": "foo"},
    )
    initial = sns.get_endpoint_attributes(EndpointArn=target)["Attributes"]
    sns.set_endpoint_attributes(
        EndpointArn=target, Attributes={"CustomUserData": "user-7"}
    )
    after_set = sns.get_endpoint_attributes(EndpointArn=target)["Attributes"]
    listed = sns.list_endpoints_by_platform_application(PlatformApplicationArn=app)
    message_id = sns.publish(TargetArn=target, Message="hello catalogue")["MessageId"]
    received = eventually(lambda: stack.mocks.received(token))
    sns.delete_endpoint(EndpointArn=target)
    sns.delete_endpoint(EndpointArn=target)  # idempotent
    after_delete = sns.list_endpoints_by_platform_application(
        PlatformApplicationArn=app
    )

    assert target.startswith(f"{PREFIX}:endpoint/ADM/{app.rsplit('/', 1)[1]}/")
    assert {"Enabled": "true", "Token": token} == initial
    assert {"Enabled": "true", "Token": token, "CustomUserData": "user-7"} == after_set
    assert (
        "foo"
        == sns.get_endpoint_attributes(EndpointArn=other)["Attributes"][
            "CustomUserData"
        ]
    )
    assert [target, other] == [e["EndpointArn"] for e in listed["Endpoints"]]
    assert after_set == listed["Endpoints"][0]["Attributes"]
    assert "NextToken" not in listed
    assert message_id
    assert "hello catalogue" in json.dumps(received[0]["payload"])
    assert [other] == [e["EndpointArn"] for e in after_delete["Endpoints"]]
    assert (IP, "InvalidParameter", 400, NO_ENDPOINT) == refusal(
        lambda: sns.publish(TargetArn=target, Message="m")
    )


@pytest.mark.e2e
def test_topic_and_subscription_actions(stack: Stack) -> None:
    """Topic and `application` subscription actions, PublishBatch and fan-out."""
    sns = client(stack.server)
    app = adm_app(sns, stack.mocks)
    token, target = device_endpoint(sns, stack.mocks, app)
    name = unique("cat-news")
    topic = sns.create_topic(Name=name)["TopicArn"]
    same = sns.create_topic(Name=name)["TopicArn"]
    sns.set_topic_attributes(
        TopicArn=topic, AttributeName="DisplayName", AttributeValue="News"
    )
    attributes = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    topics = [
        t["TopicArn"]
        for page in sns.get_paginator("list_topics").paginate()
        for t in page["Topics"]
    ]
    sub = sns.subscribe(TopicArn=topic, Protocol="application", Endpoint=target)[
        "SubscriptionArn"
    ]
    sub_again = sns.subscribe(TopicArn=topic, Protocol="application", Endpoint=target)[
        "SubscriptionArn"
    ]
    sns.set_subscription_attributes(
        SubscriptionArn=sub, AttributeName="RawMessageDelivery", AttributeValue="true"
    )
    sub_attributes = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    by_topic = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    everywhere = [
        s["SubscriptionArn"]
        for page in sns.get_paginator("list_subscriptions").paginate()
        for s in page["Subscriptions"]
    ]
    batch = sns.publish_batch(
        TopicArn=topic,
        PublishBatchRequestEntries=[
            {"Id": "one", "Message": "batch one"},
            {"Id": "two", "Message": "batch two"},
        ],
    )
    received = eventually(
        lambda: (got := stack.mocks.received(token)) and len(got) == 2 and got
    )
    sns.unsubscribe(SubscriptionArn=sub)
    sns.unsubscribe(SubscriptionArn=sub)  # idempotent
    after_unsubscribe = sns.list_subscriptions_by_topic(TopicArn=topic)
    sns.delete_topic(TopicArn=topic)
    sns.delete_topic(TopicArn=topic)  # idempotent

    assert f"{PREFIX}:{name}" == topic == same
    assert "News" == attributes["DisplayName"]
    assert topic == attributes["TopicArn"]
    assert topic in topics
    assert sub.startswith(topic + ":") and sub == sub_again
    assert "true" == sub_attributes["RawMessageDelivery"]
    assert target == sub_attributes["Endpoint"]
    assert [
        {
            "SubscriptionArn": sub,
            "Owner": ACCOUNT,
            "Protocol": "application",
            "Endpoint": target,
            "TopicArn": topic,
        }
    ] == by_topic
    assert sub in everywhere
    assert ["one", "two"] == [s["Id"] for s in batch["Successful"]]
    assert [] == batch["Failed"]
    assert {"batch one", "batch two"} == {
        m for r in received for m in ("batch one", "batch two") if m in str(r)
    }
    assert [] == after_unsubscribe["Subscriptions"]
    assert ("NotFoundException", "Topic does not exist") == _nf(
        lambda: sns.get_topic_attributes(TopicArn=topic)
    )


@pytest.mark.e2e
def test_tag_actions(stack: Stack) -> None:
    """TagResource, UntagResource and ListTagsForResource on a topic."""
    sns = client(stack.server)
    topic = sns.create_topic(
        Name=unique("cat-tags"), Tags=[{"Key": "team", "Value": "push"}]
    )["TopicArn"]
    sns.tag_resource(
        ResourceArn=topic,
        Tags=[{"Key": "env", "Value": "e2e"}, {"Key": "team", "Value": "mobile"}],
    )
    tagged = sns.list_tags_for_resource(ResourceArn=topic)["Tags"]
    sns.untag_resource(ResourceArn=topic, TagKeys=["team"])
    untagged = sns.list_tags_for_resource(ResourceArn=topic)["Tags"]

    assert {"env": "e2e", "team": "mobile"} == {t["Key"]: t["Value"] for t in tagged}
    assert [{"Key": "env", "Value": "e2e"}] == untagged


@pytest.mark.e2e
def test_create_endpoint_idempotency(stack: Stack) -> None:
    """Rules 1–4 of §5.1: same token and matching supplied attributes → same ARN."""
    sns = unvalidated(stack.server)
    app = adm_app(sns, stack.mocks)
    token = unique("tok")
    first = endpoint(sns, app, token)
    second = endpoint(sns, app, unique("tok"))  # rule 1
    again = endpoint(sns, app, token)  # rule 2
    enabled_again = endpoint(sns, app, token, Attributes={"Enabled": "true"})
    quiet_token = unique("tok")
    quiet = endpoint(
        sns, app, quiet_token, CustomUserData="x", Attributes={"Enabled": "false"}
    )
    quiet_again = endpoint(
        sns, app, quiet_token, CustomUserData="x", Attributes={"Enabled": "false"}
    )
    quiet_bare = endpoint(sns, app, quiet_token)  # rule 4: nothing compared
    conflicts = [
        refusal(lambda: endpoint(sns, app, token, Attributes={"Enabled": "false"})),
        refusal(lambda: endpoint(sns, app, token, CustomUserData="new")),
        refusal(
            lambda: endpoint(sns, app, quiet_token, Attributes={"Enabled": "true"})
        ),
    ]
    listed = sns.list_endpoints_by_platform_application(PlatformApplicationArn=app)

    assert first != second
    assert first == again == enabled_again
    assert quiet == quiet_again == quiet_bare
    assert [
        (IP, "InvalidParameter", 400, CONFLICT.format(arn=first)),
        (IP, "InvalidParameter", 400, CONFLICT.format(arn=first)),
        (IP, "InvalidParameter", 400, CONFLICT.format(arn=quiet)),
    ] == conflicts
    assert [
        (first, {"Enabled": "true", "Token": token}),
        (second, None),
        (quiet, {"Enabled": "false", "Token": quiet_token, "CustomUserData": "x"}),
    ] == [
        (e["EndpointArn"], e["Attributes"] if e["EndpointArn"] != second else None)
        for e in listed["Endpoints"]
    ]


@pytest.mark.e2e
def test_pagination_of_250_endpoints(stack: Stack) -> None:
    """The paginator yields 100/100/50 endpoints in creation order, then stops."""
    sns = client(stack.server)
    app = adm_app(sns, stack.mocks)
    arns = [
        endpoint(sns, app, f"page-{n:03d}-{uuid.uuid4().hex[:6]}") for n in range(250)
    ]

    pages = list(
        sns.get_paginator("list_endpoints_by_platform_application").paginate(
            PlatformApplicationArn=app
        )
    )

    assert [100, 100, 50] == [len(p["Endpoints"]) for p in pages]
    assert [True, True, False] == ["NextToken" in p for p in pages]
    assert arns == [e["EndpointArn"] for p in pages for e in p["Endpoints"]]


@pytest.mark.e2e
def test_disabled_endpoint(stack: Stack) -> None:
    """A disabled endpoint refuses direct publishes, survives Create(token), re-enables."""
    sns = client(stack.server)
    app = adm_app(sns, stack.mocks)
    token, target = device_endpoint(sns, stack.mocks, app)
    topic = sns.create_topic(Name=unique("cat-disabled"))["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="application", Endpoint=target)
    sns.set_endpoint_attributes(EndpointArn=target, Attributes={"Enabled": "false"})

    refused = refusal(lambda: sns.publish(TargetArn=target, Message="m"))
    recreated = endpoint(sns, app, token)
    still = sns.get_endpoint_attributes(EndpointArn=target)["Attributes"]
    topic_message = sns.publish(TopicArn=topic, Message="fan-out skips it")
    sns.set_endpoint_attributes(EndpointArn=target, Attributes={"Enabled": "true"})
    sns.publish(TargetArn=target, Message="enabled again")
    received = eventually(
        lambda: [r for r in stack.mocks.received(token) if "enabled again" in str(r)]
    )

    assert (
        "EndpointDisabledException",
        "EndpointDisabled",
        400,
        "Endpoint is disabled",
    ) == refused
    assert target == recreated
    assert {"Enabled": "false", "Token": token} == still
    assert topic_message["MessageId"]
    assert 1 == len(received)


@pytest.mark.e2e
def test_json_message_structure_accepted(stack: Stack) -> None:
    """JSON with the platform key (endpoint) or `default` (topic) is accepted."""
    sns = client(stack.server)
    app = adm_app(sns, stack.mocks)
    token, target = device_endpoint(sns, stack.mocks, app)
    topic = sns.create_topic(Name=unique("cat-json"))["TopicArn"]
    adm = json.dumps({"data": {"kind": "platform-key"}})

    sns.publish(
        TargetArn=target,
        Message=json.dumps({"ADM": adm, "GCM": "ignored"}),
        MessageStructure="json",
    )
    topic_id = sns.publish(
        TopicArn=topic,
        Message=json.dumps({"default": "d", "ADM": adm}),
        MessageStructure="json",
    )["MessageId"]
    received = eventually(lambda: stack.mocks.received(token))

    assert topic_id
    assert {"kind": "platform-key"} == received[0]["payload"]["data"]


@pytest.mark.e2e
def test_message_size_boundary(stack: Stack) -> None:
    """A 262144-byte message is accepted; one byte more is refused."""
    sns = client(stack.server)
    topic = sns.create_topic(Name=unique("cat-size"))["TopicArn"]

    accepted = sns.publish(TopicArn=topic, Message="x" * 262_144)["MessageId"]
    refused = refusal(lambda: sns.publish(TopicArn=topic, Message="x" * 262_145))

    assert accepted
    assert (IP, "InvalidParameter", 400, "Invalid parameter: Message too long") == (
        refused
    )


@pytest.mark.e2e
def test_platform_application_disabled(stack: Stack) -> None:
    """Rejected credentials disable the application; publishes then get PlatformApplicationDisabled."""
    sns = client(stack.server)
    app = adm_app(sns, stack.mocks)
    _, target = device_endpoint(sns, stack.mocks, app)
    stack.mocks.faults("ADM", [{"kind": "bad_credentials", "count": 5}])
    try:
        sns.publish(TargetArn=target, Message="credentials get rejected")
        deadline = time.monotonic() + DISABLE_TIMEOUT_S
        enabled = "true"
        while enabled == "true" and time.monotonic() < deadline:
            time.sleep(0.1)
            enabled = sns.get_platform_application_attributes(
                PlatformApplicationArn=app
            )["Attributes"]["Enabled"]
        refused = refusal(lambda: sns.publish(TargetArn=target, Message="m"))
    finally:
        stack.mocks.faults("ADM", [])

    assert "false" == enabled
    assert (
        "PlatformApplicationDisabledException",
        "PlatformApplicationDisabled",
        400,
        "Platform application is disabled",
    ) == refused


@pytest.mark.e2e
def test_empty_tag_list_is_accepted(stack: Stack) -> None:
    """CreateTopic with `Tags=[]` (serialised by boto3 as `Tags=`) creates the topic."""
    sns = client(stack.server)
    name = unique("cat-no-tags")

    topic = sns.create_topic(Name=name, Tags=[])["TopicArn"]

    assert f"{PREFIX}:{name}" == topic
