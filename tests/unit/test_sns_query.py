"""
The SNS Query protocol against botocore itself: requests serialised by botocore's
QuerySerializer reach the service as the right arguments, and rendered XML parses
with botocore's QueryParser into the modelled output shapes.
"""

from __future__ import annotations

import base64
from typing import Any, cast
from xml.etree import ElementTree

import botocore.session
import pytest
from botocore.awsrequest import AWSRequest
from botocore.parsers import QueryParser
from botocore.serialize import create_serializer

from pushgw.api import sns_xml
from pushgw.api.operations import OPERATIONS
from pushgw.api.shapes import Binding, Context, invoke
from pushgw.api.sns_parse import (
    Params,
    decode_form,
    parse_query,
    read_members,
)
from pushgw.errors import (
    ApiError,
    InvalidQueryError,
    MissingActionError,
    NotFoundApiError,
    ValidationError,
)
from pushgw.model import Endpoint, Platform, PlatformApplication, Subscription, Topic
from pushgw.service import Service
from pushgw.service.types import (
    BatchEntry,
    BatchFailure,
    BatchResult,
    BatchSuccess,
    Listing,
    MessageAttributeInput,
    PublishInput,
)

MODEL = botocore.session.get_session().get_service_model("sns")
SERIALIZER = create_serializer("query")
ACCOUNT = "123456789012"
APP = "arn:aws:sns:us-east-1:123456789012:app/GCM/myapp"
ENDPOINT = "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/myapp/5e3e9847"
TOPIC = "arn:aws:sns:us-east-1:123456789012:news"
SUB = f"{TOPIC}:0f8c5c2a"
HOSTILE = "<b>&amp; \"quoted\" 'x' + = % \t\r\n é €</b>]]>"


