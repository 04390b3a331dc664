"""
A small HTTP/2 client for APNs and FCM: a pool of asyncio Protocols on top of
`jh2`, a fork of `h2` with h2's API and a compiled (Rust) HPACK codec, which
also Huffman-codes header values for a fraction of a microsecond.

Modelled on aioapns' connection module, without its defects (PROVIDERS.md §1.9):

* every stream leaves the stream map when it ends, is reset, times out or its
  caller is cancelled, so the map is bounded by the open streams;
* a late answer to a stream whose caller gave up is dropped (the stream was
  reset with CANCEL), so it cannot crash the shared connection;
* a response is complete at END_STREAM, whatever its body (none, or split over
  several DATA frames), so an error without a body never hangs;
* a connection opens ONE stream until the server's first SETTINGS frame
  arrives, then follows MAX_CONCURRENT_STREAMS;
* GOAWAY fails streams above `last_stream_id` at once (never processed, safe to
  retry; the ones at or below it fail as "may have been processed", because h2
  accepts no frame after GOAWAY) and takes the connection out of the pool, so
  the next request opens a new one.

Frames are written once per event-loop iteration (one `transport.write` per
batch of requests) and once per `data_received` call.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Sequence
from typing import Final, cast

import jh2.config
import jh2.connection
import jh2.errors
import jh2.events
import jh2.exceptions

Headers = Sequence[tuple[bytes, bytes]]

# Streams a connection may open before the server's first SETTINGS frame. APNs
# allows one stream until a request with a valid provider token has been seen.
PRE_SETTINGS_STREAMS: Final = 1
# Our own cap on streams per connection, whatever the server offers.
MAX_STREAMS_PER_CONNECTION: Final = 1000
# Stop using a connection well before h2 runs out of odd stream ids (2**31 - 1).
STREAM_ID_LIMIT: Final = 2**31 - 2**16


# jh2 ships no type hints, so its classes are Any to mypy.
class FastH2Connection(jh2.connection.H2Connection):  # type: ignore[misc]
    """
    `H2Connection` whose open-stream count is amortised O(1).

    jh2 (as h2) counts open streams (and prunes closed ones from `self.streams`) by
    scanning every stream, on every new stream it sends or receives: O(n) per
    request, quadratic with hundreds of streams in flight (it was 1/3 of the CPU
    at 500 concurrent streams). `len(self.streams)` is an upper bound of the
    open count, so the exact scan only runs when that bound reaches the limit
    or the table has doubled since the last prune.
    """

    _prune_at = 128

    @property
    def open_outbound_streams(self) -> int:
        bound = len(self.streams)
        if (
            bound < self._prune_at
            and bound < self.remote_settings.max_concurrent_streams
        ):
            return bound
        return self._scan(super().open_outbound_streams)

    @property
    def open_inbound_streams(self) -> int:
        bound = len(self.streams)
        if (
            bound < self._prune_at
            and bound < self.local_settings.max_concurrent_streams
        ):
            return bound
        return self._scan(super().open_inbound_streams)

    def _scan(self, count: int) -> int:
        self._prune_at = 2 * len(self.streams) + 128
        return count


_CONFIG = jh2.config.H2Configuration(
    client_side=True,
    header_encoding=None,
    # We build our own headers as lowercase bytes; skip h2's per-header checks.
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
    validate_inbound_headers=False,
)


class H2ClientError(ConnectionError):
    """A request failed at the transport level and was not answered."""


class StreamReset(H2ClientError):
    """The server reset the stream (RST_STREAM) before answering."""


class GoAway(H2ClientError):
    """The server sent GOAWAY without processing the stream; safe to retry."""


class ConnectionLost(H2ClientError):
    """The connection closed with the stream still open."""


class Response:
    """One HTTP/2 response: status, headers as bytes and the whole body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[bytes, bytes], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return value.decode("latin-1") if value is not None else None


class _Stream:
    __slots__ = ("body", "future", "headers", "timer")

    def __init__(
        self, future: asyncio.Future[Response], timer: asyncio.TimerHandle
    ) -> None:
        self.future = future
        self.timer = timer
        self.headers: dict[bytes, bytes] | None = None
        self.body = b""


