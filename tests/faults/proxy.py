"""
A TCP fault proxy for tests: sits between a daemon and its database (or any TCP
server) and breaks the link on demand.

The proxy runs its own asyncio loop on a background thread, so synchronous
pytest code drives it with plain, thread-safe calls:

    proxy = FaultProxy(("127.0.0.1", 5432))      # listens on 127.0.0.1:proxy.port
    proxy.cut()        # reset every open connection now; new ones work
    proxy.refuse()     # stop listening (connect() gets ECONNREFUSED); cut all open
    proxy.stall()      # keep every connection open, forward no byte either way
    proxy.heal()       # back to normal; bytes held by a stall are forwarded then
    proxy.close()

Timed faults: `with proxy.fault("stall"): ...` heals on exit, and
`proxy.outage("cut", seconds=10)` blocks for the outage and returns its window.
The timed "cut" fault cuts the open connections and then resets each new one
right after accepting it, for as long as it lasts (a database that comes up and
dies again at once); `refuse` is the database being down (port closed).

Cut connections are reset (SO_LINGER 0, so the peer sees RST, not FIN).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

T = TypeVar("T")
FaultKind = Literal["cut", "refuse", "stall"]
FAULT_KINDS: tuple[FaultKind, ...] = ("cut", "refuse", "stall")
_CHUNK = 65536


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (no FIN handshake, unsent data dropped)."""
    transport = writer.transport
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
    transport.abort()


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client side and the upstream side."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    dead: bool = False
    pumps: list[asyncio.Task[None]] = field(default_factory=list)

    def reset(self) -> None:
        self.dead = True
        _rst(self.client)
        _rst(self.upstream)
        for task in self.pumps:
            task.cancel()  # a pump may be held by a stall

    def abort(self) -> None:
        self.dead = True
        self.client.transport.abort()
        self.upstream.transport.abort()


@dataclass(frozen=True, slots=True)
class Outage:
    """When a timed fault started and when it was healed (time.monotonic())."""

    kind: str
    started: float
    healed: float


