"""
pushgw/metrics.py: what the delivery observer, the API middleware and the
scrape-time gauges report, read back with prometheus_client's own parser, and
the exposition held to the rules `promtool check metrics` applies.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

import pushgw
from pushgw.arn import ArnBuilder
from pushgw.config import DeliveryConfig, MetricsConfig, config_from_mapping
from pushgw.daemon import Gateway
from pushgw.delivery.dispatcher import Dispatcher
from pushgw.delivery.observe import Attempt, Finished, Observers
from pushgw.delivery.providers import ProviderPool
from pushgw.errors import StoreUnavailableError
from pushgw.metrics import (
    SHARED_DIR_ENV,
    ClusterReporter,
    DeliveryMetrics,
    GatewayMetrics,
    worker_exited,
)
from pushgw.model import Message, Platform, PlatformApplication
from pushgw.providers.base import Provider
from pushgw.providers.fake import FakeProvider
from pushgw.service import Service
from pushgw.service.credentials import expires_at
from pushgw.service.types import PublishInput
from pushgw.store.base import BacklogRow, Page
from pushgw.store.memory import InMemoryStore
from pushgw.supervisor import TaskHealth
from tests.e2e.harness import free_port
from tests.e2e.prom import Scrape, dashboard_queries, metric_names, parse
from tests.tools import required_tool

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
API_KEY = "unit-metrics-key"


def scraped(registry: CollectorRegistry) -> Scrape:
    return parse(generate_latest(registry).decode())


def app(platform: Platform = Platform.GCM, **kw: Any) -> PlatformApplication:
    name = kw.pop("name", "app")
    return PlatformApplication(
        arn=f"arn:aws:sns:us-east-1:123456789012:app/{platform.value}/{name}",
        name=name,
        platform=platform,
        principal=kw.pop("principal", ""),
        credential=kw.pop("credential", "key"),
        **kw,
    )


def finished(status: str, failure_type: str | None, *, created: float, at: float):
    return Finished(
        message=Message(id="m1", body="hi", created_at=created),
        platform=Platform.APNS.value,
        endpoint_arn="arn:e",
        app_arn="arn:a",
        status=status,  # type: ignore[arg-type]
        failure_type=failure_type,
        reason="",
        provider_status=None,
        attempts=1,
        at=at,
    )


# -- the delivery observer ---------------------------------------------------------
def test_each_attempt_is_counted_once_by_platform_outcome_and_status() -> None:
    registry = CollectorRegistry()
    metrics = DeliveryMetrics(registry)

    for _ in range(3):
        metrics.attempt(Attempt("APNS", "delivered", 200, 0.02))
    metrics.attempt(Attempt("APNS", "invalid_token", 410, 0.03))
    metrics.attempt(Attempt("GCM", "retry", 503, 0.5))
    metrics.attempt(Attempt("GCM", "retry", None, 10.0))  # a timeout: no status
    metrics.attempt(Attempt("https", "delivered", 204, 0.1))
    found = scraped(registry)

    attempts = "pushgw_delivery_attempts_total"
    assert 3 == found.value(
        attempts, platform="APNS", outcome="delivered", status="200"
    )
    assert 1 == found.value(attempts, platform="APNS", outcome="invalid_token")
    assert 1 == found.value(attempts, platform="GCM", outcome="retry", status="503")
    assert 1 == found.value(attempts, platform="GCM", outcome="retry", status="none")
    assert 1 == found.value(attempts, platform="https", status="204")
    assert 7 == found.value(attempts)
    # Every attempt is one observation of the send-latency histogram.
    assert 4 == found.value("pushgw_provider_send_seconds_count", platform="APNS")
    assert 2 == found.value("pushgw_provider_send_seconds_count", platform="GCM")
    assert 10.5 == pytest.approx(
        found.value("pushgw_provider_send_seconds_sum", platform="GCM")
    )
    assert 1 == found.value(
        "pushgw_provider_send_seconds_bucket", platform="GCM", le="0.5"
    )
    # Attempts are not deliveries: nothing ended yet.
    assert 0 == found.value("pushgw_deliveries_total")


def test_reschedules_are_counted_apart_from_attempts() -> None:
    registry = CollectorRegistry()
    metrics = DeliveryMetrics(registry)

    metrics.rescheduled("APNS", "503 ServiceUnavailable")
    metrics.rescheduled("APNS", "application paused or disabled")
    metrics.rescheduled("http", "HTTP 500")
    found = scraped(registry)

    assert 2 == found.value("pushgw_delivery_reschedules_total", platform="APNS")
    assert 1 == found.value("pushgw_delivery_reschedules_total", platform="http")
    assert 0 == found.value("pushgw_delivery_attempts_total")
    # The reason is free text: never a label.
    assert [{"platform": "APNS"}, {"platform": "http"}] == found.series(
        "pushgw_delivery_reschedules_total"
    )


def test_finished_deliveries_by_status_and_failure_type() -> None:
    registry = CollectorRegistry()
    metrics = DeliveryMetrics(registry)

    metrics.finished(finished("delivered", None, created=100.0, at=100.25))
    metrics.finished(finished("delivered", None, created=100.0, at=190.0))
    metrics.finished(finished("failed", "InvalidPlatformToken", created=1, at=2))
    metrics.finished(finished("expired", "NotificationTTLExpired", created=1, at=9))
    # Another node's clock ahead of ours: never a negative observation.
    metrics.finished(finished("delivered", None, created=200.0, at=199.0))
    found = scraped(registry)

    deliveries = "pushgw_deliveries_total"
    assert 3 == found.value(deliveries, status="delivered", failure_type="")
    assert 1 == found.value(
        deliveries, status="failed", failure_type="InvalidPlatformToken"
    )
    assert 1 == found.value(
        deliveries, status="expired", failure_type="NotificationTTLExpired"
    )
    assert {"APNS"} == {s["platform"] for s in found.series(deliveries)}
    delay = "pushgw_publish_to_delivery_seconds"
    assert 3 == found.value(f"{delay}_count", platform="APNS")  # delivered only
    assert 90.25 == pytest.approx(found.value(f"{delay}_sum", platform="APNS"))
    assert 2 == found.value(f"{delay}_bucket", platform="APNS", le="0.25")
    assert 2 == found.value(f"{delay}_bucket", platform="APNS", le="60.0")
    assert 3 == found.value(f"{delay}_bucket", platform="APNS", le="300.0")


async def fake_factory(application: PlatformApplication) -> Provider:
    return FakeProvider(app=application, settings=None)  # type: ignore[arg-type]


async def test_the_dispatcher_reports_every_attempt_and_outcome_once() -> None:
    """The engine's stats and the metrics agree, attempt for attempt."""
    FakeProvider.reset()
    store = InMemoryStore()
    registry = CollectorRegistry()
    metrics = DeliveryMetrics(registry)
    dispatcher = Dispatcher(
        store=store,
        providers=ProviderPool(fake_factory),
        config=DeliveryConfig(
            retry_base_s=0.01, retry_max_s=0.02, poll_interval_s=0.01, max_in_flight=8
        ),
        observer=Observers([metrics]),
    )
    service = Service(
        store=store,
        arns=ArnBuilder("us-east-1", "123456789012"),
        on_enqueue=dispatcher.accepted,
    )
    app_arn = await service.create_platform_application(
        name="app", platform="GCM", attributes={"PlatformCredential": "AIzaKey"}
    )
    tokens = ["good-1", "good-2", "canonical-3", "unregistered-4", "badpayload-5"]
    tokens.append("crash-6")  # our adapter code raising: outcome "error"
    for token in tokens:
        arn = await service.create_platform_endpoint(
            app_arn=app_arn, token=token, custom_user_data=None, attributes=None
        )
        await service.publish(PublishInput(message="hi", target_arn=arn))
    task = asyncio.create_task(dispatcher.run())
    try:
        async with asyncio.timeout(10):
            while store.jobs:
                dispatcher.wake()
                await asyncio.sleep(0.01)
    finally:
        await dispatcher.stop(1.0)
        await asyncio.wait_for(task, 5)
    found = scraped(registry)
    attempts = "pushgw_delivery_attempts_total"

    assert 2 == found.value(attempts, outcome="delivered", status="200")
    assert 1 == found.value(attempts, outcome="canonical_token", status="none")
    assert 1 == found.value(attempts, outcome="invalid_token", status="410")
    assert 1 == found.value(attempts, outcome="permanent", status="400")
    assert 1 == found.value(attempts, outcome="error", status="none")
    assert 6 == found.value(attempts, platform="GCM")
    for outcome in ("delivered", "canonical_token", "invalid_token", "permanent"):
        assert dispatcher.stats[outcome] == found.value(attempts, outcome=outcome)
    deliveries = "pushgw_deliveries_total"
    assert 3 == found.value(deliveries, status="delivered", failure_type="")
    assert 1 == found.value(deliveries, failure_type="InvalidPlatformToken")
    assert 2 == found.value(deliveries, failure_type="DeliveryFailedPerm")
    assert 3 == found.value("pushgw_publish_to_delivery_seconds_count", platform="GCM")
    assert 0 == found.value("pushgw_delivery_reschedules_total")


