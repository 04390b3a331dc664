"""
FCM HTTP v1 adapter: SNS `GCM` applications whose credential is a service account.

One request per message, `POST {base_url}/v1/projects/{project}/messages:send`,
over the project's own HTTP/2 client (`providers.h2client.H2Pool`, the one APNs
uses): HTTP/2 via ALPN over TLS, at fcm.googleapis.com and at the loopback mock
alike (which serves h2 for this reason), so the tested client path is the
production one. The OAuth2 access token comes from an RS256 JWT-bearer grant
(RFC 7523) POSTed with httpx (any `token_uri`, HTTP/2 or HTTP/1.1; one request an
hour) to the `token_uri` named in the service-account JSON, cached single-flight
in `AccessTokenCache` and refreshed once when FCM answers 401.

SNS `GCM` payloads are translated here (SNS_API §8.1): plain text becomes a data
message `{"default": text}`, a top-level `fcmV1Message` is passed through, and a
legacy-shaped payload (`notification`, `data`, `time_to_live`, ...) is rewritten
as a v1 `message`. The helpers `remaining_ttl` and `payload_bytes` are shared
with the legacy adapter.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from multidict import CIMultiDict

from pushgw.errors import ProviderSetupError
from pushgw.model import Endpoint, Platform, PlatformApplication
from pushgw.providers.base import (
    Outcome,
    Provider,
    ProviderSettings,
    RenderedMessage,
    SendResult,
    TransportFailure,
    parse_retry_after,
)
from pushgw.providers.h2client import H2Pool
from pushgw.providers.http import Answer, plain_text
from pushgw.providers.oauth import AccessTokenCache, request_token

SCOPE: Final = "https://www.googleapis.com/auth/firebase.messaging"
# google-auth hard-codes this audience whatever `token_uri` says (PROVIDERS §2.2).
TOKEN_AUDIENCE: Final = "https://oauth2.googleapis.com/token"
JWT_BEARER: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_S: Final = 3600
MAX_PAYLOAD_BYTES: Final = 4096  # data + notification (topics: 2048, not used here)
MAX_TTL_S: Final = 2_419_200  # 4 weeks, FCM's maximum
REASON_CHARS: Final = 200
BODY_CHARS: Final = 4096  # of an HTML error page, before its tags are dropped

# FCM v1 `errorCode` -> outcome, from the FcmError detail of a google.rpc error.
# https://firebase.google.com/docs/cloud-messaging/error-codes (PROVIDERS.md §2.3)
FCM_ERRORS: Final[Mapping[str, Outcome]] = {
    # 404: the app was uninstalled or the token expired; never retry it.
    "UNREGISTERED": Outcome.INVALID_TOKEN,
    # 403: the token belongs to another Firebase project than this app's.
    "SENDER_ID_MISMATCH": Outcome.INVALID_TOKEN,
    # 400: a bad message. INVALID_TOKEN instead when the token field is the
    # problem (fieldViolations on message.token), see `_token_at_fault`.
    "INVALID_ARGUMENT": Outcome.PERMANENT,
    # 429: project or device message rate exceeded; honour Retry-After.
    "QUOTA_EXCEEDED": Outcome.RETRY,
    # 503: FCM overloaded; honour Retry-After, else back off.
    "UNAVAILABLE": Outcome.RETRY,
    # 500: unknown internal error; retry with back-off.
    "INTERNAL": Outcome.RETRY,
    # 401: the APNs certificate / web-push key in the Firebase console is invalid;
    # a fresh OAuth token does not help, the app's setup must be fixed.
    "THIRD_PARTY_AUTH_ERROR": Outcome.BAD_CREDENTIALS,
    "APNS_AUTH_ERROR": Outcome.BAD_CREDENTIALS,  # older name (firebase-admin)
}

# When the body names no errorCode (HTML pages from Google's front end, bare
# google.rpc errors), the HTTP status decides. 404 without UNREGISTERED is a wrong
# project or URL, not a dead token: good tokens are never disabled.
STATUS_FALLBACK: Final[Mapping[int, Outcome]] = {
    400: Outcome.PERMANENT,
    401: Outcome.BAD_CREDENTIALS,  # still 401 after one forced token refresh
    403: Outcome.BAD_CREDENTIALS,  # PERMISSION_DENIED: the account lacks the role
    404: Outcome.PERMANENT,
    429: Outcome.RETRY,
}

# Legacy `notification` keys that keep their place in a v1 `message.notification`;
# the rest move to `android.notification` (renamed where v1 renamed them).
_NOTIFICATION_KEYS: Final = frozenset({"title", "body", "image"})
_ANDROID_NOTIFICATION_KEYS: Final = frozenset(
    {
        "icon", "color", "sound", "tag", "click_action", "channel_id", "ticker",
        "sticky", "event_time", "local_only", "notification_priority",
        "default_sound", "default_vibrate_timings", "default_light_settings",
        "vibrate_timings", "visibility", "notification_count", "light_settings",
        "body_loc_key", "body_loc_args", "title_loc_key", "title_loc_args",
    }
)  # fmt: skip
_RENAMES: Final = {"android_channel_id": "channel_id"}
_PRIORITIES: Final = {"high": "HIGH", "10": "HIGH", "normal": "NORMAL", "5": "NORMAL"}
# v1 blocks a legacy-shaped payload may carry at top level; passed through.
_V1_BLOCKS: Final = ("android", "apns", "webpush", "fcm_options")


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def payload_bytes(message: Mapping[str, Any]) -> int:
    """
    Bytes FCM's 4096-byte limit counts: `data` and `notification` as compact JSON,
    at top level and inside `android`.
    """
    android = message.get("android")
    parts = [message.get("data"), message.get("notification")]
    if isinstance(android, Mapping):
        parts += [android.get("data"), android.get("notification")]
    return sum(len(_compact(p).encode()) for p in parts if p)


def remaining_ttl(
    message: RenderedMessage, body_ttl: float | None, *, now: float
) -> int | None:
    """
    Whole seconds of TTL left at `now` (SNS_API §8.3), or None if no TTL is set.

    Precedence: `expires_at` (from the TTL attribute), then the `FCM.TTL`/`GCM.TTL`
    attribute, then the body's TTL; dwell time since publish is subtracted. A
    negative result means the message expired before it could be sent.
    """
    if message.expires_at is not None:
        return math.ceil(message.expires_at - now)
    attr = message.attr("FCM.TTL") or message.attr("GCM.TTL")
    ttl = body_ttl
    if attr is not None:
        try:
            ttl = float(attr)
        except ValueError:
            pass  # validated at publish; a bad value falls back to the body's
    if ttl is None:
        return None
    dwell = math.floor(now - message.published_at) if message.published_at else 0
    return min(MAX_TTL_S, math.floor(ttl) - max(0, dwell))


def _stringify(value: Any) -> str:
    return value if isinstance(value, str) else _compact(value)


def _parse_seconds(value: Any) -> float | None:
    """A TTL from a body: 125, "125" or v1's duration string "125s"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.removesuffix("s"))
        except ValueError:
            return None
    return None


