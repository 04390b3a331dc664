"""
Prometheus metrics of one daemon (`/metrics`), with prometheus_client.

Each Gateway has its own `CollectorRegistry` (tests run several gateways in one
process; the library's global registry is never used), with the process,
platform and GC collectors on it. Four sources feed it:

- `DeliveryMetrics`, a `DeliveryObserver` (pushgw/delivery/observe.py): every
  send attempt, reschedule and final outcome, as counters and histograms;
- `api_request`, called by the API middleware (pushgw/api/app.py) once per
  request with the API, the action and the status;
- `LocalGauges`, set from the process's state before each scrape: sends in
  flight and side-task health;
- `StateCollector`, read at scrape time: the backlog, disabled apps and
  credential expiry (cluster-wide, from the shared store, on the one node
  `ClusterReporter` elects), and store health.

With `serve --workers N` the metrics of every worker go to one directory of
memory-mapped files (prometheus_client's multiprocess mode,
`use_shared_counters`), so the worker that answers a scrape reports the node's:
counters and histograms summed (a worker restarted keeps its predecessor's
counts: its files stay), sends in flight summed over the live workers, a task
failing in any of them, and every worker's process_* and python_gc_* figures
with a `worker` label (`WorkerFigures`). Each worker writes its gauges every
SYNC_S, the answering one at the scrape; worker 0 drops an exited worker's
live gauges (`worker_exited`). The cluster-wide gauges are the same whichever
worker answers (the workers share the node's id in the election, and read the
same store); store health is the answering worker's.

Every store read of a scrape is bounded by a timeout: a store that is down or
stalled costs the scrape at most that long and leaves out only the gauges it
could not read (`pushgw_store_up` says why). Label values are bounded: platform
names, outcome and state names, HTTP status codes, action names, and app names
only when `[metrics] per_app_labels` asks for them. Never ARNs or tokens.
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from pushgw import __version__
from pushgw.config import MetricsConfig
from pushgw.delivery.observe import Attempt, Finished
from pushgw.log import get_logger
from pushgw.model import JobKind, PlatformApplication
from pushgw.service.credentials import expires_at
from pushgw.store.base import BacklogRow, BacklogState, Store
from pushgw.supervisor import Pulse, TaskHealth

log = get_logger("pushgw.metrics")

T = TypeVar("T")

# prometheus_client's own variable: the directory of the workers' shared files.
SHARED_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_shared_counters(directory: str) -> None:
    """
    This process's counters and histograms (those created from now on) live in
    `directory`, shared with the other workers of `serve --workers N`, which
    inherit the variable. Call before the Gateway is built.
    """
    os.environ[SHARED_DIR_ENV] = directory
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


def shared_counters_dir() -> str | None:
    return os.environ.get(SHARED_DIR_ENV) or None


# Sends: a fast provider answers in milliseconds, a slow one near its timeout
# (providers 10 s, HTTP subscribers 15 s by default).
SEND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)
# Publish to delivery: immediate, or retried for minutes to hours.
DELIVERY_BUCKETS = (
    *(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    *(60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0),
)
API_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BACKLOG_STATES: tuple[BacklogState, ...] = (
    "due",
    "leased",
    "scheduled",
    "waiting_for_app",
)
JOB_KINDS: tuple[JobKind, ...] = ("endpoint", "topic", "http")
APPS_PAGE = 100
# App gauges read longer ago than this many refresh intervals are dropped
# rather than reported (the store has not answered for that long).
STALE_REFRESHES = 5
# The store lease (Store.hold_lease) held by the node that reports the
# cluster-wide gauges, and the side task that asks for it.
REPORTER_LEASE = "cluster-metrics"
REPORTER_TASK = "metrics-reporter"
# With --workers, how often each worker writes its own figures to the shared
# files (what a scrape answered by another worker sees is this old at most).
SYNC_S = 1.0
SYNC_TASK = "metrics-sync"


class DeliveryMetrics:
    """The delivery observer: counters and histograms of attempts and outcomes.

    Runs per send on the event loop, so it keeps each label set's child
    (`labels()` takes a lock and builds a key every call).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.attempts = Counter(
            "pushgw_delivery_attempts",
            "Sends to a provider or HTTP subscriber, by platform, outcome and"
            " the provider's HTTP status (none: no answer or no HTTP).",
            ("platform", "outcome", "status"),
            registry=registry,
        )
        self.reschedules = Counter(
            "pushgw_delivery_reschedules",
            "Deliveries put back in the queue for later (retry back-off, or the"
            " application paused or disabled).",
            ("platform",),
            registry=registry,
        )
        self.deliveries = Counter(
            "pushgw_deliveries",
            "Deliveries of a message to an endpoint or HTTP subscriber that ended:"
            " delivered, failed or expired, with the failure type (empty when"
            " delivered).",
            ("platform", "status", "failure_type"),
            registry=registry,
        )
        self.send_seconds = Histogram(
            "pushgw_provider_send_seconds",
            "Time of one send, request to classified answer.",
            ("platform",),
            buckets=SEND_BUCKETS,
            registry=registry,
        )
        self.publish_to_delivery = Histogram(
            "pushgw_publish_to_delivery_seconds",
            "Time from the publish being accepted to the provider accepting the"
            " delivery, retries included.",
            ("platform",),
            buckets=DELIVERY_BUCKETS,
            registry=registry,
        )
        self._attempt: dict[tuple[str, str, int | None], tuple[Counter, Histogram]] = {}
        self._reschedule: dict[str, Counter] = {}
        self._finished: dict[tuple[str, str, str], Counter] = {}
        self._delivered: dict[str, Histogram] = {}

    def attempt(self, attempt: Attempt) -> None:
        key = (attempt.platform, attempt.outcome, attempt.status)
        children = self._attempt.get(key)
        if children is None:
            status = "none" if attempt.status is None else str(attempt.status)
            children = (
                self.attempts.labels(attempt.platform, attempt.outcome, status),
                self.send_seconds.labels(attempt.platform),
            )
            self._attempt[key] = children
        children[0].inc()
        children[1].observe(max(0.0, attempt.latency_s))

    def rescheduled(self, platform: str, reason: str) -> None:
        child = self._reschedule.get(platform)
        if child is None:
            child = self._reschedule[platform] = self.reschedules.labels(platform)
        child.inc()

    def finished(self, finished: Finished) -> None:
        platform = finished.platform
        key = (platform, finished.status, finished.failure_type or "")
        child = self._finished.get(key)
        if child is None:
            child = self._finished[key] = self.deliveries.labels(*key)
        child.inc()
        if finished.status == "delivered":
            histogram = self._delivered.get(platform)
            if histogram is None:
                histogram = self.publish_to_delivery.labels(platform)
                self._delivered[platform] = histogram
            histogram.observe(max(0.0, finished.at - finished.message.created_at))