# -- the scrape-time gauges ----------------------------------------------------------
def certificate(not_after: dt.datetime) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Apple Push Services")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - dt.timedelta(days=365))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class FakeStore:
    """The two reads the gauges make, with counts, delays and failures."""

    rows: list[BacklogRow] = field(default_factory=list)
    apps: list[PlatformApplication] = field(default_factory=list)
    page_size: int = 2
    backlog_calls: int = 0
    list_calls: int = 0
    hang: bool = False
    fail: bool = False
    # The reporter's lease: shared by the rigs of one FakeStore (one cluster).
    leases: InMemoryStore = field(default_factory=InMemoryStore)

    async def hold_lease(self, **lease: Any) -> bool:
        return await self.leases.hold_lease(**lease)

    async def release_lease(self, **lease: Any) -> None:
        await self.leases.release_lease(**lease)

    async def backlog(self, *, now: float) -> list[BacklogRow]:
        self.backlog_calls += 1
        if self.hang:
            await asyncio.sleep(3600)
        if self.fail:
            raise StoreUnavailableError("store down")
        return list(self.rows)

    async def list_apps(self, *, after: int, limit: int) -> Page[PlatformApplication]:
        self.list_calls += 1
        if self.hang:
            await asyncio.sleep(3600)
        if self.fail:
            raise StoreUnavailableError("store down")
        items = self.apps[after : after + min(limit, self.page_size)]
        end = after + len(items)
        return Page(items, end if end < len(self.apps) else None)