class FaultProxy:
    """TCP proxy 127.0.0.1:<port> -> `upstream`, with injectable faults."""

    def __init__(
        self,
        upstream: tuple[str, int] = ("127.0.0.1", 5432),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.upstream = upstream
        self.host = host
        self.port = port
        self.connect_timeout_s = connect_timeout_s
        # Counters (read from any thread; written on the proxy's loop only).
        self.accepted = 0  # TCP connections accepted from clients
        self.forwarded = 0  # of which connected upstream and forwarded
        self.reset_on_accept = 0  # reset at once (timed cut / refuse race)
        self.cut_count = 0  # open connections cut by cut()/refuse()
        self.upstream_failures = 0  # upstream connect failed (client reset)
        self.bytes_up = 0  # client -> upstream
        self.bytes_down = 0  # upstream -> client
        self.mode: str = "normal"  # normal | cut | refuse | stall
        self._links: set[_Link] = set()
        self._server: asyncio.base_events.Server | None = None
        self._loop = asyncio.new_event_loop()
        self._flowing: asyncio.Event | None = None
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fault-proxy", daemon=True
        )
        self._thread.start()
        self._closed = False
        try:
            self._call(self._open())
        except BaseException:
            self._stop_loop()
            raise

    # -- public, thread-safe controls -----------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def active(self) -> int:
        """Connections open through the proxy now."""
        return len(self._links)

    def stats(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "accepted": self.accepted,
            "forwarded": self.forwarded,
            "active": self.active,
            "reset_on_accept": self.reset_on_accept,
            "cut": self.cut_count,
            "upstream_failures": self.upstream_failures,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
        }

    def cut(self) -> int:
        """Reset every open connection now; keep accepting new ones. Returns
        how many were cut."""
        return self._call(self._cut())

    def refuse(self) -> int:
        """Close the listening socket (new connects are refused) and cut every
        open connection. Returns how many were cut."""
        return self._call(self._refuse())

    def stall(self) -> None:
        """Stop forwarding bytes both ways, on open and new connections alike;
        keep every connection open."""
        self._call(self._stall())

    def heal(self) -> None:
        """Back to normal: listen again, forward again (stalled bytes included)."""
        self._call(self._heal())

    def start_fault(self, kind: FaultKind) -> None:
        """Begin a fault that lasts until heal(): "cut" (open connections cut,
        new ones reset on accept), "refuse" or "stall"."""
        if kind == "cut":
            self._call(self._cut(hold=True))
        elif kind == "refuse":
            self.refuse()
        elif kind == "stall":
            self.stall()
        else:
            raise ValueError(f"unknown fault kind {kind!r} (known: {FAULT_KINDS})")

    @contextlib.contextmanager
    def fault(self, kind: FaultKind, seconds: float | None = None) -> Iterator[None]:
        """The fault for the body of the `with`; healed on exit. With `seconds`,
        the exit waits until the fault has lasted that long."""
        started = time.monotonic()
        self.start_fault(kind)
        try:
            yield
            if seconds is not None:
                time.sleep(max(0.0, started + seconds - time.monotonic()))
        finally:
            self.heal()

    def outage(self, kind: FaultKind, seconds: float) -> Outage:
        """Block for a `seconds`-long fault, heal, and say when it was."""
        started = time.monotonic()
        with self.fault(kind, seconds):
            pass
        return Outage(kind, started, time.monotonic())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._call(self._shutdown())
        self._stop_loop()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- on the proxy's loop ---------------------------------------------------
    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        if self._closed and not self._loop.is_running():
            coro.close()
            raise RuntimeError("the proxy is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._loop.is_running():
            self._loop.close()

    async def _open(self) -> None:
        if self._flowing is None:
            self._flowing = asyncio.Event()
            self._flowing.set()
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _cut(self, hold: bool = False) -> int:
        links = list(self._links)
        for link in links:
            link.reset()
        self.cut_count += len(links)
        if hold:
            self.mode = "cut"
        return len(links)

    async def _refuse(self) -> int:
        self.mode = "refuse"
        if self._server is not None:
            self._server.close()
            self._server = None
        return await self._cut()

    async def _stall(self) -> None:
        assert self._flowing is not None
        self.mode = "stall"
        self._flowing.clear()

    async def _heal(self) -> None:
        assert self._flowing is not None
        self.mode = "normal"
        if self._server is None:
            await self._open()
        self._flowing.set()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        await self._cut()
        assert self._flowing is not None
        self._flowing.set()  # let stalled pumps notice their link is gone
        tasks = [t for link in self._links for t in link.pumps]
        if tasks:
            await asyncio.wait(tasks, timeout=2)

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.accepted += 1
        if self.mode in ("cut", "refuse"):
            self.reset_on_accept += 1
            _rst(writer)
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(*self.upstream), self.connect_timeout_s
            )
        except (OSError, TimeoutError):
            self.upstream_failures += 1
            _rst(writer)
            return
        if self.mode in ("cut", "refuse"):  # the fault began while connecting
            self.reset_on_accept += 1
            _rst(writer)
            _rst(up_writer)
            return
        self.forwarded += 1
        link = _Link(writer, up_writer)
        self._links.add(link)
        link.pumps = [
            asyncio.create_task(self._pump(link, reader, up_writer, up=True)),
            asyncio.create_task(self._pump(link, up_reader, writer, up=False)),
        ]
        try:
            await asyncio.gather(*link.pumps, return_exceptions=True)
        finally:
            self._links.discard(link)
            if not link.dead:
                link.dead = True
                writer.close()
                up_writer.close()

    async def _pump(
        self,
        link: _Link,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        up: bool,
    ) -> None:
        assert self._flowing is not None
        try:
            while True:
                data = await reader.read(_CHUNK)
                await self._flowing.wait()  # a stall holds bytes (and EOF) here
                if link.dead:
                    return
                if not data:
                    break
                writer.write(data)
                await writer.drain()
                if up:
                    self.bytes_up += len(data)
                else:
                    self.bytes_down += len(data)
        except (ConnectionError, OSError):
            if not link.dead:
                link.abort()
            return
        # EOF from one side: half-close towards the other, keep the other way.
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
