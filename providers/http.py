"""
Shared plumbing for the HTTP/1.1 adapters (ADM, Baidu, WNS, MPNS, legacy GCM).

One `aiohttp.ClientSession` per adapter instance (that is, per platform
application), with a keep-alive pool sized by `ProviderSettings.max_connections`;
WNS and MPNS, which POST to URLs their endpoints carry, have theirs guarded by
`pushgw.netguard` (and a second, unguarded one for WNS's configured token URL).
`HttpProvider.post` is the one exchange they all make: it never follows
redirects, reads the body raw (never auto-decompressed, so adapters classify
exactly what the provider sent) up to MAX_ANSWER_BYTES, and maps aiohttp's
transport exceptions to `TransportFailure`, which `Provider.send` turns into
`RETRY`.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

import aiohttp
from aiohttp.abc import AbstractResolver

from pushgw.model import PlatformApplication
from pushgw.netguard import (
    NetPolicy,
    guarded_connector,
    http_session,
    read_capped,
    refusal_reason,
)
from pushgw.providers.base import Provider, ProviderSettings, TransportFailure

# aiohttp's exceptions that mean "the exchange failed; try again later": all
# of its ClientError family. Refused, reset, TLS and timeouts are
# ClientConnectionErrors, a truncated body a ClientPayloadError, and an answer
# aiohttp cannot parse (a status line like `HTTP/1.1 2000 WAT`, garbage, bad
# headers) a ClientResponseError, raised by its parser, not only by
# raise_for_status() (never called here).
HTTP_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError,)

# The most of an answer read. Providers answer in a few hundred bytes (an error
# page in a few KiB), but WNS and MPNS POST to hosts that channel URIs name, and
# such a host could stream without end: the rest is never read.
MAX_ANSWER_BYTES = 65_536


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
    settings: ProviderSettings,
    *,
    ssl_context: ssl.SSLContext | None = None,
    policy: NetPolicy | None = None,
    resolver: AbstractResolver | None = None,
) -> aiohttp.ClientSession:
    """
    A keep-alive session for one adapter instance. Call inside the running loop.

    Args:
        settings: `max_connections` caps the pool, `timeout_s` bounds each request
            (connect + send + read), and `ssl_context()` (which trusts `ca_file`
            too) is used for https URLs.
        ssl_context: used instead of `settings.ssl_context()` (MPNS passes one
            with a client certificate).
        policy: when given, the session connects only to addresses the policy
            allows (`pushgw.netguard.guarded_connector`): for URLs that endpoints
            carry. None: unguarded, for the provider URLs in the configuration.
        resolver: the resolver a guarded session checks (tests inject one);
            None is the system's.

    Returns:
        A session the caller closes with `await session.close()` in `aclose()`.
    """
    tls = ssl_context or settings.ssl_context()  # only consulted for https://
    connector: aiohttp.TCPConnector
    if policy is None:
        connector = aiohttp.TCPConnector(
            limit=settings.max_connections, ssl=tls, enable_cleanup_closed=False
        )
    else:
        connector = guarded_connector(
            policy, ssl=tls, limit=settings.max_connections, resolver=resolver
        )
    return http_session(connector, timeout_s=settings.timeout_s)


class HttpProvider(Provider):
    """
    An adapter speaking HTTP/1.1 through keep-alive aiohttp sessions, made on
    first use (inside the running loop) and closed by `aclose`.

    Adapters whose endpoints carry the URL they POST to (WNS and MPNS channel
    URIs) set `guards_endpoint_urls`: `post` then goes through a session that
    connects only to public addresses, or loopback ones too when
    `settings.allow_loopback` (the mocks); loopback only, since that flag never
    admitted private hosts in the channel guard either. `post_configured` is
    for the URLs of the configuration (WNS's token endpoint) and stays unguarded,
    like every request of the other adapters (ADM, Baidu, legacy GCM), whose
    URLs all come from the configuration.
    """

    guards_endpoint_urls: ClassVar[bool] = False

    def __init__(self, *, app: PlatformApplication, settings: ProviderSettings) -> None:
        super().__init__(app=app, settings=settings)
        self._sessions: dict[bool, aiohttp.ClientSession] = {}  # by guarded
        # A TLS context with a client certificate (MPNS authenticated service).
        self.client_ssl: ssl.SSLContext | None = None
        # The resolver the guarded session checks; tests inject one before the
        # first send. None: the system's (getaddrinfo).
        self.resolver: AbstractResolver | None = None

    def _session(self, *, guarded: bool) -> aiohttp.ClientSession:
        guarded = guarded and self.guards_endpoint_urls
        session = self._sessions.get(guarded)
        if session is None:
            policy = NetPolicy(allow_loopback=self.settings.allow_loopback)
            session = self._sessions[guarded] = client_session(
                self.settings,
                ssl_context=self.client_ssl,
                policy=policy if guarded else None,
                resolver=self.resolver,
            )
        return session

    async def post(
        self, url: str, *, data: bytes | str, headers: Mapping[str, str]
    ) -> Answer:
        """
        One POST, answer read up to MAX_ANSWER_BYTES. Redirects are never
        followed: a 3xx could carry a bearer token or a client secret past the
        channel guard. Guarded when the adapter sets `guards_endpoint_urls`.
        """
        return await self._exchange(
            self._session(guarded=True), url, data=data, headers=headers
        )

    async def post_configured(
        self, url: str, *, data: bytes | str, headers: Mapping[str, str]
    ) -> Answer:
        """`post` for a URL from the configuration: never guarded."""
        return await self._exchange(
            self._session(guarded=False), url, data=data, headers=headers
        )

    @staticmethod
    async def _exchange(
        session: aiohttp.ClientSession,
        url: str,
        *,
        data: bytes | str,
        headers: Mapping[str, str],
    ) -> Answer:
        try:
            async with session.post(
                url, data=data, headers=headers, allow_redirects=False
            ) as resp:
                body = await read_capped(resp, MAX_ANSWER_BYTES)
                return Answer(resp.status, resp.headers, body)
        except aiohttp.InvalidURL:
            # A URL aiohttp cannot use is ours (built or stored), not the
            # provider failing: an error of the adapter, never a retry that
            # would count against the provider and pause the app.
            raise
        except HTTP_TRANSPORT_ERRORS as exc:
            refused = refusal_reason(exc)  # the guard's words, not aiohttp's
            if refused is not None:
                raise TransportFailure(refused) from exc
            raise TransportFailure.wrap(exc) from exc

    async def aclose(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()