@dataclass
class Rig:
    store: FakeStore
    metrics: GatewayMetrics
    up: bool = True
    in_flight: int = 0
    tasks: dict[str, TaskHealth] = field(default_factory=dict)

    async def scrape(self) -> Scrape:
        """A scrape, after the lease renewal the daemon's side task makes."""
        if self.metrics.state.config.cluster_gauges:
            await self.metrics.reporter.renew()
        return parse((await self.metrics.render()).decode())


def rig(store: FakeStore, node: str = "node-a", **config: Any) -> Rig:
    holder: dict[str, Rig] = {}

    async def store_up() -> bool:
        return holder["rig"].up

    metrics = GatewayMetrics(
        store=store,  # type: ignore[arg-type]
        config=MetricsConfig(**config),
        timeout_s=0.2,
        in_flight=lambda: holder["rig"].in_flight,
        tasks=lambda: holder["rig"].tasks.values(),
        store_up=store_up,
        node=node,
    )
    holder["rig"] = Rig(store, metrics)
    return holder["rig"]


@pytest.fixture(name="closing")
def _closing() -> Iterator[list[Rig]]:
    rigs: list[Rig] = []
    yield rigs
    for r in rigs:
        r.metrics.close()


def row(
    state: str, kind: str, platform: str | None, jobs: int, app_arn: str | None = None
):
    return BacklogRow(state, kind, app_arn, platform, jobs)  # type: ignore[arg-type]


async def test_backlog_by_disjoint_state_kind_and_platform(closing: list[Rig]) -> None:
    store = FakeStore(
        rows=[
            row("due", "endpoint", "APNS", 5, "arn:a1"),
            row("due", "endpoint", "APNS", 2, "arn:a2"),  # two apps, one series
            row("leased", "endpoint", "GCM", 3, "arn:g"),
            row("waiting_for_app", "endpoint", "GCM", 4, "arn:g"),
            row("scheduled", "topic", None, 1),
            row("due", "http", None, 6),
            row("due", "endpoint", None, 1),  # its endpoint was deleted since
        ]
    )
    r = rig(store)
    closing.append(r)

    found = await r.scrape()

    assert "gauge" == found.types["pushgw_jobs"]
    assert 7 == found.value(
        "pushgw_jobs", state="due", kind="endpoint", platform="APNS"
    )
    assert 3 == found.value("pushgw_jobs", state="leased", platform="GCM")
    assert 4 == found.value("pushgw_jobs", state="waiting_for_app", platform="GCM")
    assert 1 == found.value("pushgw_jobs", state="scheduled", kind="topic", platform="")
    assert 6 == found.value("pushgw_jobs", state="due", kind="http", platform="")
    assert 1 == found.value("pushgw_jobs", state="due", kind="endpoint", platform="")
    assert 22 == found.value("pushgw_jobs")  # disjoint: the sum is the backlog
    # Every state is there from the first scrape, at 0 when empty.
    assert {"due", "leased", "scheduled", "waiting_for_app"} == {
        s["state"] for s in found.series("pushgw_jobs")
    }

    store.rows = []
    drained = await r.scrape()

    # A drained queue reads 0 on the series seen before, not "no data".
    assert drained.has("pushgw_jobs", state="due", kind="endpoint", platform="APNS")
    assert 0 == drained.value("pushgw_jobs")


