"""
Legacy GCM / FCM HTTP adapter (`POST /fcm/send`, `Authorization: key=...`).

**Google shut this API down.** The legacy HTTP and XMPP APIs were deprecated on
2023-06-20 and shutdown began on 2024-07-22
(https://firebase.google.com/docs/cloud-messaging/migrate-v1). This adapter only
works against the loopback mock (`providers.mocks.fcm.FcmMock`); against Google
every send ends as BAD_CREDENTIALS with a reason that says so. Apps should use a
service-account credential, which `providers.gcm` routes to FCM v1 (the same
device tokens work there).

It is kept so SNS `GCM` applications created with a legacy server API key behave
as SNS's did: canonical registration ids update the stored token, and
`NotRegistered` / `InvalidRegistration` disable the endpoint.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from pushgw.model import Endpoint, Platform, PlatformApplication
from pushgw.providers.base import (
    Outcome,
    ProviderSettings,
    RenderedMessage,
    SendResult,
    parse_retry_after,
)
from pushgw.providers.fcm import MAX_PAYLOAD_BYTES, payload_bytes, remaining_ttl
from pushgw.providers.http import Answer, HttpProvider, plain_text

SHUTDOWN_NOTE: Final = (
    "the legacy FCM HTTP API was shut down by Google (shutdown began 2024-07-22); "
    "use a service-account credential (FCM v1)"
)
MAX_TTL_S: Final = 2_419_200  # 4 weeks

# `results[0].error` -> outcome. The legacy reference is gone from Google's site;
# archived at https://web.archive.org/web/2024/https://firebase.google.com/docs/cloud-messaging/http-server-ref
# (PROVIDERS.md §3 lists the sources).
LEGACY_ERRORS: Final[Mapping[str, Outcome]] = {
    "NotRegistered": Outcome.INVALID_TOKEN,  # app uninstalled / token expired
    "InvalidRegistration": Outcome.INVALID_TOKEN,  # malformed token
    "MismatchSenderId": Outcome.INVALID_TOKEN,  # token of another sender id
    "Unavailable": Outcome.RETRY,  # server busy; Retry-After if sent
    "InternalServerError": Outcome.RETRY,
    "DeviceMessageRateExceeded": Outcome.RETRY,  # too many to one device: back off
    "TopicsMessageRateExceeded": Outcome.RETRY,
    "MessageTooBig": Outcome.PERMANENT,  # > 4096 bytes
    "InvalidDataKey": Outcome.PERMANENT,  # reserved key such as "from", "gcm.*"
    "InvalidTtl": Outcome.PERMANENT,  # outside 0..2419200
    "MissingRegistration": Outcome.PERMANENT,
    "InvalidPackageName": Outcome.PERMANENT,
    # The app's APNs key in the Firebase console is missing/expired: like v1's
    # THIRD_PARTY_AUTH_ERROR, only fixing the app's setup helps.
    "InvalidApnsCredential": Outcome.BAD_CREDENTIALS,
}


def build_body(
    token: str, rendered: RenderedMessage, *, now: float
) -> dict[str, Any] | SendResult:
    """The `/fcm/send` JSON for one device, or a PERMANENT result."""
    if not rendered.native:
        body: dict[str, Any] = {"data": {"default": rendered.body}}
    else:
        try:
            payload = json.loads(rendered.body)
        except ValueError:
            return SendResult(Outcome.PERMANENT, "GCM payload is not JSON")
        if not isinstance(payload, dict):
            return SendResult(Outcome.PERMANENT, "GCM payload is not a JSON object")
        if "fcmV1Message" in payload:
            reason = "fcmV1Message needs a service-account credential (FCM v1)"
            return SendResult(Outcome.PERMANENT, reason)
        body = {
            k: v
            for k, v in payload.items()
            if k not in ("to", "registration_ids", "condition")
        }
    body_ttl = body.get("time_to_live")
    ttl = remaining_ttl(
        rendered,
        float(body_ttl) if isinstance(body_ttl, int | float) else None,
        now=now,
    )
    if ttl is not None:
        if ttl < 0:
            return SendResult(Outcome.PERMANENT, "TTL expired before delivery")
        body["time_to_live"] = min(ttl, MAX_TTL_S)
    size = payload_bytes(body)
    if size > MAX_PAYLOAD_BYTES:
        return SendResult(
            Outcome.PERMANENT, f"payload {size} bytes > {MAX_PAYLOAD_BYTES}"
        )
    return {"to": token, **body}


def _classify_result(
    result: Mapping[str, Any], retry_after: float | None
) -> SendResult:
    if "error" in result:
        error = str(result["error"])
        outcome = LEGACY_ERRORS.get(error, Outcome.PERMANENT)
        return SendResult(
            outcome,
            f"200 {error}",
            retry_after=retry_after if outcome is Outcome.RETRY else None,
            status=200,
        )
    message_id = str(result.get("message_id", "200"))
    new_token = result.get("registration_id")
    if new_token:
        return SendResult(
            Outcome.CANONICAL_TOKEN, message_id, new_token=str(new_token), status=200
        )
    return SendResult.delivered(message_id)


def classify(answer: Answer) -> SendResult:
    """Map one `/fcm/send` answer (single `to`) to a SendResult."""
    status = answer.status
    retry_after = parse_retry_after(answer.headers.get("Retry-After"))
    if status == 200:
        data = answer.json()
        results = data.get("results") if isinstance(data, dict) else None
        if not results or not isinstance(results[0], Mapping):
            return SendResult(Outcome.RETRY, "200 without results", status=200)
        return _classify_result(results[0], retry_after)
    text = plain_text(answer.text(limit=1024))
    if status == 429 or status >= 500:
        return SendResult(
            Outcome.RETRY, f"{status} {text}", retry_after=retry_after, status=status
        )
    if status == 400:  # invalid JSON or fields; the body says which, as text
        return SendResult(Outcome.PERMANENT, f"400 {text}", status=status)
    # 401 is a rejected server key. Any other answer (404/410/403 HTML pages) is
    # not something the live legacy API ever said: the service is gone.
    return SendResult(
        Outcome.BAD_CREDENTIALS, f"{status} {SHUTDOWN_NOTE}: {text}", status=status
    )


class GcmLegacyProvider(HttpProvider):
    """Legacy `/fcm/send` for one SNS `GCM` application with a server API key."""

    platforms = frozenset({Platform.GCM})
    settings_name = "gcm_legacy"

    def __init__(
        self,
        *,
        app: PlatformApplication,
        settings: ProviderSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """
        Args:
            app: its `credential` is the legacy server key ("AIza...").
            settings: `base_url`, `timeout_s`, `max_connections`, `ca_file`.
            clock: wall clock for TTLs (tests).
        """
        super().__init__(app=app, settings=settings)
        self._url = f"{settings.base_url.rstrip('/')}/fcm/send"
        self._headers = {
            "Authorization": f"key={app.credential.strip()}",
            "Content-Type": "application/json",
        }
        self._clock = clock

    async def _send_once(
        self, endpoint: Endpoint, message: RenderedMessage
    ) -> SendResult:
        body = build_body(endpoint.token, message, now=self._clock())
        if isinstance(body, SendResult):
            return body
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        return classify(await self.post(self._url, data=data, headers=self._headers))
