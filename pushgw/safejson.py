"""
The one JSON parser for client input.

Why not plain `json.loads`: CPython's decoder recurses once per nesting level, so
`[[[[…]]]]` about a thousand deep raises RecursionError, which is not a ValueError
and escapes every `except ValueError` as an HTTP 500 (or, for data parsed again in
the background, a crash in the delivery engine). A structure just under that depth
parses, is stored, and hits the same limit later in whichever component parses it
next on a deeper stack. So every parse of client input goes through `loads`, which
refuses both malformed JSON and anything nested deeper than `max_depth` with one
exception type, `JsonInputError`, a ValueError the callers turn into their own
client error.

Cost: the common case never walks the tree in Python. A document with at most
`max_depth` opening brackets in its text cannot nest deeper than that, so the two
C-speed `count` calls decide it; only documents with more brackets (inside strings
or not) are walked, iteratively.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

# 64 levels: legitimate inputs nest far less (an FCM v1 payload in SNS's
# `fcmV1Message` wrapper is ~6 deep, an APNs payload ~4, a filter policy or a JSON
# API body ~4), and 64 stays an order of magnitude below CPython's recursion
# limit (1000), so nothing we accept can make a later `json.loads` elsewhere
# (adapters, the provider's own parser) run out of stack.
MAX_DEPTH = 64

NOT_JSON = "not valid JSON"


class JsonInputError(ValueError):
    """Client input is not JSON we accept; `reason` says why, briefly."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def too_deep(max_depth: int) -> str:
    """The reason text for a document nested deeper than `max_depth`."""
    return f"nested deeper than {max_depth} levels"


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """
    Parse client-supplied JSON.

    Strict JSON: `NaN`, `Infinity` and `-Infinity` (which Python accepts and no
    other parser does) are refused. Duplicate keys keep the last value, as SNS
    does (SNS_API §6.3).

    Args:
        text: the document; bytes may be UTF-8, -16 or -32 (detected as
            `json.loads` does) and must decode strictly.
        max_depth: the deepest nesting of arrays and objects accepted; a scalar
            is depth 0, `[]` depth 1, `[[]]` depth 2.

    Raises:
        JsonInputError: malformed JSON, bytes that are not valid Unicode, or a
            structure deeper than `max_depth`. Never anything else for str/bytes.
    """
    try:
        if isinstance(text, bytes):
            # Strict, unlike json.loads(bytes), which lets UTF-8-encoded lone
            # surrogates through ("surrogatepass").
            text = text.decode(json.detect_encoding(text))
        data = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise JsonInputError(too_deep(max_depth)) from None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, int digit limit
        raise JsonInputError(NOT_JSON) from None
    # Nesting needs an opening bracket per level, so few brackets: no walk.
    if text.count("[") + text.count("{") > max_depth and _depth_exceeds(
        data, max_depth
    ):
        raise JsonInputError(too_deep(max_depth))
    return data


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _depth_exceeds(data: Any, max_depth: int) -> bool:
    """True if `data` nests deeper than `max_depth`; iterative, so any depth is safe."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        depth += 1
        if depth > max_depth:
            return True
        stack.extend((c, depth) for c in children if isinstance(c, (dict, list)))
    return False
