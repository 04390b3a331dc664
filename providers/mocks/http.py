"""
The aiohttp server half every HTTP/1.1 mock shares (ADM, Baidu, WNS, MPNS). The
FCM mock serves through `h2server.DualServer` instead, and shares the rest.

A subclass builds its `web.Application` in `make_app()`; this class binds it to
loopback, reports `base_url`, keeps `requests` capped, and plays the transport
faults (latency, drop, hang) that look the same on every platform.
"""

from __future__ import annotations

import abc
import asyncio
import ssl
import time
from collections.abc import Callable
from typing import Any, ClassVar

from aiohttp import web

from pushgw.providers.mocks.base import FaultRule, MockPlatform

# The wire answer of a fault that is not a transport fault is platform specific;
# these three are not, so the base plays them.
TRANSPORT_FAULTS = frozenset({"latency", "drop", "hang"})


class AiohttpMock(MockPlatform):
    """
    A MockPlatform served by aiohttp on 127.0.0.1.

    Subclasses implement `make_app()`, `issue_credentials()` and
    `register_device()`; handlers call `note_request()` and `transport_fault()`.
    """

    max_requests: ClassVar[int] = 2000  # newest requests kept for assertions

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self.ssl_context = ssl_context
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        # Mocks with a token endpoint: if set, it answers this status (an
        # outage, or a refusal) instead of a token; see `token_outage`.
        self.token_endpoint_status: int | None = None

    @abc.abstractmethod
    def make_app(self) -> web.Application:
        """The platform's routes; called once per start()."""

    async def start(self, *, host: str = "127.0.0.1", port: int = 0) -> str:
        """Bind and serve; returns the base URL (http, or https with ssl_context)."""
        self._stopping.clear()
        runner = web.AppRunner(
            self.make_app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=1.0,
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=self.ssl_context)
        await site.start()
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        scheme = "https" if self.ssl_context is not None else "http"
        self.base_url = f"{scheme}://{bound_host}:{bound_port}"
        return self.base_url

    async def stop(self) -> None:
        """Release hanging handlers, then close the listener and connections."""
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def token_outage(self) -> web.Response | None:
        """The token endpoint's answer while `token_endpoint_status` is set."""
        if self.token_endpoint_status is None:
            return None
        self.stats["token_fault"] += 1
        return web.json_response(
            {"error": "backend_error"}, status=self.token_endpoint_status
        )

    def note_request(self, entry: dict[str, Any]) -> None:
        """Append to `requests`, dropping the oldest half when over `max_requests`."""
        self.requests.append(entry)
        if len(self.requests) > self.max_requests:
            del self.requests[: self.max_requests // 2]

    async def transport_fault(
        self, rule: FaultRule | None, request: web.Request
    ) -> bool:
        """
        Play a latency/drop/hang rule. Returns True when the handler must not
        answer (the connection was dropped or the mock is stopping).
        """
        if not await self.play_transport_fault(rule):
            return False
        if request.transport is not None:
            request.transport.close()
        return True

    async def play_transport_fault(self, rule: FaultRule | None) -> bool:
        """
        Play a latency/drop/hang rule, whatever the protocol. Returns True when
        the caller must drop the connection without an answer.
        """
        if rule is None or rule.kind not in TRANSPORT_FAULTS:
            return False
        self.stats[f"fault_{rule.kind}"] += 1
        if rule.kind == "latency":
            await asyncio.sleep(rule.latency_s)
            return False
        if rule.kind == "hang":
            await self._stopping.wait()
        return True


def dropped() -> web.Response:
    """What a handler returns after `transport_fault` closed the connection."""
    return web.Response(status=599)
