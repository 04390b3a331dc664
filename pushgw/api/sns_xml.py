"""
XML rendering of SNS Query API responses (SNS_API §1.3, §10).

Every response parses with botocore's `QueryParser`:

* success: `<{Action}Response xmlns=…><{Action}Result>…</{Action}Result>
  <ResponseMetadata><RequestId>…</RequestId></ResponseMetadata></{Action}Response>`;
  operations without output carry only `ResponseMetadata`;
* maps: `<Attributes><entry><key>K</key><value>V</value></entry></Attributes>`;
* lists: `<Endpoints><member>…</member></Endpoints>`, and `<Endpoints/>` when empty
  (botocore only creates the key when the element exists);
* errors: `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/>`.

All text is escaped; characters XML 1.0 cannot carry are replaced by U+FFFD so a
response is always well-formed, whatever was stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pushgw.api.shapes import Context, Field, Kind

XMLNS = "http://sns.amazonaws.com/doc/2010-03-31/"
CONTENT_TYPE = "text/xml"

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\r": "&#13;"}
_SPECIAL = re.compile('[&<>"\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]')


def escape(text: str) -> str:
    """Escape text for an XML element; un-representable characters become U+FFFD."""
    return _SPECIAL.sub(lambda m: _ESCAPES.get(m.group(), "\ufffd"), text)


def element(name: str, text: str | None) -> str:
    """`<name>text</name>`, or nothing when `text` is None."""
    return "" if text is None else f"<{name}>{escape(text)}</{name}>"


def attributes(values: Mapping[str, str], name: str = "Attributes") -> str:
    """A string map as `<entry><key/><value/></entry>` children."""
    entries = "".join(
        f"<entry>{element('key', k)}{element('value', v)}</entry>"
        for k, v in values.items()
    )
    return f"<{name}>{entries}</{name}>" if entries else f"<{name}/>"


def members(name: str, items: Iterable[str]) -> str:
    """A list of already-rendered members; `<name/>` when empty."""
    inner = "".join(f"<member>{item}</member>" for item in items)
    return f"<{name}>{inner}</{name}>" if inner else f"<{name}/>"


def tags(values: Mapping[str, str], name: str = "Tags") -> str:
    """A `Tags` list of `<member><Key/><Value/></member>`."""
    return members(
        name, (element("Key", k) + element("Value", v) for k, v in values.items())
    )


def result(fields: tuple[Field, ...] | None, value: Any, ctx: Context) -> str | None:
    """
    The inner XML of `<{Action}Result>` for an operation's output fields (see
    `success` for None and ""); JSON-only fields are left out.
    """
    if fields is None:
        return None
    return "".join(_field(f, f.get(value, ctx), ctx) for f in fields if f.sns)


def _field(field: Field, value: Any, ctx: Context) -> str:
    match field.kind:
        case Kind.MAP:
            return attributes(value, field.name)
        case Kind.TAGS:
            return tags(value, field.name)
        case Kind.LIST:
            assert field.item is not None, field.name
            shape = field.item.fields
            return members(field.name, (result(shape, v, ctx) or "" for v in value))
        case Kind.BOOLEAN:
            return element(field.name, None if value is None else str(value).lower())
        case _:
            return element(field.name, value)


def success(action: str, result: str | None, request_id: str) -> str:
    """
    The response document of a successful action.

    Args:
        action: the operation name, e.g. `CreateTopic`.
        result: the inner XML of `<{action}Result>`; None for operations without
            output, "" for an empty output structure.
        request_id: echoed in `ResponseMetadata`.
    """
    if result is None:
        body = ""
    elif result:
        body = f"<{action}Result>{result}</{action}Result>"
    else:
        body = f"<{action}Result/>"
    return (
        f'<{action}Response xmlns="{XMLNS}">{body}'
        f"<ResponseMetadata>{element('RequestId', request_id)}</ResponseMetadata>"
        f"</{action}Response>"
    )


def error(*, code: str, message: str, sender_fault: bool, request_id: str) -> str:
    """The `ErrorResponse` document; `Type` is Sender for 4xx, Receiver for 5xx."""
    kind = "Sender" if sender_fault else "Receiver"
    return (
        f'<ErrorResponse xmlns="{XMLNS}"><Error>{element("Type", kind)}'
        f"{element('Code', code)}{element('Message', message)}</Error>"
        f"{element('RequestId', request_id)}</ErrorResponse>"
    )