def _loc_args(value: Any) -> Any:
    """Legacy `*_loc_args` may be a JSON-encoded array; v1 wants a list."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return [value]
        return [_stringify(v) for v in parsed] if isinstance(parsed, list) else [value]
    return value


def _translate_notification(legacy: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    top: dict[str, Any] = {}
    android: dict[str, Any] = {}
    for key, value in legacy.items():
        key = _RENAMES.get(key, key)
        if key in _NOTIFICATION_KEYS:
            top[key] = _stringify(value)
        elif key in _ANDROID_NOTIFICATION_KEYS:
            android[key] = _loc_args(value) if key.endswith("_loc_args") else value
        # Other keys (iOS-only `badge`, `subtitle`) have no v1 Android field.
    return top, android


def translate_legacy(payload: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """
    A legacy-shaped GCM payload as a v1 `message` (without token or TTL), and
    whether it asked for `dry_run` (v1 `validate_only`).
    """
    message: dict[str, Any] = {
        k: dict(payload[k]) for k in _V1_BLOCKS if isinstance(payload.get(k), Mapping)
    }
    android: dict[str, Any] = message.setdefault("android", {})
    if isinstance(payload.get("notification"), Mapping):
        top, android_notification = _translate_notification(payload["notification"])
        if top:
            message["notification"] = top
        if android_notification:
            android.setdefault("notification", {}).update(android_notification)
    if isinstance(payload.get("data"), Mapping):
        message["data"] = {str(k): _stringify(v) for k, v in payload["data"].items()}
    if "collapse_key" in payload:
        android["collapse_key"] = str(payload["collapse_key"])
    priority = _PRIORITIES.get(str(payload.get("priority", "")).lower())
    if priority:
        android["priority"] = priority
    if "restricted_package_name" in payload:
        android["restricted_package_name"] = str(payload["restricted_package_name"])
    aps = {
        flag: 1
        for key, flag in (
            ("content_available", "content-available"),
            ("mutable_content", "mutable-content"),
        )
        if payload.get(key)
    }
    if aps:
        apns = message.setdefault("apns", {})
        apns.setdefault("payload", {}).setdefault("aps", {}).update(aps)
    if not android:
        del message["android"]
    return message, bool(payload.get("dry_run"))


def build_request(
    token: str, rendered: RenderedMessage, *, now: float
) -> dict[str, Any] | SendResult:
    """
    The v1 request body for one device, or a PERMANENT result if the payload
    cannot be sent (not a JSON object, over 4096 bytes, TTL already expired).
    """
    validate_only = False
    body_ttl: float | None = None
    if not rendered.native:
        message: dict[str, Any] = {"data": {"default": rendered.body}}
    else:
        try:
            payload = json.loads(rendered.body)
        except ValueError:
            return SendResult(Outcome.PERMANENT, "GCM payload is not JSON")
        if not isinstance(payload, dict):
            return SendResult(Outcome.PERMANENT, "GCM payload is not a JSON object")
        v1 = payload.get("fcmV1Message")
        if v1 is not None:
            inner = v1.get("message") if isinstance(v1, dict) else None
            if not isinstance(inner, dict):
                return SendResult(Outcome.PERMANENT, "fcmV1Message.message missing")
            message = dict(inner)
            validate_only = bool(v1.get("validate_only"))
            android = message.get("android")
            if isinstance(android, dict):
                body_ttl = _parse_seconds(android.get("ttl"))
        else:
            message, validate_only = translate_legacy(payload)
            body_ttl = _parse_seconds(payload.get("time_to_live"))
    for target in ("topic", "condition"):  # the endpoint's token is the one target
        message.pop(target, None)
    message["token"] = token
    ttl = remaining_ttl(rendered, body_ttl, now=now)
    if ttl is not None:
        if ttl < 0:
            return SendResult(Outcome.PERMANENT, "TTL expired before delivery")
        message["android"] = {**message.get("android", {}), "ttl": f"{ttl}s"}
    size = payload_bytes(message)
    if size > MAX_PAYLOAD_BYTES:
        return SendResult(
            Outcome.PERMANENT, f"payload {size} bytes > {MAX_PAYLOAD_BYTES}"
        )
    request: dict[str, Any] = {"message": message}
    if validate_only:
        request["validate_only"] = True
    return request


def _token_at_fault(error: Mapping[str, Any]) -> bool:
    """INVALID_ARGUMENT that blames the registration token itself."""
    if "not a valid FCM registration token" in str(error.get("message", "")):
        return True
    for detail in error.get("details") or ():
        for violation in (detail or {}).get("fieldViolations") or ():
            if (violation or {}).get("field") == "message.token":
                return True
    return False


def _error_code(error: Mapping[str, Any]) -> str | None:
    """The FcmError `errorCode` among the error's details, if any."""
    for detail in error.get("details") or ():
        if isinstance(detail, Mapping) and detail.get("errorCode"):
            return str(detail["errorCode"])
    return None


