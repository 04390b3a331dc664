"""HTTP answers built in memory, for error-table rows no mock produces."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

from pushgw.providers.http import Answer


def answer(
    status: int, body: Any = b"", headers: Mapping[str, str] | None = None
) -> Answer:
    """An `Answer`; a dict or list body is sent as JSON, a str as UTF-8."""
    if isinstance(body, dict | list):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    return Answer(status, CIMultiDictProxy(CIMultiDict(headers or {})), body)
