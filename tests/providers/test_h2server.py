"""The mocks' dual HTTP/2 + HTTP/1.1 TLS server, with real clients on loopback."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable

import aiohttp
import httpx
import pytest
import trustme
from aiohttp import web

from pushgw.providers.mocks.h2server import (
    DualServer,
    MockRequest,
    handler_app,
    server_ssl_context,
)

BIG = 200_000  # bytes: over h2's default 65,535-byte flow-control window


@pytest.fixture(name="ca", scope="module")
def _ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(name="client_tls")
def _client_tls(ca: trustme.CA) -> Callable[[], ssl.SSLContext]:
    """A fresh client context per client: httpx sets ALPN h2 on the one it gets."""

    def make() -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        return ctx

    return make


@pytest.fixture(name="seen")
def _seen() -> list[MockRequest]:
    return []


@pytest.fixture(name="base_url")
async def _base_url(ca: trustme.CA, seen: list[MockRequest]) -> AsyncIterator[str]:
    async def handle(request: MockRequest) -> web.Response | None:
        seen.append(request)
        if request.path == "/drop":
            return None
        if request.path == "/big":
            return web.Response(body=b"x" * BIG)
        return web.json_response(
            {"path": request.path, "form": request.form()},
            status=201,
            headers={"Retry-After": "7"},
        )

    server = DualServer(
        app=handler_app(handle),
        handler=handle,
        ssl_context=server_ssl_context(ca.issue_cert("127.0.0.1")),
    )
    host, port = await server.start("127.0.0.1", 0)
    yield f"https://{host}:{port}"
    await server.stop()


async def test_h2_and_http11_reach_the_same_handler(
    base_url: str, client_tls: Callable[[], ssl.SSLContext], seen: list[MockRequest]
) -> None:
    """httpx negotiates h2 by ALPN, aiohttp HTTP/1.1; both get the same answer."""
    async with httpx.AsyncClient(http2=True, verify=client_tls()) as client:
        h2_answer = await client.post(f"{base_url}/a?q=1", content=b"k=v&e=")
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base_url}/a", data=b"k=v&e=", ssl=client_tls()) as resp,
    ):
        h1_status, h1_body = resp.status, await resp.json()
        h1_retry_after = resp.headers["Retry-After"]

    expected = {"path": "/a", "form": {"k": "v", "e": ""}}

    assert ("HTTP/2", 201, "7") == (
        h2_answer.http_version,
        h2_answer.status_code,
        h2_answer.headers["retry-after"],
    )
    assert expected == h2_answer.json()
    assert (201, expected, "7") == (h1_status, h1_body, h1_retry_after)
    assert ["2", "1.1"] == [r.http_version for r in seen]


async def test_h2_body_larger_than_the_window_arrives_whole(
    base_url: str, client_tls: Callable[[], ssl.SSLContext]
) -> None:
    """An answer over the flow-control window waits for WINDOW_UPDATE, then ends."""
    async with httpx.AsyncClient(http2=True, verify=client_tls()) as client:
        answers = await asyncio.gather(
            *(client.post(f"{base_url}/big", content=b"") for _ in range(3))
        )

    assert [BIG] * 3 == [len(a.content) for a in answers]
    assert {"HTTP/2"} == {a.http_version for a in answers}


async def test_none_drops_the_connection(
    base_url: str, client_tls: Callable[[], ssl.SSLContext]
) -> None:
    """A handler answering None closes the connection: the client sees no answer."""
    async with httpx.AsyncClient(http2=True, verify=client_tls()) as client:
        with pytest.raises(httpx.TransportError):
            await client.post(f"{base_url}/drop", content=b"")
        after = await client.post(f"{base_url}/ok", content=b"")

    assert 201 == after.status_code
