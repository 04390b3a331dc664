"""
Loopback MPNS (retired upstream on 2018-02-20; this mock is all that is left).

`register_device()` returns a channel URI `{base_url}/m/<id>`; POSTs to it are
checked the way MPNS checked them (method, Content-Type, X-WindowsPhone-Target vs
X-NotificationClass, well-formed `wp:Notification` XML, 3 KB / 1 KB raw) and
always answered with the three status headers X-NotificationStatus,
X-SubscriptionStatus and X-DeviceConnectionStatus
(https://learn.microsoft.com/previous-versions/windows/apps/ff941100(v=vs.105)).

Device states: valid (200 Received), unregistered and invalid (404
Dropped/Expired), inactive (412), suppressed (200 Suppressed), queuefull (200
QueueFull), canonical (as valid). Faults, keyed by the full channel URI: throttle
(406), unavailable (503), server_error (500), expire_auth (401), bad_credentials
(403), invalid_token (404), latency, drop, hang.

`issue_credentials()` makes a self-signed certificate and key. Give the mock a
server `ssl_context` with `verify_mode = CERT_REQUIRED` and it trusts exactly the
certificates it issued (the authenticated-web-service mTLS path).
"""

from __future__ import annotations

import datetime
import itertools
import secrets
import ssl
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pushgw.providers.mocks.base import DEVICE_STATES
from pushgw.providers.mocks.http import AiohttpMock, dropped

MPNS_STATES = DEVICE_STATES | {"inactive", "suppressed", "queuefull"}
MAX_XML_BYTES = 3072
MAX_RAW_BYTES = 1024
# X-WindowsPhone-Target (None = raw) -> (allowed classes, child element).
TARGETS: dict[str | None, tuple[frozenset[str], str | None]] = {
    "token": (frozenset({"1", "11", "21"}), "Tile"),
    "toast": (frozenset({"2", "12", "22"}), "Toast"),
    None: (frozenset({"3", "13", "23"}), None),
}
WP = "{WPNotification}"
RECORDED_HEADERS = ("Content-Type", "X-NotificationClass", "X-WindowsPhone-Target")

# (status, X-NotificationStatus, X-SubscriptionStatus, X-DeviceConnectionStatus)
Answer = tuple[int, str, str, str]
RECEIVED: Answer = (200, "Received", "Active", "Connected")
BAD_REQUEST: Answer = (400, "Dropped", "Active", "Connected")
STATE_ANSWERS: dict[str, Answer] = {
    "unregistered": (404, "Dropped", "Expired", "Disconnected"),
    "invalid": (404, "Dropped", "Expired", "Disconnected"),
    "inactive": (412, "Dropped", "Active", "Inactive"),
    "suppressed": (200, "Suppressed", "Active", "Connected"),
    "queuefull": (200, "QueueFull", "Active", "TempDisconnected"),
}
FAULT_ANSWERS: dict[str, Answer] = {
    "throttle": (406, "Dropped", "Active", "Connected"),
    "unavailable": (503, "Dropped", "Active", "Connected"),
    "server_error": (500, "Dropped", "Active", "Connected"),
    "expire_auth": (401, "Dropped", "Active", "Connected"),
    "bad_credentials": (403, "Dropped", "Active", "Connected"),
    "invalid_token": (404, "Dropped", "Expired", "Disconnected"),
}


