"""
OAuth2 for the token-based adapters (FCM v1, ADM, WNS): one token request with one
error mapping, one send-with-bearer rule, and the access-token cache.

`request_token` POSTs a grant form, a client-credentials grant (ADM, WNS; RFC 6749
§4.4) or a JWT-bearer assertion (FCM; RFC 7523 §2.1), and classifies the token
endpoint's answer the same way for all three:

| answer                                        | TokenFetchError           |
|-----------------------------------------------|---------------------------|
| transport failure, 408, 429, 5xx, other codes | bad_credentials=False     |
| 200 without a usable `access_token`           | bad_credentials=False     |
| any other 4xx (invalid_client, invalid_grant) | bad_credentials=True      |

`Provider.send` turns the error into RETRY or BAD_CREDENTIALS (the app is disabled).

One token per platform application, refreshed single-flight: concurrent senders
wait on one fetch instead of stampeding the token endpoint. Tokens are renewed at
`refresh_ratio` of their lifetime, and `authorized` refreshes exactly once when a
provider rejects a token it still thought valid, then resends once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Protocol, TypeVar
from urllib.parse import urlencode

from pushgw.providers.base import TRANSPORT_ERRORS, TokenFetchError, describe
from pushgw.providers.http import Answer, plain_text

__all__ = ["AccessTokenCache", "Post", "TokenFetchError", "request_token"]

FORM_HEADERS: Final = {
    "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
    "Accept": "application/json",
}
# Timeouts and throttling at the token endpoint say nothing about our credentials.
_TRANSIENT_4XX: Final = frozenset({408, 429})

AnswerT = TypeVar("AnswerT")


class Post(Protocol):
    """One HTTP POST, answer read whole (`HttpProvider.post`, FCM's client)."""

    async def __call__(
        self, url: str, *, data: bytes | str, headers: Mapping[str, str]
    ) -> Answer: ...


async def request_token(
    post: Post, url: str, form: Mapping[str, str], *, default_expires_in: float
) -> tuple[str, float]:
    """
    One grant POSTed to a token endpoint: the access token and its lifetime.

    Args:
        post: the adapter's own HTTP client, so the grant takes its TLS settings.
        url: the token endpoint.
        form: the grant's form fields.
        default_expires_in: seconds, when the answer names no usable `expires_in`.

    Raises:
        TokenFetchError: the endpoint refused or failed (table in the module doc).
    """
    try:
        answer = await post(url, data=urlencode(form), headers=FORM_HEADERS)
    except TRANSPORT_ERRORS as exc:
        reason = f"token endpoint: {describe(exc)}"
        raise TokenFetchError(reason, bad_credentials=False) from exc
    parsed = answer.json()
    body: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
    token = body.get("access_token")
    if answer.status == 200 and isinstance(token, str) and token:
        return token, _seconds(body.get("expires_in"), default=default_expires_in)
    if answer.status == 200:
        raise TokenFetchError("token 200 without access_token", bad_credentials=False)
    refused = 400 <= answer.status < 500 and answer.status not in _TRANSIENT_4XX
    reason = f"token {answer.status} {_error(body, answer)}".strip()
    raise TokenFetchError(reason, bad_credentials=refused)


def _error(body: Mapping[str, Any], answer: Answer) -> str:
    """RFC 6749 §5.2 `error` (ADM may say `reason`), else the body as plain text."""
    error = body.get("error") or body.get("reason")
    if isinstance(error, str):
        return error
    return plain_text(answer.text(), limit=100)


def _seconds(value: object, *, default: float) -> float:
    """`expires_in` as float seconds (a number, or a numeric string on some servers)."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int | float | str):
        try:
            return float(value)
        except ValueError:
            pass
    return default


# fetch() returns (access_token, expires_in_seconds).
Fetch = Callable[[], Awaitable[tuple[str, float]]]


class AccessTokenCache:
    def __init__(
        self,
        fetch: Fetch,
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh_ratio: float = 0.9,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._refresh_ratio = refresh_ratio
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0  # how many times the token endpoint was called

    async def get(self) -> str:
        """A valid token, fetching one if there is none or it is due for renewal."""
        token = self._token
        if token is not None and self._clock() < self._renew_at:
            return token
        return await self.refresh(stale=token)

    async def refresh(self, *, stale: str | None) -> str:
        """
        Replace `stale` with a new token. If another task already replaced it,
        return that one instead of fetching again (single flight).
        """
        async with self._lock:
            fresh = self._token is not None and self._clock() < self._renew_at
            if fresh and self._token != stale:
                assert self._token is not None
                return self._token
            token, expires_in = await self._fetch()
            self.fetches += 1
            self._token = token
            self._renew_at = self._clock() + max(1.0, expires_in) * self._refresh_ratio
            return token

    async def authorized(
        self,
        post: Callable[[str], Awaitable[AnswerT]],
        *,
        rejected: Callable[[AnswerT], bool],
    ) -> AnswerT:
        """
        `post(token)` with the current token. If the answer says the token was
        rejected (expired early, revoked), refresh once and post once more; that
        second answer stands, whatever it says, so a bad secret never loops (WNS:
        "do not try to re-send your notification more than once").
        """
        token = await self.get()
        answer = await post(token)
        if rejected(answer):
            answer = await post(await self.refresh(stale=token))
        return answer