def _error_of(answer: Answer) -> Mapping[str, Any]:
    """The google.rpc `error` object of an answer; empty if the body is not one."""
    data = answer.json()
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, Mapping) else {}


def _token_rejected(answer: Answer) -> bool:
    """
    A 401 about our OAuth token (refresh once, resend once). A 401 naming an
    FcmError code (THIRD_PARTY_AUTH_ERROR) is about the app's APNs/web-push setup.
    """
    return answer.status == 401 and _error_code(_error_of(answer)) is None


def classify(answer: Answer) -> SendResult:
    """Map one messages:send answer to a SendResult (see FCM_ERRORS)."""
    status = answer.status
    if status == 200:
        data = answer.json()
        name = str(data.get("name", "200")) if isinstance(data, dict) else "200"
        return SendResult.delivered(name)
    error = _error_of(answer)
    code = _error_code(error)
    outcome = FCM_ERRORS.get(code or "") or STATUS_FALLBACK.get(
        status, Outcome.RETRY if status >= 500 else Outcome.PERMANENT
    )
    if status == 400 and error and _token_at_fault(error):
        outcome = Outcome.INVALID_TOKEN
    if error:
        label = code or error.get("status") or status
        reason = f"{status} {label}: {error.get('message', '')}"[:REASON_CHARS]
    else:  # not a google.rpc error: Google front-end HTML 502 & co.
        reason = f"{status} {plain_text(answer.text(limit=BODY_CHARS))}"
    retry_after = None
    if outcome is Outcome.RETRY:
        retry_after = parse_retry_after(answer.headers.get("retry-after"))
    return SendResult(outcome, reason, retry_after=retry_after, status=status)


