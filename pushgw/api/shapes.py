"""
The vocabulary of the operations table (`operations.py`), after botocore's service
model: what an operation takes, what it answers, and where the JSON binding puts
each member. The bindings (`sns_parse`/`sns_xml` for SNS Query, `json_body`/
`json_api` for JSON) and `openapi` interpret it; none lists an operation's members
itself.

Every `Kind` has one Python value and one form per binding:

| kind               | Python value                     | SNS Query wire                      | JSON                    |
|--------------------|----------------------------------|-------------------------------------|-------------------------|
| STRING             | str                              | `Name=v`                            | string                  |
| BOOLEAN            | bool                             | `Name=true`                         | true / false            |
| MAP                | dict[str, str]                   | `Name.entry.N.key` / `.value`       | object of strings       |
| TAGS               | dict[str, str]                   | `Name.member.N.Key` / `.Value`      | object of strings       |
| STRINGS            | list[str]                        | `Name.member.N`                     | array / repeated query  |
| MESSAGE_ATTRIBUTES | dict[str, MessageAttributeInput] | `Name.entry.N.Name` / `.Value.*`    | {"n": {"dataType", …}}  |
| LIST               | list of structures               | `Name.member.N.<member>`            | array of objects        |

A value the client left out is None (message attributes: empty), so the service
answers with SNS's own required-member errors: `required` documents the model, it
is not checked by the bindings.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pushgw.service import Service


class Kind(enum.Enum):
    STRING = "string"
    BOOLEAN = "boolean"
    MAP = "map"
    TAGS = "tags"
    STRINGS = "strings"
    MESSAGE_ATTRIBUTES = "message_attributes"
    LIST = "list"


class Where(enum.Enum):
    """Where the JSON binding carries a member."""

    BODY = "body"
    PATH = "path"
    QUERY = "query"


class Binding(enum.Enum):
    SNS = "sns"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class Param:
    """One input member of an operation."""

    name: str  # the SNS member name, e.g. "PlatformApplicationArn"
    kind: Kind
    required: bool = False  # required in the botocore model
    arg: str = ""  # the Service keyword; "" is snake_case(name)
    json: Where | None = Where.BODY  # None: the JSON binding has no such member
    json_name: str = ""  # "" is camelCase(name)
    json_default: str | None = None  # the JSON binding's value when it is absent
    sns: bool = True  # False: only the JSON binding has it
    resource: bool = False  # names the resource in an AuthorizationError
    checked_only: bool = False  # read and validated, but not passed on
    slashes: int = 0  # an ARN in a JSON path: how many "/" it holds
    members: Structure | None = None  # LIST: what each member holds

    @property
    def kwarg(self) -> str:
        return self.arg or snake_case(self.name)

    @property
    def json_key(self) -> str:
        return self.json_name or camel_case(self.name)


@dataclass(frozen=True, slots=True)
class Structure:
    """The members of each element of a LIST input, and what to build from them."""

    name: str  # the model's shape name, also the OpenAPI schema name
    params: tuple[Param, ...]
    build: Callable[..., Any]  # called with each element's keywords


@dataclass(frozen=True, slots=True)
class Context:
    """What an output getter may read besides the service's answer."""

    service: Service
    args: Mapping[str, Any]  # the request's values by SNS member name


Getter = Callable[[Any, Context], Any]


@dataclass(frozen=True, slots=True)
class Field:
    """One output member: its name, kind and how to read it from the answer."""

    name: str  # the SNS member name; JSON uses camelCase(name)
    kind: Kind
    get: Getter
    required: bool = True  # always present (None values are left out)
    sns: bool = True  # False: only in the JSON answer (an echo of the path's ARN)
    item: Shape | None = None  # LIST: the shape of each element


@dataclass(frozen=True, slots=True)
class Shape:
    """A named output structure (an element of an output list)."""

    name: str
    fields: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class Http:
    """The JSON binding of an operation."""

    method: str
    path: str  # `{jsonName}` placeholders, one per PATH member
    status: int  # 204: no body
    call: str = ""  # a different Service method (several attributes at once)


@dataclass(frozen=True, slots=True)
class Operation:
    """
    One SNS action. Its name is also what key `actions` limits list, in both APIs.
    `params` are in the order SNS Query reads them, which decides which of two bad
    members an error names.
    """

    name: str
    summary: str
    call: str  # the Service method
    params: tuple[Param, ...]
    output: tuple[Field, ...] | None  # None: no Result element at all
    http: Http
    packs: Callable[..., Any] | None = None  # the service takes one input object
    # SNS Query may call it unsigned; the Service method takes `authenticated`.
    anonymous: bool = False

    def params_for(self, binding: Binding) -> tuple[Param, ...]:
        if binding is Binding.SNS:
            return tuple(p for p in self.params if p.sns)
        return tuple(p for p in self.params if p.json is not None)

    def method_for(self, binding: Binding) -> str:
        return (
            self.http.call if binding is Binding.JSON and self.http.call else self.call
        )


async def invoke(
    op: Operation,
    binding: Binding,
    service: Service,
    args: Mapping[str, Any],
    *,
    authenticated: bool = True,
) -> Any:
    """Call the Service with the values a binding read (by SNS member name)."""
    kwargs = keywords(op.params_for(binding), args)
    if op.anonymous:
        kwargs["authenticated"] = authenticated
    method = getattr(service, op.method_for(binding))
    if op.packs is not None:
        return await method(op.packs(**kwargs))
    return await method(**kwargs)


def keywords(params: tuple[Param, ...], values: Mapping[str, Any]) -> dict[str, Any]:
    """Service keywords from read values; LIST elements are built here."""
    out: dict[str, Any] = {}
    for param in params:
        if param.checked_only:
            continue
        value = values[param.name]
        if param.members is not None:
            structure = param.members
            value = [structure.build(**keywords(structure.params, v)) for v in value]
        out[param.kwarg] = value
    return out


_WORD = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@functools.cache  # a few dozen member names, looked up on every request
def snake_case(name: str) -> str:
    """`PlatformApplicationArn` → `platform_application_arn`."""
    return _WORD.sub("_", name).lower()


def camel_case(name: str) -> str:
    """`PlatformApplicationArn` → `platformApplicationArn`."""
    return name[:1].lower() + name[1:]