async def test_node_gauges_and_task_health(closing: list[Rig]) -> None:
    r = rig(FakeStore())
    closing.append(r)
    r.in_flight = 17
    r.tasks = {
        "dispatcher": TaskHealth(name="dispatcher", started_at=0.0, failures=3),
        "store-listen": TaskHealth(
            name="store-listen", started_at=0.0, failing_since=1.0, failures=9
        ),
    }

    found = await r.scrape()

    assert 17 == found.value("pushgw_sends_in_flight")
    assert 1 == found.value("pushgw_store_up")
    assert 0 == found.value("pushgw_task_failing", task="dispatcher")
    assert 1 == found.value("pushgw_task_failing", task="store-listen")
    assert 9 == found.value("pushgw_task_failures_total", task="store-listen")
    assert "counter" == found.types["pushgw_task_failures"]
    assert found.has("pushgw_build_info", version=pushgw.__version__)
    assert found.has("process_cpu_seconds_total")
    assert found.has("python_info")
    assert found.has("python_gc_collections_total")


async def test_a_stalled_store_costs_the_scrape_its_timeout_and_nothing_else(
    closing: list[Rig],
) -> None:
    """The backlog and app reads answer within the timeout or are left out; a
    read still running is waited for by the next scrape, not started again."""
    store = FakeStore(rows=[row("due", "topic", None, 1)], hang=True)
    r = rig(store)
    closing.append(r)
    r.up = False

    started = time.monotonic()
    first = await r.scrape()
    second = await r.scrape()
    elapsed = time.monotonic() - started

    assert elapsed < 2.0  # two scrapes, each bounded by the 0.2 s timeout
    for found in (first, second):
        assert not found.has("pushgw_jobs")
        assert not found.has("pushgw_disabled_apps")
        assert 0 == found.value("pushgw_store_up")
        assert found.has("pushgw_sends_in_flight")
        assert found.has("process_cpu_seconds_total")
    assert 1 == store.backlog_calls  # the stalled read was not started again
    assert 1 == store.list_calls

    store.hang = False
    store.fail = True
    r.metrics.state._backlog_read.cancel()  # the stalled reads give up
    r.metrics.state._apps_read.cancel()
    failed = await r.scrape()

    assert not failed.has("pushgw_jobs")

    store.fail = False
    r.up = True
    recovered = await r.scrape()

    assert 1 == recovered.value("pushgw_jobs")
    assert 1 == recovered.value("pushgw_store_up")


async def test_app_gauges_disabled_and_credential_expiry(closing: list[Rig]) -> None:
    now = dt.datetime.now(dt.UTC)
    soon, later = now + dt.timedelta(days=10), now + dt.timedelta(days=200)
    store = FakeStore(
        apps=[
            app(Platform.APNS, name="cert-soon", principal=certificate(soon)),
            app(Platform.APNS, name="cert-later", principal=certificate(later)),
            app(Platform.APNS, name="token", principal="ABCDE12345"),
            app(Platform.GCM, name="off", enabled=False, credential="{}"),
            app(Platform.GCM, name="on", credential="{}"),
        ]
    )
    r = rig(store)
    closing.append(r)

    found = await r.scrape()

    assert 0 == found.value("pushgw_disabled_apps", platform="APNS")
    assert 1 == found.value("pushgw_disabled_apps", platform="GCM")
    expiry = "pushgw_credential_expiry_seconds"
    # The earliest certificate of the platform; none known for GCM.
    assert [{"platform": "APNS"}] == found.series(expiry)
    assert found.value(expiry) == pytest.approx((soon - now).total_seconds(), abs=5)
    assert 3 == store.list_calls  # five apps, two a page

    await r.scrape()

    assert 3 == store.list_calls  # cached for apps_refresh_s


async def test_per_app_labels_name_each_app(closing: list[Rig]) -> None:
    not_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    store = FakeStore(
        apps=[
            app(Platform.APNS, name="cert", principal=certificate(not_after)),
            app(Platform.GCM, name="off", enabled=False),
            app(Platform.GCM, name="on"),
        ]
    )
    r = rig(store, per_app_labels=True)
    closing.append(r)

    found = await r.scrape()

    assert [
        {"platform": "APNS", "app": "cert"},
        {"platform": "GCM", "app": "off"},
        {"platform": "GCM", "app": "on"},
    ] == found.series("pushgw_disabled_apps")
    assert 1 == found.value("pushgw_disabled_apps", app="off")
    assert 0 == found.value("pushgw_disabled_apps", app="on")
    assert [{"platform": "APNS", "app": "cert"}] == found.series(
        "pushgw_credential_expiry_seconds"
    )