class H2ClientProtocol(asyncio.Protocol):
    """One HTTP/2 connection; owned by an `H2Pool`."""

    def __init__(self, pool: H2Pool) -> None:
        self._pool = pool
        self._loop = asyncio.get_running_loop()
        self._conn = FastH2Connection(config=_CONFIG)
        self._transport: asyncio.Transport | None = None
        self._streams: dict[int, _Stream] = {}
        self._blocked: dict[int, bytes] = {}  # body bytes waiting for window
        self._flush_scheduled = False
        self.max_streams = PRE_SETTINGS_STREAMS
        self.settings_seen = False
        self.usable = False  # accepts new streams
        self.goaway_reason: bytes | None = None

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    @property
    def tracked(self) -> int:
        """Entries in this connection's maps (streams and blocked bodies)."""
        return len(self._streams) + len(self._blocked)

    @property
    def available(self) -> int:
        """How many more streams this connection may open now."""
        if not self.usable:
            return 0
        return self.max_streams - len(self._streams)

    # -- asyncio.Protocol --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's are not asyncio.Transport subclasses.
        self._transport = cast(asyncio.Transport, transport)
        self.usable = True
        self._conn.initiate_connection()
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.usable = False
        self._transport = None
        self._fail_streams(ConnectionLost(f"connection lost: {exc!r}"), above=0)
        self._pool._discard(self)

    def data_received(self, data: bytes) -> None:
        try:
            events = self._conn.receive_data(data)
        except jh2.exceptions.ProtocolError as exc:
            self.close()
            self._fail_streams(ConnectionLost(f"h2 protocol error: {exc}"), above=0)
            return
        for event in events:
            self._dispatch(event)
        self._flush()

    # -- requests ----------------------------------------------------------

    def request(
        self, headers: Headers, body: bytes, timeout: float
    ) -> tuple[int, asyncio.Future[Response]]:
        """Open a stream and queue its frames; the future resolves at END_STREAM."""
        conn = self._conn
        stream_id = conn.get_next_available_stream_id()
        if stream_id >= STREAM_ID_LIMIT:
            self.usable = False  # drain this connection; the pool opens another
        conn.send_headers(stream_id, headers, end_stream=not body)
        if body:
            rest = self._push_body(stream_id, body)
            if rest:
                self._blocked[stream_id] = rest
        future: asyncio.Future[Response] = self._loop.create_future()
        timer = self._loop.call_later(timeout, self._expire, stream_id, timeout)
        self._streams[stream_id] = _Stream(future, timer)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return stream_id, future

    def cancel(self, stream_id: int) -> None:
        """Forget a stream whose caller gave up and tell the server (RST_STREAM)."""
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            return
        stream.timer.cancel()
        self._blocked.pop(stream_id, None)
        try:
            self._conn.reset_stream(stream_id, jh2.errors.ErrorCodes.CANCEL)
        except jh2.exceptions.H2Error:
            pass  # already closed on the h2 side
        self._flush()
        self._released()

    def close(self) -> None:
        self.usable = False
        if self._transport is not None:
            self._transport.close()

    # -- internals ---------------------------------------------------------

    def _dispatch(self, event: jh2.events.Event) -> None:
        kind = type(event)
        if kind is jh2.events.ResponseReceived:
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.headers = dict(event.headers)
        elif kind is jh2.events.DataReceived:
            self._on_data(event)
        elif kind is jh2.events.StreamEnded:
            self._on_stream_ended(event.stream_id)
        elif kind is jh2.events.StreamReset:
            self._on_reset(event)
        elif kind is jh2.events.RemoteSettingsChanged:
            self._on_settings()
        elif kind is jh2.events.WindowUpdated:
            self._unblock()
        elif kind is jh2.events.ConnectionTerminated:
            self._on_goaway(event)

    def _on_data(self, event: jh2.events.DataReceived) -> None:
        stream_id = event.stream_id
        assert stream_id is not None
        # Give the window back even for streams we dropped, or it runs dry.
        self._conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
        stream = self._streams.get(stream_id)
        if stream is not None and event.data:
            stream.body += event.data

    def _on_stream_ended(self, stream_id: int) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            return  # caller gave up; answer dropped
        stream.timer.cancel()
        if not stream.future.done():
            headers = stream.headers or {}
            try:
                status = int(headers.get(b":status", b"0"))
            except ValueError:
                status = 0
            stream.future.set_result(Response(status, headers, stream.body))
        self._released()

    def _on_reset(self, event: jh2.events.StreamReset) -> None:
        assert event.stream_id is not None
        stream = self._streams.pop(event.stream_id, None)
        if stream is None:
            return
        stream.timer.cancel()
        self._blocked.pop(event.stream_id, None)
        if not stream.future.done():
            stream.future.set_exception(
                StreamReset(f"stream reset by server: {event.error_code!r}")
            )
        self._released()

    def _on_settings(self) -> None:
        self.settings_seen = True
        remote = self._conn.remote_settings.max_concurrent_streams
        self.max_streams = min(remote, MAX_STREAMS_PER_CONNECTION)
        self._unblock()
        self._pool._wake_all()

    def _on_goaway(self, event: jh2.events.ConnectionTerminated) -> None:
        # h2 refuses every frame after GOAWAY (its connection state is CLOSED),
        # so streams at or below last_stream_id cannot complete here either:
        # they fail too, flagged as possibly processed (a retry may duplicate).
        self.usable = False
        self.goaway_reason = event.additional_data or b""
        last = event.last_stream_id or 0
        detail = f"{event.error_code!r} {self.goaway_reason.decode('utf-8', 'replace')}"
        self._fail_streams(GoAway(f"GOAWAY {detail}"), above=last)
        self._fail_streams(
            ConnectionLost(f"GOAWAY {detail}; may have been processed"), above=0
        )
        self._pool._discard(self)
        self.close()

    def _fail_streams(self, exc: Exception, *, above: int) -> None:
        failed = [sid for sid in self._streams if sid > above]
        for stream_id in failed:
            stream = self._streams.pop(stream_id)
            stream.timer.cancel()
            self._blocked.pop(stream_id, None)
            if not stream.future.done():
                stream.future.set_exception(exc)
        if failed:
            self._pool._wake_all()

    def _expire(self, stream_id: int, timeout: float) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        self.cancel(stream_id)
        if not stream.future.done():
            stream.future.set_exception(
                TimeoutError(f"no response within {timeout:g} s")
            )

    def _released(self) -> None:
        self._pool._wake_one()

    def _push_body(self, stream_id: int, data: bytes) -> bytes:
        """Send as much of `data` as flow control allows; return the rest."""
        conn = self._conn
        while data:
            size = min(
                len(data),
                conn.local_flow_control_window(stream_id),
                conn.max_outbound_frame_size,
            )
            if size <= 0:
                return data
            conn.send_data(stream_id, data[:size], end_stream=size == len(data))
            data = data[size:]
        return b""

    def _unblock(self) -> None:
        for stream_id in list(self._blocked):
            rest = self._push_body(stream_id, self._blocked[stream_id])
            if rest:
                self._blocked[stream_id] = rest
                return
            del self._blocked[stream_id]

    def _flush(self) -> None:
        self._flush_scheduled = False
        data = self._conn.data_to_send()
        if data and self._transport is not None:
            self._transport.write(data)


