"""The outbound guard at connect time, over real loopback sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from pushgw.netguard import (
    GuardedResolver,
    NetPolicy,
    check_subscriber_url,
    guarded_session,
    read_capped,
    refusal_reason,
)
from tests.providers.resolver import StubResolver

BIG = b"x" * 100_000


@dataclass
class Server:
    port: int
    hits: list[str] = field(default_factory=list)

    def url(self, host: str = "127.0.0.1", path: str = "/hook") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture(name="server")
async def _server() -> AsyncIterator[Server]:
    """An HTTP server on 127.0.0.1 that counts the requests it gets."""
    server = Server(port=0)

    async def hook(request: web.Request) -> web.Response:
        server.hits.append(request.path)
        return web.Response(text="ok")

    async def big(request: web.Request) -> web.Response:
        server.hits.append(request.path)
        return web.Response(body=BIG)

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/big", big)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.port = runner.addresses[0][1]
    try:
        yield server
    finally:
        await runner.cleanup()


async def post(
    url: str, *, allow_private: bool, resolver: StubResolver | None = None
) -> int:
    async with (
        guarded_session(
            allow_private=allow_private, timeout_s=2, resolver=resolver
        ) as session,
        session.post(url, data=b"{}", allow_redirects=False) as resp,
    ):
        await resp.read()
        return resp.status


async def refused(
    url: str, *, allow_private: bool, resolver: StubResolver | None = None
) -> str:
    """The guard's reason for refusing `url`; fails if it was not refused so."""
    with pytest.raises(aiohttp.ClientConnectionError) as caught:
        await post(url, allow_private=allow_private, resolver=resolver)
    reason = refusal_reason(caught.value)
    assert reason is not None, caught.value
    assert reason in str(caught.value)  # aiohttp's own text carries it too
    return reason


async def test_localhost_refused_at_connect_time(server: Server) -> None:
    """`localhost` resolves (system resolver) to 127.0.0.1: refused, never sent."""
    reason = await refused(server.url("localhost"), allow_private=False)

    assert (
        reason == "refused: 127.0.0.1 is a loopback address (resolved from localhost)"
    )
    assert server.hits == []


async def test_allow_private_reaches_loopback(server: Server) -> None:
    """With allow_private the same name and the literal reach the test server."""
    assert 200 == await post(server.url("localhost"), allow_private=True)
    assert 200 == await post(server.url("127.0.0.1"), allow_private=True)
    assert ["/hook", "/hook"] == server.hits


async def test_dns_rebinding_is_refused(server: Server) -> None:
    """
    A name that passed the Subscribe-time check but now resolves to loopback
    (a rebinding DNS) is refused when the connection is made.
    """
    url = server.url("evil.example")
    dns = StubResolver({"evil.example": ["127.0.0.1"]})
    assert None is check_subscriber_url(url, allow_private=False)

    reason = await refused(url, allow_private=False, resolver=dns)

    assert "127.0.0.1 is a loopback address (resolved from evil.example)" in reason
    assert ["evil.example"] == dns.lookups
    assert server.hits == []


async def test_resolver_answer_is_what_is_connected_to(server: Server) -> None:
    """Allowed, the stub's answer is the address used: the request arrives."""
    dns = StubResolver({"evil.example": ["127.0.0.1"]})

    assert 200 == await post(
        server.url("evil.example"), allow_private=True, resolver=dns
    )
    assert ["/hook"] == server.hits


@pytest.mark.parametrize(
    "answers", [["169.254.169.254"], ["fd00:ec2::254"], ["169.254.1.2", "0.0.0.0"]]
)
async def test_metadata_refused_even_with_allow_private(
    server: Server, answers: list[str]
) -> None:
    """allow_private never opens metadata, link-local or unspecified addresses."""
    dns = StubResolver({"evil.example": answers})

    reason = await refused(server.url("evil.example"), allow_private=True, resolver=dns)

    assert reason.startswith(f"refused: {answers[0]} is ")
    assert server.hits == []


async def test_refused_addresses_are_dropped_from_an_answer(server: Server) -> None:
    """A mixed answer keeps its allowed addresses only: metadata is never tried."""
    dns = StubResolver({"evil.example": ["169.254.169.254", "127.0.0.1"]})

    assert 200 == await post(
        server.url("evil.example"), allow_private=True, resolver=dns
    )
    guarded = GuardedResolver(NetPolicy(allow_loopback=True), dns)
    kept = await guarded.resolve("evil.example", server.port)
    assert ["127.0.0.1"] == [answer["host"] for answer in kept]


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]"])
async def test_ip_literals_are_checked_too(server: Server, host: str) -> None:
    """
    aiohttp skips the resolver for IP literals; the socket factory checks them.
    """
    dns = StubResolver({})

    reason = await refused(server.url(host), allow_private=False, resolver=dns)

    assert "is a loopback address" in reason
    assert [] == dns.lookups  # the resolver was never asked
    assert server.hits == []


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1", "0177.0.0.1"])
async def test_numeric_host_spellings_never_connect(server: Server, host: str) -> None:
    """Other spellings of 127.0.0.1 fail (aiohttp or the guard refuses them)."""
    with pytest.raises(aiohttp.ClientError):
        await post(server.url(host), allow_private=False)

    assert server.hits == []


async def test_read_capped(server: Server) -> None:
    """read_capped returns at most `limit` bytes, whole bodies when smaller."""
    async with guarded_session(allow_private=True, timeout_s=2) as session:
        async with session.get(server.url(path="/big")) as resp:
            assert BIG[:1000] == await read_capped(resp, 1000)
        async with session.get(server.url(path="/big")) as resp:
            assert BIG == await read_capped(resp, len(BIG))
        async with session.get(server.url(path="/big")) as resp:
            assert BIG == await read_capped(resp, 10 * len(BIG))
        async with session.post(server.url()) as resp:
            assert b"ok" == await read_capped(resp, 1000)
