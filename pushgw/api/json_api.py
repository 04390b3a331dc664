"""
The JSON API (/v1) for app backends that do not use an AWS SDK.

Same operations and rules as the SNS API (both call `Service`), JSON in and out,
bearer-key auth. One route table drives both the router and the OpenAPI
document, so they cannot drift apart.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from pushgw import safejson
from pushgw.api.json_body import (
    JsonValidationError,
    message_attributes,
    optional,
    string_map,
)
from pushgw.config import ApiKey
from pushgw.errors import ApiError
from pushgw.model import Endpoint, PlatformApplication, Subscription, Topic
from pushgw.service import Service
from pushgw.service.types import BatchEntry, Listing, PublishInput

# ARNs sit in the path unencoded; these patterns keep them apart from suffixes.
APP_ARN = r"{arn:arn:[^/]+/[^/]+/[^/]+}"
ENDPOINT_ARN = r"{arn:arn:[^/]+/[^/]+/[^/]+/[^/]+}"
FLAT_ARN = r"{arn:arn:[^/]+}"  # topics and subscriptions have no slashes

Body = Mapping[str, Any]
Handler = Callable[[Service, web.Request, Body], Awaitable[tuple[int, Any]]]


class UnauthorizedError(ApiError):
    """Missing or invalid bearer key."""

    code = "Unauthorized"
    status = 401


class ForbiddenError(ApiError):
    """This key may not perform this action."""

    code = "AuthorizationError"
    status = 403


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    action: str  # the SNS action, for key limits and docs
    handler: Handler
    summary: str
    body: Mapping[str, Any] = field(default_factory=dict)  # JSON-schema properties
    required: Sequence[str] = ()
    query: Sequence[str] = ()


def _app_json(app: PlatformApplication) -> dict[str, Any]:
    return {"platformApplicationArn": app.arn, "attributes": app.public_attributes()}


def _endpoint_json(endpoint: Endpoint) -> dict[str, Any]:
    return {"endpointArn": endpoint.arn, "attributes": endpoint.public_attributes()}


def _topic_json(topic: Topic) -> dict[str, Any]:
    return {"topicArn": topic.arn}


def _sub_json(service: Service, sub: Subscription) -> dict[str, Any]:
    return {
        "subscriptionArn": sub.arn,
        "owner": service.account,
        "protocol": sub.protocol,
        "endpoint": sub.endpoint_arn,
        "topicArn": sub.topic_arn,
    }


def _page(
    listing: Listing[Any], key: str, render: Callable[[Any], Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {key: [render(item) for item in listing.items]}
    if listing.next_token:
        out["nextToken"] = listing.next_token
    return out


def _arn(request: web.Request) -> str:
    return request.match_info["arn"]


# -- handlers ------------------------------------------------------------------
async def create_app(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    arn = await s.create_platform_application(
        name=optional(b, "name", str),
        platform=optional(b, "platform", str),
        attributes=string_map(b, "attributes"),
    )
    return 201, {"platformApplicationArn": arn}


async def list_apps(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    listing = await s.list_platform_applications(r.query.get("nextToken"))
    return 200, _page(listing, "platformApplications", _app_json)


async def get_app(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    attrs = await s.get_platform_application_attributes(_arn(r))
    return 200, {"platformApplicationArn": _arn(r), "attributes": attrs}


async def set_app(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    await s.set_platform_application_attributes(_arn(r), string_map(b, "attributes"))
    return 204, None


async def delete_app(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    await s.delete_platform_application(_arn(r))
    return 204, None


async def create_endpoint(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    arn = await s.create_platform_endpoint(
        app_arn=_arn(r),
        token=optional(b, "token", str),
        custom_user_data=optional(b, "customUserData", str),
        attributes=string_map(b, "attributes"),
    )
    return 201, {"endpointArn": arn}


async def list_endpoints(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    listing = await s.list_endpoints_by_platform_application(
        _arn(r), r.query.get("nextToken")
    )
    return 200, _page(listing, "endpoints", _endpoint_json)


async def get_endpoint(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    return 200, {
        "endpointArn": _arn(r),
        "attributes": await s.get_endpoint_attributes(_arn(r)),
    }


async def set_endpoint(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    await s.set_endpoint_attributes(_arn(r), string_map(b, "attributes"))
    return 204, None


async def delete_endpoint(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    await s.delete_endpoint(_arn(r))
    return 204, None


async def create_topic(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    arn = await s.create_topic(
        name=optional(b, "name", str),
        attributes=string_map(b, "attributes"),
        tags=string_map(b, "tags"),
    )
    return 201, {"topicArn": arn}


async def list_topics(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    return 200, _page(
        await s.list_topics(r.query.get("nextToken")), "topics", _topic_json
    )


async def get_topic(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    return 200, {
        "topicArn": _arn(r),
        "attributes": await s.get_topic_attributes(_arn(r)),
    }


async def set_topic(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    await s.set_topic_attribute_map(arn=_arn(r), attributes=string_map(b, "attributes"))
    return 204, None


async def delete_topic(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    await s.delete_topic(_arn(r))
    return 204, None


async def subscribe(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    arn = await s.subscribe(
        topic_arn=_arn(r),
        protocol=optional(b, "protocol", str) or "application",
        endpoint=optional(b, "endpointArn", str),
        attributes=string_map(b, "attributes"),
    )
    return 201, {"subscriptionArn": arn}


async def list_topic_subs(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    listing = await s.list_subscriptions_by_topic(_arn(r), r.query.get("nextToken"))
    return 200, _page(listing, "subscriptions", lambda x: _sub_json(s, x))


async def list_subs(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    listing = await s.list_subscriptions(r.query.get("nextToken"))
    return 200, _page(listing, "subscriptions", lambda x: _sub_json(s, x))


async def get_sub(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    attrs = await s.get_subscription_attributes(_arn(r))
    return 200, {"subscriptionArn": _arn(r), "attributes": attrs}


async def set_sub(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    await s.set_subscription_attribute_map(
        arn=_arn(r), attributes=string_map(b, "attributes")
    )
    return 204, None


async def unsubscribe(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    await s.unsubscribe(_arn(r))
    return 204, None


async def get_tags(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    return 200, {"tags": await s.list_tags_for_resource(_arn(r))}


async def put_tags(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    await s.tag_resource(_arn(r), string_map(b, "tags"))
    return 204, None


async def delete_tags(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    await s.untag_resource(_arn(r), r.query.getall("key", []))
    return 204, None


def _publish_input(b: Body) -> PublishInput:
    return PublishInput(
        message=optional(b, "message", str),
        topic_arn=optional(b, "topicArn", str),
        target_arn=optional(b, "targetArn", str),
        phone_number=optional(b, "phoneNumber", str),
        subject=optional(b, "subject", str),
        message_structure=optional(b, "messageStructure", str),
        message_attributes=message_attributes(b),
    )


async def publish(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    return 200, {"messageId": await s.publish(_publish_input(b))}


async def publish_batch(s: Service, r: web.Request, b: Body) -> tuple[int, Any]:
    raw = optional(b, "entries", list) or []
    entries = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise JsonValidationError(f"entries[{index}]: expected object")
        entries.append(
            BatchEntry(
                id=optional(item, "id", str),
                message=optional(item, "message", str),
                subject=optional(item, "subject", str),
                message_structure=optional(item, "messageStructure", str),
                message_attributes=message_attributes(item),
            )
        )
    result = await s.publish_batch(
        topic_arn=optional(b, "topicArn", str), entries=entries
    )
    return 200, {
        "successful": [
            {"id": x.id, "messageId": x.message_id} for x in result.successful
        ],
        "failed": [
            {
                "id": x.id,
                "code": x.code,
                "message": x.message,
                "senderFault": x.sender_fault,
            }
            for x in result.failed
        ],
    }


STR = {"type": "string"}
MAP = {"type": "object", "additionalProperties": {"type": "string"}}
ATTRS = {
    "type": "object",
    "additionalProperties": {
        "type": "object",
        "properties": {"dataType": STR, "stringValue": STR, "binaryValue": STR},
    },
}
PUBLISH_BODY = {
    "topicArn": STR,
    "targetArn": STR,
    "message": STR,
    "subject": STR,
    "messageStructure": {"type": "string", "enum": ["json"]},
    "messageAttributes": ATTRS,
}

ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/v1/platform-applications",
        "CreatePlatformApplication",
        create_app,
        "Create a platform application",
        {"name": STR, "platform": STR, "attributes": MAP},
        ("name", "platform", "attributes"),
    ),
    Route(
        "GET",
        "/v1/platform-applications",
        "ListPlatformApplications",
        list_apps,
        "List platform applications",
        query=("nextToken",),
    ),
    Route(
        "GET",
        f"/v1/platform-applications/{APP_ARN}",
        "GetPlatformApplicationAttributes",
        get_app,
        "Get a platform application's attributes",
    ),
    Route(
        "PATCH",
        f"/v1/platform-applications/{APP_ARN}",
        "SetPlatformApplicationAttributes",
        set_app,
        "Set (merge) a platform application's attributes",
        {"attributes": MAP},
        ("attributes",),
    ),
    Route(
        "DELETE",
        f"/v1/platform-applications/{APP_ARN}",
        "DeletePlatformApplication",
        delete_app,
        "Delete a platform application and its endpoints",
    ),
    Route(
        "POST",
        f"/v1/platform-applications/{APP_ARN}/endpoints",
        "CreatePlatformEndpoint",
        create_endpoint,
        "Create (idempotently) a platform endpoint",
        {"token": STR, "customUserData": STR, "attributes": MAP},
        ("token",),
    ),
    Route(
        "GET",
        f"/v1/platform-applications/{APP_ARN}/endpoints",
        "ListEndpointsByPlatformApplication",
        list_endpoints,
        "List an application's endpoints",
        query=("nextToken",),
    ),
    Route(
        "GET",
        f"/v1/endpoints/{ENDPOINT_ARN}",
        "GetEndpointAttributes",
        get_endpoint,
        "Get an endpoint's attributes",
    ),
    Route(
        "PATCH",
        f"/v1/endpoints/{ENDPOINT_ARN}",
        "SetEndpointAttributes",
        set_endpoint,
        "Set (merge) an endpoint's attributes",
        {"attributes": MAP},
        ("attributes",),
    ),
    Route(
        "DELETE",
        f"/v1/endpoints/{ENDPOINT_ARN}",
        "DeleteEndpoint",
        delete_endpoint,
        "Delete an endpoint (idempotent)",
    ),
    Route(
        "POST",
        "/v1/topics",
        "CreateTopic",
        create_topic,
        "Create a topic (idempotent)",
        {"name": STR, "attributes": MAP, "tags": MAP},
        ("name",),
    ),
    Route(
        "GET",
        "/v1/topics",
        "ListTopics",
        list_topics,
        "List topics",
        query=("nextToken",),
    ),
    Route(
        "GET",
        f"/v1/topics/{FLAT_ARN}",
        "GetTopicAttributes",
        get_topic,
        "Get a topic's attributes",
    ),
    Route(
        "PATCH",
        f"/v1/topics/{FLAT_ARN}",
        "SetTopicAttributes",
        set_topic,
        "Set topic attributes",
        {"attributes": MAP},
        ("attributes",),
    ),
    Route(
        "DELETE",
        f"/v1/topics/{FLAT_ARN}",
        "DeleteTopic",
        delete_topic,
        "Delete a topic and its subscriptions",
    ),
    Route(
        "POST",
        f"/v1/topics/{FLAT_ARN}/subscriptions",
        "Subscribe",
        subscribe,
        "Subscribe an endpoint (protocol application)",
        {"endpointArn": STR, "protocol": STR, "attributes": MAP},
        ("endpointArn",),
    ),
    Route(
        "GET",
        f"/v1/topics/{FLAT_ARN}/subscriptions",
        "ListSubscriptionsByTopic",
        list_topic_subs,
        "List a topic's subscriptions",
        query=("nextToken",),
    ),
    Route(
        "GET",
        f"/v1/topics/{FLAT_ARN}/tags",
        "ListTagsForResource",
        get_tags,
        "List a topic's tags",
    ),
    Route(
        "PUT",
        f"/v1/topics/{FLAT_ARN}/tags",
        "TagResource",
        put_tags,
        "Add or replace tags",
        {"tags": MAP},
        ("tags",),
    ),
    Route(
        "DELETE",
        f"/v1/topics/{FLAT_ARN}/tags",
        "UntagResource",
        delete_tags,
        "Remove tags (repeat ?key=)",
        query=("key",),
    ),
    Route(
        "GET",
        "/v1/subscriptions",
        "ListSubscriptions",
        list_subs,
        "List subscriptions",
        query=("nextToken",),
    ),
    Route(
        "GET",
        f"/v1/subscriptions/{FLAT_ARN}",
        "GetSubscriptionAttributes",
        get_sub,
        "Get a subscription's attributes",
    ),
    Route(
        "PATCH",
        f"/v1/subscriptions/{FLAT_ARN}",
        "SetSubscriptionAttributes",
        set_sub,
        "Set subscription attributes",
        {"attributes": MAP},
        ("attributes",),
    ),
    Route(
        "DELETE",
        f"/v1/subscriptions/{FLAT_ARN}",
        "Unsubscribe",
        unsubscribe,
        "Delete a subscription (idempotent)",
    ),
    Route(
        "POST",
        "/v1/publish",
        "Publish",
        publish,
        "Publish to a topic or an endpoint",
        PUBLISH_BODY,
        ("message",),
    ),
    Route(
        "POST",
        "/v1/publish-batch",
        "PublishBatch",
        publish_batch,
        "Publish up to 10 messages to a topic",
        {
            "topicArn": STR,
            "entries": {
                "type": "array",
                "items": {"type": "object", "properties": {"id": STR, **PUBLISH_BODY}},
            },
        },
        ("topicArn", "entries"),
    ),
)


def error_response(
    status: int, code: str, message: str, request_id: str
) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}},
        status=status,
        headers={"x-request-id": request_id},
    )


def _authorize(request: web.Request, keys: Sequence[ApiKey], action: str) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented:
        raise UnauthorizedError("Missing bearer key: send Authorization: Bearer <key>")
    for key in keys:
        if hmac.compare_digest(key.key.encode(), presented.strip().encode()):
            if key.actions is not None and action not in key.actions:
                raise ForbiddenError(f"Key {key.name} may not perform {action}")
            return
    raise UnauthorizedError("Invalid bearer key")


def _make_handler(route: Route, service: Service, keys: Sequence[ApiKey]) -> Any:
    async def handle(request: web.Request) -> web.StreamResponse:
        _authorize(request, keys, route.action)
        body: Body = {}
        if route.method in ("POST", "PUT", "PATCH"):
            raw = await request.read()
            if raw.strip():
                try:
                    parsed = safejson.loads(raw)
                except safejson.JsonInputError:
                    raise JsonValidationError("Body is not valid JSON") from None
                if not isinstance(parsed, dict):
                    raise JsonValidationError("Body must be a JSON object")
                body = parsed
        status, payload = await route.handler(service, request, body)
        if payload is None:
            return web.Response(status=status)
        return web.json_response(payload, status=status)

    return handle


def add_json_routes(
    app: web.Application, *, service: Service, keys: Sequence[ApiKey]
) -> None:
    for route in ROUTES:
        app.router.add_route(
            route.method, route.path, _make_handler(route, service, keys)
        )
