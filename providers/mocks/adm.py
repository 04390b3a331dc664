"""
Loopback Amazon Device Messaging: the LWA token endpoint and the send API.

Wire format per https://developer.amazon.com/docs/adm/send-message.html and
PROVIDERS.md §4. Registration ids look like `amzn1.adm-registration.v3.<random>`;
a device's state chooses the answer (valid, unregistered, invalid, canonical).
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import secrets
import ssl
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from pushgw.providers.mocks.base import FaultRule
from pushgw.providers.mocks.http import AiohttpMock, dropped

TOKEN_PATH = "/auth/O2/token"
SEND_PATH = "/messaging/registrations/{registration_id}/messages"
TYPE_VERSION = "com.amazon.device.messaging.ADMMessage@1.0"
ACCEPT_TYPE = "com.amazon.device.messaging.ADMSendResult@1.0"
MAX_DATA_BYTES = 6144  # "no greater than 6KB", counted on the serialized data
MAX_EXPIRES_AFTER_S = 30 * 24 * 3600  # about a month; the default is one week
KEPT_HEADERS = ("Content-Type", "Accept", "X-Amzn-Type-Version", "X-Amzn-Accept-Type")


def adm_md5(data: dict[str, str]) -> str:
    """ADM's `md5`: base64(MD5("k1:v1,k2:v2")) over the data sorted by key."""
    text = ",".join(f"{key}:{data[key]}" for key in sorted(data))
    return base64.b64encode(hashlib.md5(text.encode()).digest()).decode()


def _error(status: int, reason: str, *, retry_after: str | None = None) -> web.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    return web.json_response({"reason": reason}, status=status, headers=headers)


