"""
One TLS port that speaks HTTP/2 and HTTP/1.1, for the mock of a provider whose
production API is HTTP/2 (FCM), so that the adapter's production client path is
the one the tests run.

ALPN decides per connection, as at Google's front end: "h2" goes to
`_H2Connection` (on `jh2`), anything else (the legacy GCM adapter's aiohttp offers
no ALPN) to aiohttp's HTTP/1.1 server. Either way the request becomes one
`MockRequest` handed to the same `Handler`, which answers a `web.Response` (built
with aiohttp's helpers and used here as a plain value: status, headers, bytes) or
None to drop the connection without an answer.

Invariants of `_H2Connection`:

* a stream's handler runs once, after END_STREAM; a stream the client resets is
  forgotten and its handler cancelled, so its answer is never written;
* response bodies respect the client's flow-control windows (the rest waits for
  WINDOW_UPDATE), so a large answer never breaks the connection;
* a protocol error from the client ends the connection (GOAWAY, then close).
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import jh2.config
import jh2.connection
import jh2.events
import jh2.exceptions
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy


@dataclass(frozen=True, slots=True)
class MockRequest:
    """One request as either protocol delivered it."""

    method: str
    path: str  # without the query string
    headers: CIMultiDictProxy[str]
    body: bytes
    http_version: str  # "2" or "1.1"

    def form(self) -> dict[str, str]:
        """The body as an `application/x-www-form-urlencoded` form."""
        text = self.body.decode("utf-8", "replace")
        return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))


# The mock's one entry point; None means "drop the connection, answer nothing".
Handler = Callable[[MockRequest], Awaitable[web.Response | None]]

_CONFIG = jh2.config.H2Configuration(client_side=False, header_encoding="utf-8")


class H2ServerConnection(asyncio.Protocol):
    """The writing side every HTTP/2 mock connection shares (this module's and
    the APNs mock's): its h2 state, its transport, and how bytes leave."""

    conn: jh2.connection.H2Connection
    transport: asyncio.Transport | None

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class _H2Connection(H2ServerConnection):
    """One client connection over HTTP/2."""

    def __init__(self, server: DualServer) -> None:
        self.server = server
        self.conn = jh2.connection.H2Connection(config=_CONFIG)
        self.transport: asyncio.Transport | None = None
        self.requests: dict[int, tuple[list[tuple[str, str]], bytearray]] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.unsent: dict[int, bytes] = {}  # body bytes waiting for window

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's are not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)
        self.server.h2_connections.add(self)
        self.conn.initiate_connection()
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        for task in self.tasks.values():
            task.cancel()
        self.server.h2_connections.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except jh2.exceptions.ProtocolError:
            self.flush()  # h2 queued the GOAWAY
            self.close()
            return
        for event in events:
            self._dispatch(event)
        self.flush()

    def _dispatch(self, event: jh2.events.Event) -> None:
        if isinstance(event, jh2.events.RequestReceived):
            assert event.stream_id is not None and event.headers is not None
            headers = [(str(k), str(v)) for k, v in event.headers]
            self.requests[event.stream_id] = (headers, bytearray())
        elif isinstance(event, jh2.events.DataReceived):
            assert event.stream_id is not None and event.data is not None
            self.conn.acknowledge_received_data(
                event.flow_controlled_length or 0, event.stream_id
            )
            if event.stream_id in self.requests:
                self.requests[event.stream_id][1].extend(event.data)
        elif isinstance(event, jh2.events.StreamEnded):
            assert event.stream_id is not None
            self._start(event.stream_id)
        elif isinstance(event, jh2.events.StreamReset):
            assert event.stream_id is not None
            self._forget(event.stream_id)
        elif isinstance(event, jh2.events.WindowUpdated):
            self._send_unsent()
        elif isinstance(event, jh2.events.ConnectionTerminated):
            self.close()

    def _start(self, sid: int) -> None:
        entry = self.requests.pop(sid, None)
        if entry is None:
            return
        headers, body = entry
        pseudo = {k: v for k, v in headers if k.startswith(":")}
        request = MockRequest(
            method=pseudo.get(":method", ""),
            path=pseudo.get(":path", "").partition("?")[0],
            headers=CIMultiDictProxy(
                CIMultiDict((k, v) for k, v in headers if not k.startswith(":"))
            ),
            body=bytes(body),
            http_version="2",
        )
        task = asyncio.create_task(self._answer(sid, request), name="h2-mock-stream")
        self.tasks[sid] = task
        task.add_done_callback(lambda _: self.tasks.pop(sid, None))

    async def _answer(self, sid: int, request: MockRequest) -> None:
        response = await self.server.handler(request)
        if response is None:
            self.abort()
            return
        body = response.body
        assert isinstance(body, bytes), "mock answers are built from text or JSON"
        headers = [
            (":status", str(response.status)),
            *((k.lower(), v) for k, v in response.headers.items()),
            ("content-length", str(len(body))),
        ]
        try:
            self.conn.send_headers(sid, headers, end_stream=not body)
        except jh2.exceptions.H2Error:
            return  # the client reset the stream or the connection is closing
        if body:
            self.unsent[sid] = body
            self._send_unsent()
        self.flush()

    def _send_unsent(self) -> None:
        for sid, data in list(self.unsent.items()):
            try:
                while data:
                    window = min(
                        self.conn.local_flow_control_window(sid),
                        self.conn.max_outbound_frame_size,
                    )
                    if window <= 0:
                        break
                    chunk, data = data[:window], data[window:]
                    self.conn.send_data(sid, chunk, end_stream=not data)
            except jh2.exceptions.H2Error:
                data = b""  # stream gone: nothing more to send
            if data:
                self.unsent[sid] = data
            else:
                del self.unsent[sid]

    def _forget(self, sid: int) -> None:
        self.requests.pop(sid, None)
        self.unsent.pop(sid, None)
        task = self.tasks.pop(sid, None)
        if task is not None:
            task.cancel()


class _AlpnSwitch(asyncio.Protocol):
    """Hands a new TLS connection to the h2 or the HTTP/1.1 protocol, by ALPN."""

    def __init__(self, server: DualServer) -> None:
        self.server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        protocol: asyncio.BaseProtocol
        if alpn == "h2":
            protocol = _H2Connection(self.server)
        else:
            assert self.server.runner.server is not None
            protocol = self.server.runner.server()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)


