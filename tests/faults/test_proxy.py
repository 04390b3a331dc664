"""The fault proxy against a tiny local echo server (fast; no database)."""

from __future__ import annotations

import asyncio
import os
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import asyncpg
import pytest

from tests.faults.proxy import FaultProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        try:
            while data := sock.recv(65536):
                sock.sendall(data)
        except ConnectionError:
            pass  # the proxy cut this side


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture(name="echo")
def _echo() -> Iterator[tuple[str, int]]:
    server = _Server(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    yield ("127.0.0.1", int(server.server_address[1]))
    server.shutdown()
    server.server_close()


@pytest.fixture(name="proxy")
def _proxy(echo: tuple[str, int]) -> Iterator[FaultProxy]:
    proxy = FaultProxy(echo)
    yield proxy
    proxy.close()


def connect(proxy: FaultProxy, timeout: float = 2.0) -> socket.socket:
    return socket.create_connection(proxy.address, timeout=timeout)


def echo_once(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def is_cut(sock: socket.socket) -> bool:
    """True once the connection is gone (reset or closed by the proxy)."""
    try:
        sock.sendall(b"ping")
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def connect_is_cut(proxy: FaultProxy) -> bool:
    """Connect and see the connection reset (the reset may beat connect())."""
    try:
        sock = connect(proxy)
    except ConnectionResetError:
        return True
    with sock:
        return is_cut(sock)


def wait_for(check: object, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_forwards_both_ways_and_counts(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        assert echo_once(sock, b"hello") == b"hello"
        big = bytes(range(256)) * 4096  # 1 MiB, several chunks each way
        assert echo_once(sock, big) == big
    with connect(proxy) as sock:
        assert echo_once(sock, b"again") == b"again"
    total = 5 + len(big) + 5
    # The proxy thread counts a chunk after writing it: the echo may arrive first.
    wait_for(lambda: proxy.stats()["bytes_down"] == total)
    stats = proxy.stats()
    assert stats["accepted"] == 2
    assert stats["forwarded"] == 2
    assert stats["bytes_up"] == stats["bytes_down"] == total
    wait_for(lambda: proxy.active == 0)


def test_cut_resets_open_connections_and_keeps_accepting(proxy: FaultProxy) -> None:
    with connect(proxy) as a, connect(proxy) as b:
        assert echo_once(a, b"a") == b"a"
        assert echo_once(b, b"b") == b"b"
        assert proxy.cut() == 2
        assert is_cut(a)
        assert is_cut(b)
    with connect(proxy) as c:
        assert echo_once(c, b"after") == b"after"
    assert proxy.stats()["cut"] == 2


def test_refuse_closes_the_port_then_heal_reopens_it(proxy: FaultProxy) -> None:
    port = proxy.port
    with connect(proxy) as sock:
        assert echo_once(sock, b"x") == b"x"
        assert proxy.refuse() == 1
        assert is_cut(sock)
    with pytest.raises(ConnectionRefusedError):
        connect(proxy).close()
    proxy.heal()
    assert proxy.port == port
    with connect(proxy) as sock:
        assert echo_once(sock, b"back") == b"back"


def test_stall_holds_bytes_and_heal_delivers_them(proxy: FaultProxy) -> None:
    with connect(proxy) as old:
        assert echo_once(old, b"before") == b"before"
        proxy.stall()
        old.sendall(b"held-1")
        old.settimeout(0.3)
        with pytest.raises(TimeoutError):
            old.recv(100)
        # A new connection is accepted during the stall, but gets nothing either.
        with connect(proxy) as new:
            new.sendall(b"held-2")
            new.settimeout(0.3)
            with pytest.raises(TimeoutError):
                new.recv(100)
            assert proxy.active == 2
            proxy.heal()
            new.settimeout(2.0)
            assert new.recv(100) == b"held-2"
        old.settimeout(2.0)
        assert old.recv(100) == b"held-1"
        assert echo_once(old, b"flowing") == b"flowing"


def test_timed_cut_resets_new_connections_until_healed(proxy: FaultProxy) -> None:
    with connect(proxy) as old:
        assert echo_once(old, b"x") == b"x"
        with proxy.fault("cut"):
            assert is_cut(old)
            assert connect_is_cut(proxy)  # accepted, then reset at once
            assert proxy.stats()["reset_on_accept"] >= 1
    with connect(proxy) as sock:
        assert echo_once(sock, b"healed") == b"healed"


def test_outage_blocks_for_its_duration(proxy: FaultProxy) -> None:
    outage = proxy.outage("refuse", seconds=0.3)
    assert 0.3 <= outage.healed - outage.started < 1.0
    assert proxy.mode == "normal"
    with connect(proxy) as sock:
        assert echo_once(sock, b"ok") == b"ok"


def test_upstream_down_resets_the_client(echo: tuple[str, int]) -> None:
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()
    with FaultProxy(dead) as proxy:
        assert connect_is_cut(proxy)
        wait_for(lambda: proxy.stats()["upstream_failures"] == 1)


def test_unknown_fault_kind_is_an_error(proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        proxy.start_fault("explode")  # type: ignore[arg-type]


@pytest.mark.postgres
def test_in_front_of_postgres() -> None:
    """asyncpg through the proxy: queries pass; a stall holds one until heal;
    a cut breaks the connection and a new one works."""
    dsn = os.environ.get("PUSHGW_TEST_PG_DSN")
    if not dsn:
        pytest.skip("PUSHGW_TEST_PG_DSN is not set")
    with FaultProxy(("127.0.0.1", 5432)) as proxy:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/test"

        async def scenario() -> None:
            conn = await asyncpg.connect(url, timeout=5)
            assert await conn.fetchval("SELECT 1") == 1
            proxy.stall()
            query = asyncio.ensure_future(conn.fetchval("SELECT 2"))
            await asyncio.sleep(0.3)
            assert not query.done()
            proxy.heal()
            assert await asyncio.wait_for(query, 5) == 2
            proxy.cut()
            with pytest.raises((ConnectionError, asyncpg.PostgresConnectionError)):
                await conn.fetchval("SELECT 3")
            conn.terminate()
            conn = await asyncpg.connect(url, timeout=5)
            assert await conn.fetchval("SELECT 4") == 4
            await conn.close()

        asyncio.run(scenario())
