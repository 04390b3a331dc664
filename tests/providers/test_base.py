"""The send skeleton every adapter shares: `Provider.send` around `_send_once`."""

from __future__ import annotations

import asyncio
import ssl

import jh2.exceptions
import pytest

from pushgw.model import Endpoint, Platform, PlatformApplication
from pushgw.providers.base import (
    Outcome,
    Provider,
    ProviderSettings,
    RenderedMessage,
    SendResult,
    TokenFetchError,
    TransportFailure,
)

APP_ARN = "arn:aws:sns:us-east-1:123456789012:app/GCM/base"


class Raising(Provider):
    """An adapter whose one attempt raises `error` (or delivers if None)."""

    platforms = frozenset({Platform.GCM})
    settings_name = "raising"
    error: BaseException | None = None

    async def _send_once(
        self, endpoint: Endpoint, message: RenderedMessage
    ) -> SendResult:
        if self.error is not None:
            raise self.error
        return SendResult.delivered()


async def send_raising(error: BaseException | None) -> SendResult:
    app = PlatformApplication(
        arn=APP_ARN, name="base", platform=Platform.GCM, principal="", credential=""
    )
    provider = Raising(app=app, settings=ProviderSettings(base_url="http://x"))
    provider.error = error
    endpoint = Endpoint(arn=f"{APP_ARN}/1", app_arn=APP_ARN, token="t")
    return await provider.send(endpoint, RenderedMessage("m-1", "hi", native=False))


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ConnectionResetError("reset by peer"), "transport: ConnectionResetError: reset by peer"),
        (ssl.SSLError(1, "bad record"), "transport: SSLError: bad record"),
        (TimeoutError(), "transport: TimeoutError: "),
        (EOFError("eof"), "transport: EOFError: eof"),
        (jh2.exceptions.ProtocolError("GOAWAY"), "transport: ProtocolError: GOAWAY"),
        (TransportFailure.wrap(ValueError("x")), "transport: ValueError: x"),
    ],
    ids=["reset", "tls", "timeout", "eof", "h2", "client mapped"],
)  # fmt: skip
async def test_transport_errors_are_retry(error: BaseException, reason: str) -> None:
    """Every transport exception becomes RETRY, its type and message the reason."""
    result = await send_raising(error)

    assert SendResult(Outcome.RETRY, reason) == result


@pytest.mark.parametrize(
    ("bad_credentials", "outcome"),
    [(True, Outcome.BAD_CREDENTIALS), (False, Outcome.RETRY)],
)
async def test_token_fetch_errors_are_results(
    bad_credentials: bool, outcome: Outcome
) -> None:
    """A refused token is BAD_CREDENTIALS, a failed token fetch RETRY."""
    error = TokenFetchError("token 400 invalid_client", bad_credentials=bad_credentials)

    result = await send_raising(error)

    assert SendResult(outcome, "token 400 invalid_client") == result


@pytest.mark.parametrize(
    "error", [RuntimeError("bug"), KeyError("k"), ValueError("v"), TypeError("t")]
)
async def test_other_exceptions_propagate(error: Exception) -> None:
    """A bug in adapter code escapes `send` (the dispatcher's poison path)."""
    with pytest.raises(type(error)):
        await send_raising(error)


async def test_cancellation_propagates() -> None:
    """Cancelling a send is never mistaken for a transport failure."""
    with pytest.raises(asyncio.CancelledError):
        await send_raising(asyncio.CancelledError())


async def test_answer_passes_through() -> None:
    """Without an exception, `send` returns the adapter's own result."""
    assert SendResult.delivered() == await send_raising(None)