class Recorder:
    """A stand-in Service that records each call and returns a canned value."""

    account = ACCOUNT

    def __init__(self, returns: Any = None) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.returns = returns

    def __getattr__(self, name: str) -> Any:
        async def method(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            return self.returns

        return method


def wire(action: str, params: dict[str, Any]) -> bytes:
    """The form body botocore sends for `action`."""
    request = SERIALIZER.serialize_to_request(params, MODEL.operation_model(action))
    prepared = AWSRequest(
        method="POST", url="http://127.0.0.1/", data=request["body"]
    ).prepare()
    body = prepared.body
    return body if isinstance(body, bytes) else body.encode()


async def dispatch(action: str, params: dict[str, Any], returns: Any = None) -> Any:
    """Serialise with botocore, parse, call a Recorder; return its one call."""
    name, parsed = parse_query(decode_form(wire(action, params)))
    recorder = Recorder(returns)
    op = OPERATIONS[name]
    args = read_members(parsed, op.params_for(Binding.SNS))
    await invoke(op, Binding.SNS, cast(Service, recorder), args)

    assert action == name
    assert 1 == len(recorder.calls)
    return recorder.calls[0]


def render(action: str, value: Any) -> str | None:
    """The `<{action}Result>` content the SNS binding renders for `value`."""
    ctx = Context(cast(Service, Recorder()), {})
    return sns_xml.result(OPERATIONS[action].output, value, ctx)


def parse_xml(action: str, body: str, status: int = 200) -> dict[str, Any]:
    """Parse a response with botocore's QueryParser and the SNS output shape."""
    shape = MODEL.operation_model(action).output_shape
    parsed: dict[str, Any] = QueryParser().parse(
        {"body": body.encode(), "headers": {}, "status_code": status}, shape
    )
    return parsed


REQUESTS: list[
    tuple[str, dict[str, Any], tuple[str, tuple[Any, ...], dict[str, Any]]]
] = [
    (
        "CreatePlatformApplication",
        {
            "Name": "myapp",
            "Platform": "GCM",
            "Attributes": {"PlatformCredential": HOSTILE},
        },
        (
            "create_platform_application",
            (),
            {
                "name": "myapp",
                "platform": "GCM",
                "attributes": {"PlatformCredential": HOSTILE},
            },
        ),
    ),
    (
        "GetPlatformApplicationAttributes",
        {"PlatformApplicationArn": APP},
        ("get_platform_application_attributes", (), {"arn": APP}),
    ),
    (
        "SetPlatformApplicationAttributes",
        {"PlatformApplicationArn": APP, "Attributes": {"A": "1", "B": ""}},
        (
            "set_platform_application_attributes",
            (),
            {"arn": APP, "attributes": {"A": "1", "B": ""}},
        ),
    ),
    (
        "SetPlatformApplicationAttributes",
        {"PlatformApplicationArn": APP, "Attributes": {}},
        ("set_platform_application_attributes", (), {"arn": APP, "attributes": None}),
    ),
    (
        "ListPlatformApplications",
        {"NextToken": "abc=="},
        ("list_platform_applications", (), {"next_token": "abc=="}),
    ),
    (
        "ListPlatformApplications",
        {},
        ("list_platform_applications", (), {"next_token": None}),
    ),
    (
        "DeletePlatformApplication",
        {"PlatformApplicationArn": APP},
        ("delete_platform_application", (), {"arn": APP}),
    ),
    (
        "CreatePlatformEndpoint",
        {
            "PlatformApplicationArn": APP,
            "Token": "tok en",
            "CustomUserData": "u",
            "Attributes": {"Enabled": "false"},
        },
        (
            "create_platform_endpoint",
            (),
            {
                "app_arn": APP,
                "token": "tok en",
                "custom_user_data": "u",
                "attributes": {"Enabled": "false"},
            },
        ),
    ),
    (
        "CreatePlatformEndpoint",
        {"PlatformApplicationArn": APP, "Token": "t"},
        (
            "create_platform_endpoint",
            (),
            {
                "app_arn": APP,
                "token": "t",
                "custom_user_data": None,
                "attributes": None,
            },
        ),
    ),
    (
        "GetEndpointAttributes",
        {"EndpointArn": ENDPOINT},
        ("get_endpoint_attributes", (), {"arn": ENDPOINT}),
    ),
    (
        "SetEndpointAttributes",
        {"EndpointArn": ENDPOINT, "Attributes": {"CustomUserData": HOSTILE}},
        (
            "set_endpoint_attributes",
            (),
            {"arn": ENDPOINT, "attributes": {"CustomUserData": HOSTILE}},
        ),
    ),
    (
        "ListEndpointsByPlatformApplication",
        {"PlatformApplicationArn": APP, "NextToken": "n"},
        (
            "list_endpoints_by_platform_application",
            (),
            {"app_arn": APP, "next_token": "n"},
        ),
    ),
    (
        "DeleteEndpoint",
        {"EndpointArn": ENDPOINT},
        ("delete_endpoint", (), {"arn": ENDPOINT}),
    ),
    (
        "CreateTopic",
        {
            "Name": "news",
            "Attributes": {"DisplayName": "News"},
            "Tags": [{"Key": "team", "Value": "a"}, {"Key": "env", "Value": ""}],
        },
        (
            "create_topic",
            (),
            {
                "name": "news",
                "attributes": {"DisplayName": "News"},
                "tags": {"team": "a", "env": ""},
            },
        ),
    ),
    (
        "CreateTopic",
        {"Name": "news"},
        ("create_topic", (), {"name": "news", "attributes": None, "tags": None}),
    ),
    ("DeleteTopic", {"TopicArn": TOPIC}, ("delete_topic", (), {"arn": TOPIC})),
    (
        "GetTopicAttributes",
        {"TopicArn": TOPIC},
        ("get_topic_attributes", (), {"arn": TOPIC}),
    ),
    (
        "SetTopicAttributes",
        {"TopicArn": TOPIC, "AttributeName": "DisplayName", "AttributeValue": "x"},
        (
            "set_topic_attributes",
            (),
            {"arn": TOPIC, "name": "DisplayName", "value": "x"},
        ),
    ),
    ("ListTopics", {}, ("list_topics", (), {"next_token": None})),
    (
        "Subscribe",
        {
            "TopicArn": TOPIC,
            "Protocol": "application",
            "Endpoint": ENDPOINT,
            "Attributes": {"RawMessageDelivery": "true"},
            "ReturnSubscriptionArn": True,
        },
        (
            "subscribe",
            (),
            {
                "topic_arn": TOPIC,
                "protocol": "application",
                "endpoint": ENDPOINT,
                "attributes": {"RawMessageDelivery": "true"},
                "return_subscription_arn": True,
            },
        ),
    ),
    (
        "ConfirmSubscription",
        {"TopicArn": TOPIC, "Token": "t0k", "AuthenticateOnUnsubscribe": "true"},
        (
            "confirm_subscription",
            (),
            {
                "topic_arn": TOPIC,
                "token": "t0k",
                "authenticate_on_unsubscribe": "true",
                "authenticated": True,
            },
        ),
    ),
    (
        "Unsubscribe",
        {"SubscriptionArn": SUB},
        ("unsubscribe", (), {"arn": SUB, "authenticated": True}),
    ),
    (
        "ListSubscriptions",
        {"NextToken": "t"},
        ("list_subscriptions", (), {"next_token": "t"}),
    ),
    (
        "ListSubscriptionsByTopic",
        {"TopicArn": TOPIC},
        (
            "list_subscriptions_by_topic",
            (),
            {"topic_arn": TOPIC, "next_token": None},
        ),
    ),
    (
        "GetSubscriptionAttributes",
        {"SubscriptionArn": SUB},
        ("get_subscription_attributes", (), {"arn": SUB}),
    ),
    (
        "SetSubscriptionAttributes",
        {
            "SubscriptionArn": SUB,
            "AttributeName": "FilterPolicy",
            "AttributeValue": "{}",
        },
        (
            "set_subscription_attributes",
            (),
            {"arn": SUB, "name": "FilterPolicy", "value": "{}"},
        ),
    ),
    (
        "TagResource",
        {"ResourceArn": TOPIC, "Tags": [{"Key": "k", "Value": "v"}]},
        ("tag_resource", (), {"arn": TOPIC, "tags": {"k": "v"}}),
    ),
    (
        "UntagResource",
        {"ResourceArn": TOPIC, "TagKeys": ["a", "b"]},
        ("untag_resource", (), {"arn": TOPIC, "keys": ["a", "b"]}),
    ),
    (
        "ListTagsForResource",
        {"ResourceArn": TOPIC},
        ("list_tags_for_resource", (), {"arn": TOPIC}),
    ),
]


def test_every_operation_is_in_the_table() -> None:
    """The table covers exactly the 26 mobile-push operations of the brief and
    ConfirmSubscription (HTTP/HTTPS subscriptions)."""
    expected = {
        "CreatePlatformApplication",
        "GetPlatformApplicationAttributes",
        "SetPlatformApplicationAttributes",
        "ListPlatformApplications",
        "DeletePlatformApplication",
        "CreatePlatformEndpoint",
        "GetEndpointAttributes",
        "SetEndpointAttributes",
        "ListEndpointsByPlatformApplication",
        "DeleteEndpoint",
        "Publish",
        "PublishBatch",
        "CreateTopic",
        "DeleteTopic",
        "GetTopicAttributes",
        "SetTopicAttributes",
        "ListTopics",
        "Subscribe",
        "ConfirmSubscription",
        "Unsubscribe",
        "ListSubscriptions",
        "ListSubscriptionsByTopic",
        "GetSubscriptionAttributes",
        "SetSubscriptionAttributes",
        "TagResource",
        "UntagResource",
        "ListTagsForResource",
    }

    assert expected == set(OPERATIONS)
    assert expected <= set(MODEL.operation_names)


@pytest.mark.parametrize(("action", "params", "expected"), REQUESTS)
async def test_botocore_request_reaches_the_service(
    action: str, params: dict[str, Any], expected: Any
) -> None:
    """Each botocore-serialised request calls the service with the same values."""
    call = await dispatch(action, params)

    assert expected == call


async def test_publish_with_message_attributes() -> None:
    """Publish maps every member, String and base64 Binary attributes included."""
    params = {
        "TargetArn": ENDPOINT,
        "Message": '{"GCM": "{}"}',
        "MessageStructure": "json",
        "Subject": "s",
        "MessageAttributes": {
            "AWS.SNS.MOBILE.FCM.TTL": {"DataType": "Number", "StringValue": "60"},
            "bin": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
        },
        "MessageGroupId": "g",
        "MessageDeduplicationId": "d",
    }

    call = await dispatch("Publish", params)

    expected = PublishInput(
        message='{"GCM": "{}"}',
        target_arn=ENDPOINT,
        subject="s",
        message_structure="json",
        message_attributes={
            "AWS.SNS.MOBILE.FCM.TTL": MessageAttributeInput("Number", "60"),
            "bin": MessageAttributeInput("Binary", binary_value=b"\x00\x01\xff"),
        },
        message_group_id="g",
        message_deduplication_id="d",
    )
    assert ("publish", (expected,), {}) == call


async def test_publish_batch_entries_keep_their_order() -> None:
    """PublishBatch entries arrive in member order with their attributes."""
    entries: list[dict[str, Any]] = [
        {"Id": f"e{n}", "Message": f"m{n}", "Subject": "s"} for n in range(1, 12)
    ]
    entries[0]["MessageAttributes"] = {"a": {"DataType": "String", "StringValue": "v"}}

    name, args, kwargs = await dispatch(
        "PublishBatch", {"TopicArn": TOPIC, "PublishBatchRequestEntries": entries}
    )

    assert ("publish_batch", ()) == (name, args)
    assert TOPIC == kwargs["topic_arn"]
    assert [f"e{n}" for n in range(1, 12)] == [e.id for e in kwargs["entries"]]
    assert (
        BatchEntry(
            id="e1",
            message="m1",
            subject="s",
            message_attributes={"a": MessageAttributeInput("String", "v")},
        )
        == kwargs["entries"][0]
    )


# -- rendering ---------------------------------------------------------------------
APP_ITEM = PlatformApplication(
    arn=APP, name="myapp", platform=Platform.GCM, principal="", credential="secret"
)
ENDPOINT_ITEM = Endpoint(
    arn=ENDPOINT, app_arn=APP, token="tok", custom_user_data=HOSTILE
)
SUB_ITEM = Subscription(arn=SUB, topic_arn=TOPIC, endpoint_arn=ENDPOINT)

RESULTS: list[tuple[str, Any, dict[str, Any]]] = [
    ("CreatePlatformApplication", APP, {"PlatformApplicationArn": APP}),
    ("CreatePlatformEndpoint", ENDPOINT, {"EndpointArn": ENDPOINT}),
    ("CreateTopic", TOPIC, {"TopicArn": TOPIC}),
    ("Subscribe", SUB, {"SubscriptionArn": SUB}),
    ("Publish", "567910cd", {"MessageId": "567910cd"}),
    (
        "GetEndpointAttributes",
        {"Enabled": "true", "CustomUserData": HOSTILE, "Token": "t"},
        {"Attributes": {"Enabled": "true", "CustomUserData": HOSTILE, "Token": "t"}},
    ),
    ("GetTopicAttributes", {}, {"Attributes": {}}),
    (
        "GetPlatformApplicationAttributes",
        {"Enabled": "false"},
        {"Attributes": {"Enabled": "false"}},
    ),
    (
        "GetSubscriptionAttributes",
        {"Protocol": "application"},
        {"Attributes": {"Protocol": "application"}},
    ),
    (
        "ListPlatformApplications",
        Listing([APP_ITEM], next_token="next+/="),
        {
            "PlatformApplications": [
                {"PlatformApplicationArn": APP, "Attributes": {"Enabled": "true"}}
            ],
            "NextToken": "next+/=",
        },
    ),
    ("ListPlatformApplications", Listing([]), {"PlatformApplications": []}),
    (
        "ListEndpointsByPlatformApplication",
        Listing([ENDPOINT_ITEM]),
        {
            "Endpoints": [
                {
                    "EndpointArn": ENDPOINT,
                    "Attributes": {
                        "Enabled": "true",
                        "Token": "tok",
                        "CustomUserData": HOSTILE,
                    },
                }
            ]
        },
    ),
    ("ListEndpointsByPlatformApplication", Listing([]), {"Endpoints": []}),
    (
        "ListTopics",
        Listing([Topic(arn=TOPIC, name="news")], "n"),
        {"Topics": [{"TopicArn": TOPIC}], "NextToken": "n"},
    ),
    ("ListTopics", Listing([]), {"Topics": []}),
    (
        "ListSubscriptionsByTopic",
        Listing([SUB_ITEM]),
        {
            "Subscriptions": [
                {
                    "SubscriptionArn": SUB,
                    "Owner": ACCOUNT,
                    "Protocol": "application",
                    "Endpoint": ENDPOINT,
                    "TopicArn": TOPIC,
                }
            ]
        },
    ),
    ("ListSubscriptions", Listing([]), {"Subscriptions": []}),
    (
        "PublishBatch",
        BatchResult(
            successful=[BatchSuccess("1", "m-1")],
            failed=[
                BatchFailure(
                    "2", "InvalidParameter", "Invalid parameter: Empty message", True
                )
            ],
        ),
        {
            "Successful": [{"Id": "1", "MessageId": "m-1"}],
            "Failed": [
                {
                    "Id": "2",
                    "Code": "InvalidParameter",
                    "Message": "Invalid parameter: Empty message",
                    "SenderFault": True,
                }
            ],
        },
    ),
    ("PublishBatch", BatchResult([], []), {"Successful": [], "Failed": []}),
    (
        "ListTagsForResource",
        {"a": "1", "b": HOSTILE},
        {"Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": HOSTILE}]},
    ),
    ("ListTagsForResource", {}, {"Tags": []}),
    ("TagResource", None, {}),
    ("UntagResource", None, {}),
    ("SetEndpointAttributes", None, {}),
    ("SetPlatformApplicationAttributes", None, {}),
    ("SetTopicAttributes", None, {}),
    ("SetSubscriptionAttributes", None, {}),
    ("DeleteEndpoint", None, {}),
    ("DeletePlatformApplication", None, {}),
    ("DeleteTopic", None, {}),
    ("Unsubscribe", None, {}),
]


