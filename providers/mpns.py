"""
MPNS (Microsoft Push Notification Service, Windows Phone 7/8) adapter.

**Retired upstream.** On 2018-02-20 Microsoft turned off MPNS for Windows Phone
7.5 and 8.0, and calls it "deprecated and no longer supported"
(https://learn.microsoft.com/en-us/rest/api/notificationhubs/send-mpns-native-notification).
This adapter is complete against the loopback mock (`providers.mocks.mpns`) only;
no live service answers it any more.

Each send POSTs the toast/tile XML (or raw body) to the endpoint's channel URI,
after `channel_guard` has checked it is under notify.live.net (or loopback when
the settings allow it), through a session that connects only to public addresses
(`pushgw.netguard`; loopback too with `allow_loopback`). An "authenticated web service" sends with a TLS client
certificate: when the application's PlatformPrincipal is a PEM certificate and
its PlatformCredential a PEM private key, they are used for https channels.
Response codes: https://learn.microsoft.com/previous-versions/windows/apps/ff941100(v=vs.105)
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
import tempfile
import time
import uuid
from dataclasses import dataclass
from typing import Self

from pushgw.errors import ProviderSetupError
from pushgw.model import Endpoint, Platform, PlatformApplication
from pushgw.providers.base import Outcome, ProviderSettings, RenderedMessage, SendResult
from pushgw.providers.channel_guard import check_mpns_channel
from pushgw.providers.http import Answer, HttpProvider

MAX_XML_BYTES = 3072  # toast/tile; 3 KB is the commonly quoted limit (unverified)
MAX_RAW_BYTES = 1024  # "any text up to 1 Kb" (Azure Notification Hubs doc)
# X-NotificationClass: base per type + delay offset (immediate / 450 s / 900 s).
CLASS_BASE = {"token": 1, "toast": 2, "raw": 3}
CLASS_DELAY = {"realtime": 0, "priority": 10, "regular": 20}
TARGET_HEADER = {"token": "token", "toast": "toast"}  # raw omits the header

# (HTTP status, X-NotificationStatus or "") -> (outcome, retry_after seconds).
# Lookup tries the exact pair, then the status alone. jeffwilcox/mpns deletes the
# channel on 401 (and 400); we disable the endpoint on 401 only, since a 400 is
# usually our payload.
STATUS_TABLE: dict[tuple[int, str], tuple[Outcome, float | None]] = {
    (200, "received"): (Outcome.DELIVERED, None),  # queued, not a delivery receipt
    (200, "queuefull"): (Outcome.RETRY, 60.0),  # back off in minute steps
    (200, "suppressed"): (Outcome.PERMANENT, None),  # channel suppresses this class
    (200, "dropped"): (Outcome.PERMANENT, None),
    (200, ""): (Outcome.DELIVERED, None),
    (400, ""): (Outcome.PERMANENT, None),  # bad XML or malformed URI
    (401, ""): (Outcome.INVALID_TOKEN, None),  # bad certificate or URI
    (403, ""): (Outcome.BAD_CREDENTIALS, None),  # authenticated-push cert problem
    (404, ""): (Outcome.INVALID_TOKEN, None),  # subscription expired or dropped
    (405, ""): (Outcome.PERMANENT, None),  # wrong method
    (406, ""): (Outcome.RETRY, 3600.0),  # per-day throttle (rpush: 1 h)
    (412, ""): (Outcome.RETRY, 3660.0),  # device inactive: wait at least 61 min
    (503, ""): (Outcome.RETRY, 300.0),  # unavailable (jeffwilcox/mpns: 5 min)
}

_INVALID_XML_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_PROLOG_RE = re.compile(r"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>)", re.DOTALL)
_TAG_RE = re.compile(r"\s*<([A-Za-z_][\w.:-]*)[^>]*>")


def xml_text(value: str) -> str:
    """`value` as XML character data: escaped, and XML-illegal controls removed."""
    value = _INVALID_XML_CHARS.sub("", value)
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def toast_xml(text: str, *, subject: str | None = None) -> str:
    """The toast SNS-style plain text becomes: Text1 = subject, Text2 = text."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<wp:Notification xmlns:wp="WPNotification"><wp:Toast>'
        f"<wp:Text1>{xml_text(subject or '')}</wp:Text1>"
        f"<wp:Text2>{xml_text(text)}</wp:Text2>"
        "</wp:Toast></wp:Notification>"
    )


def infer_type(body: str) -> str:
    """token (tile), toast or raw, from `<wp:Notification><wp:Tile|Toast>`."""
    pos = 1 if body.startswith("\ufeff") else 0
    while match := _PROLOG_RE.match(body, pos):
        pos = match.end()
    names = []
    for _ in range(2):
        tag = _TAG_RE.match(body, pos)
        if tag is None:
            break
        names.append(tag.group(1).rpartition(":")[2])
        pos = tag.end()
    if names[:1] == ["Notification"] and len(names) == 2:
        return {"Toast": "toast", "Tile": "token"}.get(names[1], "raw")
    return "raw"