class ServiceAccount:
    """The fields of a service-account JSON the adapter uses."""

    def __init__(self, credential: str) -> None:
        try:
            info = json.loads(credential)
            if info.get("type") != "service_account":
                raise ValueError("type is not service_account")
            self.project_id = str(info["project_id"])
            self.client_email = str(info["client_email"])
            self.token_uri = str(info.get("token_uri") or TOKEN_AUDIENCE)
            self.key_id = str(info.get("private_key_id") or "") or None
            key = serialization.load_pem_private_key(
                str(info["private_key"]).encode(), password=None
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ProviderSetupError(
                f"GCM credential is not a usable service-account JSON: {exc}"
            ) from exc
        if not isinstance(key, RSAPrivateKey):
            raise ProviderSetupError("service-account private_key is not RSA")
        self.private_key = key

    def assertion(self, now: float) -> str:
        """The RS256 JWT-bearer grant assertion (PROVIDERS.md §2.2)."""
        iat = int(now)
        claims = {
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": TOKEN_AUDIENCE,
            "iat": iat,
            "exp": iat + ASSERTION_LIFETIME_S,
        }
        headers = {"kid": self.key_id} if self.key_id else None
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers=headers)


def _user_agent() -> bytes:
    try:
        return f"pushgw/{version('pushgw')}".encode()
    except PackageNotFoundError:  # a source tree that was never installed
        return b"pushgw"


USER_AGENT: Final = _user_agent()


