"""
The one OAuth2 token fetch of ADM, WNS and FCM: its error table, row by row, once
against a scripted answer and once through each adapter and its loopback mock.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pushgw.model import Endpoint, Platform, PlatformApplication
from pushgw.providers.adm import AdmProvider
from pushgw.providers.base import (
    Outcome,
    Provider,
    ProviderSettings,
    RenderedMessage,
    TokenFetchError,
    TransportFailure,
)
from pushgw.providers.fcm import FcmProvider
from pushgw.providers.http import Answer
from pushgw.providers.mocks.adm import AdmMock
from pushgw.providers.mocks.fcm import FcmMock
from pushgw.providers.mocks.http import AiohttpMock
from pushgw.providers.mocks.wns import WnsMock
from pushgw.providers.oauth import AccessTokenCache, request_token
from pushgw.providers.wns import WnsProvider
from tests.providers.answers import answer

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
URL = "https://token.example/token"
FORM = {"grant_type": "client_credentials", "client_id": "id", "client_secret": "s"}


class Scripted:
    """A `Post` that answers `reply` (or raises it) and records what it was sent."""

    def __init__(self, reply: Answer | BaseException) -> None:
        self.reply = reply
        self.sent: list[tuple[str, bytes | str, dict[str, str]]] = []

    async def __call__(
        self, url: str, *, data: bytes | str, headers: Mapping[str, str]
    ) -> Answer:
        self.sent.append((url, data, dict(headers)))
        if isinstance(self.reply, BaseException):
            raise self.reply
        return self.reply


async def test_grant_is_one_form_post() -> None:
    """The grant goes out form-encoded, with the JSON Accept header."""
    post = Scripted(answer(200, b'{"access_token": "t", "expires_in": 60}'))

    got = await request_token(post, URL, FORM, default_expires_in=3600.0)

    [(url, data, headers)] = post.sent

    assert ("t", 60.0) == got
    assert URL == url
    assert "grant_type=client_credentials&client_id=id&client_secret=s" == data
    assert headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert "application/json" == headers["Accept"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"access_token": "t", "expires_in": 60}', ("t", 60.0)),
        (b'{"access_token": "t", "expires_in": "90"}', ("t", 90.0)),
        (b'{"access_token": "t"}', ("t", 3600.0)),
        (b'{"access_token": "t", "expires_in": "soon"}', ("t", 3600.0)),
        (b'{"access_token": "t", "expires_in": true}', ("t", 3600.0)),
    ],
    ids=["number", "numeric string", "missing", "garbage", "bool"],
)
async def test_expires_in(body: bytes, expected: tuple[str, float]) -> None:
    """`expires_in` is read leniently; anything unusable means the default."""
    post = Scripted(answer(200, body))

    assert expected == await request_token(post, URL, FORM, default_expires_in=3600.0)


# The error table of providers/oauth.py, one row per line.
ERROR_ROWS = [
    ("400 invalid_client", answer(400, b'{"error": "invalid_client"}'), True, "token 400 invalid_client"),
    ("400 invalid_grant", answer(400, b'{"error": "invalid_grant", "error_description": "x"}'), True, "token 400 invalid_grant"),
    ("401 ADM reason", answer(401, b'{"reason": "Unauthorized"}'), True, "token 401 Unauthorized"),
    ("403 HTML page", answer(403, b"<html><b>Forbidden</b></html>"), True, "token 403 Forbidden"),
    ("408 timeout", answer(408, b""), False, "token 408"),
    ("429 throttled", answer(429, b'{"error": "slow_down"}'), False, "token 429 slow_down"),
    ("500", answer(500, b"oops"), False, "token 500 oops"),
    ("503", answer(503, b'{"error": "temporarily_unavailable"}'), False, "token 503 temporarily_unavailable"),
    ("302 not followed", answer(302, b""), False, "token 302"),
    ("200 without token", answer(200, b'{"token_type": "bearer"}'), False, "token 200 without access_token"),
    ("200 not JSON", answer(200, b"<html>"), False, "token 200 without access_token"),
    ("200 empty token", answer(200, b'{"access_token": ""}'), False, "token 200 without access_token"),
    ("transport", ConnectionRefusedError("refused"), False, "token endpoint: ConnectionRefusedError: refused"),
    ("client transport", TransportFailure("ConnectError: nope"), False, "token endpoint: ConnectError: nope"),
    ("timeout", TimeoutError(), False, "token endpoint: TimeoutError: "),
]  # fmt: skip


@pytest.mark.parametrize(
    ("reply", "bad_credentials", "reason"),
    [row[1:] for row in ERROR_ROWS],
    ids=[row[0] for row in ERROR_ROWS],
)
async def test_error_table(
    reply: Answer | BaseException, bad_credentials: bool, reason: str
) -> None:
    """Each token endpoint answer raises TokenFetchError as the table says."""
    with pytest.raises(TokenFetchError) as caught:
        await request_token(Scripted(reply), URL, FORM, default_expires_in=1.0)

    assert (bad_credentials, reason) == (
        caught.value.bad_credentials,
        caught.value.reason,
    )


async def test_other_exceptions_propagate() -> None:
    """A bug behind the POST is not a token failure: it escapes (poison path)."""
    with pytest.raises(KeyError):
        await request_token(
            Scripted(KeyError("bug")), URL, FORM, default_expires_in=1.0
        )


async def test_authorized_refreshes_once_then_stands() -> None:
    """A rejected token is refreshed once and the request sent once more, never again."""
    issued = iter(["t1", "t2", "t3"])

    async def fetch() -> tuple[str, float]:
        return next(issued), 3600.0

    cache = AccessTokenCache(fetch)
    used: list[str] = []

    async def post(token: str) -> int:
        used.append(token)
        return 401

    status = await cache.authorized(post, rejected=lambda s: s == 401)

    assert (401, ["t1", "t2"], 2) == (status, used, cache.fetches)


# -- through each adapter and its mock -------------------------------------------


@dataclass
class Rig:
    mock: AiohttpMock
    provider: Provider
    device: str


@contextlib.asynccontextmanager
async def adm_rig(tmp_path: Path, token_url: str | None) -> AsyncIterator[Rig]:
    async with AdmMock() as mock:
        issued = mock.issue_credentials()
        settings = ProviderSettings(
            base_url=mock.base_url,
            token_url=token_url or f"{mock.base_url}/auth/O2/token",
        )
        provider = AdmProvider(app=app(Platform.ADM, issued), settings=settings)
        try:
            yield Rig(mock, provider, mock.register_device())
        finally:
            await provider.aclose()


@contextlib.asynccontextmanager
async def wns_rig(tmp_path: Path, token_url: str | None) -> AsyncIterator[Rig]:
    async with WnsMock() as mock:
        issued = mock.issue_credentials()
        settings = ProviderSettings(
            base_url=mock.base_url,
            token_url=token_url or mock.token_url,
            allow_loopback=True,
        )
        provider = WnsProvider(app=app(Platform.WNS, issued), settings=settings)
        try:
            yield Rig(mock, provider, mock.register_device())
        finally:
            await provider.aclose()


@contextlib.asynccontextmanager
async def fcm_rig(tmp_path: Path, token_url: str | None) -> AsyncIterator[Rig]:
    async with FcmMock() as mock:
        mock.write_ca(tmp_path / "ca.pem")
        credential = mock.issue_credentials(private_key=KEY)["PlatformCredential"]
        if token_url is not None:
            credential = credential.replace(f"{mock.base_url}/token", token_url)
        settings = ProviderSettings(
            base_url=mock.base_url, ca_file=str(tmp_path / "ca.pem")
        )
        issued = {"PlatformPrincipal": "", "PlatformCredential": credential}
        provider = FcmProvider(app=app(Platform.GCM, issued), settings=settings)
        try:
            yield Rig(mock, provider, mock.register_device())
        finally:
            await provider.aclose()


def app(platform: Platform, issued: dict[str, str]) -> PlatformApplication:
    return PlatformApplication(
        arn=f"arn:aws:sns:us-east-1:123456789012:app/{platform.value}/oauth",
        name="oauth",
        platform=platform,
        principal=issued["PlatformPrincipal"],
        credential=issued["PlatformCredential"],
    )


RIGS = pytest.mark.parametrize(
    "rig", [adm_rig, wns_rig, fcm_rig], ids=["ADM", "WNS", "FCM"]
)


async def send(rig: Rig) -> tuple[Outcome, str]:
    endpoint = Endpoint(arn="arn:e", app_arn=rig.provider.app.arn, token=rig.device)
    result = await rig.provider.send(
        endpoint, RenderedMessage("m-1", "hi", native=False)
    )
    return result.outcome, result.reason


@RIGS
@pytest.mark.parametrize(
    ("status", "expected"),
    [(400, Outcome.BAD_CREDENTIALS), (401, Outcome.BAD_CREDENTIALS), (403, Outcome.BAD_CREDENTIALS),
     (408, Outcome.RETRY), (429, Outcome.RETRY), (500, Outcome.RETRY), (503, Outcome.RETRY)],
)  # fmt: skip
async def test_token_endpoint_status_through_each_adapter(
    rig: Callable[..., contextlib.AbstractAsyncContextManager[Rig]],
    tmp_path: Path,
    status: int,
    expected: Outcome,
) -> None:
    """ADM, WNS and FCM classify the same token endpoint answer the same way."""
    async with rig(tmp_path, None) as r:
        r.mock.token_endpoint_status = status
        got = await send(r)

        assert (expected, f"token {status} backend_error") == got
        assert 0 == r.mock.stats["delivered"]


@RIGS
async def test_unreachable_token_endpoint_through_each_adapter(
    rig: Callable[..., contextlib.AbstractAsyncContextManager[Rig]], tmp_path: Path
) -> None:
    """A token endpoint that refuses connections is RETRY, named in the reason."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the send

    async with rig(tmp_path, f"http://127.0.0.1:{port}/token") as r:
        outcome, reason = await send(r)

    assert Outcome.RETRY == outcome
    assert reason.startswith("token endpoint: ")


@RIGS
async def test_token_endpoint_recovers(
    rig: Callable[..., contextlib.AbstractAsyncContextManager[Rig]], tmp_path: Path
) -> None:
    """After an outage the next send fetches a token and delivers."""
    async with rig(tmp_path, None) as r:
        r.mock.token_endpoint_status = 503
        first = await send(r)
        r.mock.token_endpoint_status = None
        second = await asyncio.wait_for(send(r), 5)

        assert (Outcome.RETRY, Outcome.DELIVERED) == (first[0], second[0])
