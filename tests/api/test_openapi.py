"""The OpenAPI document at /v1/openapi.json describes exactly the /v1 routes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from pushgw.api import console
from pushgw.api.admin_api import ADMIN_ROUTES
from pushgw.api.app import make_app
from pushgw.api.json_api import ROUTES
from pushgw.api.openapi import openapi_path
from pushgw.arn import ArnBuilder
from pushgw.config import config_from_mapping
from pushgw.service import Service
from pushgw.store.memory import InMemoryStore

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def build_app() -> web.Application:
    store = InMemoryStore()
    service = Service(store=store, arns=ArnBuilder("us-east-1", "123456789012"))
    return make_app(config=config_from_mapping({}), service=service)


@pytest.fixture(name="served")
async def _served() -> AsyncIterator[tuple[web.Application, dict[str, Any]]]:
    app = build_app()
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/v1/openapi.json")
        assert 200 == response.status
        yield app, await response.json()


ADMIN_OPERATIONS = (
    "GetQueue",
    "GetMessage",
    "ListDeliveries",
    "ReplayDeadLetters",
    "GetDeliveryStats",
)


def router_operations(app: web.Application) -> set[tuple[str, str]]:
    """(METHOD, path) of every /v1 route but the document itself, `{arn}` style."""
    out = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path") or ""
        if not path.startswith("/v1/") or path == "/v1/openapi.json":
            continue
        out.add((route.method, path))
    return out


def document_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A schema with its `$ref` (if any) looked up in the components."""
    if "$ref" not in schema:
        return schema
    name = schema["$ref"].removeprefix("#/components/schemas/")
    found: dict[str, Any] = document["components"]["schemas"][name]
    return found


def test_openapi_path_strips_patterns() -> None:
    """`{arn:regex}` becomes `{arn}`, regexes with classes and quantifiers too."""
    assert "/v1/topics/{arn}" == openapi_path("/v1/topics/{arn:arn:[^/]+}")
    assert "/v1/endpoints/{arn}/x" == openapi_path(
        "/v1/endpoints/{arn:arn:[^/]+/[^/]+/[^/]+/[^/]+}/x"
    )
    assert "/v1/topics" == openapi_path("/v1/topics")


async def test_document_matches_router(
    served: tuple[web.Application, dict[str, Any]],
) -> None:
    """Every /v1 route is documented with its method, and nothing else is."""
    app, document = served
    routed = router_operations(app)
    assert len(ROUTES) + len(console.ROUTES) + len(ADMIN_ROUTES) == len(routed)
    assert routed == document_operations(document)
    from_table = {(r.method, openapi_path(r.path)) for r in ROUTES}
    own = {(method, path) for method, path, _, _ in console.ROUTES}
    assert from_table | own | set(ADMIN_ROUTES) == routed


async def test_document_is_structurally_openapi_3(
    served: tuple[web.Application, dict[str, Any]],
) -> None:
    """Version, info, unique operationIds, responses and path parameters are sound."""
    _, document = served
    assert "3.0.3" == document["openapi"]
    assert {"title", "version"} <= set(document["info"])
    assert "bearer" in document["components"]["securitySchemes"]
    operation_ids = []
    for path, item in document["paths"].items():
        assert path.startswith("/v1/")
        placeholders = set(re.findall(r"\{(\w+)\}", path))
        for method, operation in item.items():
            assert method in HTTP_METHODS
            operation_ids.append(operation["operationId"])
            responses = operation["responses"]
            assert responses, (method, path)
            assert all(re.fullmatch(r"[1-5]\d\d", code) for code in responses)
            assert all("description" in r for r in responses.values())
            assert any(code.startswith("2") for code in responses)
            params = operation.get("parameters", [])
            in_path = {p["name"] for p in params if p["in"] == "path"}
            assert placeholders == in_path, (method, path)
            assert all(p["required"] for p in params if p["in"] == "path")
            if "requestBody" in operation:
                schema = resolve(
                    document,
                    operation["requestBody"]["content"]["application/json"]["schema"],
                )
                assert set(schema.get("required", [])) <= set(schema["properties"])
    assert len(operation_ids) == len(set(operation_ids))


