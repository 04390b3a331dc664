"""
The one shape every provider adapter has.

An adapter is created per platform application, owns that application's
connection pool and auth-token cache, and turns a rendered SNS message into one
provider request. Expected provider answers come back as `SendResult` values;
exceptions are for bugs and setup errors only. `Provider.send` is the one send
skeleton: it runs the adapter's `_send_once` and maps, in one place, transport
failures (timeouts, resets, TLS and protocol errors) to `RETRY` and token-fetch
failures to `BAD_CREDENTIALS` or `RETRY`.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import hashlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Self

import jh2.exceptions

from pushgw.model import Endpoint, MessageAttribute, Platform, PlatformApplication


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    INVALID_TOKEN = "invalid_token"  # token gone/invalid: disable endpoint, never retry
    CANONICAL_TOKEN = "canonical_token"  # delivered; provider names a newer token
    RETRY = "retry"  # 5xx, 429, timeouts, connection errors; retry_after if given
    BAD_CREDENTIALS = "bad_credentials"  # provider rejects the app's credentials
    PERMANENT = "permanent"  # bad payload or request: permanent for this message


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    reason: str  # the provider's own words, e.g. "410 Unregistered"
    retry_after: float | None = None  # seconds, from Retry-After & co.
    new_token: str | None = None  # with CANONICAL_TOKEN
    status: int | None = None  # provider HTTP status, when there was one

    @classmethod
    def delivered(cls, reason: str = "200", *, status: int | None = 200) -> SendResult:
        return cls(Outcome.DELIVERED, reason, status=status)


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """
    What the delivery engine hands an adapter for one endpoint.

    `body` is the string SNS selected for this platform: `message[PLATFORM]` when
    the JSON structure has the platform key (`native=True`: a provider payload,
    JSON or XML), otherwise `message["default"]` or the plain-text message
    (`native=False`: text the adapter wraps per platform, SNS_API §8.1).
    """

    message_id: str
    body: str
    native: bool
    subject: str | None = None
    # Only the reserved `AWS.SNS.MOBILE.*` attributes; they shape the request.
    attributes: Mapping[str, MessageAttribute] = field(default_factory=dict)
    # Absolute expiry (epoch seconds) from the TTL attribute; None = not given.
    expires_at: float | None = None
    # Publish time (epoch seconds), to subtract dwell time from body TTLs.
    published_at: float = 0.0

    def attr(self, name: str) -> str | None:
        """The string value of reserved attribute `AWS.SNS.MOBILE.<name>`."""
        value = self.attributes.get(f"AWS.SNS.MOBILE.{name}")
        return value.string_value if value is not None else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderSettings:
    """Per-platform settings from config (`[providers.<name>]`)."""

    base_url: str  # provider API base, e.g. https://api.push.apple.com
    sandbox_url: str | None = None  # APNs development gateway
    token_url: str | None = None  # OAuth token endpoint (ADM, WNS)
    timeout_s: float = 10.0
    max_connections: int = 10
    # Loopback channel URIs (WNS/MPNS) are refused unless this is set (mocks).
    allow_loopback: bool = False
    # Extra CA bundle to trust (the mocks' test CA); None = system store only.
    ca_file: str | None = None
    # WNS: OAuth scope (AAD flavour differs); ADM: scope.
    scope: str | None = None

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if self.ca_file:
            ctx.load_verify_locations(self.ca_file)
        return ctx


# Transport exceptions that mean "try again later". HTTP clients map their own
# library's exceptions to `TransportFailure` at their boundary (providers.http,
# providers.fcm), so this one tuple covers every adapter.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # ConnectionError, ConnectionResetError, ssl.SSLError are OSErrors
    asyncio.TimeoutError,
    EOFError,
    # jh2 raises these on frames it cannot accept (GOAWAY races, stream limits);
    # they end the exchange, not the adapter (providers.h2client).
    jh2.exceptions.ProtocolError,
)


class TransportFailure(ConnectionError):
    """An HTTP client library's transport exception, mapped at the client boundary."""

    @classmethod
    def wrap(cls, exc: BaseException) -> TransportFailure:
        return cls(f"{type(exc).__name__}: {exc}")


class TokenFetchError(Exception):
    """The OAuth token endpoint refused or failed (providers.oauth)."""

    def __init__(self, reason: str, *, bad_credentials: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        # True: the endpoint rejected our client id/secret/assertion (4xx);
        # False: a transient failure (5xx, 429, network) worth retrying later.
        self.bad_credentials = bad_credentials

    def result(self) -> SendResult:
        outcome = Outcome.BAD_CREDENTIALS if self.bad_credentials else Outcome.RETRY
        return SendResult(outcome, self.reason)


class Provider(abc.ABC):
    """
    Adapter for one platform application.

    An adapter writes `_send_once`: build the request (or refuse the message with
    a `SendResult`, sending nothing), exchange it, classify the answer by its
    error table. `send` wraps it once for every adapter: transport exceptions
    become `RETRY` and `TokenFetchError` its result. Any other exception is a bug
    in adapter code and propagates: the dispatcher fails that delivery for good
    ("poison") instead of retrying it forever.
    """

    platforms: ClassVar[frozenset[Platform]]
    # The `[providers.<name>]` config table this adapter reads.
    settings_name: ClassVar[str]

    def __init__(self, *, app: PlatformApplication, settings: ProviderSettings) -> None:
        self.app = app
        self.settings = settings

    @classmethod
    async def create(
        cls, *, app: PlatformApplication, settings: ProviderSettings
    ) -> Self:
        """Build the adapter inside the running loop (pools bind to it)."""
        return cls(app=app, settings=settings)

    async def send(self, endpoint: Endpoint, message: RenderedMessage) -> SendResult:
        """Deliver one message to one endpoint and classify the answer."""
        try:
            return await self._send_once(endpoint, message)
        except TRANSPORT_ERRORS as exc:
            return SendResult(Outcome.RETRY, f"transport: {describe(exc)}")
        except TokenFetchError as exc:
            return exc.result()

    @abc.abstractmethod
    async def _send_once(
        self, endpoint: Endpoint, message: RenderedMessage
    ) -> SendResult:
        """
        One delivery attempt: build, exchange, classify. May raise a transport
        exception or `TokenFetchError`; `send` maps both.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Close pools and connections."""


def describe(exc: BaseException) -> str:
    """An exception for a `SendResult.reason`: its type and message."""
    if isinstance(exc, TransportFailure):
        return str(exc)  # already "<library exception>: <message>"
    return f"{type(exc).__name__}: {exc}"


def redact(token: str) -> str:
    """A log-safe stand-in for a device token: 8 characters and a short hash."""
    digest = hashlib.sha256(token.encode()).hexdigest()[:8]
    return f"{token[:8]}…#{digest}"


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds or an HTTP-date; None if absent or unparseable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils
    import time

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
