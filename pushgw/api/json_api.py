"""
The JSON API (/v1) for app backends that do not use an AWS SDK.

Same operations and rules as the SNS API (both call `Service`), JSON in and out,
bearer-key auth. Its routes come from the one table of operations
(`operations.TABLE`), as the OpenAPI document does, so they cannot drift apart.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from pushgw import safejson
from pushgw.api.json_body import read_request
from pushgw.api.operations import TABLE
from pushgw.api.shapes import Binding, Context, Field, Kind, Operation, Where, invoke
from pushgw.api.shapes import camel_case as camel
from pushgw.config import ApiKey
from pushgw.errors import ForbiddenError, JsonValidationError, UnauthorizedError
from pushgw.service import Service

# An ARN in a path, raw (`app/GCM/x`) or percent-encoded (`app%2FGCM%2Fx`, what
# generated clients send). aiohttp matches against the path with everything but
# %2F and %25 decoded, so a segment may hold any character but a slash, raw or
# encoded; that keeps `{arn}` and `{arn}/endpoints` apart.
_SEGMENT = r"(?:[^/%]|%(?!2F))+"
_SLASH = r"(?:/|%2F)"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    """An operation's aiohttp route: `path` holds the ARN patterns."""

    method: str
    path: str
    operation: Operation


def arn_pattern(slashes: int) -> str:
    return "arn:" + _SEGMENT + (_SLASH + _SEGMENT) * slashes


def route_path(op: Operation) -> str:
    """`/v1/topics/{topicArn}` → `/v1/topics/{topicArn:arn:…}`."""
    path = op.http.path
    for param in op.params_for(Binding.JSON):
        if param.json is Where.PATH:
            name = param.json_key
            path = path.replace(
                f"{{{name}}}", f"{{{name}:{arn_pattern(param.slashes)}}}"
            )
    assert not re.search(r"\{\w+\}", path), path  # every placeholder is a member
    return path


ROUTES: tuple[Route, ...] = tuple(
    Route(op.http.method, route_path(op), op) for op in TABLE
)


def render(fields: Sequence[Field], value: Any, ctx: Context) -> dict[str, Any]:
    """An output as JSON: camelCase names, maps and tags as objects, None left out."""
    out: dict[str, Any] = {}
    for field in fields:
        item = field.get(value, ctx)
        if item is None:
            continue
        if field.kind is Kind.LIST:
            assert field.item is not None, field.name
            item = [render(field.item.fields, v, ctx) for v in item]
        elif field.kind in (Kind.MAP, Kind.TAGS):
            item = dict(item)
        out[camel(field.name)] = item
    return out


def error_response(
    status: int,
    code: str,
    message: str,
    request_id: str,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}},
        status=status,
        headers={**(headers or {}), "x-request-id": request_id},
    )


def authenticate(request: web.Request, keys: Sequence[ApiKey]) -> ApiKey:
    """The key the request's bearer token names; UnauthorizedError if none."""
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented:
        raise UnauthorizedError("Missing bearer key: send Authorization: Bearer <key>")
    for key in keys:
        if hmac.compare_digest(key.key.encode(), presented.strip().encode()):
            return key
    raise UnauthorizedError("Invalid bearer key")


def _authorize(request: web.Request, keys: Sequence[ApiKey], action: str) -> None:
    key = authenticate(request, keys)
    if key.actions is not None and action not in key.actions:
        raise ForbiddenError(f"Key {key.name} may not perform {action}")


async def read_json_object(request: web.Request) -> Mapping[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        parsed = safejson.loads(raw)
    except safejson.JsonInputError:
        raise JsonValidationError("Body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise JsonValidationError("Body must be a JSON object")
    return parsed


def _make_handler(op: Operation, service: Service, keys: Sequence[ApiKey]) -> Handler:
    params = op.params_for(Binding.JSON)
    reads_body = op.http.method in BODY_METHODS

    async def handle(request: web.Request) -> web.StreamResponse:
        _authorize(request, keys, op.name)
        body = await read_json_object(request) if reads_body else {}
        args = read_request(
            params, body=body, path=request.match_info, query=request.query
        )
        value = await invoke(op, Binding.JSON, service, args)
        if op.http.status == 204 or op.output is None:
            return web.Response(status=op.http.status)
        payload = render(op.output, value, Context(service, args))
        return web.json_response(payload, status=op.http.status)

    return handle


def add_json_routes(
    app: web.Application, *, service: Service, keys: Sequence[ApiKey]
) -> None:
    for route in ROUTES:
        app.router.add_route(
            route.method, route.path, _make_handler(route.operation, service, keys)
        )