async def test_error_schema_ref_resolves(
    served: tuple[web.Application, dict[str, Any]],
) -> None:
    """Every `$ref` in the document points at an existing component."""
    _, document = served
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    assert refs
    for ref in refs:
        section, name = ref.removeprefix("#/components/").split("/")
        assert name in document["components"][section]


def walk_schemas(node: Any) -> list[dict[str, Any]]:
    """Every schema object in a document fragment (dicts with a type or a $ref)."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if "type" in node or "$ref" in node:
            found.append(node)
        for value in node.values():
            found += walk_schemas(value)
    elif isinstance(node, list):
        for value in node:
            found += walk_schemas(value)
    return found


async def test_no_bare_object_schemas(
    served: tuple[web.Application, dict[str, Any]],
) -> None:
    """Every object schema names its properties or the type of its values."""
    _, document = served

    bare = [
        s
        for s in walk_schemas(document)
        if s.get("type") == "object"
        and "properties" not in s
        and "additionalProperties" not in s
    ]

    assert [] == bare


async def test_bodies_have_real_schemas(
    served: tuple[web.Application, dict[str, Any]],
) -> None:
    """Request and success bodies are named components with their members."""
    _, document = served
    for path, item in document["paths"].items():
        for method, operation in item.items():
            bodies = [
                operation.get("requestBody", {}),
                *operation["responses"].values(),
            ]
            for body in bodies:
                if "content" not in body:
                    continue
                ref = body["content"]["application/json"]["schema"]
                assert {"$ref"} == set(ref), (method, path)
                schema = resolve(document, ref)
                assert "object" == schema["type"]
                assert schema["properties"], (method, path)


async def test_errors_are_declared_with_the_error_schema(
    served: tuple[web.Application, dict[str, Any]],
) -> None:
    """401/403/404/405/413 (and 400/500/503) carry the Error schema; 405 has Allow."""
    _, document = served
    error = {"$ref": "#/components/schemas/Error"}
    for item in document["paths"].values():
        for operation in item.values():
            responses = operation["responses"]
            for code in ("400", "401", "403", "404", "405", "413", "500", "503"):
                assert error == responses[code]["content"]["application/json"]["schema"]
            assert "Allow" in responses["405"]["headers"]


async def test_success_status_matches_the_table(
    served: tuple[web.Application, dict[str, Any]],
) -> None:
    """Each operation documents exactly the success status the router answers."""
    _, document = served
    statuses = {
        operation["operationId"]: [c for c in operation["responses"] if c < "300"]
        for item in document["paths"].values()
        for operation in item.values()
    }

    assert {
        **{r.operation.name: [str(r.operation.http.status)] for r in ROUTES},
        **{name: [str(status)] for _, _, status, name in console.ROUTES},
        **{name: ["200"] for name in ADMIN_OPERATIONS},
    } == statuses


async def test_arn_path_parameters_may_be_encoded(
    served: tuple[web.Application, dict[str, Any]],
) -> None:
    """Path parameters are named after their member and say they may be encoded."""
    _, document = served
    item = document["paths"]["/v1/platform-applications/{platformApplicationArn}"]
    (param,) = item["get"]["parameters"]

    assert "platformApplicationArn" == param["name"]
    assert "percent-encoded" in param["description"]


async def test_request_bodies_refuse_unknown_members(
    served: tuple[web.Application, dict[str, Any]],
) -> None:
    """Request bodies, and PublishBatch's entries, are closed: the router
    refuses a member they do not list."""
    _, document = served
    operations = {r.operation.name for r in ROUTES}
    bodies = [
        resolve(
            document, operation["requestBody"]["content"]["application/json"]["schema"]
        )
        for item in document["paths"].values()
        for operation in item.values()
        if operation["operationId"] in operations and "requestBody" in operation
    ]
    entry = document["components"]["schemas"]["PublishBatchRequestEntry"]

    assert len(bodies) > 10
    assert all(schema["additionalProperties"] is False for schema in [*bodies, entry])