@pytest.mark.parametrize(("action", "value", "expected"), RESULTS)
def test_rendered_result_parses_with_botocore(
    action: str, value: Any, expected: dict[str, Any]
) -> None:
    """Each result renders to XML that botocore parses into the modelled shape."""
    result = render(action, value)
    body = sns_xml.success(action, result, "req-1")

    parsed = parse_xml(action, body)

    assert "req-1" == parsed.pop("ResponseMetadata")["RequestId"]
    assert expected == parsed


def test_operations_without_output_have_only_response_metadata() -> None:
    """Set*/Delete*/Unsubscribe responses carry no Result element (SNS §1.3)."""
    body = sns_xml.success("DeleteEndpoint", None, "r")

    expected = (
        '<DeleteEndpointResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
        "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"
        "</DeleteEndpointResponse>"
    )
    assert expected == body


def test_empty_list_is_an_empty_element() -> None:
    """An empty list is `<Endpoints/>` and there is no NextToken at the end."""
    result = render("ListEndpointsByPlatformApplication", Listing([]))

    assert "<Endpoints/>" == result


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (NotFoundApiError("Endpoint does not exist"), 404, "Sender"),
        (ValidationError(HOSTILE), 400, "Sender"),
        (ApiError("Internal error", code="InternalError"), 500, "Receiver"),
    ],
)
def test_error_parses_with_botocore(error: ApiError, status: int, kind: str) -> None:
    """ErrorResponse parses into botocore's Error dict with Type Sender/Receiver."""
    body = sns_xml.error(
        code=error.code,
        message=error.message,
        sender_fault=error.sender_fault,
        request_id="rid",
    )

    parsed = parse_xml("GetEndpointAttributes", body, status)

    assert {"Type": kind, "Code": error.code, "Message": error.message} == parsed[
        "Error"
    ]
    assert "rid" == parsed["ResponseMetadata"]["RequestId"]
    assert status == error.status


