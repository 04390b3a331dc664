"""
Access-token cache shared by the OAuth-based adapters (FCM v1, ADM, WNS).

One token per platform application, refreshed single-flight: concurrent senders
wait on one fetch instead of stampeding the token endpoint. Tokens are renewed at
`refresh_ratio` of their lifetime, and a sender whose request came back 401 calls
`refresh(stale=token)` so exactly one forced refresh happens per expiry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from providers.base import TokenFetchError

__all__ = ["AccessTokenCache", "TokenFetchError"]


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
