"""
The gateway under test: config, store population, the `pushgw serve` child,
/proc figures and a SigV4-signing SNS client.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp

from pushgw.api.sigv4 import sign_post
from pushgw.bench.mockproc import MockProcess
from pushgw.providers.mocks.config import provider_tables, to_toml

ROOT = Path(__file__).resolve().parents[1]
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ADMIN_API_KEY = "bench-admin-json-api-key"  # the JSON API, admin scope (console)
REGION = "us-east-1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
POPULATE_BATCH = 5_000  # endpoint rows (and their subscriptions) a transaction


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- /proc figures ---------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (seconds)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def process_tree(pid: int) -> list[int]:
    """`pid` and its live descendants (`serve --workers N` forks N-1)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += parents.get(current, [])
    return tree


def _tree_sum(pid: int, figure: Callable[[int], float]) -> float:
    """`figure` summed over a process and its live children (a child that
    exits meanwhile counts 0)."""
    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            total += figure(member)
    return total


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its live children (each worker's own counters)."""
    return _tree_sum(pid, cpu_seconds)


def tree_peak_rss_mib(pid: int) -> float:
    """The sum of the peak RSS of a process and its live children."""
    return _tree_sum(pid, peak_rss_mib)


# -- config ------------------------------------------------------------------------
def write_config(
    directory: Path,
    *,
    store_url: str,
    mocks: MockProcess,
    ca_file: Path,
    port: int,
    delivery: Mapping[str, Any] | None = None,
    event_loop: str = "uvloop",
) -> Path:
    u = mocks.urls
    sections: dict[str, Mapping[str, Any]] = {
        "server": {
            "host": "127.0.0.1",
            "port": port,
            "graceful_timeout_s": 5.0,
            "event_loop": event_loop,
        },
        "store": {"url": store_url},
        "delivery": {
            "poll_interval_s": 0.2,
            "retry_base_s": 0.5,
            "retry_max_s": 5.0,
            **(delivery or {}),
        },
        "logging": {"level": "warning", "format": "json"},
        **provider_tables(u, ca_file=str(ca_file)),
    }
    keys: list[tuple[str, Mapping[str, Any]]] = [
        (
            "auth.sns_keys",
            {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY},
        ),
        ("auth.api_keys", {"name": "bench", "key": ADMIN_API_KEY, "admin": True}),
    ]
    path = directory / "pushgw.toml"
    path.write_text(to_toml(sections, keys))
    return path


# -- store population ------------------------------------------------------------
@dataclass
class Population:
    topic_arn: str
    apps: dict[str, str] = field(default_factory=dict)  # platform -> app ARN
    endpoint_arns: list[str] = field(default_factory=list)
    tokens: dict[str, list[str]] = field(default_factory=dict)  # platform -> tokens


async def populate(
    store_url: str,
    plan: Mapping[str, tuple[dict[str, str], Sequence[tuple[str, dict[str, str]]]]],
    *,
    say: Callable[[str], None],
) -> Population:
    """
    One platform application per platform (through the service layer, so the
    credentials are validated as CreatePlatformApplication does), then its
    endpoints and topic subscriptions straight into the store's tables, 5,000
    rows to a transaction (the rows `insert_endpoint` and `insert_subscription`
    write, batched: one call per row made a 1,000,000-endpoint run take an hour
    to set up).
    """
    from pushgw.arn import ArnBuilder
    from pushgw.model import Endpoint, Platform, Subscription
    from pushgw.service import Service
    from pushgw.store.factory import open_store
    from pushgw.store.rows import (
        ENDPOINT_COLUMNS,
        SUBSCRIPTION_COLUMNS,
        endpoint_params,
        sub_params,
    )
    from pushgw.store.sql.core import SqlBase, Tx, insert_sql

    store = open_store(store_url)
    if not isinstance(store, SqlBase):
        raise SystemExit("the bench populates SQL stores only")
    endpoint_sql = insert_sql("endpoints", ENDPOINT_COLUMNS)
    sub_sql = insert_sql("subscriptions", SUBSCRIPTION_COLUMNS)
    await store.open()
    try:
        arns = ArnBuilder(REGION, "123456789012")
        service = Service(store=store, arns=arns)
        topic_arn = await service.create_topic(
            name="bench-fanout", attributes=None, tags=None
        )
        pop = Population(topic_arn=topic_arn)
        last = time.monotonic()
        # The platforms' devices interleaved, as in a real topic: a topic
        # subscribed platform after platform would fan out one platform at a
        # time and never run the six adapters side by side.
        apps: dict[str, str] = {}
        for platform_name, (creds, devices) in plan.items():
            apps[platform_name] = await service.create_platform_application(
                name=f"bench-{platform_name.lower()}",
                platform=platform_name,
                attributes=creds,
            )
            pop.tokens[platform_name] = [t for t, _ in devices]
        pop.apps = apps
        per_platform = [[(n, d) for d in devices] for n, (_, devices) in plan.items()]
        rows = [
            row
            for group in itertools.zip_longest(*per_platform)
            for row in group
            if row is not None
        ]
        for i in range(0, len(rows), POPULATE_BATCH):
            now = time.time()
            endpoints = [
                Endpoint(
                    arn=arns.endpoint(Platform(name), f"bench-{name.lower()}"),
                    app_arn=apps[name],
                    token=token,
                    custom_user_data=attrs.get("CustomUserData"),
                    attributes={
                        k: v for k, v in attrs.items() if k != "CustomUserData"
                    },
                    created_at=now,
                )
                for name, (token, attrs) in rows[i : i + POPULATE_BATCH]
            ]
            subs = [
                Subscription(
                    arn=arns.subscription(topic_arn),
                    topic_arn=topic_arn,
                    endpoint_arn=e.arn,
                    created_at=now,
                )
                for e in endpoints
            ]

            async def insert(
                tx: Tx, endpoints: list[Endpoint] = endpoints, subs: list[Any] = subs
            ) -> None:
                await tx.executemany(
                    endpoint_sql, [endpoint_params(e) for e in endpoints]
                )
                await tx.executemany(sub_sql, [sub_params(s) for s in subs])

            await store._transact(insert)
            pop.endpoint_arns += [e.arn for e in endpoints]
            if time.monotonic() - last > 3:
                last = time.monotonic()
                say(f"  populate: {len(pop.endpoint_arns)}/{len(rows)} endpoints")
        return pop
    finally:
        await store.close()


# -- the daemon ------------------------------------------------------------------
class GatewayProcess:
    """`python -m pushgw serve` (optionally under cProfile)."""

    def __init__(
        self,
        config: Path,
        port: int,
        log_path: Path,
        profile: Path | None = None,
        *,
        workers: int = 1,
    ) -> None:
        self.url = f"http://127.0.0.1:{port}/"
        self.log_path = log_path
        self._log = log_path.open("ab")
        prefix = [sys.executable]
        if profile is not None:
            prefix += ["-m", "cProfile", "-o", str(profile)]
        self.proc = subprocess.Popen(
            [
                *prefix,
                "-m",
                "pushgw",
                "serve",
                "--config",
                str(config),
                *(["--workers", str(workers)] if workers > 1 else []),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def wait_up(self, limit_s: float = 30.0) -> None:
        deadline = time.monotonic() + limit_s
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"pushgw serve exited: {self.tail()}")
                try:
                    async with session.get(self.url + "healthz") as r:
                        if r.status < 500:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"pushgw serve not up: {self.tail()}")

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# -- the SNS Query API client ----------------------------------------------------
class SnsClient:
    """SigV4-signed SNS Query requests, signed as botocore signs them (by
    `sigv4.sign_post`: 31 µs of CPU a request against botocore's 182-195 µs,
    which the load client, sharing the machine with the gateway, can spare)."""

    FORM = "application/x-www-form-urlencoded; charset=utf-8"

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session
        self.host = urlsplit(url).netloc

    def signed(self, params: Mapping[str, str]) -> tuple[bytes, dict[str, str]]:
        body = urlencode({"Version": "2010-03-31", **params}).encode()
        headers = sign_post(
            host=self.host,
            path="/",
            body=body,
            content_type=self.FORM,
            access_key_id=ACCESS_KEY,
            secret=SECRET_KEY,
            region=REGION,
        )
        return body, headers

    async def call(self, params: Mapping[str, str]) -> tuple[int, str]:
        body, headers = self.signed(params)
        async with self.session.post(self.url, data=body, headers=headers) as r:
            return r.status, await r.text()

    async def publish(self, message: str, **target: str) -> tuple[int, str]:
        params = {"Action": "Publish", "Message": message}
        params.update(target)
        return await self.call(params)


# -- PostgreSQL activity (the capacity model's figures) --------------------------
@dataclass(frozen=True)
class PgActivity:
    """Database-wide counters of pg_stat_database plus the WAL position."""

    commits: int
    rows_written: int  # inserted + updated + deleted
    rows_read: int  # fetched by index or heap lookups
    wal_bytes: int

    @classmethod
    async def now(cls, dsn: str) -> PgActivity:
        import asyncpg

        conn = await asyncpg.connect(dsn)
        try:
            row = await conn.fetchrow(
                "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted AS w,"
                " tup_fetched, pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"
                " AS wal FROM pg_stat_database WHERE datname = current_database()"
            )
        finally:
            await conn.close()
        assert row is not None
        return cls(int(row[0]), int(row["w"]), int(row["tup_fetched"]), int(row["wal"]))

    def per(self, before: PgActivity, count: int) -> str:
        """`self - before` per unit. The statistics of a session reach
        pg_stat_database when it ends (or within ~1 s of idling), so the later
        snapshot is taken after the gateway has stopped; the counters are the
        whole database's, so a quiet database gives clean figures."""
        n = max(1, count)
        return (
            f"{(self.commits - before.commits) / n:.2f} commits, "
            f"{(self.rows_written - before.rows_written) / n:.2f} rows written, "
            f"{(self.rows_read - before.rows_read) / n:.2f} rows read, "
            f"{(self.wal_bytes - before.wal_bytes) / n:,.0f} WAL bytes"
        )
