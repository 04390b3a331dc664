"""
The SNS Query API (`Version=2010-03-31`): form or query string in, XML out.

`make_sns_handler` returns one aiohttp handler for `POST /` (form body, what boto3
and the AWS CLI send) and signed `GET /` (query string). Per request it reads the
body under a hard size limit, verifies SigV4, parses the parameters, checks the
key's action set, calls the `Service` and renders XML (`sns_xml`). Every failure
is an SNS `ErrorResponse`; an unexpected exception is logged and answered with a
500 `InternalError` that carries no detail.

The operations live in one table, `ACTIONS`: action name → how to call the service
with the parsed parameters and how to render its result.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from pushgw.api import sns_xml as xml
from pushgw.api.sigv4 import verify_sigv4
from pushgw.api.sns_parse import Params, decode_form, malformed, parse_query
from pushgw.config import AccessKey
from pushgw.errors import (
    ApiError,
    AuthorizationError,
    InternalError,
    InvalidActionError,
    ServiceUnavailableError,
    StoreUnavailableError,
)
from pushgw.model import Endpoint, PlatformApplication, Subscription, Topic
from pushgw.service import Service
from pushgw.service.base import ForeignAccountError
from pushgw.service.types import BatchEntry, BatchResult, Listing, PublishInput

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.Response]]

log = structlog.get_logger(__name__)

READ_CHUNK = 65_536  # bytes per read while enforcing the body limit
FORM_TYPE = "application/x-www-form-urlencoded"


class RequestTooLargeError(ApiError):
    """The request body is too large."""

    code = "RequestEntityTooLarge"
    status = 413


@dataclass(frozen=True, slots=True)
class Action(Generic[T]):
    """One SNS operation: call the service, then render the `<XResult>` body."""

    call: Callable[[Service, Params], Awaitable[T]]
    render: Callable[[T, Service], str | None]
    # Parameters naming the resource, for AuthorizationError (first present wins).
    resource: tuple[str, ...] = ()


# -- renderers -----------------------------------------------------------------
def _no_output(_: object, __: Service) -> None:
    return None


def _empty_output(_: object, __: Service) -> str:
    return ""


def _scalar(name: str) -> Callable[[str, Service], str]:
    return lambda value, _: xml.element(name, value)


def _attributes(values: dict[str, str], _: Service) -> str:
    return xml.attributes(values)


def _tags(values: dict[str, str], _: Service) -> str:
    return xml.tags(values)


def _listing(
    name: str, member: Callable[[Any, Service], str]
) -> Callable[[Listing[Any], Service], str]:
    def render(page: Listing[Any], svc: Service) -> str:
        items = xml.members(name, (member(item, svc) for item in page.items))
        return items + xml.element("NextToken", page.next_token)

    return render


def _app(app: PlatformApplication, _: Service) -> str:
    return xml.element("PlatformApplicationArn", app.arn) + xml.attributes(
        app.public_attributes()
    )


def _endpoint(endpoint: Endpoint, _: Service) -> str:
    return xml.element("EndpointArn", endpoint.arn) + xml.attributes(
        endpoint.public_attributes()
    )


def _topic(topic: Topic, _: Service) -> str:
    return xml.element("TopicArn", topic.arn)


def _subscription(sub: Subscription, svc: Service) -> str:
    return "".join(
        (
            xml.element("SubscriptionArn", sub.arn),
            xml.element("Owner", svc.account),
            xml.element("Protocol", sub.protocol),
            xml.element("Endpoint", sub.endpoint_arn),
            xml.element("TopicArn", sub.topic_arn),
        )
    )


def _batch(result: BatchResult, _: Service) -> str:
    ok = (
        xml.element("Id", s.id) + xml.element("MessageId", s.message_id)
        for s in result.successful
    )
    failed = (
        xml.element("Id", f.id)
        + xml.element("Code", f.code)
        + xml.element("Message", f.message)
        + xml.element("SenderFault", "true" if f.sender_fault else "false")
        for f in result.failed
    )
    return xml.members("Successful", ok) + xml.members("Failed", failed)


# -- request readers -------------------------------------------------------------
def _publish_input(p: Params) -> PublishInput:
    return PublishInput(
        message=p.string("Message"),
        topic_arn=p.string("TopicArn"),
        target_arn=p.string("TargetArn"),
        phone_number=p.string("PhoneNumber"),
        subject=p.string("Subject"),
        message_structure=p.string("MessageStructure"),
        message_attributes=p.message_attributes("MessageAttributes"),
        message_group_id=p.string("MessageGroupId"),
        message_deduplication_id=p.string("MessageDeduplicationId"),
    )


def _batch_entries(p: Params) -> list[BatchEntry]:
    return [
        BatchEntry(
            id=e.string("Id"),
            message=e.string("Message"),
            subject=e.string("Subject"),
            message_structure=e.string("MessageStructure"),
            message_attributes=e.message_attributes("MessageAttributes"),
            message_group_id=e.string("MessageGroupId"),
            message_deduplication_id=e.string("MessageDeduplicationId"),
        )
        for e in p.members("PublishBatchRequestEntries") or []
    ]


def _subscribe(svc: Service, p: Params) -> Awaitable[str]:
    p.boolean("ReturnSubscriptionArn")  # validated; application subs never pend
    return svc.subscribe(
        topic_arn=p.string("TopicArn"),
        protocol=p.string("Protocol"),
        endpoint=p.string("Endpoint"),
        attributes=p.mapping("Attributes"),
    )


_APP = ("PlatformApplicationArn",)
_ENDPOINT = ("EndpointArn",)
_TOPIC = ("TopicArn",)
_SUB = ("SubscriptionArn",)
_RES = ("ResourceArn",)

ACTIONS: Mapping[str, Action[Any]] = {
    "CreatePlatformApplication": Action(
        lambda s, p: s.create_platform_application(
            name=p.string("Name"),
            platform=p.string("Platform"),
            attributes=p.mapping("Attributes"),
        ),
        _scalar("PlatformApplicationArn"),
    ),
    "GetPlatformApplicationAttributes": Action(
        lambda s, p: s.get_platform_application_attributes(p.string(_APP[0])),
        _attributes,
        _APP,
    ),
    "SetPlatformApplicationAttributes": Action(
        lambda s, p: s.set_platform_application_attributes(
            p.string(_APP[0]), p.mapping("Attributes")
        ),
        _no_output,
        _APP,
    ),
    "ListPlatformApplications": Action(
        lambda s, p: s.list_platform_applications(p.string("NextToken")),
        _listing("PlatformApplications", _app),
    ),
    "DeletePlatformApplication": Action(
        lambda s, p: s.delete_platform_application(p.string(_APP[0])),
        _no_output,
        _APP,
    ),
    "CreatePlatformEndpoint": Action(
        lambda s, p: s.create_platform_endpoint(
            app_arn=p.string(_APP[0]),
            token=p.string("Token"),
            custom_user_data=p.string("CustomUserData"),
            attributes=p.mapping("Attributes"),
        ),
        _scalar("EndpointArn"),
        _APP,
    ),
    "GetEndpointAttributes": Action(
        lambda s, p: s.get_endpoint_attributes(p.string(_ENDPOINT[0])),
        _attributes,
        _ENDPOINT,
    ),
    "SetEndpointAttributes": Action(
        lambda s, p: s.set_endpoint_attributes(
            p.string(_ENDPOINT[0]), p.mapping("Attributes")
        ),
        _no_output,
        _ENDPOINT,
    ),
    "ListEndpointsByPlatformApplication": Action(
        lambda s, p: s.list_endpoints_by_platform_application(
            p.string(_APP[0]), p.string("NextToken")
        ),
        _listing("Endpoints", _endpoint),
        _APP,
    ),
    "DeleteEndpoint": Action(
        lambda s, p: s.delete_endpoint(p.string(_ENDPOINT[0])),
        _no_output,
        _ENDPOINT,
    ),
    "Publish": Action(
        lambda s, p: s.publish(_publish_input(p)),
        _scalar("MessageId"),
        ("TopicArn", "TargetArn"),
    ),
    "PublishBatch": Action(
        lambda s, p: s.publish_batch(
            topic_arn=p.string("TopicArn"), entries=_batch_entries(p)
        ),
        _batch,
        _TOPIC,
    ),
    "CreateTopic": Action(
        lambda s, p: s.create_topic(
            name=p.string("Name"),
            attributes=p.mapping("Attributes"),
            tags=p.tags("Tags"),
        ),
        _scalar("TopicArn"),
    ),
    "DeleteTopic": Action(
        lambda s, p: s.delete_topic(p.string(_TOPIC[0])), _no_output, _TOPIC
    ),
    "GetTopicAttributes": Action(
        lambda s, p: s.get_topic_attributes(p.string(_TOPIC[0])), _attributes, _TOPIC
    ),
    "SetTopicAttributes": Action(
        lambda s, p: s.set_topic_attributes(
            arn=p.string(_TOPIC[0]),
            name=p.string("AttributeName"),
            value=p.string("AttributeValue"),
        ),
        _no_output,
        _TOPIC,
    ),
    "ListTopics": Action(
        lambda s, p: s.list_topics(p.string("NextToken")),
        _listing("Topics", _topic),
    ),
    "Subscribe": Action(_subscribe, _scalar("SubscriptionArn"), _TOPIC),
    "Unsubscribe": Action(
        lambda s, p: s.unsubscribe(p.string(_SUB[0])), _no_output, _SUB
    ),
    "ListSubscriptions": Action(
        lambda s, p: s.list_subscriptions(p.string("NextToken")),
        _listing("Subscriptions", _subscription),
    ),
    "ListSubscriptionsByTopic": Action(
        lambda s, p: s.list_subscriptions_by_topic(
            p.string(_TOPIC[0]), p.string("NextToken")
        ),
        _listing("Subscriptions", _subscription),
        _TOPIC,
    ),
    "GetSubscriptionAttributes": Action(
        lambda s, p: s.get_subscription_attributes(p.string(_SUB[0])),
        _attributes,
        _SUB,
    ),
    "SetSubscriptionAttributes": Action(
        lambda s, p: s.set_subscription_attributes(
            arn=p.string(_SUB[0]),
            name=p.string("AttributeName"),
            value=p.string("AttributeValue"),
        ),
        _no_output,
        _SUB,
    ),
    "TagResource": Action(
        lambda s, p: s.tag_resource(p.string(_RES[0]), p.tags("Tags")),
        _empty_output,
        _RES,
    ),
    "UntagResource": Action(
        lambda s, p: s.untag_resource(p.string(_RES[0]), p.strings("TagKeys")),
        _empty_output,
        _RES,
    ),
    "ListTagsForResource": Action(
        lambda s, p: s.list_tags_for_resource(p.string(_RES[0])), _tags, _RES
    ),
}


# -- HTTP ------------------------------------------------------------------------
def make_sns_handler(
    *,
    service: Service,
    keys: Mapping[str, AccessKey],
    region: str,
    max_body_bytes: int,
    clock: Callable[[], float] = time.time,
) -> Handler:
    """
    Build the aiohttp handler of the SNS Query API.

    Mount it for both methods on `/`:
    `app.router.add_route("POST", "/", h)` and `app.router.add_route("GET", "/", h)`.

    Args:
        service: the operations.
        keys: SigV4 access keys by access key id.
        region: the region credentials must be scoped to.
        max_body_bytes: larger bodies get 413 `RequestEntityTooLarge`.
        clock: current time for signature expiry.
    """

    async def handler(request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        # Logs of this request carry the RequestId the client sees.
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            action, result = await _dispatch(
                request,
                service=service,
                keys=keys,
                region=region,
                max_body_bytes=max_body_bytes,
                now=clock(),
            )
            return _xml_response(
                xml.success(action, result, request_id), 200, request_id
            )
        except ApiError as exc:
            log.info("sns_request_failed", code=exc.code, status=exc.status)
            response = _error_response(exc, request_id)
        except StoreUnavailableError as exc:
            # A state, not a bug: a 503 the SDKs retry, and no traceback.
            log.warning("sns_request_store_unavailable", error=str(exc))
            response = _error_response(ServiceUnavailableError(), request_id)
        except Exception:
            log.exception("sns_request_crashed")
            response = _error_response(InternalError(), request_id)
        if not request.content.is_eof():
            # A body we refused to read: close rather than drain it.
            response.force_close()
        return response

    return handler


async def _dispatch(
    request: web.Request,
    *,
    service: Service,
    keys: Mapping[str, AccessKey],
    region: str,
    max_body_bytes: int,
    now: float,
) -> tuple[str, str | None]:
    body = await _read_body(request, max_body_bytes)
    path, _, raw_query = request.raw_path.partition("?")
    query = decode_form(_raw_bytes(raw_query))
    key = verify_sigv4(
        method=request.method,
        path=path,
        query=query,
        headers=request.headers,
        body=body,
        keys=keys,
        region=region,
        now=now,
    )
    pairs = query + _form_pairs(request, body)
    name, params = parse_query(pairs)
    action = ACTIONS.get(name)
    if action is None:
        raise InvalidActionError(
            f"The action {name[:128]} is not valid for this web service."
        )
    if key.actions is not None and name not in key.actions:
        resource = next(filter(None, map(params.string, action.resource)), "*")
        raise AuthorizationError(
            f"User: {_principal(service, key)} is not authorized to perform:"
            f" SNS:{name} on resource: {resource}"
        )
    try:
        value = await action.call(service, params)
    except ForeignAccountError as exc:
        # The service cannot know the caller; here we do, and AWS names it.
        raise exc.by(_principal(service, key)) from None
    return name, action.render(value, service)


def _principal(service: Service, key: AccessKey) -> str:
    """The IAM user AWS would name for this access key."""
    return f"arn:aws:iam::{service.account}:user/{key.access_key_id}"


def _raw_bytes(raw_query: str) -> bytes:
    try:
        return raw_query.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise malformed("The query string has invalid characters.") from None


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := await request.content.read(READ_CHUNK):
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except (HttpProcessingError, ConnectionError):
        # The client closed mid-body or sent a broken chunked encoding.
        raise malformed("The request body is incomplete.") from None
    return b"".join(chunks)


def _too_large(limit: int) -> RequestTooLargeError:
    return RequestTooLargeError(f"Request body must be at most {limit} bytes.")


def _form_pairs(request: web.Request, body: bytes) -> list[tuple[str, str]]:
    """The body parameters of a POST; a GET takes its parameters from the URL."""
    if request.method != "POST" or not body:
        return []
    media_type = request.headers.get("Content-Type", FORM_TYPE).split(";")[0]
    if media_type.strip().lower() != FORM_TYPE:
        raise malformed(f"The Content-Type must be {FORM_TYPE}.")
    return decode_form(body)


def _error_response(exc: ApiError, request_id: str) -> web.Response:
    body = xml.error(
        code=exc.code,
        message=exc.message,
        sender_fault=exc.sender_fault,
        request_id=request_id,
    )
    return _xml_response(body, exc.status, request_id)


def _xml_response(body: str, status: int, request_id: str) -> web.Response:
    return web.Response(
        text=body,
        status=status,
        content_type=xml.CONTENT_TYPE,
        # x-request-id too, so the app middleware's header agrees with SNS's id.
        headers={"x-amzn-RequestId": request_id, "x-request-id": request_id},
    )
