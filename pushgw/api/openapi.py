"""The OpenAPI 3 document of the JSON API, generated from its route table."""

from __future__ import annotations

import re
from typing import Any

from pushgw import __version__
from pushgw.api.json_api import ROUTES, Route

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}
SUCCESS = {"GET": "200", "POST": "201", "PUT": "204", "PATCH": "204", "DELETE": "204"}


def openapi_path(route_path: str) -> str:
    """`/v1/topics/{arn:arn:[^/]+}` → `/v1/topics/{arn}`."""
    return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", route_path)


def _operation(route: Route) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "400": {
            "description": "Invalid request (SNS error code in error.code)",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
            },
        },
        "401": {"description": "Missing or invalid bearer key"},
        "403": {"description": "The key may not perform this action"},
        "404": {"description": "Not found"},
    }
    success = "200" if route.action.startswith("Publish") else SUCCESS[route.method]
    responses[success] = {
        "description": "Success",
        **(
            {"content": {"application/json": {"schema": {"type": "object"}}}}
            if success != "204"
            else {}
        ),
    }
    op: dict[str, Any] = {
        "operationId": route.action,
        "summary": route.summary,
        "tags": [route.path.split("/")[2]],
        "responses": responses,
    }
    params = (
        [
            {
                "name": "arn",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                "description": "The resource ARN, unencoded",
            }
        ]
        if "{arn" in route.path
        else []
    )
    params += [
        {"name": q, "in": "query", "required": False, "schema": {"type": "string"}}
        for q in route.query
    ]
    if params:
        op["parameters"] = params
    if route.body:
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": dict(route.body),
                        "required": list(route.required),
                    }
                }
            },
        }
    return op


def openapi_document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(openapi_path(route.path), {})[route.method.lower()] = (
            _operation(route)
        )
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "pushgw JSON API",
            "version": __version__,
            "description": "The SNS mobile-push operations of pushgw, JSON in and out."
            ' Errors are {"error": {"code", "message"}} with SNS\'s codes.',
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR_SCHEMA},
        },
        "paths": paths,
    }