class H2Pool:
    """
    Up to `max_connections` HTTP/2 connections to one origin.

    A request goes to the first connection with a free stream. A new connection
    is opened only when every connection is full and none is still waiting for
    its first SETTINGS (so a burst waits one round trip instead of opening every
    connection at once).
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        max_connections: int = 10,
    ) -> None:
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname or host
        self.max_connections = max(1, max_connections)
        self.connections: list[H2ClientProtocol] = []
        self._connecting = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False

    @property
    def open_streams(self) -> int:
        """Streams in flight over all connections (for bounds checks)."""
        return sum(c.open_streams for c in self.connections)

    @property
    def tracked(self) -> int:
        """Entries in all internal maps and queues (must stay bounded)."""
        return sum(c.tracked for c in self.connections) + len(self._waiters)

    async def request(
        self, headers: Headers, body: bytes, *, timeout_s: float
    ) -> Response:
        """
        Send one request and wait for its whole response.

        Raises:
            TimeoutError: no response within `timeout_s` seconds (stream reset).
            H2ClientError: reset, GOAWAY or connection loss before an answer.
            OSError: the connection could not be opened.
        """
        conn = self._pick()
        if conn is None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            conn = await self._acquire(timeout_s)
            timeout_s = max(0.001, deadline - loop.time())
        stream_id, future = conn.request(headers, body, timeout_s)
        try:
            return await future
        except asyncio.CancelledError:
            conn.cancel(stream_id)
            raise

    async def aclose(self) -> None:
        self._closed = True
        for conn in list(self.connections):
            conn.close()
        self.connections.clear()
        self._wake_all()

    def _pick(self) -> H2ClientProtocol | None:
        for conn in self.connections:
            if conn.available > 0:
                return conn
        return None

    async def _acquire(self, timeout_s: float) -> H2ClientProtocol:
        async with asyncio.timeout(timeout_s):
            while True:
                if self._closed:
                    raise ConnectionLost("pool closed")
                conn = self._pick()
                if conn is not None:
                    return conn
                if self._may_connect():
                    await self._connect()
                    continue
                await self._wait()

    def _may_connect(self) -> bool:
        if self._connecting or len(self.connections) >= self.max_connections:
            return False
        return all(c.settings_seen for c in self.connections)

    async def _connect(self) -> None:
        self._connecting += 1
        try:
            loop = asyncio.get_running_loop()
            _, protocol = await loop.create_connection(
                lambda: H2ClientProtocol(self),
                self.host,
                self.port,
                ssl=self.ssl_context,
                server_hostname=self.server_hostname,
            )
            if protocol.usable and not self._closed:
                self.connections.append(protocol)
            else:
                protocol.close()
        finally:
            self._connecting -= 1
            self._wake_all()

    async def _wait(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if not waiter.done():
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass

    def _wake_one(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _wake_all(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _discard(self, conn: H2ClientProtocol) -> None:
        try:
            self.connections.remove(conn)
        except ValueError:
            pass
        self._wake_all()
