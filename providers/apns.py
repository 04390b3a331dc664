"""
APNs adapter: the HTTP/2 provider API, token (JWT) or certificate auth.

Credentials arrive as SNS stores them (SNS_API §4):

* token auth: `principal` = 10-character key id, `credential` = the .p8 PEM
  (EC P-256), attributes `ApplePlatformTeamID` and `ApplePlatformBundleID`;
* certificate auth: `principal` = client certificate PEM, `credential` = its
  private key PEM; the topic is `ApplePlatformBundleID` if set, else the
  certificate subject UID.

Requests go over `providers.h2client.H2Pool` (our own h2 client; see
bench/apns_evidence.py for why not aioapns 4.0).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Final
from urllib.parse import urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from jh2.hpack import NeverIndexedHeaderTuple

from pushgw.errors import ProviderSetupError
from pushgw.model import (
    APPLE_PLATFORMS,
    PAYLOAD_LIMITS,
    Endpoint,
    Platform,
    PlatformApplication,
)
from pushgw.providers.base import (
    Outcome,
    Provider,
    ProviderSettings,
    RenderedMessage,
    SendResult,
    parse_retry_after,
)
from pushgw.providers.h2client import H2Pool, Response

# Apple: refresh the token "no more than once every 20 minutes and no less than
# once every 60 minutes"; 40 minutes sits in the middle of that window.
JWT_ROTATE_S: Final = 40 * 60.0

# Status/reason -> outcome, after PROVIDERS.md §1.4/§1.5 and Apple's table:
# https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns
REASONS: Final[dict[str, Outcome]] = {
    # 410: the device token is no longer active for the topic; disable the endpoint.
    "Unregistered": Outcome.INVALID_TOKEN,
    "ExpiredToken": Outcome.INVALID_TOKEN,
    # 400: malformed or wrong-environment token, or a token of another app.
    "BadDeviceToken": Outcome.INVALID_TOKEN,
    "DeviceTokenNotForTopic": Outcome.INVALID_TOKEN,
    # 403: the provider token / certificate is not accepted: disable the app.
    "InvalidProviderToken": Outcome.BAD_CREDENTIALS,
    "MissingProviderToken": Outcome.BAD_CREDENTIALS,
    "BadCertificate": Outcome.BAD_CREDENTIALS,
    "BadCertificateEnvironment": Outcome.BAD_CREDENTIALS,
    "Forbidden": Outcome.BAD_CREDENTIALS,
    # 400: the credentials may not push to this topic.
    "TopicDisallowed": Outcome.BAD_CREDENTIALS,
    "BadTopic": Outcome.BAD_CREDENTIALS,
    # 403: stale JWT; `send` re-signs and resends once before giving RETRY.
    "ExpiredProviderToken": Outcome.RETRY,
    # 429: too many pushes to this device, or token churn: retry after a delay.
    "TooManyRequests": Outcome.RETRY,
    "TooManyProviderTokenUpdates": Outcome.RETRY,
    # 500/503: Apple's side; retry with back-off.
    "InternalServerError": Outcome.RETRY,
    "ServiceUnavailable": Outcome.RETRY,
    "Shutdown": Outcome.RETRY,
    # 413 and every other 400 (BadCollapseId, BadPriority, PayloadEmpty, ...)
    # fall through to the status table: permanent for this message.
}
# Reason missing or unknown: classify by status alone.
STATUSES: Final[dict[int, Outcome]] = {
    410: Outcome.INVALID_TOKEN,
    403: Outcome.BAD_CREDENTIALS,
    429: Outcome.RETRY,
    500: Outcome.RETRY,
    502: Outcome.RETRY,
    503: Outcome.RETRY,
    504: Outcome.RETRY,
}

# Apple: "device tokens are of variable length"; even-length hex, generously capped.
_TOKEN_RE: Final = re.compile(r"(?:[0-9a-fA-F]{2}){1,100}")
# apns-id: a canonical UUID per request. One random UUID's first four groups per
# process and a counter for the last (12 hex digits, 2^48 requests): unique per
# process and across processes like uuid4, without uuid4's urandom call (3% of
# a fan-out delivery's CPU).
_APNS_ID_PREFIX: Final = str(uuid.uuid4())[:24]
_apns_ids = itertools.count()


def _apns_id() -> bytes:
    return f"{_APNS_ID_PREFIX}{next(_apns_ids) & 0xFFFF_FFFF_FFFF:012x}".encode()


_VOIP_PLATFORMS: Final = frozenset({Platform.APNS_VOIP, Platform.APNS_VOIP_SANDBOX})


class JwtSigner:
    """
    One ES256 provider token per key, shared by every connection, re-signed
    every `JWT_ROTATE_S` or when APNs reports it expired.
    """

    def __init__(
        self,
        *,
        key_pem: str,
        key_id: str,
        team_id: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = _load_p8(key_pem)
        self._key_id = key_id
        self._team_id = team_id
        self._clock = clock
        self._header = b""
        self._issued_at = 0.0
        self.signed = 0  # tokens made so far (tests, metrics)

    def header(self) -> bytes:
        """The current `authorization` header value, re-signing when due."""
        if self._clock() - self._issued_at >= JWT_ROTATE_S:
            self._sign()
        return self._header

    def expired(self, used: bytes) -> bytes:
        """APNs said `used` expired: re-sign unless another request already did."""
        if used == self._header:
            self._sign()
        return self._header

    def _sign(self) -> None:
        self._issued_at = self._clock()
        token = jwt.encode(
            {"iss": self._team_id, "iat": int(self._issued_at)},
            self._key,
            algorithm="ES256",
            headers={"kid": self._key_id},
        )
        self._header = b"bearer " + token.encode()
        self.signed += 1


# Shared across all adapters (and so all connections) of the same key.
_SIGNERS: dict[tuple[str, str, str], JwtSigner] = {}
_SIGNERS_LOCK = threading.Lock()


def shared_signer(*, key_pem: str, key_id: str, team_id: str) -> JwtSigner:
    """The process-wide signer for this key id, team and key."""
    digest = hashlib.sha256(key_pem.encode()).hexdigest()
    with _SIGNERS_LOCK:
        signer = _SIGNERS.get((key_id, team_id, digest))
        if signer is None:
            signer = JwtSigner(key_pem=key_pem, key_id=key_id, team_id=team_id)
            _SIGNERS[(key_id, team_id, digest)] = signer
        return signer


@dataclass(frozen=True, slots=True)
class _Request:
    headers: list[tuple[bytes, bytes]]
    body: bytes


class ApnsProvider(Provider):
    """Adapter for one APNs / APNs VoIP / macOS platform application."""

    platforms: ClassVar[frozenset[Platform]] = APPLE_PLATFORMS
    settings_name: ClassVar[str] = "apns"

    def __init__(self, *, app: PlatformApplication, settings: ProviderSettings) -> None:
        super().__init__(app=app, settings=settings)
        ssl_context = settings.ssl_context()
        ssl_context.set_alpn_protocols(["h2"])
        cert = _load_certificate(app.principal)
        bundle = app.attributes.get("ApplePlatformBundleID") or ""
        self.signer: JwtSigner | None = None
        if cert is not None:
            _load_client_cert(ssl_context, app.principal, app.credential)
            bundle = bundle or _subject_uid(cert)
        else:
            team = app.attributes.get("ApplePlatformTeamID", "")
            if not (team and bundle and app.principal and app.credential):
                raise ProviderSetupError(
                    "APNs token auth needs PlatformPrincipal (key id), "
                    "PlatformCredential (.p8), ApplePlatformTeamID and "
                    "ApplePlatformBundleID"
                )
            self.signer = shared_signer(
                key_pem=app.credential, key_id=app.principal, team_id=team
            )
        if not bundle:
            raise ProviderSetupError(
                "APNs certificate has no subject UID and no ApplePlatformBundleID"
            )
        self.topic = bundle
        self.voip = app.platform in _VOIP_PLATFORMS
        self.limit = PAYLOAD_LIMITS[app.platform]
        url = settings.base_url
        if app.platform.is_sandbox and settings.sandbox_url:
            url = settings.sandbox_url
        parts = urlsplit(url)
        host = parts.hostname or "api.push.apple.com"
        self._authority = parts.netloc.encode()
        self.pool = H2Pool(
            host=host,
            port=parts.port or 443,
            ssl_context=ssl_context,
            max_connections=settings.max_connections,
        )
        self._last_shared: tuple[RenderedMessage, _Request | SendResult] | None = None

    async def _send_once(
        self, endpoint: Endpoint, message: RenderedMessage
    ) -> SendResult:
        request = self._build(endpoint.token, message)
        if isinstance(request, SendResult):
            return request
        signer = self.signer
        auth = signer.header() if signer is not None else None
        response = await self._post(request, auth)
        if auth is not None and _reason(response) == "ExpiredProviderToken":
            assert signer is not None
            response = await self._post(request, signer.expired(auth))
        return classify(response)

    async def aclose(self) -> None:
        await self.pool.aclose()

    async def _post(self, request: _Request, auth: bytes | None) -> Response:
        headers = request.headers
        if auth is not None:
            headers = [*headers, (b"authorization", auth)]
        return await self.pool.request(
            headers, request.body, timeout_s=self.settings.timeout_s
        )

    def _build(self, token: str, message: RenderedMessage) -> _Request | SendResult:
        """The request for one message, or a result without sending."""
        if not _TOKEN_RE.fullmatch(token):
            # Never put a malformed token into :path; APNs would say the same.
            return SendResult(Outcome.INVALID_TOKEN, "BadDeviceToken: not hex")
        shared = self._shared(message)
        if isinstance(shared, SendResult):
            return shared
        headers = [
            (b":method", b"POST"),
            (b":scheme", b"https"),
            # Unique per request: kept out of the HPACK dynamic table, so that
            # table holds only the repeated headers and stays quick to search.
            NeverIndexedHeaderTuple(b":path", b"/3/device/" + token.encode()),
            (b":authority", self._authority),
            NeverIndexedHeaderTuple(b"apns-id", _apns_id()),
            *shared.headers,
        ]
        return _Request(headers, shared.body)

    def _shared(self, message: RenderedMessage) -> _Request | SendResult:
        """
        The body and the headers after `apns-id`, the same for every device a
        message goes to: built once per message (the dispatcher renders a
        message once per platform, so a fan-out passes the same object) rather
        than once per device.
        """
        last = self._last_shared
        if last is not None and last[0] is message:
            return last[1]
        shared = self._build_shared(message)
        self._last_shared = (message, shared)
        return shared

    def _build_shared(self, message: RenderedMessage) -> _Request | SendResult:
        if message.native:
            try:
                payload = json.loads(message.body)
            except ValueError:
                payload = None
            if not isinstance(payload, dict):
                return _permanent("InvalidPayload: APNS message is not a JSON object")
            body = message.body.encode()
        else:
            payload = {"aps": {"alert": message.body}}
            body = json.dumps(payload, ensure_ascii=False).encode()
        if len(body) > self.limit:
            return _permanent(f"PayloadTooLarge: {len(body)} > {self.limit} bytes")
        push_type = message.attr("APNS.PUSH_TYPE") or self._infer_push_type(payload)
        headers: list[tuple[bytes, bytes]] = [
            (b"apns-topic", self._topic(message).encode()),
            (b"apns-push-type", push_type.encode()),
        ]
        priority = message.attr("APNS.PRIORITY")
        if priority is None and push_type == "background":
            priority = "5"  # Apple rejects background pushes at priority 10
        if priority is not None:
            headers.append((b"apns-priority", priority.encode()))
        collapse = message.attr("APNS.COLLAPSE_ID")
        if collapse is not None:
            headers.append((b"apns-collapse-id", collapse.encode()))
        expiration = self._expiration(message)
        if expiration is not None:
            headers.append((b"apns-expiration", str(expiration).encode()))
        return _Request(headers, body)

    def _topic(self, message: RenderedMessage) -> str:
        topic = message.attr("APNS.TOPIC") or self.topic
        if self.voip and not topic.endswith(".voip"):
            topic += ".voip"
        return topic

    def _infer_push_type(self, payload: dict[str, object]) -> str:
        """SNS's rule: voip for VoIP apps; background iff aps is only content-available."""
        if self.voip:
            return "voip"
        aps = payload.get("aps")
        if (
            isinstance(aps, dict)
            and aps.get("content-available") == 1
            and not any(k in aps for k in ("alert", "badge", "sound"))
        ):
            return "background"
        return "alert"

    def _expiration(self, message: RenderedMessage) -> int | None:
        if message.expires_at is not None:
            return max(0, int(message.expires_at))
        ttl = message.attr(f"{self.app.platform.value}.TTL")
        if ttl is None:
            return None
        try:
            seconds = int(float(ttl))
        except ValueError:
            return None
        if seconds <= 0:
            return 0  # APNs: deliver once, do not store
        return int(message.published_at) + seconds


