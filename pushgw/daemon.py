"""
`serve(config)`: the pushgw daemon.

Start-up order: open the store (fail fast, migrations applied), bind HTTP,
start the dispatcher, then tell systemd READY=1. A start that fails (the port
is taken, the store cannot be opened) undoes what it did and raises
StartupError: `pushgw serve` prints one line and exits non-zero.
Shutdown (SIGTERM/SIGINT, or the test's `shutdown_trigger`): STOPPING=1, stop
accepting requests, let in-flight sends finish up to `graceful_timeout_s`, leave
the rest queued (their leases are released for the next start or another node).

Side tasks (the claim loop, the lease heartbeat, PostgreSQL LISTEN, the systemd
watchdog) run under one Supervisor: a failing task is logged and started again
with back-off for as long as the fault lasts. `/readyz` tells the truth: the
store answers a read and a write, the dispatcher runs, and no side task has
been failing for longer than TASK_FAILING_GRACE_S; the reasons are in the body.
The watchdog is pinged only while the claim loop is alive (beating, or being
retried), so systemd restarts a wedged daemon, not one riding out an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import signal
import socket
import ssl
import tempfile
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from pushgw import log as log_setup
from pushgw import netguard
from pushgw.api.app import make_app
from pushgw.arn import ArnBuilder
from pushgw.config import Config, load_config
from pushgw.delivery.dispatcher import CLAIM_TASK, Dispatcher, node_id_for
from pushgw.delivery.http import HttpSender, HttpSenderSettings
from pushgw.delivery.observe import Observers
from pushgw.delivery.providers import ProviderPool
from pushgw.errors import ConfigError, StartupError, StoreError
from pushgw.ledger import FLUSH_TASK as LEDGER_FLUSH_TASK
from pushgw.ledger import PRUNE_TASK as LEDGER_PRUNE_TASK
from pushgw.ledger import Ledger
from pushgw.log import get_logger
from pushgw.metrics import REPORTER_TASK, GatewayMetrics
from pushgw.metrics import SYNC_TASK as METRICS_SYNC_TASK
from pushgw.model import Platform, PlatformApplication
from pushgw.providers.base import Provider
from pushgw.providers.channel_guard import check_mpns_channel, check_wns_channel
from pushgw.providers.registry import create_provider
from pushgw.service import Service
from pushgw.sns.confirmation import TOKEN_TTL_S
from pushgw.sns.http_messages import SigningKey, generate_dev_signing_pair, host_of
from pushgw.store.base import Store
from pushgw.store.factory import open_store
from pushgw.store.sealing import PLAIN, CredentialSealer
from pushgw.supervisor import Pulse, Supervisor
from pushgw.workers import Workers, worker_node_id

log = get_logger("pushgw.daemon")

ProviderFactory = Callable[[PlatformApplication], Awaitable[Provider]]

TASK_FAILING_GRACE_S = 2.0  # a side task failing this long makes /readyz 503
PROBE_TIMEOUT_S = 1.5  # /readyz reports a store probe unanswered by then
PROBE_CACHE_S = 0.5  # /readyz and /metrics share one probe per this interval
LISTEN_TASK = "store-listen"
WATCHDOG_TASK = "watchdog"
HOUSEKEEPING_TASK = "housekeeping"
WORKERS_TASK = "workers"
HOUSEKEEPING_S = 3600.0


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
    """The store URL with a relative SQLite path resolved (`Config.state_path`)."""
    url = config.store.url
    if url.startswith("sqlite:") and not url.startswith("sqlite:///"):
        path = config.state_path(url.removeprefix("sqlite:"))
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


def signing_key(config: Config) -> SigningKey:
    """The key that signs what HTTP subscribers receive: from config, else a
    pair made now (one daemon only: others would sign with keys of their own)."""
    hooks = config.http_subscriptions
    if hooks.signing_key_file:
        try:
            return SigningKey.from_files(
                config.secret_path(hooks.signing_key_file),
                config.path(hooks.signing_cert_file),
            )
        except ValueError as exc:
            raise ConfigError(f"http_subscriptions: {exc}") from exc
    log.warning(
        "signing_key_generated",
        hint="set http_subscriptions.signing_key_file and signing_cert_file",
    )
    with tempfile.TemporaryDirectory() as tmp:
        key_path, cert_path = generate_dev_signing_pair(
            Path(tmp), host=host_of(config.public_url)
        )
        return SigningKey.from_files(key_path, cert_path)


def warn_plain_signing_cert_url(public_url: str) -> None:
    """
    Warn once, at start, when what this daemon signs for HTTP subscribers
    names an http:// SigningCertURL: standard validators (the AWS SDKs'
    message validators, sns-validator) accept the certificate only over https,
    so they refuse every message. Only a warning: plain-http receivers that
    check signatures themselves, and development, still work.
    """
    if urllib.parse.urlsplit(public_url).scheme.lower() == "https":
        return
    log.warning(
        "signing_cert_url_not_https",
        public_url=public_url,
        hint="set server.public_url to the https:// URL subscribers reach"
        " (server.tls_cert_file, or a TLS proxy in front); standard SNS"
        " validators refuse an http SigningCertURL",
    )


def server_tls(config: Config) -> ssl.SSLContext | None:
    """`server.tls_cert_file`: serve HTTPS (and SigningCertURL over it)."""
    if not config.server.tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(
            config.path(config.server.tls_cert_file),
            config.secret_path(config.server.tls_key_file),
        )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"server.tls_cert_file: {exc}") from exc
    return context


class Gateway:
    """The running parts of one daemon, for `serve` and for in-process tests."""

    def __init__(
        self,
        config: Config,
        *,
        provider_factory: ProviderFactory | None = None,
        worker_index: int = 0,
    ) -> None:
        self.config = config
        # This node's id, shared by all its workers (`serve --workers N`); each
        # worker delivers under an id of its own (worker_node_id).
        self.node = node_id_for(config.delivery, config.source)
        self.worker_index = worker_index
        sealer = PLAIN
        if config.store.encryption_key_file:
            key = config.secret_path(config.store.encryption_key_file).read_bytes()
            key = key.strip()
            sealer = CredentialSealer(key)
        else:
            log.warning(
                "credentials_stored_in_clear", hint="set store.encryption_key_file"
            )
        self.store: Store = open_store(
            store_url(config), timeout_s=config.store.timeout_s, sealer=sealer
        )
        factory = provider_factory or (
            lambda app: create_provider(app, config.provider)
        )
        self.providers = ProviderPool(factory)
        self.signing_key = signing_key(config)
        # Told of every delivery attempt and outcome (metrics, the ledger).
        self.observers = Observers()
        # The delivery ledger: counters, records and dead letters in the store.
        self.ledger = Ledger(self.store, config.ledger)
        self.observers.observers.append(self.ledger)
        hooks = config.http_subscriptions
        self.http_sender = HttpSender(
            store=self.store,
            key=self.signing_key,
            settings=HttpSenderSettings(
                public_url=config.public_url,
                timeout_s=hooks.timeout_s,
                max_in_flight=hooks.max_in_flight,
                max_connections_per_host=hooks.max_connections_per_host,
                max_response_bytes=hooks.max_response_bytes,
                allow_private_urls=hooks.allow_private_urls,
                ca_file=str(config.path(hooks.ca_file)) if hooks.ca_file else None,
            ),
            observer=self.observers,
        )
        self.dispatcher = Dispatcher(
            store=self.store,
            providers=self.providers,
            config=config.delivery,
            node=worker_node_id(self.node, worker_index),
            http_sender=self.http_sender,
            observer=self.observers,
        )
        self.supervisor = Supervisor()
        # Prometheus (/metrics): its own registry, told of every delivery.
        self.prometheus = GatewayMetrics(
            store=self.store,
            config=config.metrics,
            timeout_s=PROBE_TIMEOUT_S,
            in_flight=lambda: self.dispatcher.in_flight,
            tasks=lambda: self.supervisor.health.values(),
            store_up=self._store_up,
            node=self.node,
            worker=worker_index,
        )
        self.observers.observers.append(self.prometheus.delivery)
        self.service = Service(
            store=self.store,
            arns=ArnBuilder(config.sns.region, config.sns.account),
            on_enqueue=self.dispatcher.accepted,
            delivery=self.dispatcher,
            channel_check=channel_checker(config),
            url_check=functools.partial(
                netguard.check_subscriber_url, allow_private=hooks.allow_private_urls
            ),
        )
        # Kept here and changed in place on reload: the API reads them per request.
        self.sns_keys = config.sns_access_keys()
        self.api_keys = config.api_keys()
        self.runner: web.AppRunner | None = None
        self.reuse_port = False  # several workers on one port (pushgw/workers.py)
        self.port = 0
        self._store_open = False
        self._probed: tuple[float, str | None] | None = None  # (when, failure)
        self._probe_task: asyncio.Task[str | None] | None = None

    async def start(self) -> None:
        """Open the store, bind, start delivery; on failure undo and raise."""
        try:
            await self.store.open()
            self._store_open = True
            await self._bind()
        except (OSError, StoreError) as exc:
            await self.stop()
            raise StartupError(_startup_failure(self.config, exc)) from exc
        except BaseException:
            await self.stop()
            raise
        self.supervisor.start(HOUSEKEEPING_TASK, self._housekeeping)
        # Its own tasks, not housekeeping's: the flush runs every second, the
        # prune every minute, and neither failing holds up the other.
        self.supervisor.start(LEDGER_FLUSH_TASK, self.ledger.run)
        self.supervisor.start(LEDGER_PRUNE_TASK, self.ledger.prune_loop)
        if self.config.metrics.cluster_gauges:
            self.supervisor.start(REPORTER_TASK, self.prometheus.reporter.run)
        if self.prometheus.shared:
            self.supervisor.start(METRICS_SYNC_TASK, self.prometheus.sync_loop)
        if self.config.delivery.enabled:
            warn_plain_signing_cert_url(self.http_sender.settings.public_url)
            self.dispatcher.supervise(self.supervisor)
            listen = getattr(self.store, "listen_forever", None)
            if listen is not None:

                async def listen_task(pulse: Pulse) -> None:
                    def woken() -> None:
                        pulse.beat()
                        self.dispatcher.wake()

                    await listen(woken)

                self.supervisor.start(LISTEN_TASK, listen_task)
        log.info(
            "pushgw_started",
            host=self.config.server.host,
            port=self.port,
            store=self.config.store.url.split("@")[-1],
            owner=self.dispatcher.owner,
            # "uvloop" or "asyncio": the loop actually running (server.event_loop)
            event_loop=type(asyncio.get_running_loop()).__module__.split(".")[0],
        )

    async def _housekeeping(self, pulse: Pulse) -> None:
        """Hourly: drop subscriptions whose confirmation token expired and old
        deletion records (SubscriptionsDeleted counts the last 3 days)."""
        while True:
            now = time.time()
            purged = await self.store.purge_subscriptions(
                pending_before=now - TOKEN_TTL_S, deleted_before=now - TOKEN_TTL_S
            )
            if purged:
                log.info("subscriptions_purged", rows=purged)
            pulse.beat()
            await asyncio.sleep(HOUSEKEEPING_S)

    async def _bind(self) -> None:
        app = make_app(
            config=self.config,
            service=self.service,
            metrics=self.metrics,
            observe_request=self.prometheus.api_request,
            ready=self.readiness,
            sns_keys=self.sns_keys,
            api_keys=self.api_keys,
            signing_cert=(self.signing_key.cert_path, self.signing_key.cert_pem),
            on_replay=self.dispatcher.replayed,
        )
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(
            self.runner,
            self.config.server.host,
            self.config.server.port or None,
            ssl_context=server_tls(self.config),
            reuse_port=self.reuse_port or None,
        )
        await site.start()
        server = site._server  # aiohttp exposes no public bound-port API
        if server is not None and server.sockets:  # type: ignore[attr-defined]
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        if not self.config.server.public_url and not self.config.server.port:
            # Bound to a port of the system's choice (tests): say that one.
            scheme = "https" if self.config.server.tls_cert_file else "http"
            self.http_sender.settings = dataclasses.replace(
                self.http_sender.settings,
                public_url=f"{scheme}://{self.config.server.host}:{self.port}",
            )

    def start_watchdog(self, interval_s: float) -> None:
        """Ping systemd every `interval_s` while delivery is alive."""
        stale_s = interval_s * 2  # half of WatchdogSec: two missed pings

        async def ping(pulse: Pulse) -> None:
            while True:
                if not self.config.delivery.enabled or self.supervisor.alive(
                    CLAIM_TASK, within=stale_s
                ):
                    sd_notify("WATCHDOG=1")
                    pulse.beat()
                else:
                    log.error("watchdog_withheld", reason="the claim loop is wedged")
                await asyncio.sleep(interval_s)

        self.supervisor.start(WATCHDOG_TASK, ping)

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
        """Stop everything that was started; safe after a partial start."""
        if self.runner is not None:
            await self.runner.shutdown()  # stop accepting; finish open requests
        if self._store_open:
            await self.dispatcher.stop(self.config.server.graceful_timeout_s)
            await self.ledger.drain()  # what the last sends told it, before close
        await self.supervisor.stop()
        if self._store_open and self.worker_index == 0:
            await self._release_reporter()
        if self._probe_task is not None:
            self._probe_task.cancel()
        self.prometheus.close()
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        await self.providers.aclose()
        await self.http_sender.aclose()
        await self.store.close()  # also when open() failed half-way
        if self._store_open:
            log.info("pushgw_stopped", stats=dict(self.dispatcher.stats))
        self._store_open = False

    async def _release_reporter(self) -> None:
        """Let another node report the cluster-wide gauges at once. Worker 0
        only: it stops last, while its workers would go on reporting."""
        try:
            await self.prometheus.reporter.release()
        except StoreError as exc:  # the lease runs out by itself
            log.warning("cluster_reporter_release_failed", error=str(exc))

    async def readiness(self) -> list[str]:
        """Why the daemon is not ready; empty when it is."""
        reasons = []
        if self.config.delivery.enabled and not self.supervisor.running(CLAIM_TASK):
            reasons.append("dispatcher: not running")
        now = time.monotonic()
        for task in self.supervisor.failing(longer_than=TASK_FAILING_GRACE_S):
            since = now - (task.failing_since or now)
            reasons.append(f"{task.name}: failing for {since:.1f} s: {task.last_error}")
        failure = await self.store_failure()
        if failure is not None:
            reasons.append(f"store: {failure}")
        return reasons

    async def store_failure(self) -> str | None:
        """None if the store answers a read and takes a write (cached briefly).

        Answers within PROBE_TIMEOUT_S whatever the store does: a probe still
        running then is left to finish in the background (a stalled database
        may take its statement timeout to give up) and the next call after
        PROBE_CACHE_S looks at it again rather than starting another one.
        """
        now = time.monotonic()
        if self._probed is not None and now - self._probed[0] < PROBE_CACHE_S:
            return self._probed[1]
        if self._probe_task is None or self._probe_task.done():
            self._probe_task = asyncio.create_task(self._probe(), name="store-probe")
        done, _ = await asyncio.wait({self._probe_task}, timeout=PROBE_TIMEOUT_S)
        failure = (
            self._probe_task.result()
            if done
            else f"no answer within {PROBE_TIMEOUT_S:g} s"
        )
        self._probed = (time.monotonic(), failure)
        return failure

    async def _probe(self) -> str | None:
        try:
            await self.store.next_due_at()
            await self.store.probe(node=self.dispatcher.node, now=time.time())
        except StoreError as exc:
            log.warning("store_not_ready", error=str(exc))
            return str(exc) or type(exc).__name__
        except Exception as exc:  # a health check must answer, whatever broke
            log.exception("store_probe_failed")
            return f"{type(exc).__name__}: {exc}"
        return None

    async def _store_up(self) -> bool:
        return await self.store_failure() is None

    async def metrics(self) -> bytes:
        """The Prometheus exposition (text format) of this daemon."""
        return await self.prometheus.render()


def _startup_failure(config: Config, exc: BaseException) -> str:
    """The one line `pushgw serve` prints when it cannot start."""
    if isinstance(exc, OSError):
        where = f"{config.server.host}:{config.server.port}"
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        return f"cannot listen on {where}: {reason.lower()}"
    return f"cannot open the store: {exc}"


async def serve(
    config: Config,
    *,
    shutdown_trigger: Callable[[], Awaitable[object]] | None = None,
    provider_factory: ProviderFactory | None = None,
    config_path: str | None = None,
    workers: Workers | None = None,
    worker_index: int = 0,
) -> None:
    """Run the daemon until SIGTERM/SIGINT or `shutdown_trigger` completes.

    SIGHUP re-reads `config_path` and applies what can change live (keys, log
    level); an invalid file is logged and the running config kept. With
    `workers` (`--workers N`, pushgw/workers.py) this process is worker 0 and
    keeps the others running; `worker_index` above 0 is one of those. Every
    worker binds with SO_REUSEPORT.
    """
    gateway = Gateway(
        config, provider_factory=provider_factory, worker_index=worker_index
    )
    gateway.reuse_port = worker_index > 0 or workers is not None
    await gateway.start()
    if workers is not None:
        gateway.supervisor.start(WORKERS_TASK, workers.run)
    if shutdown_trigger is None:
        # Installed before READY=1: systemd may send SIGHUP (`systemctl reload`) as
        # soon as the unit is active, and SIGHUP's default action kills the process.
        stop = asyncio.Event()
        shutdown_trigger = stop.wait
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if config_path is not None:
            loop.add_signal_handler(
                signal.SIGHUP, _reload, gateway, config_path, workers
            )
    sd_notify(f"READY=1\nSTATUS={_serving(gateway)}")
    usec = os.environ.get("WATCHDOG_USEC", "")
    if usec.isdigit():
        gateway.start_watchdog(int(usec) / 1_000_000 / 2)
    try:
        await shutdown_trigger()
    finally:
        sd_notify("STOPPING=1\nSTATUS=Stopping: draining in-flight sends")
        if workers is not None:
            await workers.stop(config.server.graceful_timeout_s + 5)
        await gateway.stop()


def _serving(gateway: Gateway) -> str:
    """The STATUS= line `systemctl status` shows while the daemon runs."""
    return f"Serving on {gateway.config.server.host}:{gateway.port}"


def _reload(gateway: Gateway, path: str, workers: Workers | None = None) -> None:
    if workers is not None:
        workers.signal_all(signal.SIGHUP)
    # RELOADING=1 keeps the unit "reloading" until READY=1, so `systemctl reload`
    # returns once the new config is in force. MONOTONIC_USEC (CLOCK_MONOTONIC, in
    # the same datagram) lets systemd match it to its SIGHUP (Type=notify-reload).
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    sd_notify(f"RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=Reloading {path}")
    status = f"{_serving(gateway)}; config reloaded"
    try:
        gateway.reload(load_config(path))
    except ConfigError as exc:
        log.error("config_reload_failed", error=str(exc))
        status = f"{_serving(gateway)}; reload failed, previous config kept: {exc}"
    finally:
        sd_notify(f"READY=1\nSTATUS={status}")  # never leave the unit reloading