async def test_cluster_gauges_off_reads_nothing_from_the_store(
    closing: list[Rig],
) -> None:
    store = FakeStore(rows=[row("due", "topic", None, 1)], apps=[app()])
    r = rig(store, cluster_gauges=False)
    closing.append(r)

    found = await r.scrape()

    for name in ("pushgw_jobs", "pushgw_disabled_apps"):
        assert name not in found.types
    assert "pushgw_credential_expiry_seconds" not in found.types
    assert 0 == store.backlog_calls + store.list_calls
    assert found.has("pushgw_store_up")  # node-local: always there
    assert found.has("pushgw_sends_in_flight")
    assert 0 == found.value("pushgw_cluster_reporter")
    assert {} == store.leases.leases  # not a candidate


async def test_one_node_of_a_cluster_reports_the_cluster_gauges(
    closing: list[Rig],
) -> None:
    """Two daemons on one store: the one holding the lease reports the backlog
    and app gauges (pushgw_cluster_reporter 1), the other reads nothing and
    says 0, so sum() over both is the backlog; the other takes over once the
    reporter gives the lease up."""
    store = FakeStore(rows=[row("due", "topic", None, 3)], apps=[app()])
    a, b = rig(store, node="node-a"), rig(store, node="node-b")
    closing.extend([a, b])

    first = [await a.scrape(), await b.scrape()]

    assert [1, 0] == [s.value("pushgw_cluster_reporter") for s in first]
    assert [3, 0] == [s.value("pushgw_jobs") for s in first]
    assert not first[1].has("pushgw_jobs")
    assert not first[1].has("pushgw_disabled_apps")
    assert (1, 1) == (store.backlog_calls, store.list_calls)  # a's reads only
    assert first[1].has("pushgw_store_up")  # node-local: always there

    await a.metrics.reporter.release()  # a stops (SIGTERM)
    taken = await b.scrape()

    assert 1 == taken.value("pushgw_cluster_reporter")
    assert 3 == taken.value("pushgw_jobs")
    assert 0 == (await a.scrape()).value("pushgw_cluster_reporter")


async def test_the_reporter_lease_runs_out_and_is_taken_over() -> None:
    """A reporter that stops renewing (dead, or cut off from the store) stops
    counting itself the reporter after lease_s, and another node takes the
    lease then, not before."""
    store = InMemoryStore()
    now = [1000.0]
    reporters = [
        ClusterReporter(
            store=store,
            node=node,
            lease_s=30.0,
            clock=lambda: now[0],
            monotonic=lambda: now[0],
        )
        for node in ("node-a", "node-b")
    ]
    a, b = reporters

    assert await a.renew()
    now[0] += 29.0
    assert a.holding
    assert not await b.renew()
    assert not b.holding
    now[0] += 1.5

    assert not a.holding
    assert await b.renew()
    assert not await a.renew()


async def test_the_workers_of_one_node_all_report() -> None:
    """`serve --workers N`: the workers share the node's id, so all of the
    elected node's workers report (a scrape reaches one of them)."""
    store = InMemoryStore()
    workers = [
        ClusterReporter(store=store, node="node-a", lease_s=30.0) for _ in range(3)
    ]
    other = ClusterReporter(store=store, node="node-b", lease_s=30.0)

    assert [True, True, True] == [await w.renew() for w in workers]
    assert not await other.renew()


def test_credential_expiry_is_the_certificate_not_after() -> None:
    not_after = dt.datetime(2031, 5, 4, 3, 2, 1, tzinfo=dt.UTC)
    pem = certificate(not_after)

    assert not_after.timestamp() == expires_at(Platform.APNS_SANDBOX, pem)
    assert not_after.timestamp() == expires_at(Platform.MPNS, pem)
    assert expires_at(Platform.APNS, "ABCDE12345") is None  # a .p8 key id
    assert expires_at(Platform.GCM, pem) is None
    assert expires_at(Platform.APNS, "-----BEGIN CERTIFICATE-----\nbroken") is None


