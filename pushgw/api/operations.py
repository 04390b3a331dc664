"""
The one table of operations: the 27 actions of SNS that pushgw serves.

Each entry says, once, what the SNS Query binding (`sns_query`), the JSON binding
(`json_api`) and the OpenAPI document (`openapi`) are derived from: the action
name (also the name key `actions` limits list), its members with their kinds and
the model's required-ness (botocore's SNS model, SNS_API.md §3), the Service
method it calls, its output, and the JSON method, path and success status.

Adding an operation is adding an entry here (and its Service method):
`tests/unit/test_operations.py` checks every entry against botocore's model and
the Service's signatures.

Where the bindings differ, the entry says so: the JSON binding carries resource
ARNs in the path (`json=PATH`), a few members under other names (`json_name`),
sets several topic or subscription attributes at once (`sns=False` members and
`Http.call`), and echoes the path's ARN in Get*Attributes answers (`sns=False`
fields).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pushgw.api.shapes import (
    Context,
    Field,
    Http,
    Kind,
    Operation,
    Param,
    Shape,
    Structure,
    Where,
)
from pushgw.service.types import BatchEntry, PublishInput

S, B, MAP, TAGS = Kind.STRING, Kind.BOOLEAN, Kind.MAP, Kind.TAGS


# -- members used by several operations ------------------------------------------
def _arn(name: str, *, slashes: int = 0) -> Param:
    """A required resource ARN, in the JSON path, passed as `arn`."""
    return Param(
        name,
        S,
        required=True,
        arg="arn",
        json=Where.PATH,
        resource=True,
        slashes=slashes,
    )


APP_ARN = _arn("PlatformApplicationArn", slashes=2)  # app/GCM/name
ENDPOINT_ARN = _arn("EndpointArn", slashes=3)  # endpoint/GCM/name/id
TOPIC_ARN = _arn("TopicArn")
SUBSCRIPTION_ARN = _arn("SubscriptionArn")
RESOURCE_ARN = _arn("ResourceArn")
NEXT_TOKEN = Param("NextToken", S, json=Where.QUERY)
ATTRIBUTES = Param("Attributes", MAP)
# SNS sets one topic or subscription attribute per call; JSON sets a map at once.
ATTRIBUTE_NAME = Param("AttributeName", S, required=True, arg="name", json=None)
ATTRIBUTE_VALUE = Param("AttributeValue", S, arg="value", json=None)
ATTRIBUTE_MAP = Param("Attributes", MAP, required=True, sns=False)

MESSAGE = Param("Message", S, required=True)
# What Publish and each PublishBatch entry share, in SNS Query's reading order.
MESSAGE_REST = (
    Param("Subject", S),
    Param("MessageStructure", S),
    Param("MessageAttributes", Kind.MESSAGE_ATTRIBUTES),
    Param("MessageGroupId", S),
    Param("MessageDeduplicationId", S),
)
BATCH_ENTRY = Structure(
    "PublishBatchRequestEntry",
    (Param("Id", S, required=True), MESSAGE, *MESSAGE_REST),
    BatchEntry,
)


# -- outputs -----------------------------------------------------------------------
def _itself(value: Any, _: Context) -> Any:
    return value


def _scalar(name: str) -> tuple[Field, ...]:
    return (Field(name, S, _itself),)


def _echo(param: str) -> Field:
    """The ARN of the request, echoed in JSON answers only."""
    return Field(param, S, lambda _, ctx: ctx.args[param], sns=False)


def _attributes(arn: str) -> tuple[Field, ...]:
    return (_echo(arn), Field("Attributes", MAP, _itself))


def _listing(name: str, item: Shape) -> tuple[Field, ...]:
    return (
        Field(name, Kind.LIST, lambda page, _: page.items, item=item),
        Field("NextToken", S, lambda page, _: page.next_token, required=False),
    )


def _public(resource: Any, _: Context) -> Any:
    return resource.public_attributes()


APP = Shape(
    "PlatformApplication",
    (
        Field("PlatformApplicationArn", S, lambda app, _: app.arn),
        Field("Attributes", MAP, _public),
    ),
)
ENDPOINT = Shape(
    "Endpoint",
    (
        Field("EndpointArn", S, lambda endpoint, _: endpoint.arn),
        Field("Attributes", MAP, _public),
    ),
)
TOPIC = Shape("Topic", (Field("TopicArn", S, lambda topic, _: topic.arn),))
SUBSCRIPTION = Shape(
    "Subscription",
    (
        # SNS lists a subscription awaiting confirmation without its ARN.
        Field(
            "SubscriptionArn",
            S,
            lambda sub, _: "PendingConfirmation" if sub.pending else sub.arn,
        ),
        Field("Owner", S, lambda _, ctx: ctx.service.account),
        Field("Protocol", S, lambda sub, _: sub.protocol),
        Field("Endpoint", S, lambda sub, _: sub.endpoint_arn),
        Field("TopicArn", S, lambda sub, _: sub.topic_arn),
    ),
)
BATCH_SUCCESS = Shape(
    "PublishBatchResultEntry",
    (
        Field("Id", S, lambda ok, _: ok.id),
        Field("MessageId", S, lambda ok, _: ok.message_id),
    ),
)
BATCH_FAILURE = Shape(
    "BatchResultErrorEntry",
    (
        Field("Id", S, lambda failed, _: failed.id),
        Field("Code", S, lambda failed, _: failed.code),
        Field("Message", S, lambda failed, _: failed.message),
        Field("SenderFault", B, lambda failed, _: failed.sender_fault),
    ),
)
BATCH_RESULT = (
    Field("Successful", Kind.LIST, lambda r, _: r.successful, item=BATCH_SUCCESS),
    Field("Failed", Kind.LIST, lambda r, _: r.failed, item=BATCH_FAILURE),
)

_APPS = "/v1/platform-applications"
_APP = _APPS + "/{platformApplicationArn}"
_ENDPOINT = "/v1/endpoints/{endpointArn}"
_TOPICS = "/v1/topics"
_TOPIC = _TOPICS + "/{topicArn}"
_TAGS = _TOPICS + "/{resourceArn}/tags"
_SUBS = "/v1/subscriptions"
_SUB = _SUBS + "/{subscriptionArn}"

TABLE: tuple[Operation, ...] = (
    # -- platform applications (SNS_API §4) --
    Operation(
        "CreatePlatformApplication",
        "Create a platform application",
        "create_platform_application",
        (
            Param("Name", S, required=True),
            Param("Platform", S, required=True),
            replace(ATTRIBUTES, required=True),
        ),
        _scalar("PlatformApplicationArn"),
        Http("POST", _APPS, 201),
    ),
    Operation(
        "GetPlatformApplicationAttributes",
        "Get a platform application's attributes",
        "get_platform_application_attributes",
        (APP_ARN,),
        _attributes("PlatformApplicationArn"),
        Http("GET", _APP, 200),
    ),
    Operation(
        "SetPlatformApplicationAttributes",
        "Set (merge) a platform application's attributes",
        "set_platform_application_attributes",
        (APP_ARN, replace(ATTRIBUTES, required=True)),
        None,
        Http("PATCH", _APP, 204),
    ),
    Operation(
        "ListPlatformApplications",
        "List platform applications",
        "list_platform_applications",
        (NEXT_TOKEN,),
        _listing("PlatformApplications", APP),
        Http("GET", _APPS, 200),
    ),
    Operation(
        "DeletePlatformApplication",
        "Delete a platform application and its endpoints",
        "delete_platform_application",
        (APP_ARN,),
        None,
        Http("DELETE", _APP, 204),
    ),
    # -- platform endpoints (SNS_API §5) --
    Operation(
        "CreatePlatformEndpoint",
        "Create (idempotently) a platform endpoint",
        "create_platform_endpoint",
        (
            replace(APP_ARN, arg="app_arn"),
            Param("Token", S, required=True),
            Param("CustomUserData", S),
            ATTRIBUTES,
        ),
        _scalar("EndpointArn"),
        Http("POST", _APP + "/endpoints", 201),
    ),
    Operation(
        "GetEndpointAttributes",
        "Get an endpoint's attributes",
        "get_endpoint_attributes",
        (ENDPOINT_ARN,),
        _attributes("EndpointArn"),
        Http("GET", _ENDPOINT, 200),
    ),
    Operation(
        "SetEndpointAttributes",
        "Set (merge) an endpoint's attributes",
        "set_endpoint_attributes",
        (ENDPOINT_ARN, replace(ATTRIBUTES, required=True)),
        None,
        Http("PATCH", _ENDPOINT, 204),
    ),
    Operation(
        "ListEndpointsByPlatformApplication",
        "List an application's endpoints",
        "list_endpoints_by_platform_application",
        (replace(APP_ARN, arg="app_arn"), NEXT_TOKEN),
        _listing("Endpoints", ENDPOINT),
        Http("GET", _APP + "/endpoints", 200),
    ),
    Operation(
        "DeleteEndpoint",
        "Delete an endpoint (idempotent)",
        "delete_endpoint",
        (ENDPOINT_ARN,),
        None,
        Http("DELETE", _ENDPOINT, 204),
    ),
    # -- publish (SNS_API §6) --
    Operation(
        "Publish",
        "Publish to a topic or an endpoint",
        "publish",
        (
            MESSAGE,
            Param("TopicArn", S, resource=True),
            Param("TargetArn", S, resource=True),
            Param("PhoneNumber", S),
            *MESSAGE_REST,
        ),
        _scalar("MessageId"),
        Http("POST", "/v1/publish", 200),
        packs=PublishInput,
    ),
    Operation(
        "PublishBatch",
        "Publish up to 10 messages to a topic",
        "publish_batch",
        (
            Param("TopicArn", S, required=True, resource=True),
            Param(
                "PublishBatchRequestEntries",
                Kind.LIST,
                required=True,
                arg="entries",
                json_name="entries",
                members=BATCH_ENTRY,
            ),
        ),
        BATCH_RESULT,
        Http("POST", "/v1/publish-batch", 200),
    ),
    # -- topics, subscriptions, tags (SNS_API §7) --
    Operation(
        "CreateTopic",
        "Create a topic (idempotent)",
        "create_topic",
        (Param("Name", S, required=True), ATTRIBUTES, Param("Tags", TAGS)),
        _scalar("TopicArn"),
        Http("POST", _TOPICS, 201),
    ),
    Operation(
        "DeleteTopic",
        "Delete a topic and its subscriptions",
        "delete_topic",
        (TOPIC_ARN,),
        None,
        Http("DELETE", _TOPIC, 204),
    ),
    Operation(
        "GetTopicAttributes",
        "Get a topic's attributes",
        "get_topic_attributes",
        (TOPIC_ARN,),
        _attributes("TopicArn"),
        Http("GET", _TOPIC, 200),
    ),
    Operation(
        "SetTopicAttributes",
        "Set (merge) topic attributes, all or none",
        "set_topic_attributes",
        (TOPIC_ARN, ATTRIBUTE_NAME, ATTRIBUTE_VALUE, ATTRIBUTE_MAP),
        None,
        Http("PATCH", _TOPIC, 204, call="set_topic_attribute_map"),
    ),
    Operation(
        "ListTopics",
        "List topics",
        "list_topics",
        (NEXT_TOKEN,),
        _listing("Topics", TOPIC),
        Http("GET", _TOPICS, 200),
    ),
    Operation(
        "Subscribe",
        "Subscribe an endpoint (application) or a URL (http, https: pending until"
        " confirmed)",
        "subscribe",
        (
            # Read first, as SNS Query always has.
            Param("ReturnSubscriptionArn", B),
            replace(TOPIC_ARN, arg="topic_arn"),
            Param("Protocol", S, required=True, json_default="application"),
            Param("Endpoint", S, json_name="endpointArn"),
            ATTRIBUTES,
        ),
        _scalar("SubscriptionArn"),
        Http("POST", _TOPIC + "/subscriptions", 201),
    ),
    Operation(
        "ConfirmSubscription",
        "Confirm an http/https subscription with the Token it was sent",
        "confirm_subscription",
        (
            replace(TOPIC_ARN, arg="topic_arn"),
            Param("Token", S, required=True),
            Param("AuthenticateOnUnsubscribe", S),
        ),
        _scalar("SubscriptionArn"),
        Http("POST", _TOPIC + "/confirmations", 200),
        # SNS: a signature is needed only for AuthenticateOnUnsubscribe=true.
        anonymous=True,
    ),
    Operation(
        "Unsubscribe",
        "Delete a subscription (idempotent)",
        "unsubscribe",
        (SUBSCRIPTION_ARN,),
        None,
        Http("DELETE", _SUB, 204),
        # The UnsubscribeURL of a notification needs no signature unless the
        # subscription was confirmed with AuthenticateOnUnsubscribe=true.
        anonymous=True,
    ),
    Operation(
        "ListSubscriptions",
        "List subscriptions",
        "list_subscriptions",
        (NEXT_TOKEN,),
        _listing("Subscriptions", SUBSCRIPTION),
        Http("GET", _SUBS, 200),
    ),
    Operation(
        "ListSubscriptionsByTopic",
        "List a topic's subscriptions",
        "list_subscriptions_by_topic",
        (replace(TOPIC_ARN, arg="topic_arn"), NEXT_TOKEN),
        _listing("Subscriptions", SUBSCRIPTION),
        Http("GET", _TOPIC + "/subscriptions", 200),
    ),
    Operation(
        "GetSubscriptionAttributes",
        "Get a subscription's attributes",
        "get_subscription_attributes",
        (SUBSCRIPTION_ARN,),
        _attributes("SubscriptionArn"),
        Http("GET", _SUB, 200),
    ),
    Operation(
        "SetSubscriptionAttributes",
        "Set (merge) subscription attributes, all or none",
        "set_subscription_attributes",
        (SUBSCRIPTION_ARN, ATTRIBUTE_NAME, ATTRIBUTE_VALUE, ATTRIBUTE_MAP),
        None,
        Http("PATCH", _SUB, 204, call="set_subscription_attribute_map"),
    ),
    Operation(
        "TagResource",
        "Add or replace a topic's tags",
        "tag_resource",
        (RESOURCE_ARN, Param("Tags", TAGS, required=True)),
        (),  # an empty Result element
        Http("PUT", _TAGS, 204),
    ),
    Operation(
        "UntagResource",
        "Remove a topic's tags (repeat ?key=)",
        "untag_resource",
        (
            RESOURCE_ARN,
            Param(
                "TagKeys",
                Kind.STRINGS,
                required=True,
                arg="keys",
                json=Where.QUERY,
                json_name="key",
            ),
        ),
        (),
        Http("DELETE", _TAGS, 204),
    ),
    Operation(
        "ListTagsForResource",
        "List a topic's tags",
        "list_tags_for_resource",
        (RESOURCE_ARN,),
        (Field("Tags", TAGS, _itself),),
        Http("GET", _TAGS, 200),
    ),
)

OPERATIONS: Mapping[str, Operation] = {op.name: op for op in TABLE}
