"""What `serve` tells systemd over $NOTIFY_SOCKET: start, reload, stop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pushgw.config import load_config
from pushgw.daemon import Gateway, serve


class FakeNotifySocket:
    """The AF_UNIX datagram socket systemd listens on, in a temporary directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)

    async def next(self) -> list[str]:
        """The next datagram, as its lines."""
        loop = asyncio.get_running_loop()
        data = await asyncio.wait_for(loop.sock_recv(self.sock, 4096), 10)
        return data.decode().split("\n")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(name="notify")
async def _notify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FakeNotifySocket]:
    fake = FakeNotifySocket(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", str(fake.path))
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)  # no pings in the sequence
    yield fake
    fake.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def monotonic_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


async def start(
    tmp_path: Path, notify: FakeNotifySocket
) -> tuple[Path, int, asyncio.Task[None]]:
    """`serve` in this process, as under systemd (signals included), once READY."""
    port = free_port()
    path = tmp_path / "pushgw.toml"
    path.write_text(f'[server]\nport = {port}\n[store]\nurl = "memory:"\n')
    task = asyncio.create_task(serve(load_config(path), config_path=str(path)))

    ready = await notify.next()

    # READY=1 comes after the signal handlers are in: SIGHUP cannot kill it now.
    assert ["READY=1", f"STATUS=Serving on 127.0.0.1:{port}"] == ready
    return path, port, task


async def stop(task: asyncio.Task[None], notify: FakeNotifySocket) -> list[str]:
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(task, 10)
    return await notify.next()


async def test_sighup_reports_reloading_then_ready(
    tmp_path: Path, notify: FakeNotifySocket
) -> None:
    """SIGHUP: RELOADING=1 with MONOTONIC_USEC (CLOCK_MONOTONIC µs, one datagram),
    then READY=1, each with a STATUS= line; SIGTERM then sends STOPPING=1."""
    path, port, task = await start(tmp_path, notify)
    before = monotonic_usec()

    os.kill(os.getpid(), signal.SIGHUP)
    reloading = await notify.next()
    reloaded = await notify.next()
    after = monotonic_usec()
    stopping = await stop(task, notify)

    assert ["RELOADING=1", "MONOTONIC_USEC", f"STATUS=Reloading {path}"] == [
        line.partition("=")[0] if line.startswith("MONOTONIC") else line
        for line in reloading
    ]
    usec = int(reloading[1].removeprefix("MONOTONIC_USEC="))
    assert before <= usec <= after
    assert [
        "READY=1",
        f"STATUS=Serving on 127.0.0.1:{port}; config reloaded",
    ] == reloaded
    assert ["STOPPING=1", "STATUS=Stopping: draining in-flight sends"] == stopping


async def test_failed_reload_still_reports_ready(
    tmp_path: Path, notify: FakeNotifySocket
) -> None:
    """A broken file on SIGHUP keeps the running config and still ends the
    reload with READY=1, its STATUS= saying why (the unit never stays reloading)."""
    path, port, task = await start(tmp_path, notify)
    path.write_text("[delivery]\nlease_s = -5\n")

    os.kill(os.getpid(), signal.SIGHUP)
    reloading = await notify.next()
    reloaded = await notify.next()
    await stop(task, notify)

    assert "RELOADING=1" == reloading[0]
    assert [
        "READY=1",
        f"STATUS=Serving on 127.0.0.1:{port}; reload failed, previous config kept:"
        " delivery.lease_s: expected > 0, got -5.0",
    ] == reloaded


async def test_watchdog_pings_only_while_the_claim_loop_is_alive(
    notify: FakeNotifySocket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WATCHDOG=1 goes out while delivery runs; with the claim loop wedged (a
    store call that never returns) the pings stop, so systemd restarts it."""
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 0.1 s
    monkeypatch.setattr("pushgw.delivery.dispatcher.PULSE_S", 0.05)
    gateway: list[Gateway] = []
    real_init = Gateway.__init__

    def keep(self: Gateway, *args: object, **kwargs: object) -> None:
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]
        gateway.append(self)

    monkeypatch.setattr(Gateway, "__init__", keep)
    _, _, task = await start(tmp_path, notify)
    try:
        assert ["WATCHDOG=1"] == await notify.next()
        assert ["WATCHDOG=1"] == await notify.next()

        wedged = asyncio.Event()

        async def hang(**_: object) -> list[object]:
            wedged.set()
            await asyncio.Event().wait()
            return []

        monkeypatch.setattr(gateway[0].store, "claim_jobs", hang)
        gateway[0].dispatcher.wake()
        await asyncio.wait_for(wedged.wait(), 5)
        await asyncio.sleep(0.5)  # past the 0.2 s the watchdog tolerates
        while True:  # drain the pings sent before it noticed
            try:
                notify.sock.recv(4096)
            except BlockingIOError:
                break
        await asyncio.sleep(0.5)

        with pytest.raises(BlockingIOError):
            notify.sock.recv(4096)  # no ping for a wedged daemon
    finally:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(task, 15)
