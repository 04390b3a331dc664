"""
WNS (Windows Push Notification Services) adapter.

One adapter per platform application: an OAuth2 client-credentials token
(Package SID + secret, `login.live.com/accesstoken.srf`, scope
`notify.windows.com`; the Azure AD flavour of the Windows App SDK fits by
configuring `token_url` and `scope`) cached single-flight, and one keep-alive
HTTP/1.1 pool. Each send POSTs the rendered XML (or raw bytes) to the endpoint's
channel URI, after `channel_guard` has checked that the URI is a WNS host, so
the bearer token never leaves for another server; the channel session connects
only to public addresses (`pushgw.netguard`; loopback too with `allow_loopback`),
whatever that host resolves to. The token URL is configuration: not guarded.

Wire reference:
https://learn.microsoft.com/en-us/windows/apps/design/shell/tiles-and-notifications/push-request-response-headers
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from pushgw.model import Endpoint, Platform, PlatformApplication
from pushgw.providers.base import (
    Outcome,
    ProviderSettings,
    RenderedMessage,
    SendResult,
    parse_retry_after,
)
from pushgw.providers.channel_guard import check_wns_channel
from pushgw.providers.http import Answer, HttpProvider
from pushgw.providers.oauth import AccessTokenCache, request_token

DEFAULT_TOKEN_URL = "https://login.live.com/accesstoken.srf"
DEFAULT_SCOPE = "notify.windows.com"
MAX_PAYLOAD_BYTES = 5000  # "413: the notification payload exceeds the 5000 byte limit"
MAX_TAG_CHARS = 16
WNS_TYPES = frozenset({"wns/toast", "wns/tile", "wns/badge", "wns/raw"})

# Status -> (outcome, note). A first 401 never gets here: the adapter refreshes
# the token and resends once ("do not try to re-send your notification more than
# once if the access token is rejected"), so a 401 in this table is the second.
# https://learn.microsoft.com/en-us/windows/apps/design/shell/tiles-and-notifications/push-request-response-headers#response-codes
STATUS_TABLE: dict[int, tuple[Outcome, str]] = {
    200: (Outcome.DELIVERED, "accepted"),
    400: (Outcome.PERMANENT, "bad or conflicting headers, or bad payload"),
    401: (Outcome.BAD_CREDENTIALS, "access token rejected after a refresh"),
    403: (Outcome.BAD_CREDENTIALS, "token not authorised for this channel's app"),
    404: (Outcome.INVALID_TOKEN, "channel URI not valid"),
    405: (Outcome.PERMANENT, "method not allowed"),
    406: (Outcome.RETRY, "channel throttled; honour X-WNS-CONTINUE-AFTER"),
    410: (Outcome.INVALID_TOKEN, "channel expired"),
    413: (Outcome.PERMANENT, "payload over 5000 bytes"),
    500: (Outcome.RETRY, "internal error"),
    503: (Outcome.RETRY, "service unavailable"),
}

_INVALID_XML_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_PROLOG_RE = re.compile(r"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>)", re.DOTALL)
_TAG_RE = re.compile(r"\s*<([A-Za-z_][\w.:-]*)")
_HEADER_VALUE_RE = re.compile(r"^[\x20-\x7e]*$")


def xml_text(value: str) -> str:
    """`value` as XML character data: escaped, and XML-illegal controls removed."""
    value = _INVALID_XML_CHARS.sub("", value)
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def toast_xml(text: str, *, subject: str | None = None) -> str:
    """The ToastGeneric toast SNS-style plain text becomes (SNS_API §8.1)."""
    texts = "".join(
        f"<text>{xml_text(t)}</text>" for t in (subject, text) if t is not None
    )
    return (
        '<toast><visual><binding template="ToastGeneric">'
        f"{texts}</binding></visual></toast>"
    )


def xml_root(body: str) -> str | None:
    """The local name of the root element, or None if `body` is not XML-like."""
    pos = 1 if body.startswith("\ufeff") else 0
    while match := _PROLOG_RE.match(body, pos):
        pos = match.end()
    tag = _TAG_RE.match(body, pos)
    return tag.group(1).rpartition(":")[2] if tag else None


@dataclass(frozen=True, slots=True)
class WnsRequest:
    """One rendered WNS request: body bytes and headers (without Authorization)."""

    body: bytes
    headers: dict[str, str]


def build_request(message: RenderedMessage, *, now: float) -> WnsRequest | SendResult:
    """
    Render `message` for WNS, or a PERMANENT result saying why it cannot be sent.

    `X-WNS-Type` comes from `WNS.Type`, else from the XML root (toast, tile,
    badge); any other native body is sent as `wns/raw`. Plain text becomes a
    toast (the subject, if any, as its title), or is sent as is with `wns/raw`.
    """
    explicit = message.attr("WNS.Type")
    body = message.body
    if not message.native and explicit != "wns/raw":  # plain text: a toast (§8.1)
        body = toast_xml(message.body, subject=message.subject)
    wns_type = explicit or _infer_type(body)
    if wns_type not in WNS_TYPES:
        return _permanent(f"unknown AWS.SNS.MOBILE.WNS.Type {wns_type!r}")
    raw = body.encode()
    if len(raw) > MAX_PAYLOAD_BYTES:
        return _permanent(f"payload {len(raw)} bytes > {MAX_PAYLOAD_BYTES}")
    headers = {
        "Content-Type": (
            "application/octet-stream" if wns_type == "wns/raw" else "text/xml"
        ),
        "X-WNS-Type": wns_type,
    }
    ttl = _ttl(message, now=now)
    if isinstance(ttl, SendResult):
        return ttl
    if ttl is not None:
        headers["X-WNS-TTL"] = str(ttl)
    for attr, header in _OPTIONAL_HEADERS:
        value = message.attr(attr)
        if value is None:
            continue
        if not _HEADER_VALUE_RE.match(value):
            return _permanent(f"AWS.SNS.MOBILE.{attr} has non-printable characters")
        headers[header] = value
    if len(headers.get("X-WNS-Tag", "")) > MAX_TAG_CHARS:
        return _permanent(f"AWS.SNS.MOBILE.WNS.Tag longer than {MAX_TAG_CHARS}")
    return WnsRequest(body=raw, headers=headers)


_OPTIONAL_HEADERS = (
    ("WNS.CachePolicy", "X-WNS-Cache-Policy"),
    ("WNS.Tag", "X-WNS-Tag"),
    ("WNS.Group", "X-WNS-Group"),
    ("WNS.SuppressPopup", "X-WNS-SuppressPopup"),
    ("WNS.Match", "X-WNS-Match"),
)


def _infer_type(body: str) -> str:
    root = xml_root(body)
    return f"wns/{root}" if root in ("toast", "tile", "badge") else "wns/raw"


def _ttl(message: RenderedMessage, *, now: float) -> int | SendResult | None:
    """Seconds left to live (X-WNS-TTL), or PERMANENT if already expired."""
    expires_at = message.expires_at
    if expires_at is None:
        raw = message.attr("WNS.TTL")
        if raw is None:
            return None
        try:
            ttl = int(raw)
        except ValueError:
            return _permanent(f"AWS.SNS.MOBILE.WNS.TTL is not an integer: {raw!r}")
        # SNS passes TTL minus the time the message waited (SNS_API §8.3).
        expires_at = (message.published_at or now) + ttl
    remaining = int(expires_at - now)
    if remaining <= 0:
        return _permanent("TTL expired before delivery")
    return remaining


def _permanent(reason: str) -> SendResult:
    return SendResult(Outcome.PERMANENT, reason, status=None)


def classify(answer: Answer) -> SendResult:
    """Map a WNS response (a 401 here came after the token refresh) to a SendResult."""
    status, headers = answer.status, answer.headers
    wns_status = headers.get("X-WNS-Status", "")
    detail = headers.get("X-WNS-Error-Description", "")
    reason = " ".join(p for p in (str(status), wns_status, detail) if p)
    if status == 200 and wns_status.lower() == "dropped":
        # Accepted, then explicitly dropped (device offline for toast, or the
        # client rejects this type): resending will not help.
        return SendResult(Outcome.PERMANENT, reason, status=status)
    if status == 406:
        after = parse_retry_after(headers.get("X-WNS-CONTINUE-AFTER"))
        if after is None:
            after = parse_retry_after(headers.get("Retry-After"))
        return SendResult(Outcome.RETRY, reason, retry_after=after, status=status)
    outcome, _ = STATUS_TABLE.get(status, (_fallback(status), ""))
    retry_after = None
    if outcome is Outcome.RETRY:
        retry_after = parse_retry_after(headers.get("Retry-After"))
    return SendResult(outcome, reason, retry_after=retry_after, status=status)


def _fallback(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.DELIVERED
    return Outcome.RETRY if status >= 500 or status == 429 else Outcome.PERMANENT


class WnsProvider(HttpProvider):
    """Sends to WNS channel URIs for one platform application."""

    platforms = frozenset({Platform.WNS})
    settings_name = "wns"
    guards_endpoint_urls = True  # channel URIs come from clients (netguard)

    def __init__(self, *, app: PlatformApplication, settings: ProviderSettings) -> None:
        super().__init__(app=app, settings=settings)
        self.tokens = AccessTokenCache(self._fetch_token)

    async def _send_once(
        self, endpoint: Endpoint, message: RenderedMessage
    ) -> SendResult:
        refused = check_wns_channel(
            endpoint.token, allow_loopback=self.settings.allow_loopback
        )
        if refused is not None:
            return _permanent(refused)
        request = build_request(message, now=time.time())
        if isinstance(request, SendResult):
            return request
        # On 401 refresh the token and resend once, never more (table note).
        answer = await self.tokens.authorized(
            lambda token: self._post(endpoint.token, request, token),
            rejected=lambda answer: answer.status == 401,
        )
        return classify(answer)

    async def _post(self, uri: str, request: WnsRequest, token: str) -> Answer:
        # `post` follows no redirects: a 3xx could point past the channel guard
        # and take the bearer token with it.
        headers = {**request.headers, "Authorization": f"Bearer {token}"}
        return await self.post(uri, data=request.body, headers=headers)

    async def _fetch_token(self) -> tuple[str, float]:
        """Client-credentials grant; 4xx means the SID or secret is wrong."""
        form = {
            "grant_type": "client_credentials",
            "client_id": self.app.principal,
            "client_secret": self.app.credential,
            "scope": self.settings.scope or DEFAULT_SCOPE,
        }
        url = self.settings.token_url or DEFAULT_TOKEN_URL
        # The token URL comes from the configuration: not through the guard.
        return await request_token(
            self.post_configured, url, form, default_expires_in=86400.0
        )
