"""
Amazon Device Messaging adapter (PROVIDERS.md §4).

OAuth2 client credentials (Login with Amazon) give a bearer token, cached per
application by `AccessTokenCache`; each message is one JSON POST to
`/messaging/registrations/{id}/messages`. Docs:
https://developer.amazon.com/docs/adm/request-access-token.html and
https://developer.amazon.com/docs/adm/send-message.html
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from pushgw.model import Endpoint, Platform, PlatformApplication
from pushgw.providers.base import (
    Outcome,
    ProviderSettings,
    RenderedMessage,
    SendResult,
    parse_retry_after,
)
from pushgw.providers.http import Answer, HttpProvider
from pushgw.providers.oauth import AccessTokenCache, request_token

DEFAULT_TOKEN_URL = "https://api.amazon.com/auth/O2/token"
DEFAULT_SCOPE = "messaging:push"
MAX_DATA_BYTES = 6144  # "no greater than 6KB", on the serialized data object
MAX_EXPIRES_AFTER_S = 30 * 24 * 3600  # ADM keeps messages about a month at most
SEND_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "X-Amzn-Type-Version": "com.amazon.device.messaging.ADMMessage@1.0",
    "X-Amzn-Accept-Type": "com.amazon.device.messaging.ADMSendResult@1.0",
}

# Error answers, from https://developer.amazon.com/docs/adm/send-message.html
# ("Response format" / error table) and PROVIDERS.md §4.
REASON_OUTCOMES: Mapping[str, Outcome] = {
    "InvalidRegistrationId": Outcome.INVALID_TOKEN,  # id not valid for this app
    "Unregistered": Outcome.INVALID_TOKEN,  # the app instance unregistered
}
STATUS_OUTCOMES: Mapping[int, Outcome] = {
    # 400 InvalidData, InvalidConsolidationKey, InvalidExpiration, InvalidChecksum,
    # InvalidType: our message is wrong; resending it cannot help.
    400: Outcome.PERMANENT,
    # 401 AccessTokenExpired is handled by one refresh + resend; a second 401 right
    # after a fresh token is a provider hiccup, not proof of bad credentials.
    401: Outcome.RETRY,
    408: Outcome.RETRY,  # request timeout at the front end
    413: Outcome.PERMANENT,  # MessageTooLarge
    429: Outcome.RETRY,  # MaxRateExceeded, with Retry-After
    500: Outcome.RETRY,  # UnknownError / internal, retry with back-off
    503: Outcome.RETRY,  # ServiceUnavailable, with Retry-After
}


def adm_md5(data: Mapping[str, str]) -> str:
    """ADM's `md5`: base64(MD5("k1:v1,k2:v2")) over the data sorted by key."""
    text = ",".join(f"{key}:{data[key]}" for key in sorted(data))
    return base64.b64encode(hashlib.md5(text.encode()).digest()).decode()


def _stringify(value: Any) -> str:
    # ADM data values must be strings; SNS users often send numbers and objects.
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _ttl(message: RenderedMessage, body_ttl: Any, now: float) -> float | None:
    """Seconds left to live: attribute > body TTL, both minus dwell; else expires_at."""
    dwell = now - message.published_at if message.published_at else 0.0
    attr = message.attr("ADM.TTL")
    if attr is not None:
        return float(attr) - dwell
    if isinstance(body_ttl, int | float) and not isinstance(body_ttl, bool):
        return float(body_ttl) - dwell
    if message.expires_at is not None:
        return message.expires_at - now
    return None


def build_body(message: RenderedMessage, *, now: float) -> dict[str, Any] | SendResult:
    """
    The ADM request body for `message`, or the PERMANENT result that stops it.

    Plain text becomes `{"data": {"default": text}}` (SNS_API §8.1); a native
    payload keeps its keys, with `data` values stringified and `md5` recomputed.
    """
    if message.native:
        try:
            body = json.loads(message.body)
        except ValueError:
            return SendResult(Outcome.PERMANENT, "ADM payload is not JSON")
        if not isinstance(body, dict):
            return SendResult(Outcome.PERMANENT, "ADM payload is not a JSON object")
    else:
        body = {"data": {"default": message.body}}
    raw_data = body.get("data", {})
    if not isinstance(raw_data, dict):
        return SendResult(Outcome.PERMANENT, "ADM data is not a JSON object")
    data = {str(key): _stringify(value) for key, value in raw_data.items()}
    try:
        ttl = _ttl(message, body.get("expiresAfter"), now)
    except ValueError:
        return SendResult(Outcome.PERMANENT, "ADM.TTL is not a number")
    if ttl is not None:
        if ttl < 1:  # SNS_API §8.3: ADM gives 0 no meaning, so the message expired
            return SendResult(Outcome.PERMANENT, "TTL expired before delivery")
        body["expiresAfter"] = min(math.ceil(ttl), MAX_EXPIRES_AFTER_S)
    size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_DATA_BYTES:
        return SendResult(Outcome.PERMANENT, f"MessageTooLarge: {size} > 6144 bytes")
    body["data"] = data
    body["md5"] = adm_md5(data)
    return body


class AdmProvider(HttpProvider):
    """One ADM security profile (client id + secret) and its token cache."""

    platforms = frozenset({Platform.ADM})
    settings_name = "adm"

    def __init__(self, *, app: PlatformApplication, settings: ProviderSettings) -> None:
        super().__init__(app=app, settings=settings)
        self.clock: Callable[[], float] = time.time  # wall clock for TTLs
        self.tokens = AccessTokenCache(self._fetch_token)
        self._base = settings.base_url.rstrip("/")

    async def _fetch_token(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "scope": self.settings.scope or DEFAULT_SCOPE,
            "client_id": self.app.principal,
            "client_secret": self.app.credential,
        }
        url = self.settings.token_url or DEFAULT_TOKEN_URL
        return await request_token(self.post, url, form, default_expires_in=3600.0)

    async def _send_once(
        self, endpoint: Endpoint, message: RenderedMessage
    ) -> SendResult:
        body = build_body(message, now=self.clock())
        if isinstance(body, SendResult):
            return body
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        answer = await self.tokens.authorized(
            lambda token: self._post(token, endpoint.token, payload),
            rejected=lambda answer: answer.status == 401,  # AccessTokenExpired
        )
        return classify(answer, endpoint.token)

    async def _post(self, token: str, registration_id: str, payload: bytes) -> Answer:
        url = f"{self._base}/messaging/registrations/{quote(registration_id, safe='')}"
        headers = {**SEND_HEADERS, "Authorization": f"Bearer {token}"}
        return await self.post(f"{url}/messages", data=payload, headers=headers)


def classify(answer: Answer, registration_id: str) -> SendResult:
    """Map one ADM answer to a SendResult (tables above)."""
    status, body = answer.status, answer.json()
    reason = body.get("reason") if isinstance(body, dict) else None
    text = f"{status} {reason}" if reason else str(status)
    if status == 200:
        new_id = body.get("registrationID") if isinstance(body, dict) else None
        if isinstance(new_id, str) and new_id and new_id != registration_id:
            return SendResult(
                Outcome.CANONICAL_TOKEN, text, new_token=new_id, status=status
            )
        return SendResult.delivered(text)
    outcome = REASON_OUTCOMES.get(str(reason)) or STATUS_OUTCOMES.get(status)
    if outcome is None:
        outcome = Outcome.RETRY if status >= 500 else Outcome.PERMANENT
    retry_after = None
    if outcome is Outcome.RETRY:
        retry_after = parse_retry_after(answer.headers.get("Retry-After"))
    return SendResult(outcome, text, retry_after=retry_after, status=status)