class ApiMetrics:
    """Requests to the HTTP APIs, by API (sns, json, other), action and status."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "pushgw_api_requests",
            "HTTP requests answered, by API (sns, json, other), action (the SNS"
            " action or JSON operation; unknown when unparsable or not"
            " authenticated) and HTTP status.",
            ("api", "action", "status"),
            registry=registry,
        )
        self.seconds = Histogram(
            "pushgw_api_request_seconds",
            "Time to answer an HTTP request, by API and action.",
            ("api", "action"),
            buckets=API_BUCKETS,
            registry=registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def request(self, api: str, action: str, status: int, seconds: float) -> None:
        key = (api, action, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(api, action, str(status)),
                self.seconds.labels(api, action),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(max(0.0, seconds))


class _StoreRead(Generic[T]):
    """
    One store read at a time, awaited for at most a timeout. A read still
    running then is left to finish (a stalled database may take its statement
    timeout) and the next call waits for that one rather than starting another,
    so an outage never piles reads up. Failures are logged once per outage.
    """

    def __init__(self, name: str, read: Callable[[], Awaitable[T]]) -> None:
        self.name = name
        self._read = read
        self._task: asyncio.Task[T] | None = None
        self._failing = False

    async def get(self, timeout_s: float) -> tuple[bool, T | None]:
        """(True, value) when the read answered in time, else (False, None)."""
        task = self._task
        if task is None:
            task = self._task = asyncio.create_task(
                self._run(), name=f"metrics-{self.name}"
            )
            task.add_done_callback(_consume_error)
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if not done:
            self._failed(f"no answer within {timeout_s:g} s")
            return False, None
        if self._task is task:
            self._task = None
        if task.cancelled():
            return False, None
        error = task.exception()
        if error is not None:
            self._failed(f"{type(error).__name__}: {error}")
            return False, None
        if self._failing:
            log.info("metrics_store_read_recovered", gauge=self.name)
            self._failing = False
        return True, task.result()

    async def _run(self) -> T:
        return await self._read()

    def _failed(self, error: str) -> None:
        if not self._failing:
            log.warning("metrics_store_read_failed", gauge=self.name, error=error)
            self._failing = True

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


class LocalGauges:
    """
    This process's sends in flight and side-task health, as metrics `sync()`
    sets from the dispatcher and the supervisor. With `--workers` they live in
    the shared files like the counters, so the answering worker reports the
    node's: in-flight sends summed over the live workers ('livesum'), a task
    failing in any of them ('livemax'), task errors summed over every worker
    that ran (a counter, kept across restarts like the others).
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        in_flight: Callable[[], int],
        tasks: Callable[[], Iterable[TaskHealth]],
    ) -> None:
        self.in_flight = in_flight
        self.tasks = tasks
        self._sends = Gauge(
            "pushgw_sends_in_flight",
            "Sends in flight now (with --workers, the node's: every worker's).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self._failing = Gauge(
            "pushgw_task_failing",
            "1 while a supervised side task is failing (from its first error"
            " to its next beat; with --workers, in any worker).",
            ("task",),
            registry=registry,
            multiprocess_mode="livemax",
        )
        self._failures = Counter(
            "pushgw_task_failures",
            "Errors of a supervised side task since the daemon started (with"
            " --workers, of every worker).",
            ("task",),
            registry=registry,
        )
        self._counted: dict[str, int] = {}  # task -> failures counted so far

    def sync(self) -> None:
        self._sends.set(self.in_flight())
        for health in self.tasks():
            failing = health.failing_since is not None
            self._failing.labels(health.name).set(int(failing))
            counter = self._failures.labels(health.name)
            counter.inc(health.failures - self._counted.get(health.name, 0))
            self._counted[health.name] = health.failures


