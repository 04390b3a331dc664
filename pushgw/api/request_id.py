"""
The request id: the client's `X-Request-ID` when usable, else a new UUID.

Echoed in the `x-request-id` answer header (and as SNS's RequestId), bound to
every log line of the request, so a client's id finds the gateway's lines.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

from aiohttp import web

# The aiohttp request key it is kept under.
REQUEST_ID: web.RequestKey[str] = web.RequestKey("pushgw.request_id", str)
# What a proxy or client id looks like (UUIDs, hex, ULIDs, dotted/colon forms);
# anything else (long, spaces, control characters) is replaced, not echoed.
_USABLE = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")


def request_id_of(headers: Mapping[str, str]) -> str:
    given = headers.get("x-request-id", "")
    return given if _USABLE.match(given) else str(uuid.uuid4())