def test_unrepresentable_characters_are_replaced_in_xml() -> None:
    """Characters XML 1.0 cannot carry become U+FFFD so the document stays well-formed."""
    body = sns_xml.success(
        "Publish", sns_xml.element("MessageId", "a\x00b\x1fc\ud800"), "r"
    )

    root = ElementTree.fromstring(body)

    assert "a\ufffdb\ufffdc\ufffd" == root[0][0].text


# -- hostile input to the parser -----------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        b"Action=Publish&Message=%zz",
        b"Action=Publish&Message=%4",
        b"Action=Publish&Message=%",
        b"Action=Publish&Message=%ff%fe",
        b"Action=Publish&Message=\xff",
        b"Action=Publish&=x",
    ],
)
def test_bad_encoding_is_refused(raw: bytes) -> None:
    """Bad percent-encoding, non-UTF-8 or empty names give InvalidQueryParameter."""
    with pytest.raises(InvalidQueryError) as info:
        parse_query(decode_form(raw))

    assert (400, "InvalidQueryParameter") == (info.value.status, info.value.code)


@pytest.mark.parametrize(
    "raw",
    [
        b"Action=Publish&Message=a&Message=b",
        b"Action=Publish&Action=CreateTopic",
        b"Action=Publish&Message=a&Message.x=b",
        b"Action=Publish&Message.x=b&Message=a",
        b"Action=SetEndpointAttributes&Attributes=x",
        b"Action=Publish&Message=a%00b",
        b"Action=Publish&Message..x=a",
        b"Action=Publish&Message.=a",
    ],
)
def test_ambiguous_input_is_refused(raw: bytes) -> None:
    """Duplicate names, value/structure clashes and control characters are refused."""
    with pytest.raises(InvalidQueryError):
        _, params = parse_query(decode_form(raw))
        params.mapping("Attributes")


