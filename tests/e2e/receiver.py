"""
A real HTTPS webhook receiver for the HTTP-subscription tests: an aiohttp
server on 127.0.0.1 with a certificate from a test CA, on a thread of its own,
recording every request. It can answer errors for a while or be stopped and
started again on the same port (a subscriber that is down).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]
    body: str

    @property
    def document(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    @property
    def type(self) -> str:
        return self.headers.get("x-amz-sns-message-type", "")


class Receiver:
    def __init__(self, ssl_context: ssl.SSLContext, port: int) -> None:
        self.ssl_context = ssl_context
        self.port = port
        self.received: list[Received] = []
        self.fail_status: int | None = None  # answer this instead of 200
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, "127.0.0.1", self.port, ssl_context=self.ssl_context
        )
        await site.start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        with self._lock:
            self.received.append(
                Received(
                    request.path,
                    {k.lower(): v for k, v in request.headers.items()},
                    body,
                )
            )
        if self.fail_status is not None:
            return web.Response(status=self.fail_status, text="not now")
        return web.Response(text="ok")

    def at(self, path: str, kind: str | None = None) -> list[Received]:
        with self._lock:
            return [
                r
                for r in self.received
                if r.path == path and (kind is None or r.type == kind)
            ]

    def wait_for(
        self,
        path: str,
        kind: str,
        count: int = 1,
        *,
        timeout: float = 30.0,
        where: Callable[[Received], bool] = lambda _: True,
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [r for r in self.at(path, kind) if where(r)]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(
            f"{path}: {count} x {kind} not received in {timeout} s; got"
            f" {[(r.path, r.type) for r in self.received]}"
        )
