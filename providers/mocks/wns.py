"""
Loopback WNS: the token endpoint and channel URIs, speaking the real wire format.

`issue_credentials()` makes a Package SID and secret; `/accesstoken.srf` trades
them for bearer tokens (client-credentials grant). `register_device()` returns a
channel URI `{base_url}/w/?token=<id>`; POSTs to it are checked the way WNS
checks them (auth, channel state, X-WNS-Type vs Content-Type and XML root, 5000
bytes) and answered with WNS's status codes and headers
(https://learn.microsoft.com/en-us/windows/apps/design/shell/tiles-and-notifications/push-request-response-headers).

Device states: valid (200), unregistered (410 channel expired), invalid (404),
foreign (403: the channel belongs to another app), canonical (as valid: WNS has
no canonical ids). Faults, keyed by the full channel URI: throttle (406 +
X-WNS-CONTINUE-AFTER), unavailable (503), server_error (500), expire_auth (401),
bad_credentials (403), invalid_token (410), latency, drop, hang.
"""

from __future__ import annotations

import itertools
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from pushgw.providers.mocks.base import DEVICE_STATES, FaultRule
from pushgw.providers.mocks.http import AiohttpMock, dropped

WNS_STATES = DEVICE_STATES | {"foreign"}
MAX_PAYLOAD_BYTES = 5000
CONTENT_TYPES = {
    "wns/toast": "text/xml",
    "wns/tile": "text/xml",
    "wns/badge": "text/xml",
    "wns/raw": "application/octet-stream",
}
# Headers worth keeping with a delivery (the rest is transport noise).
RECORDED_HEADERS = (
    "Content-Type",
    "X-WNS-Type",
    "X-WNS-TTL",
    "X-WNS-Tag",
    "X-WNS-Group",
    "X-WNS-Cache-Policy",
    "X-WNS-SuppressPopup",
    "X-WNS-Match",
    "X-WNS-RequestForStatus",
)
_FAULT_ANSWERS: dict[str, tuple[int, str, str]] = {
    # kind: (status, X-WNS-Status, X-WNS-Error-Description)
    "unavailable": (503, "dropped", "Service unavailable"),
    "server_error": (500, "dropped", "Internal server error"),
    "expire_auth": (401, "dropped", "Token expired"),
    "bad_credentials": (403, "dropped", "Token does not match the channel's app"),
    "invalid_token": (410, "dropped", "Channel expired"),
}


@dataclass(slots=True)
class _Token:
    sid: str
    expires_at: float