class _TokenClient:
    """
    httpx (HTTP/2 when the server picks it by ALPN, else HTTP/1.1) for the token
    endpoint only: `token_uri` may name any host and scheme, and is asked once
    an hour, so its cost does not matter.
    """

    def __init__(self, settings: ProviderSettings) -> None:
        self._client = httpx.AsyncClient(
            http2=True,
            timeout=httpx.Timeout(settings.timeout_s),
            verify=settings.ssl_context(),
            trust_env=False,
        )

    async def post(
        self, url: str, *, data: bytes | str, headers: Mapping[str, str]
    ) -> Answer:
        try:
            resp = await self._client.post(url, content=data, headers=headers)
        except httpx.TransportError as exc:
            raise TransportFailure.wrap(exc) from exc
        return Answer(resp.status_code, resp.headers, resp.content)

    async def aclose(self) -> None:
        await self._client.aclose()


class _SendClient:
    """
    messages:send over `H2Pool` (HTTP/2 + TLS, ALPN h2, as Google serves it).
    Its transport errors (`H2ClientError`, `TimeoutError`, `OSError`) are in
    `TRANSPORT_ERRORS`, so `Provider.send` makes them RETRY.
    """

    def __init__(self, settings: ProviderSettings, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ProviderSetupError(
                f"FCM base_url must be an https URL (FCM v1 is HTTP/2 over TLS): {url}"
            )
        ssl_context = settings.ssl_context()
        ssl_context.set_alpn_protocols(["h2"])
        self._timeout_s = settings.timeout_s
        path = parts.path.encode()
        self._pool = H2Pool(
            host=parts.hostname,
            port=parts.port or 443,
            ssl_context=ssl_context,
            max_connections=settings.max_connections,
        )
        self._headers = [
            (b":method", b"POST"),
            (b":scheme", b"https"),
            (b":path", path),
            (b":authority", parts.netloc.encode()),
            (b"content-type", b"application/json; charset=UTF-8"),
            (b"user-agent", USER_AGENT),
        ]

    async def post(self, body: bytes, token: str) -> Answer:
        headers = [*self._headers, (b"authorization", b"Bearer " + token.encode())]
        response = await self._pool.request(headers, body, timeout_s=self._timeout_s)
        return Answer(
            response.status,
            CIMultiDict(
                (k.decode("latin-1"), v.decode("latin-1"))
                for k, v in response.headers.items()
                if not k.startswith(b":")
            ),
            response.body,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class FcmProvider(Provider):
    """FCM HTTP v1 for one SNS `GCM` application with a service-account credential."""

    platforms = frozenset({Platform.GCM})
    settings_name = "fcm"

    def __init__(
        self,
        *,
        app: PlatformApplication,
        settings: ProviderSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """
        Args:
            app: its `credential` is the service-account JSON.
            settings: `base_url` (prod https://fcm.googleapis.com), `timeout_s`,
                `max_connections`, `ca_file`.
            clock: wall clock for JWT `iat`, token renewal and TTLs (tests).

        Raises:
            ProviderSetupError: the credential is not a usable service account.
        """
        super().__init__(app=app, settings=settings)
        self.account = ServiceAccount(app.credential)
        self._clock = clock
        base = settings.base_url.rstrip("/")
        self._url = f"{base}/v1/projects/{self.account.project_id}/messages:send"
        self._sender = _SendClient(settings, self._url)
        self._token_client = _TokenClient(settings)
        self.tokens = AccessTokenCache(self._fetch_token, clock=clock)

    async def _fetch_token(self) -> tuple[str, float]:
        form = {
            "grant_type": JWT_BEARER,
            "assertion": self.account.assertion(self._clock()),
        }
        return await request_token(
            self._token_client.post,
            self.account.token_uri,
            form,
            default_expires_in=3600.0,
        )

    async def _send_once(
        self, endpoint: Endpoint, message: RenderedMessage
    ) -> SendResult:
        request = build_request(endpoint.token, message, now=self._clock())
        if isinstance(request, SendResult):
            return request
        body = _compact(request).encode()
        answer = await self.tokens.authorized(
            lambda token: self._sender.post(body, token), rejected=_token_rejected
        )
        return classify(answer)

    async def aclose(self) -> None:
        try:
            await self._sender.aclose()
        finally:
            await self._token_client.aclose()
