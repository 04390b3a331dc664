"""
Loopback FCM: the OAuth2 token endpoint, FCM HTTP v1 and the legacy `/fcm/send`.

PROVIDERS.md §2.4 and §3. One aiohttp app on 127.0.0.1 serves

* `POST /token`: the JWT-bearer grant. The RS256 assertion is verified against the
  key of a service account this mock issued (`aud` is Google's fixed audience,
  as google-auth sends it); opaque access tokens expire server-side after
  `token_expires_in` seconds of `self.clock`.
* `POST /v1/projects/{project}/messages:send`: Bearer check, project check, one
  target, string `data` values, the 4096-byte limit, then the device's state.
* `POST /fcm/send`: the legacy protocol with `Authorization: key=...`, `to` or
  `registration_ids`, per-token results and canonical ids. With `retired=True`
  it answers like the shut-down service (`retired_status`, HTML body).

Served as production serves it: TLS (a mock CA (`tls.py`): `ca_pem`, `write_ca`) with
ALPN, HTTP/2 for clients that offer h2 (the v1 adapter: `providers.h2client` for
sends, httpx for tokens) and HTTP/1.1 for the rest (the legacy adapter's
aiohttp), on one port (`providers.mocks.h2server`).
Every request, whichever protocol, goes through `handle`, and `requests` records
its `http` version.

Faults (`self.faults`, by device-token prefix) map to FCM's wire answers:
throttle -> 429 QUOTA_EXCEEDED + Retry-After, unavailable -> 503 UNAVAILABLE,
server_error -> 500 INTERNAL, html_502 -> Google's HTML 502 page, expire_auth ->
401 ACCESS_TOKEN_EXPIRED (and the token is expired), bad_credentials -> 401
UNAUTHENTICATED, invalid_token -> 404 UNREGISTERED / NotRegistered; latency,
drop (the connection is closed, all its streams with it) and hang are played by
`AiohttpMock`. `script_error(token, code)` makes a
device answer any FCM v1 errorCode or legacy error name until cleared.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pushgw.providers.mocks.base import FaultRule
from pushgw.providers.mocks.h2server import (
    DualServer,
    MockRequest,
    handler_app,
    server_ssl_context,
)
from pushgw.providers.mocks.http import AiohttpMock
from pushgw.providers.mocks.tls import MockCA

TOKEN_AUDIENCE: Final = "https://oauth2.googleapis.com/token"
JWT_BEARER: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAX_PAYLOAD_BYTES: Final = 4096
MAX_TTL_S: Final = 2_419_200
_TOKEN_RE: Final = re.compile(r"^[A-Za-z0-9_:\-]{100,4096}$")
_FCM_ERROR: Final = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_BAD_REQUEST: Final = "type.googleapis.com/google.rpc.BadRequest"
_ERROR_INFO: Final = "type.googleapis.com/google.rpc.ErrorInfo"
_V1_PATH: Final = re.compile(r"/v1/projects/([^/]+)/messages:send")

# errorCode -> (HTTP status, google.rpc status, message), as FCM sends them.
V1_ERRORS: Final[Mapping[str, tuple[int, str, str]]] = {
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric."),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered."),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"),
}  # fmt: skip
_HTML_502: Final = (
    "<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Error 502 (Server "
    "Error)!!1</title><p><b>502.</b> <ins>That's an error.</ins><p>The server "
    "encountered a temporary error and could not complete your request.<p>Please "
    "try again in 30 seconds. <ins>That's all we know.</ins></html>"
)
_HTML_401: Final = (
    '<HTML><HEAD><TITLE>Unauthorized</TITLE></HEAD><BODY BGCOLOR="#FFFFFF">'
    "<H1>Unauthorized</H1><H2>Error 401</H2></BODY></HTML>"
)
_HTML_RETIRED: Final = (
    "<!DOCTYPE html><html lang=en><title>Error {status} (Not Found)!!1</title>"
    "<p><b>{status}.</b> <ins>That's an error.</ins><p>The requested URL "
    "<code>/fcm/send</code> was not found on this server. <ins>That's all we "
    "know.</ins></html>"
)
_RESERVED_DATA_KEYS: Final = ("from", "message_type", "google.", "gcm.")


def payload_bytes(message: Mapping[str, Any]) -> int:
    """`data` + `notification` (top level and android) as compact JSON bytes."""
    android = message.get("android")
    parts = [message.get("data"), message.get("notification")]
    if isinstance(android, Mapping):
        parts += [android.get("data"), android.get("notification")]
    return sum(
        len(json.dumps(p, separators=(",", ":"), ensure_ascii=False).encode())
        for p in parts
        if p
    )


def _v1_error(
    status: int,
    rpc_status: str,
    message: str,
    *,
    code: str | None = None,
    details: list[dict[str, Any]] | None = None,
    retry_after: float | None = None,
) -> web.Response:
    all_details = [{"@type": _FCM_ERROR, "errorCode": code}] if code else []
    all_details += details or []
    error = {"code": status, "message": message, "status": rpc_status}
    if all_details:
        error["details"] = all_details
    headers = (
        {"Retry-After": str(int(retry_after))} if retry_after is not None else None
    )
    return web.json_response({"error": error}, status=status, headers=headers)


def _v1_code(code: str, *, retry_after: float | None = None) -> web.Response:
    status, rpc_status, message = V1_ERRORS[code]
    details = None
    if code == "INVALID_ARGUMENT":
        details = [_violation("message", "Invalid message")]
    return _v1_error(
        status, rpc_status, message, code=code, details=details, retry_after=retry_after
    )


def _violation(field: str, description: str) -> dict[str, Any]:
    return {
        "@type": _BAD_REQUEST,
        "fieldViolations": [{"field": field, "description": description}],
    }


def _bad_token() -> web.Response:
    return _v1_error(
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
        code="INVALID_ARGUMENT",
        details=[_violation("message.token", "Invalid registration token")],
    )


def _unauthenticated(*, expired: bool) -> web.Response:
    message = (
        "Request had invalid authentication credentials. Expected OAuth 2 access "
        "token, login cookie or other valid authentication credential."
    )
    details = None
    if expired:
        info = {"@type": _ERROR_INFO, "reason": "ACCESS_TOKEN_EXPIRED"}
        details = [info | {"domain": "googleapis.com"}]
    return _v1_error(401, "UNAUTHENTICATED", message, details=details)


class GrantRefused(Exception):
    """The /token endpoint refuses the grant (400 invalid_grant)."""


def new_registration_token() -> str:
    """An FCM-like token: 22-char instance id, ':APA91b', 134 url-safe chars."""
    return secrets.token_urlsafe(17)[:22] + ":APA91b" + secrets.token_urlsafe(101)[:134]


class FcmMock(AiohttpMock):
    """
    Loopback FCM (v1 + legacy + OAuth token endpoint), platform "GCM".

    Options (attributes, changeable while running): `token_expires_in` (seconds
    an access token lives), `retired` / `retired_status` (legacy endpoint answers
    like the shut-down service), `token_endpoint_status` (if set, /token answers
    this status: an outage or a refusal). `ca` signs the server certificate (a
    fresh one if not given; the fleet shares the APNs mock's, so one `ca_file`
    trusts both).
    """

    platform = "GCM"

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        token_expires_in: float = 3600.0,
        retired: bool = False,
        retired_status: int = 404,
        ca: MockCA | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self.ca = ca or MockCA()
        self.ca_pem: bytes = self.ca.cert_pem.bytes()
        self._certificate = self.ca.issue_cert("127.0.0.1", "localhost")
        self._server: DualServer | None = None
        self.token_expires_in = token_expires_in
        self.retired = retired
        self.retired_status = retired_status
        # client_email -> (project_id, public key) of issued service accounts
        self.accounts: dict[str, tuple[str, rsa.RSAPublicKey]] = {}
        self.api_keys: set[str] = set()
        # access token -> (project_id, expires_at on self.clock)
        self.access_tokens: dict[str, tuple[str, float]] = {}
        self.canonical: dict[str, str] = {}  # old token -> its canonical token
        self.device_projects: dict[str, str] = {}  # token -> only project allowed
        self.scripted: dict[str, str] = {}  # token -> v1 errorCode or legacy error
        self._project_seq = 0

    # -- steps 1 and 2 -----------------------------------------------------------

    def issue_credentials(self, **options: Any) -> dict[str, str]:
        """
        Step 1. `kind="service_account"` (default; `project_id=` optional) gives
        a service-account JSON whose `token_uri` is this mock's /token, signed by
        a fresh RSA key unless `private_key=` (an RSAPrivateKey) is given, which
        saves tests the key generation; `kind="api_key"` gives a legacy server key.
        """
        kind = options.get("kind", "service_account")
        if kind == "api_key":
            key = "AIza" + secrets.token_urlsafe(30)[:35]
            self.api_keys.add(key)
            return {"PlatformCredential": key, "PlatformPrincipal": ""}
        if kind != "service_account":
            raise ValueError(f"unknown credential kind {kind!r}")
        if not self.base_url:
            raise RuntimeError("start() the mock first: token_uri needs its URL")
        self._project_seq += 1
        project = str(options.get("project_id") or f"pushgw-mock-{self._project_seq}")
        private = options.get("private_key") or rsa.generate_private_key(
            public_exponent=65537, key_size=2048
        )
        if not isinstance(private, rsa.RSAPrivateKey):
            raise TypeError("private_key must be an RSAPrivateKey")
        email = f"firebase-adminsdk-{secrets.token_hex(3)}@{project}.iam.gserviceaccount.com"
        self.accounts[email] = (project, private.public_key())
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        info = {
            "type": "service_account",
            "project_id": project,
            "private_key_id": secrets.token_hex(20),
            "private_key": pem,
            "client_email": email,
            "client_id": str(secrets.randbelow(10**21)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": f"{self.base_url}/token",
        }
        return {"PlatformCredential": json.dumps(info), "PlatformPrincipal": ""}

    def register_device(self, *, state: str = "valid", project_id: str = "") -> str:
        """
        Step 2. A new FCM-like token in `state`; `canonical` also registers the
        new token (valid) that legacy sends name. `project_id` ties the token to
        one project (others get SENDER_ID_MISMATCH / MismatchSenderId).
        """
        token = new_registration_token()
        self.set_device_state(token, state)
        if state == "canonical":
            self.canonical[token] = self.register_device(project_id=project_id)
        if project_id:
            self.device_projects[token] = project_id
        return token

    def script_error(self, token: str, code: str | None) -> None:
        """Make sends to `token` answer `code` (v1 errorCode or legacy error)."""
        if code is None:
            self.scripted.pop(token, None)
        else:
            self.scripted[token] = code

    def expire_access_tokens(self) -> None:
        """Expire every issued access token (FCM then answers ACCESS_TOKEN_EXPIRED)."""
        for token, (project, _) in self.access_tokens.items():
            self.access_tokens[token] = (project, float("-inf"))

    def reset(self) -> None:
        super().reset()
        self.scripted.clear()

    def write_ca(self, path: str | Path) -> None:
        """Write the CA certificate (PEM) for the client's `ca_file`."""
        Path(path).write_bytes(self.ca_pem)

    async def start(self, *, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve HTTP/2 and HTTP/1.1 over TLS; returns the https base URL."""
        self._stopping.clear()
        self._server = DualServer(
            app=self.make_app(),
            handler=self.handle,
            ssl_context=server_ssl_context(self._certificate),
        )
        bound_host, bound_port = await self._server.start(host, port)
        self.base_url = f"https://{bound_host}:{bound_port}"
        return self.base_url

    async def stop(self) -> None:
        self._stopping.set()  # releases hanging handlers
        if self._server is not None:
            await self._server.stop()
            self._server = None

    def make_app(self) -> web.Application:
        """The HTTP/1.1 side: every request goes to `handle`, as over HTTP/2."""
        return handler_app(self.handle)

    async def handle(self, request: MockRequest) -> web.Response | None:
        """Route one request; None drops the connection (a transport fault)."""
        if request.method != "POST":
            return web.Response(status=405, text="Method Not Allowed")
        if request.path == "/token":
            return self._token(request)
        if request.path == "/fcm/send":
            return await self._send_legacy(request)
        match = _V1_PATH.fullmatch(request.path)
        if match is not None:
            return await self._send_v1(request, match[1])
        return web.Response(status=404, text="Not Found")

    # -- OAuth2 JWT-bearer token endpoint -------------------------------------------

    def _token(self, request: MockRequest) -> web.Response:
        form = request.form()
        self.note_request(
            {"path": "/token", "http": request.http_version, "at": self.clock()}
        )
        if (outage := self.token_outage()) is not None:
            return outage
        try:
            project = self._check_grant(form.get("grant_type"), form.get("assertion"))
        except GrantRefused as exc:
            self.stats["token_rejected"] += 1
            body = {"error": "invalid_grant", "error_description": str(exc)}
            return web.json_response(body, status=400)
        access = "ya29.mock-" + secrets.token_urlsafe(48)
        self.access_tokens[access] = (project, self.clock() + self.token_expires_in)
        self.stats["token_issued"] += 1
        return web.json_response(
            {
                "access_token": access,
                "expires_in": int(self.token_expires_in),
                "token_type": "Bearer",
            }
        )

    def _check_grant(self, grant_type: object, assertion: object) -> str:
        """The project of the account that signed `assertion`, or GrantRefused."""
        if grant_type != JWT_BEARER or not isinstance(assertion, str):
            raise GrantRefused("Unsupported grant type or missing assertion.")
        try:
            iss = jwt.decode(assertion, options={"verify_signature": False})["iss"]
            project, public_key = self.accounts[iss]
            claims = jwt.decode(
                assertion,
                public_key,
                algorithms=["RS256"],
                audience=TOKEN_AUDIENCE,
                issuer=iss,
                # Time checks use self.clock, below, so tests can move time.
                options={"verify_exp": False, "verify_iat": False},
            )
            iat, exp = float(claims["iat"]), float(claims["exp"])
        except (jwt.PyJWTError, KeyError, TypeError, ValueError) as exc:
            raise GrantRefused("Invalid JWT Signature.") from exc
        if "firebase.messaging" not in str(claims.get("scope", "")):
            raise GrantRefused("Invalid OAuth scope or ID token audience provided.")
        now = self.clock()
        if exp - iat > 3600 or exp < now or iat > now + 300:
            raise GrantRefused(
                "Invalid JWT: Token must be a short-lived token (60 minutes) and "
                "in a reasonable timeframe."
            )
        return project

    # -- FCM HTTP v1 ----------------------------------------------------------------

    def _check_bearer(self, request: MockRequest) -> str | web.Response:
        """The project of a valid access token, or the 401 answer."""
        auth = request.headers.get("Authorization", "")
        entry = self.access_tokens.get(auth.removeprefix("Bearer ").strip())
        if not auth.startswith("Bearer ") or entry is None:
            self.stats["error_UNAUTHENTICATED"] += 1
            return _unauthenticated(expired=False)
        project, expires_at = entry
        if self.clock() >= expires_at:
            self.stats["error_ACCESS_TOKEN_EXPIRED"] += 1
            return _unauthenticated(expired=True)
        return project

    async def _send_v1(self, request: MockRequest, project: str) -> web.Response | None:
        raw = request.body
        token_project = self._check_bearer(request)
        if isinstance(token_project, web.Response):
            return token_project
        if token_project != project:
            self.stats["error_PERMISSION_DENIED"] += 1
            return _v1_error(
                403,
                "PERMISSION_DENIED",
                "Permission 'cloudmessaging.messages.create' denied on resource",
            )
        try:
            body = json.loads(raw)
            message = body["message"]
            assert isinstance(message, dict)
        except (ValueError, KeyError, TypeError, AssertionError):
            return self._invalid("message", "Invalid JSON payload received.")
        token = message.get("token")
        self.note_request(
            {
                "path": "v1",
                "http": request.http_version,
                "token": token,
                "body": body,
                "at": self.clock(),
            }
        )
        problem = self._check_message(message)
        if problem is not None:
            return self._invalid(*problem)
        assert isinstance(token, str)
        rule = self.faults.take(token)
        if await self.play_transport_fault(rule):
            return None
        if rule is not None and (answer := self._v1_fault(rule, request)) is not None:
            return answer
        return self._v1_deliver(token, project, body, request)

    def _invalid(self, field: str, description: str) -> web.Response:
        self.stats["error_INVALID_ARGUMENT"] += 1
        return _v1_error(
            400,
            "INVALID_ARGUMENT",
            description,
            code="INVALID_ARGUMENT",
            details=[_violation(field, description)],
        )

    @staticmethod
    def _check_message(message: dict[str, Any]) -> tuple[str, str] | None:
        """(field, problem) for a message FCM would refuse, else None."""
        targets = [t for t in ("token", "topic", "condition") if t in message]
        if len(targets) != 1:
            return "message", "Exactly one of token, topic or condition is required."
        data = message.get("data", {})
        if not isinstance(data, dict):
            return "message.data", "Invalid value: data must be a map."
        for key, value in data.items():
            if not isinstance(value, str):
                return f"message.data[{key}].value", "Invalid value (string expected)."
        size = payload_bytes(message)
        if size > MAX_PAYLOAD_BYTES:
            return (
                "message",
                f"Message is too big ({size} > {MAX_PAYLOAD_BYTES} bytes).",
            )
        return None

    def _v1_fault(self, rule: FaultRule, request: MockRequest) -> web.Response | None:
        self.stats[f"fault_{rule.kind}"] += 1
        kind = rule.kind
        if kind == "throttle":
            return _v1_code("QUOTA_EXCEEDED", retry_after=rule.retry_after or 1.0)
        if kind == "unavailable":
            return _v1_code("UNAVAILABLE", retry_after=rule.retry_after)
        if kind == "server_error":
            return _v1_code("INTERNAL", retry_after=rule.retry_after)
        if kind == "html_502":
            return web.Response(status=502, text=_HTML_502, content_type="text/html")
        if kind == "invalid_token":
            return _v1_code("UNREGISTERED")
        if kind == "bad_credentials":
            return _unauthenticated(expired=False)
        if kind == "expire_auth":
            access = request.headers["Authorization"].removeprefix("Bearer ").strip()
            project, _ = self.access_tokens[access]
            self.access_tokens[access] = (project, float("-inf"))
            return _unauthenticated(expired=True)
        return None  # goaway has no HTTP/1.1 meaning: answer normally

    def _v1_deliver(
        self, token: str, project: str, body: dict[str, Any], request: MockRequest
    ) -> web.Response:
        code = self.scripted.get(token)
        if code is not None and code in V1_ERRORS:
            self.stats[f"error_{code}"] += 1
            return _v1_code(code)
        state = self.devices.get(token)
        if state == "invalid" or (state is None and not _TOKEN_RE.match(token)):
            self.stats["error_INVALID_TOKEN"] += 1
            return _bad_token()
        if state is None or state == "unregistered":
            self.stats["error_UNREGISTERED"] += 1
            return _v1_code("UNREGISTERED")
        if self.device_projects.get(token, project) != project:
            self.stats["error_SENDER_ID_MISMATCH"] += 1
            return _v1_code("SENDER_ID_MISMATCH")
        message_id = f"0:{secrets.token_hex(8)}"
        if body.get("validate_only"):
            self.stats["validated"] += 1
            message_id = "fake_message_id"
        else:
            self.record(token, body["message"], dict(request.headers))
        return web.json_response({"name": f"projects/{project}/messages/{message_id}"})

    # -- legacy /fcm/send -----------------------------------------------------------

    async def _send_legacy(self, request: MockRequest) -> web.Response | None:
        raw = request.body
        if self.retired:
            self.stats["retired"] += 1
            html = _HTML_RETIRED.format(status=self.retired_status)
            return web.Response(
                status=self.retired_status, text=html, content_type="text/html"
            )
        key = request.headers.get("Authorization", "").removeprefix("key=").strip()
        if key not in self.api_keys:
            self.stats["error_Unauthorized"] += 1
            return web.Response(status=401, text=_HTML_401, content_type="text/html")
        try:
            body = json.loads(raw)
            assert isinstance(body, dict)
        except (ValueError, AssertionError):
            return web.Response(
                status=400, text="JSON_PARSING_ERROR: Unexpected character"
            )
        tokens = body.get("registration_ids") or ([body["to"]] if "to" in body else [])
        self.note_request(
            {
                "path": "/fcm/send",
                "http": request.http_version,
                "tokens": tokens,
                "body": body,
                "at": self.clock(),
            }
        )
        if not isinstance(tokens, list) or not tokens or len(tokens) > 1000:
            return web.Response(
                status=400, text='"to" or 1..1000 "registration_ids" required'
            )
        rule = self.faults.take(str(tokens[0]))
        if await self.play_transport_fault(rule):
            return None
        if rule is not None and (answer := self._legacy_fault(rule)) is not None:
            return answer
        results = [self._legacy_result(str(t), body, request) for t in tokens]
        headers = None
        if rule is not None and rule.kind == "throttle":
            results = [{"error": "DeviceMessageRateExceeded"} for _ in tokens]
            headers = {"Retry-After": str(int(rule.retry_after or 1))}
        elif rule is not None and rule.kind == "invalid_token":
            results = [{"error": "NotRegistered"} for _ in tokens]
        failure = sum("error" in r for r in results)
        return web.json_response(
            {
                "multicast_id": secrets.randbits(62),
                "success": len(results) - failure,
                "failure": failure,
                "canonical_ids": sum("registration_id" in r for r in results),
                "results": results,
            },
            headers=headers,
        )

    def _legacy_fault(self, rule: FaultRule) -> web.Response | None:
        self.stats[f"fault_{rule.kind}"] += 1
        retry = (
            {"Retry-After": str(int(rule.retry_after))} if rule.retry_after else None
        )
        if rule.kind == "unavailable":
            return web.Response(status=503, text="Unavailable", headers=retry)
        if rule.kind == "server_error":
            return web.Response(status=500, text="Internal Server Error", headers=retry)
        if rule.kind == "html_502":
            return web.Response(status=502, text=_HTML_502, content_type="text/html")
        if rule.kind in ("bad_credentials", "expire_auth"):
            return web.Response(status=401, text=_HTML_401, content_type="text/html")
        return None  # throttle and invalid_token are per-token results

    def _legacy_result(
        self, token: str, body: dict[str, Any], request: MockRequest
    ) -> dict[str, str]:
        error = self._legacy_error(token, body)
        if error is not None:
            self.stats[f"error_{error}"] += 1
            return {"error": error}
        message_id = f"0:{secrets.token_hex(8)}"
        if not body.get("dry_run"):
            self.record(token, body, dict(request.headers))
        new_token = self.canonical.get(token)
        if new_token is not None:
            self.stats["canonical"] += 1
            return {"message_id": message_id, "registration_id": new_token}
        return {"message_id": message_id}

    def _legacy_error(self, token: str, body: dict[str, Any]) -> str | None:
        scripted = self.scripted.get(token)
        if scripted is not None and scripted not in V1_ERRORS:
            return scripted
        state = self.devices.get(token)
        if state == "invalid" or (state is None and not _TOKEN_RE.match(token)):
            return "InvalidRegistration"
        if state is None or state == "unregistered":
            return "NotRegistered"
        ttl = body.get("time_to_live", 0)
        if not isinstance(ttl, int) or not 0 <= ttl <= MAX_TTL_S:
            return "InvalidTtl"
        data = body.get("data") or {}
        if any(str(k).startswith(_RESERVED_DATA_KEYS) for k in data):
            return "InvalidDataKey"
        if payload_bytes(body) > MAX_PAYLOAD_BYTES:
            return "MessageTooBig"
        return None