def test_each_gateway_has_a_registry_of_its_own(closing: list[Rig]) -> None:
    one, two = rig(FakeStore()), rig(FakeStore())
    closing.extend([one, two])

    one.metrics.delivery.attempt(Attempt("APNS", "delivered", 200, 0.01))

    assert 1 == scraped(one.metrics.registry).value("pushgw_delivery_attempts_total")
    assert 0 == scraped(two.metrics.registry).value("pushgw_delivery_attempts_total")
    assert not any(
        m.name.startswith("pushgw_") for m in REGISTRY.collect()
    )  # never the global registry


# -- serve --workers N: the workers' figures through the shared files ----------------
# A worker: its GatewayMetrics on the shared directory (from the environment,
# as `serve --worker-index` has it), its figures written once, then alive until
# its stdin closes ('live' gauges count live workers only).
WORKER = """
import asyncio, sys
from pushgw.config import MetricsConfig
from pushgw.metrics import GatewayMetrics
from pushgw.store.memory import InMemoryStore
from pushgw.supervisor import TaskHealth

index, in_flight, failures = (int(a) for a in sys.argv[1:4])
health = TaskHealth(
    name="claim-loop",
    started_at=0.0,
    failures=failures,
    failing_since=1.0 if index == 1 else None,
)

async def up() -> bool:
    return True

metrics = GatewayMetrics(
    store=InMemoryStore(),
    config=MetricsConfig(),
    timeout_s=1.0,
    in_flight=lambda: in_flight,
    tasks=lambda: [health],
    store_up=up,
    node="node-a",
    worker=index,
)
metrics.sync()
print("synced", flush=True)
sys.stdin.read()
"""


def shared_scrape(directory: Path) -> Scrape:
    """What any worker's /metrics shows of the files (MultiProcessCollector)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    return scraped(registry)


def test_workers_figures_are_the_nodes_whichever_worker_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers writing to one directory: sends in flight are summed over
    the live ones, a task failing in either is failing, task errors add up,
    and each worker's process_* and python_gc_* figures are there with its
    `worker` label. A worker gone (worker_exited) leaves the live gauges but
    not the counters."""
    monkeypatch.setenv(SHARED_DIR_ENV, str(tmp_path))  # as worker 0 has it
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(i), str(3 + i), str(2 * i + 1)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for i in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert "synced\n" == worker.stdout.readline()
        both = shared_scrape(tmp_path)

        assert 7 == both.value("pushgw_sends_in_flight")  # 3 + 4
        assert [{}] == both.series("pushgw_sends_in_flight")  # no pid label
        assert 1 == both.value("pushgw_task_failing", task="claim-loop")
        assert 4 == both.value("pushgw_task_failures_total", task="claim-loop")
        for name in ("process_resident_memory_bytes", "process_cpu_seconds_total"):
            assert ["0", "1"] == sorted(s["worker"] for s in both.series(name))
        assert both.has("python_gc_collections_total", worker="1", generation="0")
        assert [] == lint(both.text)

        assert workers[1].stdin is not None
        workers[1].stdin.close()
        workers[1].wait(10)
        worker_exited(workers[1].pid)
        one = shared_scrape(tmp_path)

        assert 3 == one.value("pushgw_sends_in_flight")
        assert 0 == one.value("pushgw_task_failing", task="claim-loop")
        assert 4 == one.value("pushgw_task_failures_total", task="claim-loop")
        memory = "process_resident_memory_bytes"
        assert [{"worker": "0"}] == one.series(memory)
        cpu = "process_cpu_seconds_total"
        assert ["0", "1"] == sorted(s["worker"] for s in one.series(cpu))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            for stream in (worker.stdin, worker.stdout):
                if stream is not None:
                    stream.close()


# -- the API middleware, on a real Gateway in this process ---------------------------
@pytest.fixture(name="gateway")
async def _gateway() -> AsyncIterator[Gateway]:
    FakeProvider.reset()
    config = config_from_mapping(
        {
            "server": {"port": free_port()},
            "store": {"url": "memory:"},
            "auth": {
                "api_keys": [{"name": "t", "key": API_KEY}],
                "sns_keys": [
                    {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY},
                    {
                        "access_key_id": "AKIAPUBLISHONLY00001",
                        "secret_access_key": "publish-only",
                        "actions": ["Publish"],
                    },
                ],
            },
            "delivery": {"poll_interval_s": 0.05, "retry_base_s": 0.05},
        }
    )
    gateway = Gateway(config, provider_factory=fake_factory)
    await gateway.start()
    yield gateway
    await gateway.stop()