def classify(response: Response) -> SendResult:
    """Map one APNs response to a `SendResult` (see REASONS and STATUSES)."""
    status = response.status
    if status == 200:
        return SendResult.delivered()
    reason = _reason(response)
    outcome = REASONS.get(reason) if reason else None
    if outcome is None:
        outcome = STATUSES.get(
            status, Outcome.RETRY if status >= 500 else Outcome.PERMANENT
        )
    retry_after = None
    if outcome is Outcome.RETRY:
        retry_after = parse_retry_after(response.header(b"retry-after"))
    text = f"{status} {reason}" if reason else f"{status} (no reason)"
    return SendResult(outcome, text, retry_after=retry_after, status=status)


def _reason(response: Response) -> str | None:
    if response.status == 200 or not response.body:
        return None
    try:
        data = json.loads(response.body)
    except ValueError:
        return None
    reason = data.get("reason") if isinstance(data, dict) else None
    return str(reason) if reason else None


def _permanent(reason: str) -> SendResult:
    return SendResult(Outcome.PERMANENT, reason)


def _load_certificate(principal: str) -> x509.Certificate | None:
    if "-----BEGIN CERTIFICATE-----" not in principal:
        return None
    try:
        return x509.load_pem_x509_certificate(principal.encode())
    except ValueError as exc:
        raise ProviderSetupError(f"APNs certificate is not valid PEM: {exc}") from exc


def _subject_uid(cert: x509.Certificate) -> str:
    values = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
    return str(values[0].value) if values else ""


def _load_p8(pem: str) -> ec.EllipticCurvePrivateKey:
    """The .p8 signing key; ProviderSetupError unless it is an EC P-256 PEM."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ProviderSetupError(
            f"APNs .p8 key is not a PEM private key: {exc}"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ProviderSetupError("APNs .p8 key must be an EC P-256 key")
    return key


def _load_client_cert(context: ssl.SSLContext, cert_pem: str, key_pem: str) -> None:
    """`load_cert_chain` only reads files: write both PEMs to a private temp dir."""
    with tempfile.TemporaryDirectory(prefix="pushgw-apns-") as tmp:
        cert_path = os.path.join(tmp, "cert.pem")
        key_path = os.path.join(tmp, "key.pem")
        for path, text in ((cert_path, cert_pem), (key_path, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
        try:
            context.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as exc:
            raise ProviderSetupError(f"APNs certificate/key rejected: {exc}") from exc
