"""
Loopback Baidu Cloud Push v3: `/rest/3.0/push/single_device` with real signing.

The mock recomputes every `sign` (PHP SDK 3.0 rules, PROVIDERS.md §5) over the
URL it is reachable at, so a client must sign exactly what it sends. Channels are
19-digit numeric strings; their state chooses the answer.
"""

from __future__ import annotations

import json
import secrets
import ssl
import string
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from pushgw.providers.baidu import (
    MAX_MSG_BYTES,
    MAX_MSG_EXPIRES_S,
    SEND_PATH,
    baidu_sign,
)
from pushgw.providers.mocks.base import FaultRule
from pushgw.providers.mocks.http import AiohttpMock, dropped

SKEW_S = 600  # accepted |now - timestamp| (older SDKs: 10 minutes)
ALNUM = string.ascii_letters + string.digits
ERROR_MESSAGES = {
    30600: "Internal Server Error",
    30601: "Method Not Allowed",
    30602: "Request Params Not Valid",
    30603: "Authentication Failed",
    30606: "Request Time Expires Timeout",
    30607: "Channel Token Timeout",
    30608: "Bind Relation Not Found",
    30699: "Requests Are Too Frequent To Be Temporarily Rejected",
}
# HTTP status per code: Baidu answers errors with "HTTP != 200"; which one is not
# documented (PROVIDERS.md §12), so these are plausible stand-ins.
ERROR_STATUS = {30600: 500, 30603: 401, 30699: 503}
SEND_TIME_KEYS = ("apikey", "device_type", "msg_type", "msg_expires", "deploy_status")


def _random_text(n: int) -> str:
    return "".join(secrets.choice(ALNUM) for _ in range(n))


def _in_range(value: str | None, low: int, high: int) -> bool:
    if value is None:
        return True
    return value.isdigit() and low <= int(value) <= high


class BaiduMock(AiohttpMock):
    """Baidu Push single_device on 127.0.0.1."""

    platform = "BAIDU"

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        ssl_context: ssl.SSLContext | None = None,
        public_base_url: str | None = None,
        accept_both_schemes: bool = False,
    ) -> None:
        super().__init__(clock=clock, ssl_context=ssl_context)
        # The URL clients sign: set it when they reach the mock through a proxy.
        self.public_base_url = public_base_url
        self.accept_both_schemes = accept_both_schemes
        self.max_msg_bytes = MAX_MSG_BYTES
        self.apps: dict[str, str] = {}  # api key -> secret key
        self.user_ids: dict[str, str] = {}  # channel id -> user id

    def issue_credentials(self, **options: Any) -> dict[str, str]:
        api_key, secret = _random_text(24), _random_text(32)
        self.apps[api_key] = secret
        return {"PlatformPrincipal": api_key, "PlatformCredential": secret}

    def register_device(self, *, state: str = "valid") -> str:
        channel_id = str(10**18 + secrets.randbelow(9 * 10**18))  # 19 digits
        self.set_device_state(channel_id, state)
        self.user_ids[channel_id] = str(10**17 + secrets.randbelow(9 * 10**17))
        return channel_id

    def user_id_for(self, channel_id: str) -> str:
        """The Baidu user id bound with `channel_id` (SNS endpoint `UserId`)."""
        return self.user_ids[channel_id]

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", SEND_PATH, self._push)
        return app

    def _error(self, code: int) -> web.Response:
        self.stats[f"error_{code}"] += 1
        body = {
            "request_id": secrets.randbits(40),
            "error_code": code,
            "error_msg": ERROR_MESSAGES.get(code, "Error"),
        }
        return web.json_response(body, status=ERROR_STATUS.get(code, 400))

    async def _push(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return self._error(30601)
        form = await request.post()
        params = {key: str(value) for key, value in form.items()}
        channel_id = params.get("channel_id", "")
        rule = self.faults.take(channel_id)
        if await self.transport_fault(rule, request):
            return dropped()
        response = self._answer(request, params, rule)
        self.note_request({"token": channel_id, "status": response.status})
        return response

    def _answer(
        self, request: web.Request, params: dict[str, str], rule: FaultRule | None
    ) -> web.Response:
        fault = self._fault_answer(rule) if rule is not None else None
        if fault is not None:
            return fault
        code = self._check_auth(request, params) or self._check_params(params)
        if code is not None:
            return self._error(code)
        state = self.devices.get(params["channel_id"], "invalid")
        if state in ("invalid", "unregistered"):
            return self._error(30608 if state == "invalid" else 30607)
        msg = json.loads(params["msg"])
        meta = {key: params[key] for key in SEND_TIME_KEYS if key in params}
        self.record(params["channel_id"], msg, meta)
        now = int(self.clock())
        return web.json_response(
            {
                "request_id": secrets.randbits(40),
                "response_params": {
                    "msg_id": str(secrets.randbits(60)),
                    "send_time": now,
                },
            }
        )

    def _fault_answer(self, rule: FaultRule) -> web.Response | None:
        # Each fault kind as Baidu would say it (PROVIDERS.md §5).
        codes = {
            "throttle": 30699,
            "server_error": 30600,
            "invalid_token": 30608,
            "expire_auth": 30606,
            "bad_credentials": 30603,
        }
        if rule.kind in codes:
            return self._error(codes[rule.kind])
        if rule.kind == "unavailable":  # the front end, not the API: no JSON
            return web.Response(status=503, text="Service Unavailable")
        if rule.kind == "html_502":
            html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
            return web.Response(status=502, text=html, content_type="text/html")
        return None

    def signing_urls(self, path: str) -> list[str]:
        """The full URLs a client may have signed for `path`."""
        base = (self.public_base_url or self.base_url).rstrip("/")
        urls = [base + path]
        if self.accept_both_schemes:
            scheme, rest = base.split("://", 1)
            other = "https" if scheme == "http" else "http"
            urls.append(f"{other}://{rest}{path}")
        return urls

    def _check_auth(self, request: web.Request, params: dict[str, str]) -> int | None:
        secret = self.apps.get(params.get("apikey", ""))
        if secret is None:
            return 30603
        timestamp, expires = params.get("timestamp", ""), params.get("expires")
        if not timestamp.isdigit() or (expires is not None and not expires.isdigit()):
            return 30602
        now = self.clock()
        if abs(now - int(timestamp)) > SKEW_S or (expires and now > int(expires)):
            return 30606
        unsigned = {key: value for key, value in params.items() if key != "sign"}
        signs = {
            baidu_sign(method=request.method, url=url, params=unsigned, secret=secret)
            for url in self.signing_urls(request.path)
        }
        return None if params.get("sign") in signs else 30603

    def _check_params(self, params: dict[str, str]) -> int | None:
        msg = params.get("msg")
        if not params.get("channel_id", "").isdigit() or msg is None:
            return 30602
        if len(msg.encode()) > self.max_msg_bytes:
            return 30602
        try:
            json.loads(msg)
        except ValueError:
            return 30602
        ok = (
            params.get("msg_type", "0") in ("0", "1")
            and params.get("device_type", "3") in ("3", "4")
            and params.get("deploy_status", "1") in ("1", "2")
            and _in_range(params.get("msg_expires"), 1, MAX_MSG_EXPIRES_S)
        )
        return None if ok else 30602