def sns_client(gateway: Gateway, key: str = ACCESS_KEY, secret: str = SECRET_KEY):
    return boto3.session.Session().client(
        "sns",
        endpoint_url=f"http://127.0.0.1:{gateway.port}",
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=BotoConfig(retries={"total_max_attempts": 1}),
    )


async def test_api_requests_by_api_action_and_status(gateway: Gateway) -> None:
    base = f"http://127.0.0.1:{gateway.port}"
    auth = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=base) as client:
        for name in ("a", "b"):
            r = await client.post("/v1/topics", json={"name": name}, headers=auth)
            assert 201 == r.status_code, r.text
        r = await client.post("/v1/topics", json={"name": "x y"}, headers=auth)
        assert 400 == r.status_code
        r = await client.get("/v1/topics", headers={"Authorization": "Bearer nope"})
        assert 401 == r.status_code
        assert 404 == (await client.get("/v1/nothing-here", headers=auth)).status_code
        assert 404 == (await client.get("/favicon.ico")).status_code
        assert 200 == (await client.get("/healthz")).status_code
        # An admin route with a key without the admin scope: known, refused.
        assert 403 == (await client.get("/v1/queue", headers=auth)).status_code
        r = await client.post("/", data={"Action": "ListTopics"})  # unsigned
        assert 403 == r.status_code
    sns = sns_client(gateway)
    await asyncio.to_thread(sns.list_topics)
    publisher = sns_client(gateway, "AKIAPUBLISHONLY00001", "publish-only")
    with pytest.raises(Exception, match="AuthorizationError"):
        await asyncio.to_thread(publisher.list_topics)
    async with httpx.AsyncClient(base_url=base) as client:
        signed = AWSRequest(
            method="POST",
            url=base + "/",
            data="Action=NoSuchAction&Version=2010-03-31",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "sns", "us-east-1").add_auth(
            signed
        )
        r = await client.post("/", content=signed.body, headers=dict(signed.headers))
        assert 400 == r.status_code and "InvalidAction" in r.text, r.text
        r = await client.get("/metrics")
    found = parse(r.text)
    total = "pushgw_api_requests_total"

    assert r.headers["content-type"].startswith("text/plain; version=")
    assert 2 == found.value(total, api="json", action="CreateTopic", status="201")
    assert 1 == found.value(total, api="json", action="CreateTopic", status="400")
    assert 1 == found.value(total, api="json", action="unknown", status="401")
    assert 1 == found.value(total, api="json", action="unknown", status="404")
    assert 1 == found.value(total, api="other", action="unknown", status="404")
    assert 1 == found.value(total, api="other", action="healthz", status="200")
    assert 1 == found.value(total, api="json", action="GetQueue", status="403")
    assert 1 == found.value(total, api="sns", action="unknown", status="403")
    assert 1 == found.value(total, api="sns", action="ListTopics", status="200")
    # Authenticated, but not allowed: the action is known.
    assert 1 == found.value(total, api="sns", action="ListTopics", status="403")
    assert 1 == found.value(total, api="sns", action="unknown", status="400")
    seconds = "pushgw_api_request_seconds_count"
    assert 3 == found.value(seconds, api="json", action="CreateTopic")
    # Label values stay within a known, small set (no paths, ARNs or names).
    actions = {s["action"] for s in found.series(total)}
    assert actions <= {"CreateTopic", "ListTopics", "GetQueue", "healthz", "unknown"}


async def traffic(gateway: Gateway) -> None:
    """An app, a delivered and an invalid-token push, a cert app (expiry)."""
    base = f"http://127.0.0.1:{gateway.port}"
    auth = {"Authorization": f"Bearer {API_KEY}"}
    not_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=90)
    async with httpx.AsyncClient(base_url=base, headers=auth) as client:
        r = await client.post(
            "/v1/platform-applications",
            json={
                "name": "a",
                "platform": "GCM",
                "attributes": {"PlatformCredential": "AIzaKey"},
            },
        )
        assert 201 == r.status_code, r.text
        app_arn = r.json()["platformApplicationArn"]
        await gateway.store.put_app(
            app(Platform.APNS, name="cert", principal=certificate(not_after))
        )
        for token in ("good-1", "unregistered-2", "down-3"):
            r = await client.post(
                f"/v1/platform-applications/{app_arn}/endpoints", json={"token": token}
            )
            r = await client.post(
                "/v1/publish",
                json={"targetArn": r.json()["endpointArn"], "message": "m"},
            )
            assert 200 == r.status_code, r.text
        async with asyncio.timeout(10):
            while len(FakeProvider.sent) < 1 or not gateway.dispatcher.stats["retry"]:  # noqa: ASYNC110
                await asyncio.sleep(0.02)