class WorkerFigures:
    """
    `--workers`: this worker's process_* and python_gc_* figures, written to
    the shared files by `sync()` with a `worker` label (prometheus_client's
    collectors read only the process they run in: a scrape would show the
    answering worker's alone). Gauges are the live workers' ('livemax' of one
    process each); counters (CPU seconds, collections) add up over a worker's
    restarts, as the other counters do.
    """

    def __init__(self, registry: CollectorRegistry, worker: int) -> None:
        self.registry = registry
        self.worker = str(worker)
        self._sources: list[Collector] = [
            ProcessCollector(registry=None),
            GCCollector(registry=CollectorRegistry()),  # its own: never exposed
        ]
        self._metrics: dict[str, Counter | Gauge] = {}
        self._counted: dict[tuple[str, tuple[str, ...]], float] = {}

    def sync(self) -> None:
        for source in self._sources:
            for family in source.collect():
                for sample in family.samples:
                    self._write(family, sample.labels, sample.value)

    def _write(self, family: Metric, labels: dict[str, str], value: float) -> None:
        names = tuple(sorted(labels))
        metric = self._metrics.get(family.name)
        if metric is None:
            metric = self._metrics[family.name] = self._metric(family, names)
        child = metric.labels(*(labels[n] for n in names), self.worker)
        if isinstance(child, Gauge):
            child.set(value)
            return
        key = (family.name, tuple(labels[n] for n in names))
        child.inc(max(0.0, value - self._counted.get(key, 0.0)))
        self._counted[key] = value

    def _metric(self, family: Metric, names: tuple[str, ...]) -> Counter | Gauge:
        labels = (*names, "worker")
        if family.type == "counter":
            return Counter(
                family.name, family.documentation, labels, registry=self.registry
            )
        return Gauge(
            family.name,
            family.documentation,
            labels,
            registry=self.registry,
            multiprocess_mode="livemax",
        )


