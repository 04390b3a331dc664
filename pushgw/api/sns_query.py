"""
The SNS Query API (`Version=2010-03-31`): form or query string in, XML out.

`make_sns_handler` returns one aiohttp handler for `POST /` (form body, what boto3
and the AWS CLI send) and signed `GET /` (query string). Per request it reads the
body under a hard size limit, verifies SigV4, parses the parameters, checks the
key's action set, calls the `Service` and renders XML (`sns_xml`). Every failure
is an SNS `ErrorResponse`; an unexpected exception is logged and answered with a
500 `InternalError` that carries no detail.

The operations come from the one table, `operations.OPERATIONS`: this module only
reads their members off the wire (`sns_parse.read_members`) and renders their
outputs (`sns_xml.result`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Mapping

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from pushgw.api import sns_xml as xml
from pushgw.api.operations import OPERATIONS
from pushgw.api.request_id import REQUEST_ID
from pushgw.api.shapes import Binding, Context, invoke
from pushgw.api.sigv4 import verify_sigv4
from pushgw.api.sns_parse import decode_form, malformed, parse_query, read_members
from pushgw.config import AccessKey
from pushgw.errors import (
    ApiError,
    AuthorizationError,
    ForeignAccountError,
    InternalError,
    InvalidActionError,
    RequestTooLargeError,
    ServiceUnavailableError,
    StoreUnavailableError,
)
from pushgw.log import get_logger
from pushgw.service import Service

Handler = Callable[[web.Request], Awaitable[web.Response]]

log = get_logger(__name__)

READ_CHUNK = 65_536  # bytes per read while enforcing the body limit
FORM_TYPE = "application/x-www-form-urlencoded"


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
        # The client's X-Request-ID when it sent a usable one (the app
        # middleware checked it), else a new id: it is SNS's RequestId too, and
        # every log line of this request carries it.
        request_id = request.get(REQUEST_ID) or str(uuid.uuid4())
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
    pairs = query + _form_pairs(request, body)
    key: AccessKey | None = None
    if _signed(query, request.headers) or not _anonymous_action(pairs):
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
    name, params = parse_query(pairs)
    op = OPERATIONS.get(name)
    if op is None:
        raise InvalidActionError(
            f"The action {name[:128]} is not valid for this web service."
        )
    members = op.params_for(Binding.SNS)
    if key is not None and key.actions is not None and name not in key.actions:
        named = (params.string(p.name) for p in members if p.resource)
        raise AuthorizationError(
            f"User: {_principal(service, key)} is not authorized to perform:"
            f" SNS:{name} on resource: {next(filter(None, named), '*')}"
        )
    # Read after the key check: a refused key gets AuthorizationError, whatever
    # else is wrong with the request.
    args = read_members(params, members)
    try:
        value = await invoke(
            op, Binding.SNS, service, args, authenticated=key is not None
        )
    except ForeignAccountError as exc:
        # The service cannot know the caller; here we do, and AWS names it.
        raise exc.by(_principal(service, key)) from None
    return name, xml.result(op.output, value, Context(service, args))


def _anonymous_action(pairs: list[tuple[str, str]]) -> bool:
    """The request names one action that may come unsigned (the SubscribeURL
    and UnsubscribeURL that subscribers are sent are plain GETs)."""
    actions = [v for k, v in pairs if k == "Action"]
    op = OPERATIONS.get(actions[0]) if len(actions) == 1 else None
    return op is not None and op.anonymous


def _signed(query: list[tuple[str, str]], headers: Mapping[str, str]) -> bool:
    """Whether the request carries a SigV4 signature (header or query)."""
    return "Authorization" in headers or any(k == "X-Amz-Signature" for k, _ in query)


def _principal(service: Service, key: AccessKey | None) -> str:
    """The IAM user AWS would name for this access key."""
    if key is None:
        return "anonymous"
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
