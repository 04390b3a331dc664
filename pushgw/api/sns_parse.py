"""
Parsing of SNS Query API requests (botocore `QuerySerializer` wire format).

A request is a flat list of `name=value` pairs (form body or query string). Dotted
names describe structure (SNS_API §1.2):

* maps: `Attributes.entry.N.key` / `Attributes.entry.N.value`;
* message attributes: `MessageAttributes.entry.N.Name`,
  `MessageAttributes.entry.N.Value.DataType|StringValue|BinaryValue` (base64);
* lists: `Tags.member.N.Key|Value`, `TagKeys.member.N`,
  `PublishBatchRequestEntries.member.N.<field>`.

Decisions ([SPEC]): percent-encoding is strict (`%zz` and a dangling `%` are
refused) and the decoded bytes must be UTF-8; a parameter name given twice is
refused rather than "last wins", so two parsers can never disagree about a signed
request; values holding characters XML 1.0 cannot carry are refused, so every
value can be echoed back in a response. All of these are `InvalidQueryParameter`
(400), AWS's code for a query string that "does not adhere to AWS standards".
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

from pushgw.api.shapes import Kind, Param
from pushgw.errors import (
    InvalidQueryError,
    MissingActionError,
    ParameterValueInvalidError,
    ValidationError,
)
from pushgw.service.types import MessageAttributeInput

# Presigned-request parameters: authentication, not operation input.
AUTH_PARAMS = frozenset(
    {
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
        "X-Amz-Security-Token",
    }
)
MAX_INDEX_DIGITS = 6  # list / map positions are 1..999999
_BAD_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")
# Characters XML 1.0 cannot represent, even as character references.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_INDEX = re.compile(rf"[0-9]{{1,{MAX_INDEX_DIGITS}}}")


def malformed(detail: str) -> InvalidQueryError:
    """An InvalidQueryParameter error naming what was wrong."""
    return InvalidQueryError(
        "The AWS query string is malformed or does not adhere to AWS standards."
        f" {detail}"
    )


def decode_form(raw: bytes) -> list[tuple[str, str]]:
    """
    Decode `application/x-www-form-urlencoded` bytes (also a raw query string).

    `+` is a space; empty segments (`a=1&&b=2`) are skipped; a segment without
    `=` has the value "".

    Raises:
        InvalidQueryError: bad percent-encoding, non-UTF-8 or an empty name.
    """
    pairs: list[tuple[str, str]] = []
    for segment in raw.split(b"&"):
        if not segment:
            continue
        name, _, value = segment.partition(b"=")
        key = _unescape(name)
        if not key:
            raise malformed("A parameter has an empty name.")
        pairs.append((key, _unescape(value)))
    return pairs


def _unescape(part: bytes) -> str:
    if _BAD_PERCENT.search(part):
        raise malformed("Invalid percent-encoding.")
    try:
        return unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise malformed("Parameters must be UTF-8.") from None


class Params:
    """
    The operation input as a tree of dotted names.

    Readers return None for members the client omitted, so the service layer can
    answer with SNS's own required-parameter errors.
    """

    __slots__ = ("_path", "_tree")

    def __init__(self, tree: dict[str, object], path: str = "") -> None:
        self._tree = tree
        self._path = path

    def string(self, name: str) -> str | None:
        """A scalar member."""
        node = self._tree.get(name)
        if node is None or isinstance(node, str):
            return node
        raise malformed(f"{self._name(name)} must be a single value.")

    def boolean(self, name: str) -> bool | None:
        """A boolean member (`true` / `false`, any case)."""
        value = self.string(name)
        if value is None:
            return None
        if value.lower() not in ("true", "false"):
            raise ValidationError(
                f"1 validation error detected: Value '{value[:64]}' at"
                f" '{name[:1].lower()}{name[1:]}' failed to satisfy constraint:"
                " Member must be a boolean"
            )
        return value.lower() == "true"

    def mapping(self, name: str) -> dict[str, str] | None:
        """A `Name.entry.N.key` / `Name.entry.N.value` map."""
        entries = self._entries(name, "entry")
        if entries is None:
            return None
        out: dict[str, str] = {}
        for n, entry in entries:
            key = entry.string("key")
            value = entry.string("value")
            if key is None or value is None:
                raise _null(f"{self._name(name)}.entry.{n}.{'value' if key else 'key'}")
            if key in out:
                raise malformed(f"{self._name(name)} has the key '{key}' twice.")
            out[key] = value
        return out

    def message_attributes(self, name: str) -> dict[str, MessageAttributeInput]:
        """A `MessageAttributeMap`; absent → empty (the member is optional)."""
        entries = self._entries(name, "entry") or []
        out: dict[str, MessageAttributeInput] = {}
        for n, entry in entries:
            key = entry.string("Name")
            if key is None:
                raise _null(f"{self._name(name)}.entry.{n}.Name")
            if key in out:
                raise malformed(f"{self._name(name)} has the name '{key}' twice.")
            value = entry.child("Value")
            out[key] = (
                MessageAttributeInput(data_type=None)
                if value is None
                else value._message_attribute(key)
            )
        return out

    def _message_attribute(self, name: str) -> MessageAttributeInput:
        binary = self.string("BinaryValue")
        decoded: bytes | None = None
        if binary is not None:
            try:
                decoded = base64.b64decode(binary.encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError):
                raise ParameterValueInvalidError(
                    f"The message attribute '{name}' with type 'Binary' must use"
                    " field 'Binary' with a base64-encoded value."
                ) from None
        return MessageAttributeInput(
            data_type=self.string("DataType"),
            string_value=self.string("StringValue"),
            binary_value=decoded,
        )

    def members(self, name: str) -> list[Params] | None:
        """A `Name.member.N.<field>` list of structures."""
        entries = self._entries(name, "member")
        return None if entries is None else [p for _, p in entries]

    def strings(self, name: str) -> list[str] | None:
        """A `Name.member.N` list of strings."""
        node = self._container(name)
        if node is None:
            return None
        out: list[str] = []
        for n, item in _indexed(node, "member", self._name(name)):
            if not isinstance(item, str):
                raise malformed(f"{self._name(name)}.member.{n} must be a value.")
            out.append(item)
        return out

    def tags(self, name: str) -> dict[str, str] | None:
        """A `Name.member.N.Key|Value` tag list, as a mapping."""
        members = self.members(name)
        if members is None:
            return None
        out: dict[str, str] = {}
        for n, tag in enumerate(members, 1):
            key, value = tag.string("Key"), tag.string("Value")
            if key is None or value is None:
                raise _null(
                    f"{self._name(name)}.member.{n}.{'Value' if key else 'Key'}"
                )
            out[key] = value
        return out

    def child(self, name: str) -> Params | None:
        """A nested structure member."""
        node = self._container(name)
        return None if node is None else Params(node, self._name(name))

    # -- helpers ---------------------------------------------------------------
    def _name(self, name: str) -> str:
        return f"{self._path}.{name}" if self._path else name

    def _container(self, name: str) -> dict[str, object] | None:
        node = self._tree.get(name)
        if node is None or isinstance(node, dict):
            return node
        if node == "":
            # botocore serialises an empty list as `Name=` (no members).
            return {}
        raise malformed(f"{self._name(name)} must not be a single value.")

    def _entries(self, name: str, tag: str) -> list[tuple[int, Params]] | None:
        node = self._container(name)
        if node is None:
            return None
        out: list[tuple[int, Params]] = []
        for n, item in _indexed(node, tag, self._name(name)):
            if not isinstance(item, dict):
                raise malformed(f"{self._name(name)}.{tag}.{n} must be a structure.")
            out.append((n, Params(item, f"{self._name(name)}.{tag}.{n}")))
        return out


def _indexed(node: dict[str, object], tag: str, path: str) -> list[tuple[int, object]]:
    """The `tag.N` children of a list or map node, ordered by N."""
    if not node:
        return []
    if set(node) != {tag}:
        raise malformed(f"{path} must be given as {path}.{tag}.N.")
    items = node[tag]
    if not isinstance(items, dict):
        raise malformed(f"{path}.{tag} must be numbered.")
    out: dict[int, object] = {}
    for index, item in items.items():
        if not _INDEX.fullmatch(index) or int(index) < 1:
            raise malformed(f"{path}.{tag} positions must be numbers from 1.")
        if int(index) in out:
            raise malformed(f"{path}.{tag}.{int(index)} is given twice.")
        out[int(index)] = item
    return sorted(out.items(), key=lambda kv: kv[0])


def _null(member: str) -> ValidationError:
    return ValidationError(
        f"1 validation error detected: Value null at '{member}' failed to satisfy"
        " constraint: Member must not be null"
    )


def parse_query(pairs: Iterable[tuple[str, str]]) -> tuple[str, Params]:
    """
    Split decoded request pairs into the action name and its parameters.

    Presigned-request authentication parameters (`X-Amz-*`) are dropped; `Version`
    is accepted whatever its value (and when missing).

    Raises:
        InvalidQueryError: a name given twice, a conflicting structure, or a value
            XML cannot carry.
        MissingActionError: no `Action`.
    """
    tree: dict[str, object] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if name in AUTH_PARAMS:
            continue
        if name in seen:
            raise malformed(f"The parameter {name[:128]} is given twice.")
        seen.add(name)
        if _NOT_XML.search(value) or _NOT_XML.search(name):
            raise malformed(f"The parameter {name[:128]} has a forbidden character.")
        _insert(tree, name, value)
    action = tree.get("Action")
    if not isinstance(action, str) or not action:
        raise MissingActionError()
    return action, Params(tree)


def _insert(tree: dict[str, object], name: str, value: str) -> None:
    parts = name.split(".")
    if not all(parts):
        raise malformed(f"The parameter name {name[:128]} is not valid.")
    node = tree
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise malformed(
                f"{'.'.join(parts[: i + 1])[:128]} is both a value and a structure."
            )
        node = child
    if parts[-1] in node:
        raise malformed(f"{name[:128]} is both a value and a structure.")
    node[parts[-1]] = value


def read_members(params: Params, wanted: Sequence[Param]) -> dict[str, Any]:
    """
    The values of `wanted`, by member name, read in order (so the first bad member
    is the one an error names). LIST elements are dicts of their members' values.
    """
    return {param.name: _read(params, param) for param in wanted}


def _read(params: Params, param: Param) -> Any:
    name = param.name
    match param.kind:
        case Kind.STRING:
            return params.string(name)
        case Kind.BOOLEAN:
            return params.boolean(name)
        case Kind.MAP:
            return params.mapping(name)
        case Kind.TAGS:
            return params.tags(name)
        case Kind.STRINGS:
            return params.strings(name)
        case Kind.MESSAGE_ATTRIBUTES:
            return params.message_attributes(name)
        case Kind.LIST:
            assert param.members is not None, name
            members = param.members.params
            return [read_members(e, members) for e in params.members(name) or []]