class WnsMock(AiohttpMock):
    """Loopback WNS. `token_url` is `{base_url}/accesstoken.srf`."""

    platform = "WNS"

    def __init__(
        self,
        *,
        token_expires_in: int = 86400,
        scopes: tuple[str, ...] = ("notify.windows.com",),
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(clock=clock)
        self.token_expires_in = token_expires_in
        self.scopes = scopes
        self.apps: dict[str, str] = {}  # Package SID -> secret
        self.tokens: dict[str, _Token] = {}
        self.token_requests = 0
        self._channels: dict[str, str] = {}  # channel id -> channel URI
        self._owners: dict[str, str] = {}  # channel URI -> owning Package SID
        self._ids = itertools.count(1)

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/accesstoken.srf"

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/accesstoken.srf", self._token)
        app.router.add_route("*", "/w/", self._notify)
        return app

    def issue_credentials(self, **options: Any) -> dict[str, str]:
        """A Package SID (PlatformPrincipal) and its secret (PlatformCredential)."""
        digits = "-".join(str(secrets.randbelow(4_000_000_000)) for _ in range(7))
        sid = f"ms-app://s-1-15-2-{digits}"
        secret = secrets.token_urlsafe(24)
        self.apps[sid] = secret
        return {"PlatformPrincipal": sid, "PlatformCredential": secret}

    def register_device(self, *, state: str = "valid", owner: str | None = None) -> str:
        """
        A new channel URI. `owner` (a Package SID) makes sends from other apps
        get 403; state "foreign" does the same with an unknown owner.
        """
        if not self.base_url:
            raise RuntimeError("start() the mock before registering channels")
        if state not in WNS_STATES:
            raise ValueError(f"unknown device state {state!r}")
        channel_id = f"{next(self._ids):06d}{secrets.token_urlsafe(12)}"
        uri = f"{self.base_url}/w/?token={channel_id}"
        self._channels[channel_id] = uri
        self.devices[uri] = state
        if owner is not None:
            self._owners[uri] = owner
        return uri

    def set_device_state(self, token: str, state: str) -> None:
        if state not in WNS_STATES:
            raise ValueError(f"unknown device state {state!r}")
        self.devices[token] = state

    def expire_tokens(self) -> None:
        """Make every issued access token expired (the next send gets 401)."""
        for token in self.tokens.values():
            token.expires_at = self.clock() - 1

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        if (outage := self.token_outage()) is not None:
            return outage
        sid, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        if form.get("grant_type") != "client_credentials":
            return _oauth_error("unsupported_grant_type")
        if self.apps.get(sid) is None or not secrets.compare_digest(
            self.apps[sid], secret
        ):
            self.stats["token_refused"] += 1
            return _oauth_error("invalid_client")
        if form.get("scope") not in self.scopes:
            return _oauth_error("invalid_scope")
        token = secrets.token_urlsafe(32)
        self.tokens[token] = _Token(sid, self.clock() + self.token_expires_in)
        self.stats["token_issued"] += 1
        body = {
            "token_type": "bearer",
            "access_token": token,
            "expires_in": self.token_expires_in,
        }
        return web.json_response(body)

    async def _notify(self, request: web.Request) -> web.StreamResponse:
        uri = self._channels.get(request.query.get("token", ""), str(request.url))
        rule = self.faults.take(uri)
        if await self.transport_fault(rule, request):
            return dropped()
        body = await request.read()
        status, wns_status, error = self._judge(request, uri, body, rule)
        self.note_request(
            {"uri": uri, "status": status, "type": request.headers.get("X-WNS-Type")}
        )
        headers = {
            "X-WNS-Msg-ID": secrets.token_hex(8),
            "X-WNS-Status": wns_status,
            "MS-CV": f"{secrets.token_urlsafe(16)}.0",
        }
        if request.headers.get("X-WNS-RequestForStatus", "").lower() == "true":
            headers["X-WNS-DeviceConnectionStatus"] = "connected"
        if error:
            headers["X-WNS-Error-Description"] = error
        if status == 406:
            after = rule.retry_after if rule and rule.retry_after is not None else 60
            headers["X-WNS-CONTINUE-AFTER"] = str(int(after))
        elif status == 503 and rule is not None and rule.retry_after is not None:
            headers["Retry-After"] = str(int(rule.retry_after))
        if status == 200:
            recorded = {
                h: request.headers[h] for h in RECORDED_HEADERS if h in request.headers
            }
            self.record(uri, body.decode("utf-8", "replace"), recorded)
        else:
            self.stats[f"http_{status}"] += 1
        return web.Response(status=status, headers=headers)

    def _judge(
        self, request: web.Request, uri: str, body: bytes, rule: FaultRule | None
    ) -> tuple[int, str, str]:
        """(status, X-WNS-Status, error description) for one notification POST."""
        if request.method != "POST":
            return 405, "dropped", "Method not allowed"
        if rule is not None and rule.kind == "throttle":
            self.stats["fault_throttle"] += 1
            return 406, "channelthrottled", "Channel throttled"
        if rule is not None and rule.kind in _FAULT_ANSWERS:
            self.stats[f"fault_{rule.kind}"] += 1
            return _FAULT_ANSWERS[rule.kind]
        sid = self._authorise(request.headers.get("Authorization", ""))
        if sid is None:
            return 401, "dropped", "Invalid or expired access token"
        state = self.devices.get(uri)
        if state is None or state == "invalid":
            return 404, "dropped", "Channel URI not valid"
        if state == "unregistered":
            return 410, "dropped", "Channel expired"
        owner = self._owners.get(uri)
        if state == "foreign" or (owner is not None and owner != sid):
            return 403, "dropped", "Token does not match the channel's app"
        if len(body) > MAX_PAYLOAD_BYTES:
            return 413, "dropped", "Payload exceeds 5000 bytes"
        problem = _check_headers(request, body)
        if problem:
            return 400, "dropped", problem
        return 200, "received", ""

    def _authorise(self, header: str) -> str | None:
        """The Package SID a live bearer token belongs to, else None."""
        scheme, _, value = header.partition(" ")
        token = self.tokens.get(value) if scheme.lower() == "bearer" else None
        if token is None or self.clock() >= token.expires_at:
            return None
        return token.sid


def _check_headers(request: web.Request, body: bytes) -> str:
    """Why WNS would answer 400 to these headers and body, or ""."""
    wns_type = request.headers.get("X-WNS-Type", "")
    if wns_type not in CONTENT_TYPES:
        return f"Invalid X-WNS-Type {wns_type!r}"
    content_type = request.headers.get("Content-Type", "").partition(";")[0].strip()
    if content_type != CONTENT_TYPES[wns_type]:
        return f"Content-Type {content_type!r} does not match {wns_type}"
    if len(request.headers.get("X-WNS-Tag", "")) > 16:
        return "X-WNS-Tag longer than 16 characters"
    if request.headers.get("X-WNS-Cache-Policy", "cache") not in ("cache", "no-cache"):
        return "Invalid X-WNS-Cache-Policy"
    ttl = request.headers.get("X-WNS-TTL")
    if ttl is not None and not ttl.isdigit():
        return "Invalid X-WNS-TTL"
    if wns_type == "wns/raw":
        return ""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        return f"Payload is not well-formed XML: {exc}"
    if root.tag != wns_type.removeprefix("wns/"):
        return f"Root element <{root.tag}> does not match {wns_type}"
    return ""


def _oauth_error(error: str) -> web.Response:
    return web.json_response(
        {"error": error, "error_description": error.replace("_", " ")}, status=400
    )
