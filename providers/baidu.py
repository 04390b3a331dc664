"""
Baidu Cloud Push REST API v3 adapter (PROVIDERS.md §5).

One signed form POST to `/rest/3.0/push/single_device` per message. The
signature follows the official PHP SDK 3.0 (`BaseSDK::genSign`): md5 of the PHP
`urlencode` of METHOD + full URL + sorted `k=v` pairs + secret key. The secret
is only ever an input to the signature; it is never sent.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote_plus, urlencode

from pushgw.model import Endpoint, Platform, PlatformApplication
from pushgw.providers.base import Outcome, ProviderSettings, RenderedMessage, SendResult
from pushgw.providers.http import Answer, HttpProvider

SEND_PATH = "/rest/3.0/push/single_device"
USER_AGENT = "BCCS_SDK/3.0 (Linux) Python (pushgw)"  # the SDKs' UA shape
DEVICE_TYPE_ANDROID = "3"
SIGN_EXPIRES_S = 600  # the signature is valid this long after `timestamp`
MAX_MSG_BYTES = 4096  # no vendor source; PROVIDERS.md §5 suggests ~4 KB
MAX_MSG_EXPIRES_S = 604800  # msg_expires range is 1..604800 s
MSG_TYPE_MESSAGE = "0"  # pass-through message, handed to the app
MSG_TYPE_NOTIFICATION = "1"  # shown by the system (title + description)
RESIGN_CODE = 30606  # Request Time Expires Timeout: re-sign and retry once

# error_code -> outcome. Codes from the Baidu Push Android SDK `PushConstants`
# (306xx namespace; REST docs were at http://push.baidu.com/doc/php/api); the
# mapping is PROVIDERS.md §5's, and codes not listed are PERMANENT.
ERROR_OUTCOMES: Mapping[int, Outcome] = {
    30600: Outcome.RETRY,  # Internal Server Error
    30602: Outcome.PERMANENT,  # Request Params Not Valid
    30603: Outcome.BAD_CREDENTIALS,  # Authentication Failed (apikey/sign)
    30605: Outcome.PERMANENT,  # Data Required Not Found
    30606: Outcome.RETRY,  # Request Time Expires (still skewed after re-signing)
    30607: Outcome.INVALID_TOKEN,  # Channel Token Timeout: the channel expired
    30608: Outcome.INVALID_TOKEN,  # Bind Relation Not Found: unknown channel
    30612: Outcome.BAD_CREDENTIALS,  # Application Forbidden, Need Whitelist
    30613: Outcome.BAD_CREDENTIALS,  # App Need Inited First In Push-console
    30699: Outcome.RETRY,  # Requests Are Too Frequent To Be Temporarily Rejected
}


def php_urlencode(text: str) -> str:
    """PHP `urlencode`: space is `+`, all but `A-Za-z0-9_.-` %XX-encoded (UTF-8)."""
    return quote_plus(text, safe="").replace("~", "%7E")


def baidu_sign(*, method: str, url: str, params: Mapping[str, str], secret: str) -> str:
    """
    The `sign` parameter of a Baidu Push v3 request.

    Args:
        method: HTTP method; upper-cased.
        url: the full request URL, scheme included (http and https differ).
        params: every form parameter except `sign`.
        secret: the application's secret key.

    Returns:
        Lowercase hex md5.
    """
    pairs = "".join(f"{key}={params[key]}" for key in sorted(params))
    text = php_urlencode(method.upper() + url + pairs + secret)
    return hashlib.md5(text.encode()).hexdigest()


def _remaining(message: RenderedMessage, now: float) -> float | None:
    dwell = now - message.published_at if message.published_at else 0.0
    attr = message.attr("BAIDU.TTL")
    if attr is not None:
        return float(attr) - dwell
    if message.expires_at is not None:
        return message.expires_at - now
    return None


def build_params(
    message: RenderedMessage, *, channel_id: str, app_name: str, now: float
) -> dict[str, str] | SendResult:
    """The unsigned single_device parameters, or the PERMANENT result that stops it."""
    msg_type = message.attr("BAIDU.MessageType")
    if message.native:
        msg = message.body
    else:  # SNS_API §8.1: plain text becomes a notification
        title = message.subject or app_name
        msg = json.dumps({"title": title, "description": message.body})
    if msg_type is None:
        msg_type = MSG_TYPE_MESSAGE if message.native else MSG_TYPE_NOTIFICATION
    if len(msg.encode()) > MAX_MSG_BYTES:
        return SendResult(Outcome.PERMANENT, f"msg too large: > {MAX_MSG_BYTES} bytes")
    params = {
        "channel_id": channel_id,
        "device_type": DEVICE_TYPE_ANDROID,
        "msg": msg,
        "msg_type": msg_type,
    }
    try:
        ttl = _remaining(message, now)
    except ValueError:
        return SendResult(Outcome.PERMANENT, "BAIDU.TTL is not a number")
    if ttl is not None:
        if ttl < 1:  # SNS_API §8.3: Baidu gives 0 no meaning; the message expired
            return SendResult(Outcome.PERMANENT, "TTL expired before delivery")
        params["msg_expires"] = str(min(math.ceil(ttl), MAX_MSG_EXPIRES_S))
    deploy_status = message.attr("BAIDU.DeployStatus")
    if deploy_status is not None:
        params["deploy_status"] = deploy_status
    return params


class BaiduProvider(HttpProvider):
    """One Baidu Push application (API key + secret key)."""

    platforms = frozenset({Platform.BAIDU})
    settings_name = "baidu"

    def __init__(self, *, app: PlatformApplication, settings: ProviderSettings) -> None:
        super().__init__(app=app, settings=settings)
        self.clock: Callable[[], float] = time.time  # signs `timestamp`
        self.url = settings.base_url.rstrip("/") + SEND_PATH

    async def _send_once(
        self, endpoint: Endpoint, message: RenderedMessage
    ) -> SendResult:
        channel_id = endpoint.attributes.get("ChannelId") or endpoint.token
        params = build_params(
            message, channel_id=channel_id, app_name=self.app.name, now=self.clock()
        )
        if isinstance(params, SendResult):
            return params
        answer = await self._post(params)
        if _error_code(answer.json()) == RESIGN_CODE:  # clock skew: fresh timestamp
            answer = await self._post(params)
        return classify(answer.status, answer.json())

    def signed(self, params: Mapping[str, str]) -> dict[str, str]:
        """`params` plus apikey, timestamp, expires and sign, for sending now."""
        now = int(self.clock())
        form = {
            **params,
            "apikey": self.app.principal,
            "timestamp": str(now),
            "expires": str(now + SIGN_EXPIRES_S),
        }
        form["sign"] = baidu_sign(
            method="POST", url=self.url, params=form, secret=self.app.credential
        )
        return form

    async def _post(self, params: Mapping[str, str]) -> Answer:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded;charset=utf-8",
            "User-Agent": USER_AGENT,
        }
        body = urlencode(self.signed(params))
        return await self.post(self.url, data=body, headers=headers)


def _error_code(answer: Any) -> int | None:
    if isinstance(answer, dict) and isinstance(answer.get("error_code"), int):
        return int(answer["error_code"])
    return None


def classify(status: int, answer: Any) -> SendResult:
    """Map one Baidu answer to a SendResult (table above)."""
    code = _error_code(answer)
    if code is None:
        if status == 200 and isinstance(answer, dict) and "response_params" in answer:
            params = answer["response_params"]
            msg_id = params.get("msg_id") if isinstance(params, dict) else None
            return SendResult.delivered(f"200 msg_id={msg_id}")
        # No JSON error: 5xx/429 are the front end failing; the rest is garbage
        # we cannot classify, and resending the same request will not fix it.
        retry = status >= 500 or status == 429
        outcome = Outcome.RETRY if retry else Outcome.PERMANENT
        return SendResult(outcome, f"{status} unexpected answer", status=status)
    error_msg = answer.get("error_msg", "") if isinstance(answer, dict) else ""
    outcome = ERROR_OUTCOMES.get(code, Outcome.PERMANENT)
    return SendResult(outcome, f"{code} {error_msg}".strip(), status=status)
