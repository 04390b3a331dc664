"""
`serve(config)`: the pushgw daemon.

Start-up order: open the store (fail fast, migrations applied), create the
provider pool, start the dispatcher, bind HTTP, then tell systemd READY=1.
Shutdown (SIGTERM/SIGINT, or the test's `shutdown_trigger`): STOPPING=1, stop
accepting requests, let in-flight sends finish up to `graceful_timeout_s`, leave
the rest queued (their leases are released for the next start or another node).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from providers.base import Provider
from providers.channel_guard import check_mpns_channel, check_wns_channel
from providers.registry import create_provider
from pushgw import log as log_setup
from pushgw.api.app import make_app
from pushgw.arn import ArnBuilder
from pushgw.config import Config, load_config
from pushgw.delivery.dispatcher import Dispatcher
from pushgw.delivery.providers import ProviderPool
from pushgw.errors import ConfigError
from pushgw.log import get_logger
from pushgw.model import Platform, PlatformApplication
from pushgw.service import Service
from pushgw.store.base import Store
from pushgw.store.encrypted import EncryptedStore
from pushgw.store.factory import open_store

log = get_logger("pushgw.daemon")

ProviderFactory = Callable[[PlatformApplication], Awaitable[Provider]]


def sd_notify(state: str) -> None:
    """Tell systemd our state (Type=notify); a no-op outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with (
        contextlib.suppress(OSError),
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock,
    ):
        sock.connect(address)
        sock.sendall(state.encode())


