"""
Which string SNS sends to a platform (SNS_API §6.3, §8.1).

Shared by Publish validation and the delivery engine, so both decide the same way.
"""

from __future__ import annotations

from typing import Any

from pushgw import safejson
from pushgw.model import Message, Platform


def parse_structure(body: str) -> dict[str, Any] | None:
    """The JSON object of a `MessageStructure=json` body, or None if it is not one."""
    try:
        data = safejson.loads(body)
    except safejson.JsonInputError:  # malformed or too deep: SNS's "failed to parse"
        return None
    return data if isinstance(data, dict) else None


def select(message: Message, platform: Platform) -> tuple[str, bool] | None:
    """
    `(body, native)` for `platform`: the platform key's string when the JSON
    structure has one (native provider payload), else the `default` string or the
    plain message (text the adapter wraps). None when there is nothing to send.
    """
    if message.structure != "json":
        return message.body, False
    data = parse_structure(message.body)
    if data is None:
        return None
    specific = data.get(platform.value)
    if isinstance(specific, str):
        return specific, True
    default = data.get("default")
    if isinstance(default, str):
        return default, False
    return None
