"""
The six loopback mocks in a child process the bench controls over a pipe.

The gateway and the mocks share this 2-core machine; running the mocks in their
own process keeps the gateway's CPU figure (from /proc/<pid>/stat) its own, and
lets the bench register tens of thousands of devices in-process (no HTTP call
per device) and read back the mocks' per-message arrival times.

Commands (tuples sent on the pipe; each gets exactly one reply):
    ("credentials", platform)        -> SNS attributes for CreatePlatformApplication
    ("devices", platform, n)         -> [(token, attributes), ...] (n new devices)
    ("count",)                       -> deliveries recorded so far, all mocks
    ("arrivals",)                    -> {mock: {token: [at, ...]}}
    ("arrival_times",)               -> {mock: [at, ...]} (cheap for 1M devices)
    ("stats",)                       -> {mock: {outcome: count}}
    ("reset",)                       -> None (forget messages and stats)
    ("stop",)                        -> None, then the child exits
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
from pathlib import Path
from typing import Any

PLATFORMS = ("APNS", "GCM", "ADM", "BAIDU", "MPNS", "WNS")


def _child(pipe: multiprocessing.connection.Connection, ca_file: str) -> None:
    from pushgw.providers.mocks.runner import MockFleet

    async def main() -> None:
        fleet = MockFleet()
        urls = await fleet.start()
        fleet.apns.write_ca(ca_file)
        pipe.send(urls)
        stop = asyncio.Event()

        def handle() -> None:
            try:
                command = pipe.recv()
            except EOFError:
                stop.set()
                return
            pipe.send(_answer(fleet, command, stop))

        asyncio.get_running_loop().add_reader(pipe.fileno(), handle)
        await stop.wait()
        await fleet.stop()

    asyncio.run(main())


def _answer(fleet: Any, command: tuple[Any, ...], stop: asyncio.Event) -> Any:
    kind = command[0]
    if kind == "credentials":
        return fleet.credentials(command[1], {})
    if kind == "devices":
        out = []
        for _ in range(int(command[2])):
            device = fleet.device(command[1])
            out.append((device["token"], device["attributes"]))
        return out
    if kind == "count":
        return sum(m.stats["delivered"] for m in fleet.mocks.values())
    if kind == "arrivals":
        return {
            name: {tok: [r.at for r in got] for tok, got in mock.received.items()}
            for name, mock in fleet.mocks.items()
        }
    if kind == "arrival_times":
        return {
            name: [r.at for got in mock.received.values() for r in got]
            for name, mock in fleet.mocks.items()
        }
    if kind == "stats":
        return fleet.stats()
    if kind == "reset":
        fleet.reset()
        for mock in fleet.mocks.values():
            if hasattr(mock, "requests"):
                mock.requests.clear()
        return None
    if kind == "stop":
        stop.set()
        return None
    raise ValueError(f"unknown command {kind!r}")


class MockProcess:
    """Parent side: start the child, call it, stop it."""

    def __init__(self, ca_file: Path) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._pipe, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_child, args=(child, str(ca_file)), name="bench-mocks", daemon=True
        )
        self.process.start()
        child.close()
        if not self._pipe.poll(60):
            raise RuntimeError("mock process did not start")
        self.urls: dict[str, str] = self._pipe.recv()
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int:
        pid = self.process.pid
        assert pid is not None
        return pid

    def call(self, *command: Any) -> Any:
        self._pipe.send(command)
        if not self._pipe.poll(300):
            raise RuntimeError(f"mock process did not answer {command[0]}")
        return self._pipe.recv()

    async def acall(self, *command: Any) -> Any:
        """`call` without blocking the event loop (progress polls during runs)."""
        async with self._lock:
            return await asyncio.to_thread(self.call, *command)

    def port(self, name: str) -> int:
        return int(self.urls[name].rsplit(":", 1)[1].split("/")[0])

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self.call("stop")
            except (OSError, EOFError, RuntimeError):
                pass
            self.process.join(10)
        if self.process.is_alive():
            os.kill(self.pid, 9)
            self.process.join(5)
