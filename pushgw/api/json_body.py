"""
Reading an operation's members out of a JSON request (body, path and query),
typed as `shapes` says, with errors that name the field.

A body member the operation does not have is refused (InvalidParameter, naming
it and the members there are), as the admin routes refuse theirs: ignored, a
misspelt or misplaced member (`endpoint` for Subscribe's `endpointArn`) would
surface as a misleading error about the member left unset, or as none.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from multidict import MultiMapping

from pushgw.api.shapes import Kind, Param, Where
from pushgw.errors import InvalidParameterError, JsonValidationError
from pushgw.service.types import MessageAttributeInput

T = TypeVar("T")


def read_request(
    params: Sequence[Param],
    *,
    body: Mapping[str, Any],
    path: Mapping[str, str],
    query: MultiMapping[str],
) -> dict[str, Any]:
    """The values of `params` by SNS member name; absent ones are None."""
    refuse_unknown(body, [p for p in params if p.json is Where.BODY])
    out: dict[str, Any] = {}
    for param in params:
        key = param.json_key
        if param.json is Where.PATH:
            value: Any = path[key]
        elif param.json is Where.QUERY:
            value = (
                query.getall(key, []) if param.kind is Kind.STRINGS else query.get(key)
            )
        else:
            value = _body_value(body, param)
        out[param.name] = param.json_default if value is None else value
    return out


def refuse_unknown(
    body: Mapping[str, Any], params: Sequence[Param], where: str = ""
) -> None:
    """InvalidParameter for the first member of `body` (at `where`, e.g.
    `entries[0].`) that none of `params` names."""
    known = [p.json_key for p in params]
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise InvalidParameterError(
            f"Invalid parameter: {where}{unknown[0]} (unknown; the members are"
            f" {', '.join(known)})"
        )


def _body_value(body: Mapping[str, Any], param: Param) -> Any:
    key = param.json_key
    match param.kind:
        case Kind.STRING:
            return optional(body, key, str)
        case Kind.BOOLEAN:
            return optional(body, key, bool)
        case Kind.MAP | Kind.TAGS:
            return string_map(body, key)
        case Kind.STRINGS:
            return _strings(body, key)
        case Kind.MESSAGE_ATTRIBUTES:
            return message_attributes(body, key)
        case Kind.LIST:
            assert param.members is not None, key
            members = param.members.params  # each element's members: body only
            items = _objects(body, key)
            for index, item in enumerate(items):
                refuse_unknown(item, members, f"{key}[{index}].")
            return [{m.name: _body_value(item, m) for m in members} for item in items]


def _objects(body: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    items = optional(body, name, list) or []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise JsonValidationError(f"{name}[{index}]: expected object")
    return items


def _strings(body: Mapping[str, Any], name: str) -> list[str] | None:
    items = optional(body, name, list)
    if items is not None and not all(isinstance(i, str) and _is_utf8(i) for i in items):
        raise JsonValidationError(f"{name}: expected array of strings")
    return items


def optional(body: Mapping[str, Any], name: str, kind: type[T]) -> T | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise JsonValidationError(f"{name}: expected {_type_name(kind)}")
    if isinstance(value, str) and not _is_utf8(value):
        raise JsonValidationError(f"{name}: expected valid UTF-8 string")
    return value


def _is_utf8(text: str) -> bool:
    """False for strings with lone surrogates (JSON "\\ud800"), which cannot be stored."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def string_map(body: Mapping[str, Any], name: str) -> dict[str, str] | None:
    value = optional(body, name, dict)
    if value is None:
        return None
    for key, item in value.items():
        if not isinstance(item, str) or not _is_utf8(item) or not _is_utf8(key):
            raise JsonValidationError(f"{name}.{key}: expected string")
    return value


def message_attributes(
    body: Mapping[str, Any], name: str = "messageAttributes"
) -> dict[str, MessageAttributeInput]:
    """`{"attr": {"dataType": "String", "stringValue": "v"}}`; binary as base64."""
    value = optional(body, name, dict) or {}
    out: dict[str, MessageAttributeInput] = {}
    for key, item in value.items():
        if not isinstance(item, dict):
            raise JsonValidationError(f"{name}.{key}: expected object")
        binary = _base64(
            optional(item, "binaryValue", str), f"{name}.{key}.binaryValue"
        )
        out[key] = MessageAttributeInput(
            data_type=optional(item, "dataType", str),
            string_value=optional(item, "stringValue", str),
            binary_value=binary,
        )
    return out


def _base64(value: str | None, field: str) -> bytes | None:
    """
    Strict base64, decoded exactly as the SNS Query API does (`sns_parse`), so both
    APIs accept the same values. `b64decode` raises a plain ValueError, not
    binascii.Error, for non-ASCII text, hence the explicit ASCII step.
    """
    if value is None:
        return None
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise JsonValidationError(f"{field}: expected base64") from None


def _type_name(kind: type) -> str:
    return {str: "string", dict: "object", list: "array", bool: "boolean"}.get(
        kind, kind.__name__
    )