async def test_exposition_passes_promtools_rules(gateway: Gateway) -> None:
    """Our metrics obey the lint `promtool check metrics` applies (HELP on every
    family, counters end in _total, base units, no type names or camelCase in
    names, no reserved labels); with promtool installed, it says so itself."""
    await traffic(gateway)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}") as client:
        text = (await client.get("/metrics")).text

    assert [] == lint(text)
    promtool = shutil.which("promtool")
    if promtool is not None:
        result = subprocess.run(  # noqa: ASYNC221 - a short check, once
            [promtool, "check", "metrics"],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert 0 == result.returncode, result.stdout + result.stderr
        assert "" == result.stdout + result.stderr


# promtool's lint (client_golang's promlint), as rules on parsed families.
UNIT_ABBREVIATIONS = re.compile(
    r"_(ms|msec|secs?|usec|nsec|us|ns|mins?|hrs?|kb|mb|gb|kib|mib|gib|b)(_|$)"
)
NON_BASE_UNITS = re.compile(
    r"_(milliseconds|microseconds|nanoseconds|minutes|hours|days|kilobytes|"
    r"megabytes|gigabytes|bits|percent)(_|$)"
)


def lint(text: str) -> list[str]:
    """Problems promtool would report, parsed with prometheus_client's parser."""
    helps = set(re.findall(r"^# HELP (\S+) ", text, re.M))
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    problems = []
    for name, kind in types.items():
        if name not in helps:
            problems.append(f"{name}: no help text")
        if kind == "counter" and not name.endswith("_total"):
            problems.append(f"{name}: counter metrics should have _total suffix")
        if kind != "counter" and name.endswith("_total"):
            problems.append(f"{name}: non-counter metrics should not have _total")
        if re.search(rf"_{kind}(_|$)", name):
            problems.append(f"{name}: metric name should not include type '{kind}'")
        if name != name.lower() or ":" in name:
            problems.append(f"{name}: camelCase or reserved characters")
        if UNIT_ABBREVIATIONS.search(name) or NON_BASE_UNITS.search(name):
            problems.append(f"{name}: use base units (seconds, bytes)")
    for family in parse(text).samples:
        name, labels, _ = family
        kind = types.get(name) or types.get(re.sub(r"_(bucket|sum|count)$", "", name))
        if kind is None:
            problems.append(f"{name}: a sample of no declared family")
        if kind not in ("histogram", "summary") and ({"le", "quantile"} & set(labels)):
            problems.append(f"{name}: reserved label")
        if any(k != k.lower() for k in labels):
            problems.append(f"{name}: camelCase label")
    return problems


# -- the Grafana dashboard ---------------------------------------------------------
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "pushgw.json"


def test_the_dashboard_is_grafana_json_on_a_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]

    assert "datasource" == variables["datasource"]["type"]
    assert "prometheus" == variables["datasource"]["query"]
    assert dashboard["uid"] and dashboard["title"] == "pushgw"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert "${datasource}" == panel["datasource"]["uid"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert "${datasource}" == target["datasource"]["uid"], panel["title"]
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ("outcome", "latency", "backlog", "disabled", "expiry", "store"):
        assert topic in titles


def test_the_dashboard_queries_parse_as_promql(tmp_path: Path) -> None:
    """promtool parses every query (as recording rules, with Grafana's
    variables filled in); without promtool, CI fails and a laptop skips."""
    promtool = required_tool("promtool", "prometheus")
    exprs = dashboard_queries(json.loads(DASHBOARD.read_text()))
    rules = [
        {
            "record": f"dashboard:query_{i}",
            "expr": e.replace("$__rate_interval", "5m")
            .replace("$job", ".*")
            .replace("$instance", ".*"),
        }
        for i, e in enumerate(exprs)
    ]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))

    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert 0 == result.returncode, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


async def test_every_metric_the_dashboard_queries_is_exposed(gateway: Gateway) -> None:
    """Against this process's Gateway, after traffic (tests/e2e/test_metrics_e2e.py
    checks the same on a real `pushgw serve`)."""
    base = f"http://127.0.0.1:{gateway.port}"
    await traffic(gateway)
    async with httpx.AsyncClient(base_url=base) as client:
        found = parse((await client.get("/metrics")).text)
    exposed = {name for name, _, _ in found.samples}
    named = {
        name
        for expr in dashboard_queries(json.loads(DASHBOARD.read_text()))
        for name in metric_names(expr)
    }

    assert {"pushgw_jobs", "pushgw_provider_send_seconds_bucket"} <= named
    assert set() == named - exposed