def store_url(config: Config) -> str:
    """The store URL with a relative SQLite path resolved against the config."""
    url = config.store.url
    if url.startswith("sqlite:") and not url.startswith("sqlite:///"):
        path = config.path(url.removeprefix("sqlite:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path.resolve()}".replace("sqlite:////", "sqlite:///")
    return url


def channel_checker(config: Config) -> Callable[[Platform, str], str | None]:
    wns = config.provider("wns").allow_loopback
    mpns = config.provider("mpns").allow_loopback

    def check(platform: Platform, uri: str) -> str | None:
        if platform is Platform.WNS:
            return check_wns_channel(uri, allow_loopback=wns)
        return check_mpns_channel(uri, allow_loopback=mpns)

    return check


class Gateway:
    """The running parts of one daemon, for `serve` and for in-process tests."""

    def __init__(
        self, config: Config, *, provider_factory: ProviderFactory | None = None
    ) -> None:
        self.config = config
        self.store: Store = open_store(store_url(config))
        if config.store.encryption_key_file:
            key = config.path(config.store.encryption_key_file).read_bytes().strip()
            self.store = EncryptedStore(self.store, key)
        else:
            log.warning(
                "credentials_stored_in_clear", hint="set store.encryption_key_file"
            )
        factory = provider_factory or (
            lambda app: create_provider(app, config.provider)
        )
        self.providers = ProviderPool(factory)
        self.dispatcher = Dispatcher(
            store=self.store, providers=self.providers, config=config.delivery
        )
        self.service = Service(
            store=self.store,
            arns=ArnBuilder(config.sns.region, config.sns.account),
            on_enqueue=self.dispatcher.accepted,
            channel_check=channel_checker(config),
        )
        # Kept here and changed in place on reload: the API reads them per request.
        self.sns_keys = config.sns_access_keys()
        self.api_keys = config.api_keys()
        self.runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._unlisten: Callable[[], Awaitable[None]] | None = None
        self.port = 0

    async def start(self) -> None:
        await self.store.open()
        if self.config.delivery.enabled:
            self._tasks.append(
                asyncio.create_task(self.dispatcher.run(), name="dispatcher")
            )
            listen = getattr(self.store, "listen", None)
            if listen is not None:
                self._unlisten = await listen(self.dispatcher.wake)
        app = make_app(
            config=self.config,
            service=self.service,
            store=self.store,
            metrics=self.metrics,
            ready=self.ready,
            sns_keys=self.sns_keys,
            api_keys=self.api_keys,
        )
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(
            self.runner, self.config.server.host, self.config.server.port or None
        )
        await site.start()
        server = site._server  # aiohttp exposes no public bound-port API
        if server is not None and server.sockets:  # type: ignore[attr-defined]
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        log.info(
            "pushgw_started",
            host=self.config.server.host,
            port=self.port,
            store=self.config.store.url.split("@")[-1],
            owner=self.dispatcher.owner,
        )

    def reload(self, config: Config) -> None:
        """SIGHUP: take new access keys, API keys and log level; the rest needs a
        restart (listen address, store, delivery limits, provider URLs)."""
        sns_keys, api_keys = config.sns_access_keys(), config.api_keys()
        self.sns_keys.clear()
        self.sns_keys.update(sns_keys)
        self.api_keys[:] = api_keys
        log_setup.configure(level=config.logging.level, fmt=config.logging.format)
        log.info("config_reloaded", sns_keys=len(sns_keys), api_keys=len(api_keys))

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.shutdown()  # stop accepting; finish open requests
        await self.dispatcher.stop(self.config.server.graceful_timeout_s)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._unlisten is not None:
            await self._unlisten()
        if self.runner is not None:
            await self.runner.cleanup()
        await self.providers.aclose()
        await self.store.close()
        log.info("pushgw_stopped", stats=dict(self.dispatcher.stats))

    async def ready(self) -> bool:
        """Ready when the store answers (and the dispatcher, if enabled, runs)."""
        if self.config.delivery.enabled and not any(
            t.get_name() == "dispatcher" and not t.done() for t in self._tasks
        ):
            return False
        try:
            await asyncio.wait_for(self.store.next_due_at(), timeout=2.0)
        except Exception:
            log.warning("store_not_ready", exc_info=True)
            return False
        return True

    async def metrics(self) -> str:
        """Prometheus text: outcome counters and the backlog."""
        lines = [
            "# TYPE pushgw_deliveries_total counter",
            *(
                f'pushgw_deliveries_total{{outcome="{name}"}} {count}'
                for name, count in sorted(self.dispatcher.stats.items())
            ),
            "# TYPE pushgw_jobs gauge",
            *(
                f'pushgw_jobs{{state="{state}"}} {count}'
                for state, count in (await self.store.job_counts()).items()
            ),
            "# TYPE pushgw_sends_in_flight gauge",
            f"pushgw_sends_in_flight {self.dispatcher.in_flight}",
        ]
        return "\n".join(lines) + "\n"


async def serve(
    config: Config,
    *,
    shutdown_trigger: Callable[[], Awaitable[object]] | None = None,
    provider_factory: ProviderFactory | None = None,
    config_path: str | None = None,
) -> None:
    """Run the daemon until SIGTERM/SIGINT or `shutdown_trigger` completes.

    SIGHUP re-reads `config_path` and applies what can change live (keys, log
    level); an invalid file is logged and the running config kept.
    """
    gateway = Gateway(config, provider_factory=provider_factory)
    await gateway.start()
    sd_notify("READY=1")
    watchdog = _start_watchdog()
    try:
        if shutdown_trigger is None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            if config_path is not None:
                loop.add_signal_handler(signal.SIGHUP, _reload, gateway, config_path)
            await stop.wait()
        else:
            await shutdown_trigger()
    finally:
        sd_notify("STOPPING=1")
        if watchdog is not None:
            watchdog.cancel()
        await gateway.stop()


def _reload(gateway: Gateway, path: str) -> None:
    try:
        gateway.reload(load_config(path))
    except ConfigError as exc:
        log.error("config_reload_failed", error=str(exc))


def _start_watchdog() -> asyncio.Task[None] | None:
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec or not usec.isdigit():
        return None
    interval = int(usec) / 1_000_000 / 2

    async def ping() -> None:
        while True:
            sd_notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    return asyncio.create_task(ping(), name="watchdog")