@dataclass(frozen=True, slots=True)
class MpnsRequest:
    body: bytes
    headers: dict[str, str]


def build_request(message: RenderedMessage, *, now: float) -> MpnsRequest | SendResult:
    """Render `message` for MPNS, or a PERMANENT result saying why not."""
    explicit = message.attr("MPNS.Type")
    body = message.body
    if not message.native and explicit != "raw":  # plain text: a toast (SNS §8.1)
        body = toast_xml(message.body, subject=message.subject)
    kind = explicit or infer_type(body)
    if kind not in CLASS_BASE:
        return _permanent(f"unknown AWS.SNS.MOBILE.MPNS.Type {kind!r}")
    delay = message.attr("MPNS.NotificationClass") or "realtime"
    if delay not in CLASS_DELAY:
        return _permanent(f"unknown AWS.SNS.MOBILE.MPNS.NotificationClass {delay!r}")
    if message.expires_at is not None and message.expires_at <= now:
        return _permanent("TTL expired before delivery")  # MPNS has no TTL header
    raw = body.encode()
    limit = MAX_RAW_BYTES if kind == "raw" else MAX_XML_BYTES
    if len(raw) > limit:
        return _permanent(f"{kind} payload {len(raw)} bytes > {limit}")
    headers = {
        "Content-Type": "text/xml",
        "Accept": "application/*",
        "X-NotificationClass": str(CLASS_BASE[kind] + CLASS_DELAY[delay]),
        "X-MessageID": str(uuid.uuid4()),
    }
    if kind in TARGET_HEADER:
        headers["X-WindowsPhone-Target"] = TARGET_HEADER[kind]
    return MpnsRequest(body=raw, headers=headers)


def classify(answer: Answer) -> SendResult:
    """Map an MPNS response (status + the three status headers) to a SendResult."""
    status, headers = answer.status, answer.headers
    note = headers.get("X-NotificationStatus", "")
    sub = headers.get("X-SubscriptionStatus", "")
    conn = headers.get("X-DeviceConnectionStatus", "")
    reason = f"{status} {note}/{sub}/{conn}".rstrip("/ ")
    found = STATUS_TABLE.get((status, note.lower())) or STATUS_TABLE.get((status, ""))
    if found is None:
        found = (Outcome.RETRY, None) if status >= 500 else (Outcome.PERMANENT, None)
    outcome, retry_after = found
    return SendResult(outcome, reason, retry_after=retry_after, status=status)


def _permanent(reason: str) -> SendResult:
    return SendResult(Outcome.PERMANENT, reason)


def has_client_certificate(app: PlatformApplication) -> bool:
    """True when the app's credentials are a PEM certificate and private key."""
    return "-----BEGIN CERTIFICATE-----" in app.principal and (
        "PRIVATE KEY-----" in app.credential
    )


def client_ssl_context(
    settings: ProviderSettings, app: PlatformApplication
) -> ssl.SSLContext:
    """
    `settings.ssl_context()` plus the app's certificate as TLS client identity.

    `ssl` loads certificate chains from files only, so the PEMs go to a private
    temporary directory for the duration of the call. Blocking: run it in a thread.

    Raises:
        ProviderSetupError: the certificate and key do not load or do not match.
    """
    ctx = settings.ssl_context()
    with tempfile.TemporaryDirectory(prefix="pushgw-mpns-") as tmp:
        cert_path = os.path.join(tmp, "cert.pem")
        key_path = os.path.join(tmp, "key.pem")
        for path, text in ((cert_path, app.principal), (key_path, app.credential)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
        try:
            ctx.load_cert_chain(cert_path, key_path)
        except (ssl.SSLError, OSError) as exc:
            raise ProviderSetupError(
                f"MPNS certificate/key do not load: {exc}"
            ) from exc
    return ctx


class MpnsProvider(HttpProvider):
    """Sends to MPNS channel URIs for one platform application (retired service)."""

    platforms = frozenset({Platform.MPNS})
    settings_name = "mpns"
    guards_endpoint_urls = True  # channel URIs come from clients (netguard)

    @classmethod
    async def create(
        cls, *, app: PlatformApplication, settings: ProviderSettings
    ) -> Self:
        self = cls(app=app, settings=settings)
        if has_client_certificate(app):
            # Loading a certificate reads files: off the event loop.
            self.client_ssl = await asyncio.to_thread(client_ssl_context, settings, app)
        return self

    async def _send_once(
        self, endpoint: Endpoint, message: RenderedMessage
    ) -> SendResult:
        refused = check_mpns_channel(
            endpoint.token, allow_loopback=self.settings.allow_loopback
        )
        if refused is not None:
            return _permanent(refused)
        request = build_request(message, now=time.time())
        if isinstance(request, SendResult):
            return request
        # `post` follows no redirects: a 3xx could point past the channel guard.
        answer = await self.post(
            endpoint.token, data=request.body, headers=request.headers
        )
        return classify(answer)
