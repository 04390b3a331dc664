"""
Shared plumbing for the HTTP/1.1 adapters (ADM, Baidu, WNS, MPNS, legacy GCM).

One `aiohttp.ClientSession` per adapter instance (that is, per platform
application), with a keep-alive pool sized by `ProviderSettings.max_connections`.
`HttpProvider.post` is the one exchange they all make: it never follows
redirects, reads the whole body raw (never auto-decompressed, so adapters classify
exactly what the provider sent) and maps aiohttp's transport exceptions to
`TransportFailure`, which `Provider.send` turns into `RETRY`.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Mapping
from typing import Any, NamedTuple

import aiohttp

from pushgw.model import PlatformApplication
from pushgw.providers.base import Provider, ProviderSettings, TransportFailure

# aiohttp's exceptions that mean "the exchange failed; try again later". Its
# ClientResponseError family is not here: we never call raise_for_status().
HTTP_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectionError,  # refused, reset, disconnected, TLS, timeouts
    aiohttp.ClientPayloadError,  # truncated or malformed body
    aiohttp.ServerTimeoutError,
)


class Answer(NamedTuple):
    """A whole HTTP answer, read before it is classified, whichever client got it."""

    status: int
    headers: Mapping[str, str]  # case-insensitive (aiohttp and httpx both)
    body: bytes

    def json(self) -> Any | None:
        """
        The body parsed as JSON, or None if it is empty or not JSON.

        The Content-Type header is ignored: providers label error bodies loosely.
        """
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None

    def text(self, limit: int = 512) -> str:
        """The first `limit` bytes of the body as text, for reasons and logs."""
        return self.body[:limit].decode("utf-8", "replace")


def plain_text(text: str, limit: int = 200) -> str:
    """An error body fit for a reason: HTML tags dropped, whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]*>", " ", text).split())[:limit]


def client_session(
    settings: ProviderSettings, *, ssl_context: ssl.SSLContext | None = None
) -> aiohttp.ClientSession:
    """
    A keep-alive session for one adapter instance. Call inside the running loop.

    Args:
        settings: `max_connections` caps the pool, `timeout_s` bounds each request
            (connect + send + read), and `ssl_context()` (which trusts `ca_file`
            too) is used for https URLs.

    Returns:
        A session the caller closes with `await session.close()` in `aclose()`.
    """
    connector = aiohttp.TCPConnector(
        limit=settings.max_connections,
        # Only consulted for https:// URLs; MPNS passes one with a client cert.
        ssl=ssl_context or settings.ssl_context(),
        enable_cleanup_closed=False,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=settings.timeout_s),
        auto_decompress=False,
        raise_for_status=False,
        trust_env=False,  # no proxy surprises from the environment
    )


class HttpProvider(Provider):
    """
    An adapter speaking HTTP/1.1 through one keep-alive aiohttp session, made on
    first use (inside the running loop) and closed by `aclose`.
    """

    def __init__(self, *, app: PlatformApplication, settings: ProviderSettings) -> None:
        super().__init__(app=app, settings=settings)
        self._session: aiohttp.ClientSession | None = None
        # A TLS context with a client certificate (MPNS authenticated service).
        self.client_ssl: ssl.SSLContext | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = client_session(self.settings, ssl_context=self.client_ssl)
        return self._session

    async def post(
        self, url: str, *, data: bytes | str, headers: Mapping[str, str]
    ) -> Answer:
        """
        One POST, answer read whole. Redirects are never followed: a 3xx could
        carry a bearer token or a client secret past the channel guard.
        """
        try:
            async with self.session.post(
                url, data=data, headers=headers, allow_redirects=False
            ) as resp:
                return Answer(resp.status, resp.headers, await resp.read())
        except HTTP_TRANSPORT_ERRORS as exc:
            raise TransportFailure.wrap(exc) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
