"""
The OpenAPI 3 document of the JSON API, derived from the one table of operations
(`operations.TABLE`), as the router is.

Each operation has a named request schema (`{Action}Request`) and response schema
(`{Action}Response`); list elements (`PlatformApplication`, `Subscription`, …),
string maps and message attributes are shared components, so generated clients
get one class for each. Every error status is declared with the `Error` schema.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pushgw import __version__
from pushgw.api.operations import TABLE
from pushgw.api.shapes import Binding, Field, Kind, Operation, Param, Where, camel_case

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
ERROR_SCHEMA: Schema = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": STRING, "message": STRING},
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}
SHARED: dict[str, Schema] = {
    "Error": ERROR_SCHEMA,
    "StringMap": {"type": "object", "additionalProperties": STRING},
    "MessageAttributeValue": {
        "type": "object",
        "properties": {
            "dataType": STRING,
            "stringValue": STRING,
            "binaryValue": {**STRING, "description": "base64"},
        },
        "required": ["dataType"],
    },
    "MessageAttributeMap": {
        "type": "object",
        "additionalProperties": {"$ref": "#/components/schemas/MessageAttributeValue"},
    },
}
ERRORS = {
    "400": "Invalid request (SNS's error code in error.code)",
    "401": "Missing or invalid bearer key",
    "403": "The key may not perform this action, or the ARN is another account's",
    "404": "No such resource, or no such path",
    "405": "The path does not take this method (Allow lists those it takes)",
    "413": "The request body is too large",
    "500": "Internal error",
    "503": "The store is unavailable; try again",
}
SUCCESS = {200: "Success", 201: "Created", 204: "Done (no body)"}


def openapi_path(route_path: str) -> str:
    """`/v1/topics/{arn:arn:[^/]+}` → `/v1/topics/{arn}`."""
    return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", route_path)


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Schema], required: list[str]) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _kind_schema(kind: Kind, element: str = "") -> Schema:
    """The schema of a kind; `element` names a LIST's element schema."""
    match kind:
        case Kind.BOOLEAN:
            return {"type": "boolean"}
        case Kind.MAP | Kind.TAGS:
            return ref("StringMap")
        case Kind.STRINGS:
            return {"type": "array", "items": STRING}
        case Kind.MESSAGE_ATTRIBUTES:
            return ref("MessageAttributeMap")
        case Kind.LIST:
            return {"type": "array", "items": ref(element)}
        case _:
            return dict(STRING)


def _input_schema(param: Param, schemas: dict[str, Schema]) -> Schema:
    if param.members is None:
        return _kind_schema(param.kind)
    structure = param.members
    schemas[structure.name] = _params_schema(structure.params, schemas)
    return _kind_schema(param.kind, structure.name)


def _params_schema(params: Sequence[Param], schemas: dict[str, Schema]) -> Schema:
    schema = _object(
        {p.json_key: _input_schema(p, schemas) for p in params},
        [p.json_key for p in params if p.required and p.json_default is None],
    )
    # An unknown member is refused (json_body.refuse_unknown).
    return schema | {"additionalProperties": False}


def _output_schema(field: Field, schemas: dict[str, Schema]) -> Schema:
    if field.item is None:
        return _kind_schema(field.kind)
    schemas[field.item.name] = _fields_schema(field.item.fields, schemas)
    return _kind_schema(field.kind, field.item.name)


def _fields_schema(fields: Sequence[Field], schemas: dict[str, Schema]) -> Schema:
    return _object(
        {camel_case(f.name): _output_schema(f, schemas) for f in fields},
        [camel_case(f.name) for f in fields if f.required],
    )


def _parameters(params: Sequence[Param]) -> list[Schema]:
    out: list[Schema] = []
    for param in params:
        if param.json is Where.PATH:
            out.append(
                {
                    "name": param.json_key,
                    "in": "path",
                    "required": True,
                    "schema": dict(STRING),
                    "description": f"The {param.name}, raw or percent-encoded",
                }
            )
        elif param.json is Where.QUERY:
            schema: Schema = {"type": "array", "items": STRING}
            if param.kind is not Kind.STRINGS:
                schema = dict(STRING)
            out.append(
                {
                    "name": param.json_key,
                    "in": "query",
                    "required": param.required,
                    "schema": schema,
                    **({"explode": True} if param.kind is Kind.STRINGS else {}),
                }
            )
    return out


def _responses(op: Operation, schemas: dict[str, Schema]) -> dict[str, Any]:
    status = op.http.status
    success: dict[str, Any] = {"description": SUCCESS[status]}
    if status != 204 and op.output is not None:
        name = f"{op.name}Response"
        schemas[name] = _fields_schema(op.output, schemas)
        success["content"] = {"application/json": {"schema": ref(name)}}
    return {str(status): success, **error_responses()}


def error_responses() -> dict[str, Any]:
    """Every error status a /v1 route may answer, with the Error schema."""
    responses: dict[str, Any] = {
        code: {
            "description": description,
            "content": {"application/json": {"schema": ref("Error")}},
        }
        for code, description in ERRORS.items()
    }
    responses["405"]["headers"] = {
        "Allow": {"description": "The methods the path takes", "schema": STRING}
    }
    return responses


def json_content(schema: Schema) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(op: Operation, schemas: dict[str, Schema]) -> dict[str, Any]:
    params = op.params_for(Binding.JSON)
    document: dict[str, Any] = {
        "operationId": op.name,
        "summary": op.summary,
        "tags": [op.http.path.split("/")[2]],
        "responses": _responses(op, schemas),
    }
    if parameters := _parameters(params):
        document["parameters"] = parameters
    body = [p for p in params if p.json is Where.BODY]
    if body:
        name = f"{op.name}Request"
        schemas[name] = _params_schema(body, schemas)
        document["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(name)}},
        }
    return document


def openapi_document() -> dict[str, Any]:
    schemas: dict[str, Schema] = dict(SHARED)
    paths: dict[str, dict[str, Any]] = {}
    for op in TABLE:
        item = paths.setdefault(op.http.path, {})
        item[op.http.method.lower()] = _operation(op, schemas)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "pushgw JSON API",
            "version": __version__,
            "description": "The SNS mobile-push operations of pushgw, JSON in and out."
            ' Errors are {"error": {"code", "message"}} with SNS\'s codes.'
            " ARNs in paths may be raw or percent-encoded.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
        },
        "paths": paths,
    }
