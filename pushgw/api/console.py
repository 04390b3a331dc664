"""
The web console at `/console` (plain ES modules and CSS in `pushgw/console/`,
no build step), and the one JSON route it needs that SNS has no action for:
endpoint search.

The console holds no server logic: every page reads and every button writes
through the JSON API with the operator's bearer key, so the CLI and scripts can
do all it does. This module only serves files, with these cache rules:

* `/console/` (index.html) is `no-cache`: a browser asks again every time, so an
  upgraded daemon's console is picked up at the next load;
* everything else is under `/console/assets/<digest>/`, the digest of all the
  files when the daemon started, `immutable` for a year: a new release is a new
  URL, never a stale mix (files replaced under a running daemon are served as
  they are now, until the restart that an upgrade needs anyway).

Every console response carries a Content-Security-Policy that lets the page
load and call only its own origin (no CDN, no inline script, no framing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from pushgw.api.json_api import _authorize, arn_pattern
from pushgw.api.openapi import error_responses
from pushgw.config import ApiKey
from pushgw.service import Service

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
PREFIX = "/console"
ASSETS = PREFIX + "/assets"
# Where index.html says its modules and styles are (replaced when served).
ASSETS_MARK = "./assets/"
SEARCH_PATH = "/v1/platform-applications/{platformApplicationArn}/endpoints/search"
# A key that may list an application's endpoints may search them.
SEARCH_ACTION = "ListEndpointsByPlatformApplication"
# The /v1 routes of this module: (method, OpenAPI path, success status, operationId).
ROUTES = (("GET", SEARCH_PATH, 200, "SearchEndpoints"),)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
        " connect-src 'self'; base-uri 'none'; form-action 'self';"
        " frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
IMMUTABLE = "public, max-age=31536000, immutable"


def assets_digest(root: Path = CONSOLE_DIR) -> str:
    """A digest of every console file (names and contents), 16 hex digits."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def add_console_routes(
    app: web.Application,
    *,
    service: Service,
    keys: Sequence[ApiKey],
    document: dict[str, Any] | None = None,
) -> None:
    """
    Serve the console and add the endpoint-search route (and, given the OpenAPI
    `document`, its description). `keys` is read on every request, as the JSON
    API reads it.
    """
    digest = assets_digest()
    base = f"{ASSETS}/{digest}/"
    index = (CONSOLE_DIR / "index.html").read_text().replace(ASSETS_MARK, base)

    async def console_index(_: web.Request) -> web.Response:
        return web.Response(
            text=index,
            content_type="text/html",
            headers={"Cache-Control": "no-cache", **SECURITY_HEADERS},
        )

    async def to_index(_: web.Request) -> web.Response:
        raise web.HTTPPermanentRedirect(PREFIX + "/")

    async def headers(request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith(base) and response.status in (200, 304):
            response.headers["Cache-Control"] = IMMUTABLE
            response.headers.update(SECURITY_HEADERS)

    app.router.add_get(PREFIX, to_index)
    app.router.add_get(PREFIX + "/", console_index)
    app.router.add_static(base, CONSOLE_DIR, append_version=False)
    app.on_response_prepare.append(headers)

    search_route = SEARCH_PATH.replace(
        "{platformApplicationArn}", "{platformApplicationArn:" + arn_pattern(2) + "}"
    )

    async def search(request: web.Request) -> web.Response:
        _authorize(request, keys, SEARCH_ACTION)
        query = request.query
        listing = await service.search_endpoints(
            app_arn=request.match_info["platformApplicationArn"],
            token_prefix=query.get("tokenPrefix"),
            custom_user_data=query.get("customUserData"),
            limit=query.get("limit"),
            next_token=query.get("nextToken"),
        )
        return web.json_response(
            {
                "endpoints": [
                    {"endpointArn": e.arn, "attributes": e.public_attributes()}
                    for e in listing.items
                ],
                "nextToken": listing.next_token,
            }
        )

    app.router.add_route("GET", search_route, search)
    if document is not None:
        add_search_to_openapi(document)


def add_search_to_openapi(document: dict[str, Any]) -> None:
    """The search route in the OpenAPI document, with named schemas."""

    def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "description": description,
            "schema": schema,
        }

    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["SearchEndpointsResponse"] = {
        "type": "object",
        "properties": {
            "endpoints": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Endpoint"},
            },
            "nextToken": {"type": "string", "nullable": True},
        },
        "required": ["endpoints", "nextToken"],
    }
    document["paths"][SEARCH_PATH] = {
        "get": {
            "operationId": "SearchEndpoints",
            "summary": "Search an application's endpoints by token prefix and/or"
            " CustomUserData (pushgw's own; keyset pages in token order)",
            "tags": ["platform-applications"],
            "parameters": [
                {
                    "name": "platformApplicationArn",
                    "in": "path",
                    "required": True,
                    "description": "The application's ARN, raw or percent-encoded",
                    "schema": {"type": "string"},
                },
                query("tokenPrefix", "Tokens that start with this", {"type": "string"}),
                query(
                    "customUserData",
                    "CustomUserData equal to this",
                    {"type": "string"},
                ),
                query(
                    "limit",
                    "Endpoints per page (default 100)",
                    {"type": "integer", "minimum": 1, "maximum": 1000},
                ),
                query("nextToken", "From the previous page", {"type": "string"}),
            ],
            "responses": {
                "200": {
                    "description": "Success",
                    "content": {
                        "application/json": {
                            "schema": {
                                "$ref": "#/components/schemas/SearchEndpointsResponse"
                            }
                        }
                    },
                },
                **error_responses(),
            },
        }
    }