def server_ssl_context(certificate: Any) -> ssl.SSLContext:
    """A TLS server context for a `tls.LeafCert`, offering h2 then HTTP/1.1."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(ctx)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


def handler_app(handler: Handler) -> web.Application:
    """An aiohttp app that hands every HTTP/1.1 request to `handler`."""

    async def h1(request: web.Request) -> web.StreamResponse:
        response = await handler(
            MockRequest(
                method=request.method,
                path=request.path,
                headers=request.headers,
                body=await request.read(),
                http_version=f"{request.version.major}.{request.version.minor}",
            )
        )
        if response is None:
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=599)  # never reaches the client
        return response

    app = web.Application(client_max_size=1024**2)
    app.router.add_route("*", "/{tail:.*}", h1)
    return app


class DualServer:
    """
    One TLS listener: HTTP/2 connections go to `handler`, HTTP/1.1 ones to `app`
    (made with `handler_app(handler)`, so both reach the same code).
    """

    def __init__(
        self, *, app: web.Application, handler: Handler, ssl_context: ssl.SSLContext
    ) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.h2_connections: set[_H2Connection] = set()
        self.runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Bind and serve; returns the bound (host, port)."""
        await self.runner.setup()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _AlpnSwitch(self), host, port, ssl=self.ssl_context
        )
        bound = self._server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    async def stop(self) -> None:
        """Close the listener, abort HTTP/2 connections, shut HTTP/1.1 down."""
        if self._server is not None:
            self._server.close()
        for conn in list(self.h2_connections):
            conn.abort()
        await self.runner.cleanup()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
