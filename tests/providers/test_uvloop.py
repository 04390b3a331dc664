"""
The HTTP/2 adapters (APNs, FCM) and their mocks on uvloop's event loop, whose
transports are not `asyncio.Transport` subclasses. The whole provider suite
runs on uvloop with `pytest -p tests.uvloop_plugin tests/providers`; these
keep the default run honest about it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import uvloop

from pushgw.model import Endpoint, Platform, PlatformApplication
from pushgw.providers.apns import ApnsProvider
from pushgw.providers.base import Outcome, ProviderSettings, RenderedMessage
from pushgw.providers.fcm import FcmProvider
from pushgw.providers.mocks.apns import ApnsMock
from pushgw.providers.mocks.fcm import FcmMock

T = TypeVar("T")
MESSAGE = RenderedMessage(message_id="m-1", body="hi", native=False)


def on_uvloop(coro: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def app(platform: Platform, attrs: dict[str, str]) -> PlatformApplication:
    return PlatformApplication(
        arn=f"arn:aws:sns:us-east-1:1:app/{platform.value}/uv",
        name="uv",
        platform=platform,
        principal=attrs.pop("PlatformPrincipal"),
        credential=attrs.pop("PlatformCredential"),
        attributes=attrs,
    )


def endpoint(token: str) -> Endpoint:
    return Endpoint(arn="arn:e", app_arn="arn:a", token=token)


def test_apns_on_uvloop(tmp_path: Path) -> None:
    """Concurrent sends, an error answer and a dropped connection, on uvloop."""

    async def scenario() -> tuple[str, list[Outcome], Outcome, Outcome]:
        async with ApnsMock() as mock:
            mock.write_ca(tmp_path / "ca.pem")
            settings = ProviderSettings(
                base_url=mock.base_url, ca_file=str(tmp_path / "ca.pem")
            )
            provider = ApnsProvider(
                app=app(Platform.APNS, mock.issue_credentials()), settings=settings
            )
            try:
                tokens = [mock.register_device() for _ in range(50)]
                results = await asyncio.gather(
                    *(provider.send(endpoint(t), MESSAGE) for t in tokens)
                )
                gone = mock.register_device(state="unregistered")
                unregistered = await provider.send(endpoint(gone), MESSAGE)
                for conn in list(provider.pool.connections):
                    conn.close()
                again = await provider.send(endpoint(tokens[0]), MESSAGE)
            finally:
                await provider.aclose()
            loop = type(asyncio.get_running_loop()).__module__
            return (
                loop,
                [r.outcome for r in results],
                unregistered.outcome,
                again.outcome,
            )

    loop, outcomes, unregistered, again = on_uvloop(scenario())

    assert loop.startswith("uvloop")
    assert [Outcome.DELIVERED] * 50 == outcomes
    assert Outcome.INVALID_TOKEN == unregistered
    assert Outcome.DELIVERED == again


def test_fcm_on_uvloop(tmp_path: Path) -> None:
    """Token grant (httpx) and sends (h2client) to the FCM mock, on uvloop."""

    async def scenario() -> list[Outcome]:
        async with FcmMock() as mock:
            mock.write_ca(tmp_path / "ca.pem")
            settings = ProviderSettings(
                base_url=mock.base_url, ca_file=str(tmp_path / "ca.pem")
            )
            provider = FcmProvider(
                app=app(Platform.GCM, mock.issue_credentials()), settings=settings
            )
            try:
                tokens = [mock.register_device() for _ in range(20)]
                tokens.append(mock.register_device(state="unregistered"))
                results = await asyncio.gather(
                    *(provider.send(endpoint(t), MESSAGE) for t in tokens)
                )
            finally:
                await provider.aclose()
            return [r.outcome for r in results]

    assert [Outcome.DELIVERED] * 20 + [Outcome.INVALID_TOKEN] == on_uvloop(scenario())