class MpnsMock(AiohttpMock):
    """Loopback MPNS; http by default, https (optionally mTLS) with ssl_context."""

    platform = "MPNS"

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(clock=clock, ssl_context=ssl_context)
        self._channels: dict[str, str] = {}  # channel id -> channel URI
        self._ids = itertools.count(1)

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/m/{channel}", self._notify)
        return app

    def issue_credentials(self, **options: Any) -> dict[str, str]:
        """A self-signed certificate (PlatformPrincipal) and key (PlatformCredential)."""
        cert_pem, key_pem = self_signed_certificate(
            str(options.get("common_name", "pushgw-mock-mpns"))
        )
        ctx = self.ssl_context
        if ctx is not None and ctx.verify_mode != ssl.CERT_NONE:
            ctx.load_verify_locations(cadata=cert_pem)
        return {"PlatformPrincipal": cert_pem, "PlatformCredential": key_pem}

    def register_device(self, *, state: str = "valid") -> str:
        """A new channel URI in `state` (see the module docstring)."""
        if not self.base_url:
            raise RuntimeError("start() the mock before registering channels")
        if state not in MPNS_STATES:
            raise ValueError(f"unknown device state {state!r}")
        channel_id = f"{next(self._ids):06d}{secrets.token_urlsafe(12)}"
        uri = f"{self.base_url}/m/{channel_id}"
        self._channels[channel_id] = uri
        self.devices[uri] = state
        return uri

    def set_device_state(self, token: str, state: str) -> None:
        if state not in MPNS_STATES:
            raise ValueError(f"unknown device state {state!r}")
        self.devices[token] = state

    async def _notify(self, request: web.Request) -> web.StreamResponse:
        channel = request.match_info["channel"]
        uri = self._channels.get(channel, str(request.url))
        rule = self.faults.take(uri)
        if await self.transport_fault(rule, request):
            return dropped()
        body = await request.read()
        if rule is not None and rule.kind in FAULT_ANSWERS:
            self.stats[f"fault_{rule.kind}"] += 1
            answer = FAULT_ANSWERS[rule.kind]
        else:
            answer = self._judge(request, uri, body)
        status, note, sub, conn = answer
        self.note_request({"uri": uri, "status": status, "note": note})
        if answer == RECEIVED:
            recorded = {
                h: request.headers[h] for h in RECORDED_HEADERS if h in request.headers
            }
            self.record(uri, body.decode("utf-8", "replace"), recorded)
        else:
            self.stats[f"http_{status}_{note.lower()}"] += 1
        headers = {
            "X-NotificationStatus": note,
            "X-SubscriptionStatus": sub,
            "X-DeviceConnectionStatus": conn,
        }
        if "X-MessageID" in request.headers:
            headers["X-MessageID"] = request.headers["X-MessageID"]
        return web.Response(status=status, headers=headers)

    def _judge(self, request: web.Request, uri: str, body: bytes) -> Answer:
        """The answer to one notification POST that no fault rule claimed."""
        if request.method != "POST":
            return (405, "Dropped", "Active", "Connected")
        state = self.devices.get(uri, "invalid")
        if state in ("unregistered", "invalid"):
            return STATE_ANSWERS[state]
        if _check_request(request, body):
            return BAD_REQUEST
        return STATE_ANSWERS.get(state, RECEIVED)


def _check_request(request: web.Request, body: bytes) -> str:
    """Why MPNS would answer 400, or ""."""
    content_type = request.headers.get("Content-Type", "").partition(";")[0].strip()
    if content_type != "text/xml":
        return "Content-Type must be text/xml"
    target = request.headers.get("X-WindowsPhone-Target")
    if target not in TARGETS:
        return f"bad X-WindowsPhone-Target {target!r}"
    classes, child = TARGETS[target]
    if request.headers.get("X-NotificationClass") not in classes:
        return "X-NotificationClass does not match the target"
    if child is None:
        return "" if len(body) <= MAX_RAW_BYTES else "raw payload over 1 KB"
    if len(body) > MAX_XML_BYTES:
        return "payload over 3 KB"
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        return f"not well-formed XML: {exc}"
    if root.tag != f"{WP}Notification" or root.find(f"{WP}{child}") is None:
        return f"expected <wp:Notification><wp:{child}>"
    return ""


def self_signed_certificate(common_name: str) -> tuple[str, str]:
    """(certificate PEM, PKCS#8 key PEM) for a fresh EC P-256 key, valid 1 year."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    # SKI/AKI keep it acceptable under VERIFY_X509_STRICT (Python 3.13 default).
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert_pem, key_pem