class AdmMock(AiohttpMock):
    """ADM and its token endpoint on 127.0.0.1."""

    platform = "ADM"

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        ssl_context: ssl.SSLContext | None = None,
        expires_in: float = 3600.0,
    ) -> None:
        super().__init__(clock=clock, ssl_context=ssl_context)
        self.expires_in = expires_in  # lifetime of issued access tokens
        self.invalid_client = False  # token endpoint refuses everyone
        self.retry_after_http_date = False  # fault Retry-After as an HTTP-date
        self.max_data_bytes = MAX_DATA_BYTES
        self.clients: dict[str, str] = {}  # client_id -> client_secret
        self.access_tokens: dict[str, float] = {}  # access token -> expires at
        self.canonical: dict[str, str] = {}  # registration id -> its newer id
        self.token_requests = 0
        self._refuse_next: set[str] = set()  # client ids refused once (fault)
        self._token_owner: dict[str, str] = {}  # access token -> client id

    def issue_credentials(self, **options: Any) -> dict[str, str]:
        client_id = f"amzn1.application-oa2-client.{secrets.token_hex(16)}"
        secret = secrets.token_hex(32)
        self.clients[client_id] = secret
        return {"PlatformPrincipal": client_id, "PlatformCredential": secret}

    def register_device(self, *, state: str = "valid") -> str:
        token = f"amzn1.adm-registration.v3.{secrets.token_urlsafe(32)}"
        self.set_device_state(token, state)
        if state == "canonical":
            self.canonical[token] = self.register_device(state="valid")
        return token

    def expire_access_tokens(self) -> None:
        """Make every issued access token expired (the mid-run expiry path)."""
        for token in self.access_tokens:
            self.access_tokens[token] = 0.0

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(TOKEN_PATH, self._token)
        app.router.add_post(SEND_PATH, self._send)
        return app

    def _retry_after(self, rule: FaultRule) -> str:
        seconds = rule.retry_after if rule.retry_after is not None else 1.0
        if self.retry_after_http_date:
            return email.utils.formatdate(time.time() + seconds, usegmt=True)
        return str(int(seconds))

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        if (outage := self.token_outage()) is not None:
            return outage
        client_id = str(form.get("client_id", ""))
        ok = (
            not self.invalid_client
            and form.get("grant_type") == "client_credentials"
            and form.get("scope") == "messaging:push"
            and client_id in self.clients
            and self.clients[client_id] == form.get("client_secret")
            and client_id not in self._refuse_next
        )
        self._refuse_next.discard(client_id)
        if not ok:
            self.stats["token_refused"] += 1
            body = {
                "error": "invalid_client",
                "error_description": "Client auth failed",
            }
            return web.json_response(body, status=400)
        token = f"Atc|{secrets.token_urlsafe(24)}"
        self.access_tokens[token] = self.clock() + self.expires_in
        self._token_owner[token] = client_id
        self.stats["tokens_issued"] += 1
        return web.json_response(
            {
                "access_token": token,
                "expires_in": int(self.expires_in),
                "scope": "messaging:push",
                "token_type": "bearer",
            }
        )

    async def _send(self, request: web.Request) -> web.Response:
        registration_id = request.match_info["registration_id"]
        raw = await request.read()
        rule = self.faults.take(registration_id)
        if await self.transport_fault(rule, request):
            return dropped()
        response = self._answer(request, registration_id, raw, rule)
        self.note_request(
            {"token": registration_id, "status": response.status, "size": len(raw)}
        )
        return response

    def _answer(
        self,
        request: web.Request,
        registration_id: str,
        raw: bytes,
        rule: FaultRule | None,
    ) -> web.Response:
        fault = self._fault_answer(request, rule) if rule is not None else None
        if fault is not None:
            return self._count(fault, "fault")
        problem = self._check_auth(request) or self._check_headers(request)
        if problem is None:
            body, problem = self._check_body(raw)
        if problem is not None:
            return self._count(problem, "rejected")
        return self._deliver(request, registration_id, body)

    def _count(self, response: web.Response, kind: str) -> web.Response:
        self.stats[f"{kind}_{response.status}"] += 1
        return response

    def _fault_answer(
        self, request: web.Request, rule: FaultRule
    ) -> web.Response | None:
        # Each fault kind as ADM would say it (PROVIDERS.md §4 table).
        kind = rule.kind
        if kind == "throttle":
            return _error(429, "MaxRateExceeded", retry_after=self._retry_after(rule))
        if kind == "unavailable":
            return _error(
                503, "ServiceUnavailable", retry_after=self._retry_after(rule)
            )
        if kind == "server_error":
            return _error(500, "UnknownError")
        if kind == "html_502":
            html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
            return web.Response(status=502, text=html, content_type="text/html")
        if kind == "invalid_token":
            return _error(400, "Unregistered")
        if kind in ("expire_auth", "bad_credentials"):
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            self.access_tokens.pop(token, None)
            if kind == "bad_credentials":  # the app's credentials were revoked
                self._refuse_next.add(self._token_owner.get(token, ""))
            return _error(401, "AccessTokenExpired")
        return None

    def _check_auth(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        expires_at = self.access_tokens.get(auth.removeprefix("Bearer "))
        if not auth.startswith("Bearer ") or expires_at is None:
            return _error(401, "Unauthorized")
        if self.clock() >= expires_at:
            return _error(401, "AccessTokenExpired")
        return None

    def _check_headers(self, request: web.Request) -> web.Response | None:
        headers = request.headers
        if headers.get("X-Amzn-Type-Version") != TYPE_VERSION:
            return _error(400, "InvalidType")
        if headers.get("X-Amzn-Accept-Type") != ACCEPT_TYPE:
            return _error(400, "InvalidType")
        if not headers.get("Content-Type", "").startswith("application/json"):
            return _error(400, "InvalidData")
        return None

    def _check_body(self, raw: bytes) -> tuple[dict[str, Any], web.Response | None]:
        try:
            body = json.loads(raw)
        except ValueError:
            return {}, _error(400, "InvalidData")
        if not isinstance(body, dict):
            return {}, _error(400, "InvalidData")
        data = body.get("data", {})
        if not isinstance(data, dict) or not all(
            isinstance(v, str) for v in data.values()
        ):
            return body, _error(400, "InvalidData")
        if not data and "consolidationKey" not in body and "notification" not in body:
            return body, _error(400, "InvalidData")
        size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
        if size > self.max_data_bytes:
            return body, _error(413, "MessageTooLarge")
        return body, self._check_fields(body, data)

    def _check_fields(
        self, body: dict[str, Any], data: dict[str, str]
    ) -> web.Response | None:
        key = body.get("consolidationKey")
        if key is not None and (not isinstance(key, str) or len(key) > 64):
            return _error(400, "InvalidConsolidationKey")
        expires = body.get("expiresAfter")
        if expires is not None and not (
            isinstance(expires, int) and 1 <= expires <= MAX_EXPIRES_AFTER_S
        ):
            return _error(400, "InvalidExpiration")
        md5 = body.get("md5")
        if md5 is not None and md5 != adm_md5(data):
            return _error(400, "InvalidChecksum")
        return None

    def _deliver(
        self, request: web.Request, registration_id: str, body: dict[str, Any]
    ) -> web.Response:
        state = self.devices.get(registration_id, "invalid")
        if state == "invalid":
            return self._count(_error(400, "InvalidRegistrationId"), "rejected")
        if state == "unregistered":
            return self._count(_error(400, "Unregistered"), "rejected")
        current = self.canonical.get(registration_id, registration_id)
        if current != registration_id:
            self.stats["canonical"] += 1
        headers = {name: request.headers.get(name, "") for name in KEPT_HEADERS}
        self.record(current, body, headers)  # the device now answers to `current`
        return web.json_response(
            {"registrationID": current},
            headers={"x-amzn-RequestId": secrets.token_hex(8)},
        )