@pytest.mark.parametrize(
    "raw",
    [
        b"Attributes.entry.0.key=a&Attributes.entry.0.value=b",
        b"Attributes.entry.x.key=a&Attributes.entry.x.value=b",
        b"Attributes.entry.1234567.key=a&Attributes.entry.1234567.value=b",
        b"Attributes.entry.1.key=a&Attributes.entry.1.value=b"
        b"&Attributes.entry.01.key=c&Attributes.entry.01.value=d",
        b"Attributes.entry.1.key=a&Attributes.entry.1.value=b"
        b"&Attributes.entry.2.key=a&Attributes.entry.2.value=c",
        b"Attributes.member.1=a",
        b"Attributes.entry.1=a",
        b"Attributes.entry=a",
        b"Attributes.entry.1.key=a&Attributes.entry.1.value=b&Attributes.other=c",
    ],
)
def test_malformed_map_is_refused(raw: bytes) -> None:
    """Maps need `entry.N` with N a positive number and distinct keys."""
    _, params = parse_query(decode_form(b"Action=SetEndpointAttributes&" + raw))

    with pytest.raises(InvalidQueryError):
        params.mapping("Attributes")


def test_map_entry_without_value_is_a_validation_error() -> None:
    """A map entry with a key and no value gives ValidationError."""
    _, params = parse_query(decode_form(b"Action=X&Attributes.entry.1.key=a"))

    with pytest.raises(ValidationError):
        params.mapping("Attributes")


