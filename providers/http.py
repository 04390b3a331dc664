"""
Shared plumbing for the HTTP/1.1 adapters (ADM, Baidu, WNS, MPNS).

One `aiohttp.ClientSession` per adapter instance (that is, per platform
application), with a keep-alive pool sized by `ProviderSettings.max_connections`.
Bodies are read raw and never auto-decompressed, so adapters classify exactly what
the provider sent. Transport exceptions go through `map_transport_errors` with
`extra=HTTP_TRANSPORT_ERRORS`.
"""

from __future__ import annotations

import json
import ssl
from typing import Any

import aiohttp

from providers.base import Provider, ProviderSettings
from pushgw.model import PlatformApplication

# aiohttp's exceptions that mean "the exchange failed; try again later". Its
# ClientResponseError family is not here: we never call raise_for_status().
HTTP_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectionError,  # refused, reset, disconnected, TLS, timeouts
    aiohttp.ClientPayloadError,  # truncated or malformed body
    aiohttp.ServerTimeoutError,
)


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


async def read_json(resp: aiohttp.ClientResponse) -> Any | None:
    """
    The response body parsed as JSON, or None if it is empty or not JSON.

    The Content-Type header is ignored: providers label error bodies loosely.
    """
    raw = await resp.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


async def read_text(resp: aiohttp.ClientResponse, *, limit: int = 512) -> str:
    """The first `limit` characters of the body, for reasons and logs."""
    raw = await resp.read()
    return raw[:limit].decode("utf-8", "replace")


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

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