def worker_exited(pid: int) -> None:
    """A worker exited: its live gauges (in flight, task health, process
    figures) leave the node's figures; its counters stay in the sums."""
    directory = shared_counters_dir()
    if directory is not None:
        mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


@dataclass(slots=True, kw_only=True)
class ClusterReporter:
    """
    The election of the one node that reports the cluster-wide gauges, so that
    sum() over the nodes sharing a store counts the backlog once: the holder of
    the store's REPORTER_LEASE. Every node asks for it every third of `lease_s`
    (`run`, a side task): the holder renews it, the others take it once it has
    run out (its holder died or lost the store) or was given up (`release`, at
    shutdown). The owner is the node's id, which every worker of `serve
    --workers N` shares: they all report, and a scrape reaches one of them.

    A node counts itself the holder for `lease_s` from when it last asked,
    which is never past the expiry the store keeps (node clocks in step, as
    for job leases), so two nodes report at once only when clocks drift.
    """

    store: Store
    node: str
    lease_s: float
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    _until: float | None = field(default=None, init=False)  # monotonic: ours until

    @property
    def holding(self) -> bool:
        return self._until is not None and self.monotonic() < self._until

    async def renew(self) -> bool:
        """Take or renew the lease; True when this node holds it now."""
        was, asked = self.holding, self.monotonic()
        held = await self.store.hold_lease(
            name=REPORTER_LEASE, owner=self.node, lease_s=self.lease_s, now=self.clock()
        )
        self._until = asked + self.lease_s if held else None
        if held != was:
            log.info("cluster_reporter_changed", node=self.node, reporting=held)
        return held

    async def run(self, pulse: Pulse) -> None:
        """Ask for the lease for as long as the daemon runs (a supervised task;
        a store error is the supervisor's to retry, the lease runs out alone)."""
        while True:
            await self.renew()
            pulse.beat()
            await asyncio.sleep(self.lease_s / 3)

    async def release(self) -> None:
        """Stop reporting and give the lease up, so another node takes over at
        its next ask rather than after `lease_s` (shutdown)."""
        if self._until is None:
            return
        self._until = None
        await self.store.release_lease(name=REPORTER_LEASE, owner=self.node)


@dataclass(frozen=True, slots=True)
class AppState:
    """What the app gauges need of one application (no credentials)."""

    platform: str
    name: str
    enabled: bool
    expires_at: float | None  # credential expiry, epoch seconds, when known