def test_map_positions_order_entries_numerically() -> None:
    """Entries are ordered by number (2 before 10), not as strings."""
    raw = (
        b"Action=X&Attributes.entry.10.key=b&Attributes.entry.10.value=2"
        b"&Attributes.entry.2.key=a&Attributes.entry.2.value=1"
    )
    _, params = parse_query(decode_form(raw))

    assert ["a", "b"] == list(params.mapping("Attributes") or {})


def test_plus_is_a_space_and_percent_2b_a_plus() -> None:
    """Form decoding: `+` is a space, `%2B` a plus sign."""
    _, params = parse_query(decode_form(b"Action=Publish&Message=a+b%2Bc"))

    assert "a b+c" == params.string("Message")


def test_invalid_base64_binary_value_is_refused() -> None:
    """A BinaryValue that is not base64 gives ParameterValueInvalid."""
    raw = (
        b"Action=Publish&MessageAttributes.entry.1.Name=b"
        b"&MessageAttributes.entry.1.Value.DataType=Binary"
        b"&MessageAttributes.entry.1.Value.BinaryValue=not*base64"
    )
    _, params = parse_query(decode_form(raw))

    with pytest.raises(ApiError) as info:
        params.message_attributes("MessageAttributes")

    assert ("ParameterValueInvalid", 400) == (info.value.code, info.value.status)


def test_valid_base64_binary_value_is_decoded() -> None:
    """A base64 BinaryValue arrives as bytes."""
    value = base64.b64encode(b"\x00\x01").decode()
    raw = (
        "Action=Publish&MessageAttributes.entry.1.Name=b"
        "&MessageAttributes.entry.1.Value.DataType=Binary"
        f"&MessageAttributes.entry.1.Value.BinaryValue={value}"
    )
    _, params = parse_query(decode_form(raw.encode()))

    expected = {"b": MessageAttributeInput("Binary", binary_value=b"\x00\x01")}
    assert expected == params.message_attributes("MessageAttributes")


def test_missing_action_is_refused() -> None:
    """A request without Action gives MissingAction (400)."""
    with pytest.raises(MissingActionError):
        parse_query(decode_form(b"Version=2010-03-31"))


def test_auth_parameters_are_not_operation_input() -> None:
    """Presigned X-Amz-* parameters are dropped before parsing."""
    name, params = parse_query([("Action", "ListTopics"), ("X-Amz-Signature", "x")])

    assert "ListTopics" == name
    assert params.string("X-Amz-Signature") is None


def test_bad_boolean_is_a_validation_error() -> None:
    """A boolean member must be true or false."""
    _, params = parse_query([("Action", "Subscribe"), ("ReturnSubscriptionArn", "yes")])

    with pytest.raises(ValidationError):
        params.boolean("ReturnSubscriptionArn")


def test_params_type_is_exported() -> None:
    """Params is the public type the action table reads from."""
    assert isinstance(parse_query([("Action", "X")])[1], Params)