class StateCollector(Collector):
    """
    The gauges read at scrape time. `refresh()` (async) does the store reads,
    each bounded by `timeout_s`; `collect()` (called by generate_latest) reports
    what they found. A gauge whose read failed is left out of that scrape.
    """

    def __init__(
        self,
        *,
        store: Store,
        config: MetricsConfig,
        timeout_s: float,
        store_up: Callable[[], Awaitable[bool]],
        reporting: Callable[[], bool],
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.config = config
        self.timeout_s = timeout_s
        self.store_up = store_up
        # Whether this node reports the cluster-wide gauges (ClusterReporter).
        self.reporting = reporting
        self.clock = clock
        self.monotonic = monotonic
        self._up: bool | None = None
        self._reporting = False  # as `reporting()` said at the last refresh
        self._backlog_read = _StoreRead("backlog", self._read_backlog)
        self._apps_read = _StoreRead("apps", self._read_apps)
        self._backlog: dict[tuple[str, str, str], int] | None = None
        # Every backlog label set reported so far: reported as 0 once empty,
        # so a drained queue reads 0, not "no data".
        self._backlog_keys: set[tuple[str, str, str]] = {
            (state, kind, "") for state in BACKLOG_STATES for kind in JOB_KINDS
        }
        self._apps: list[AppState] | None = None
        self._apps_at: float | None = None  # monotonic time of the last reading
        # Certificates parse once per (app, principal), not once per refresh.
        self._expiry_cache: dict[str, tuple[str, float | None]] = {}

    # -- the store reads (async, before generate_latest) -----------------------
    async def refresh(self) -> None:
        reads: list[Awaitable[None]] = [self._refresh_up()]
        self._reporting = self.config.cluster_gauges and self.reporting()
        if self._reporting:
            reads.append(self._refresh_backlog())
            if self._apps_due():
                reads.append(self._refresh_apps())
        await asyncio.gather(*reads)

    async def _refresh_up(self) -> None:
        self._up = await self.store_up()

    async def _refresh_backlog(self) -> None:
        answered, rows = await self._backlog_read.get(self.timeout_s)
        self._backlog = _backlog_counts(rows) if answered and rows is not None else None

    def _apps_due(self) -> bool:
        return (
            self._apps_at is None
            or self.monotonic() - self._apps_at >= self.config.apps_refresh_s
        )

    async def _refresh_apps(self) -> None:
        answered, apps = await self._apps_read.get(self.timeout_s)
        if answered and apps is not None:
            self._apps, self._apps_at = apps, self.monotonic()

    async def _read_backlog(self) -> list[BacklogRow]:
        return await self.store.backlog(now=self.clock())

    async def _read_apps(self) -> list[AppState]:
        out: list[AppState] = []
        seen: set[str] = set()
        after: int | None = 0
        while after is not None:
            page = await self.store.list_apps(after=after, limit=APPS_PAGE)
            out.extend(self._app_state(app) for app in page.items)
            seen.update(app.arn for app in page.items)
            after = page.next_after
        for arn in set(self._expiry_cache) - seen:
            del self._expiry_cache[arn]
        return out

    def _app_state(self, app: PlatformApplication) -> AppState:
        cached = self._expiry_cache.get(app.arn)
        if cached is None or cached[0] != app.principal:
            cached = (app.principal, expires_at(app.platform, app.principal))
            self._expiry_cache[app.arn] = cached
        return AppState(app.platform.value, app.name, app.enabled, cached[1])

    def close(self) -> None:
        self._backlog_read.cancel()
        self._apps_read.cancel()

    # -- the exposition (sync, inside generate_latest) ---------------------------
    def describe(self) -> Iterable[Metric]:
        return []  # names are only known at scrape time; no collect() at register

    def collect(self) -> Iterator[Metric]:
        if self._up is not None:
            up = GaugeMetricFamily(
                "pushgw_store_up",
                "1 while the store answers a read and takes a write (as /readyz).",
            )
            up.add_metric([], 1 if self._up else 0)
            yield up
        reporter = GaugeMetricFamily(
            "pushgw_cluster_reporter",
            "1 on the one node that reports the cluster-wide gauges (pushgw_jobs,"
            " pushgw_disabled_apps, pushgw_credential_expiry_seconds), elected"
            " through the store; 0 on the others.",
        )
        reporter.add_metric([], int(self._reporting))
        yield reporter
        if not self._reporting:
            return
        if self._backlog is not None:
            yield self._backlog_family(self._backlog)
        apps = self._fresh_apps()
        if apps is not None:
            yield from self._app_families(apps)

    def _backlog_family(self, counts: dict[tuple[str, str, str], int]) -> Metric:
        jobs = GaugeMetricFamily(
            "pushgw_jobs",
            "Jobs in the queue (cluster-wide), by disjoint state (due, leased,"
            " scheduled, waiting_for_app), kind and platform (empty for topic and"
            " http jobs); sum() is the whole backlog.",
            labels=("state", "kind", "platform"),
        )
        self._backlog_keys.update(counts)
        for key in sorted(self._backlog_keys):
            jobs.add_metric(list(key), counts.get(key, 0))
        return jobs

    def _fresh_apps(self) -> list[AppState] | None:
        if self._apps is None or self._apps_at is None:
            return None
        max_age = STALE_REFRESHES * self.config.apps_refresh_s
        if self.monotonic() - self._apps_at > max(max_age, self.timeout_s):
            return None
        return self._apps

    def _app_families(self, apps: list[AppState]) -> Iterator[Metric]:
        per_app = self.config.per_app_labels
        labels = ("platform", "app") if per_app else ("platform",)
        disabled = GaugeMetricFamily(
            "pushgw_disabled_apps",
            "Platform applications disabled (cluster-wide): Enabled=false, set by"
            " a client or after the provider refused their credentials.",
            labels=labels,
        )
        expiry = GaugeMetricFamily(
            "pushgw_credential_expiry_seconds",
            "Seconds until the credentials expire (cluster-wide; the earliest of"
            " the platform's apps): APNs and MPNS certificates' not-after date."
            " Token keys and service-account JSON carry no expiry.",
            labels=labels,
        )
        now = self.clock()
        if per_app:
            for app in sorted(apps, key=lambda a: (a.platform, a.name)):
                disabled.add_metric([app.platform, app.name], int(not app.enabled))
                if app.expires_at is not None:
                    expiry.add_metric([app.platform, app.name], app.expires_at - now)
        else:
            count: collections.Counter[str] = collections.Counter()
            earliest: dict[str, float] = {}
            for app in apps:
                count[app.platform] += int(not app.enabled)
                if app.expires_at is not None:
                    earliest[app.platform] = min(
                        app.expires_at, earliest.get(app.platform, app.expires_at)
                    )
            for platform in sorted(count):
                disabled.add_metric([platform], count[platform])
            for platform in sorted(earliest):
                expiry.add_metric([platform], earliest[platform] - now)
        yield disabled
        yield expiry


def _consume_error(task: asyncio.Task[object]) -> None:
    """Retrieve a read's error even when nobody waits for it any more."""
    if not task.cancelled():
        task.exception()


def _backlog_counts(rows: Iterable[BacklogRow]) -> dict[tuple[str, str, str], int]:
    counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for row in rows:
        counts[(row.state, row.kind, row.platform or "")] += row.jobs
    return dict(counts)


class GatewayMetrics:
    """One daemon's registry and everything that reports to it."""

    def __init__(
        self,
        *,
        store: Store,
        config: MetricsConfig,
        timeout_s: float,
        in_flight: Callable[[], int],
        tasks: Callable[[], Iterable[TaskHealth]],
        store_up: Callable[[], Awaitable[bool]],
        node: str,
        worker: int = 0,
    ) -> None:
        # `_created` series double every counter and histogram family in the
        # text format and say nothing a scraper needs; process-wide switch.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        # The counters and histograms register here. Alone, this is also what
        # a scrape shows; with shared counters (--workers), a scrape shows
        # every worker's sums from the files instead, beside this process's
        # own collectors.
        self.registry = CollectorRegistry()
        shared = shared_counters_dir()
        self.exposed = self.registry
        self.worker_figures: WorkerFigures | None = None
        if shared is None:
            ProcessCollector(registry=self.exposed)
            GCCollector(registry=self.exposed)
        else:
            self.exposed = CollectorRegistry()
            MultiProcessCollector(self.exposed, path=shared)  # type: ignore[no-untyped-call]
            self.worker_figures = WorkerFigures(self.registry, worker)
        PlatformCollector(registry=self.exposed)
        Info("pushgw_build", "The running pushgw version.", registry=self.exposed).info(
            {"version": __version__}
        )
        self.delivery = DeliveryMetrics(self.registry)
        self.api = ApiMetrics(self.registry)
        self.local = LocalGauges(self.registry, in_flight=in_flight, tasks=tasks)
        self.reporter = ClusterReporter(
            store=store, node=node, lease_s=config.reporter_lease_s
        )
        self.state = StateCollector(
            store=store,
            config=config,
            timeout_s=timeout_s,
            store_up=store_up,
            reporting=lambda: self.reporter.holding,
        )
        self.exposed.register(self.state)

    def api_request(self, api: str, action: str, status: int, seconds: float) -> None:
        self.api.request(api, action, status, seconds)

    @property
    def shared(self) -> bool:
        """Whether the workers of `serve --workers N` share these metrics."""
        return self.worker_figures is not None

    def sync(self) -> None:
        """Write this process's own figures (LocalGauges, WorkerFigures)."""
        self.local.sync()
        if self.worker_figures is not None:
            self.worker_figures.sync()

    async def sync_loop(self, pulse: Pulse) -> None:
        """With --workers, every worker writes its figures every SYNC_S: a
        scrape answered by another worker reads them from the files."""
        while True:
            self.sync()
            pulse.beat()
            await asyncio.sleep(SYNC_S)

    async def render(self) -> bytes:
        """The exposition: this process's figures and the scrape-time reads
        first, then every collector."""
        self.sync()
        await self.state.refresh()
        return generate_latest(self.exposed)

    def close(self) -> None:
        self.state.close()
