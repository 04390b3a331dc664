"""
`pushgw bench`: load scenarios against the loopback mocks; prints figures.

    pushgw bench [--scenario NAME[,NAME...]|all] [--endpoints N] [--rate R]
                 [--duration S] [--store sqlite|postgres] [--loop asyncio|uvloop]
                 [--workers N] [--profile [--profile-out PREFIX]]

* fanout-apns   one topic publish to N APNs endpoints
* ceiling       the ApnsProvider adapter alone (no store, no queue) sending
                min(N, 50,000) notifications to the same APNs mock: the
                fan-out / bare-client ratio
* h2load        nghttp2's C client (when `h2load` is installed) against the same
                APNs mock: what the mock itself sustains, the physical ceiling
* fanout-mixed  the same fan-out across the six platforms (N split evenly)
* publish-api   single-endpoint SigV4 publishes at R/s (default 1,000) for S s,
                then x1.5 steps of 5 s until p99 > 50 ms or errors: the highest
                rate sustained, and gateway CPU per publish
* console       the web console's JSON API calls (endpoint search and pages,
                the topic's attributes, the overview's queue, stats and apps)
                on one app with N endpoints, all subscribed to one topic:
                latency of each through HTTP, so "a million endpoints stays
                responsive" is a figure

`--scenario` takes a comma-separated list, run in the order given, so a fan-out
and its ceilings come from one run on one mock process. `--workers N` runs the
gateway as `serve --workers N` (PostgreSQL): its CPU and RSS are then summed over
the workers. With PostgreSQL, each gateway scenario also prints the database's
commits, rows and WAL bytes per delivery or publish (the capacity model's inputs).

The mocks run in a child process (bench/mockproc.py) and the gateway as a
`pushgw serve` child on a fresh store, so /proc gives each its own CPU time and
peak RSS. Everything binds 127.0.0.1. `--profile` runs the gateway under cProfile
and prints its top functions after each gateway scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import pstats
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from pushgw.bench.gateway import (
    ADMIN_API_KEY,
    GatewayProcess,
    PgActivity,
    SnsClient,
    cpu_seconds,
    free_port,
    populate,
    tree_cpu_seconds,
    tree_peak_rss_mib,
    write_config,
)
from pushgw.bench.mockproc import PLATFORMS, MockProcess
from pushgw.cli import run_on_loop

SCENARIOS = (
    "fanout-apns",
    "ceiling",
    "h2load",
    "fanout-mixed",
    "publish-api",
    "console",
)
CONSOLE_CALLS = 30  # of each console call, for its p50 and max
CONSOLE_LIMIT_S = 0.050  # a console page call "stays responsive"
P99_LIMIT_S = 0.050
CEILING_SENDS = 50_000
MAX_ENDPOINTS = 1_000_000
STEP_S = 5.0
STEP_FACTOR = 1.5
MAX_STEPS = 10
PROGRESS_S = 3.0
MESSAGE = "hello from pushgw bench"


def calibrate() -> tuple[float, float]:
    """Wall and CPU seconds of a fixed pure-Python loop (5M additions)."""
    t, c = time.perf_counter(), time.process_time()
    x = 0
    for i in range(5_000_000):
        x += i
    return time.perf_counter() - t, time.process_time() - c


def say(text: str) -> None:
    print(text, flush=True)


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[k]


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"


@dataclass
class Result:
    name: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)

    def add(self, label: str, value: str, key: str = "", number: float = 0.0) -> None:
        self.rows.append((label, value))
        if key:
            self.figures[key] = number

    def show(self) -> None:
        say(f"\n=== {self.name} ===")
        width = max(len(label) for label, _ in self.rows)
        for label, value in self.rows:
            say(f"  {label:<{width}}  {value}")


@dataclass
class Bench:
    args: argparse.Namespace
    tmp: Path
    mocks: MockProcess
    ca_file: Path
    apns_creds: dict[str, str] | None = None
    apns_tokens: list[str] = field(default_factory=list)
    results: dict[str, Result] = field(default_factory=dict)
    runs: int = 0
    pg_schemas: list[str] = field(default_factory=list)

    async def drop_pg_schemas(self) -> None:
        """Leave the PostgreSQL database as we found it."""
        if not self.pg_schemas:
            return
        import asyncpg

        dsn = os.environ["PUSHGW_BENCH_PG"].split("?")[0]
        conn = await asyncpg.connect(dsn)
        try:
            for schema in self.pg_schemas:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    # -- shared plumbing ---------------------------------------------------------
    async def pg_activity(self) -> PgActivity | None:
        """PostgreSQL's counters now, when the store is PostgreSQL."""
        if self.args.store != "postgres":
            return None
        return await PgActivity.now(os.environ["PUSHGW_BENCH_PG"].split("?")[0])

    def store_url(self, name: str) -> str:
        if self.args.store == "postgres":
            url = os.environ.get("PUSHGW_BENCH_PG", "")
            if not url:
                raise SystemExit(
                    "--store postgres needs PUSHGW_BENCH_PG=postgresql://…"
                )
            schema = f"bench_{name.replace('-', '_')}_{os.getpid()}"
            self.pg_schemas.append(schema)
            sep = "&" if "?" in url else "?"
            return f"{url}{sep}schema={schema}"
        return f"sqlite:///{self.tmp / (name + '.db')}"

    @contextlib.asynccontextmanager
    async def gateway(self, name: str, store_url: str) -> AsyncIterator[GatewayProcess]:
        self.runs += 1
        port = free_port()
        directory = self.tmp / f"{name}-{self.runs}"
        directory.mkdir()
        config = write_config(
            directory,
            store_url=store_url,
            mocks=self.mocks,
            ca_file=self.ca_file,
            port=port,
            event_loop=self.args.loop,
        )
        profile = directory / "gateway.prof" if self.args.profile else None
        gw = GatewayProcess(
            config,
            port,
            directory / "serve.log",
            profile,
            workers=self.args.workers,
        )
        try:
            await gw.wait_up()
            yield gw
        finally:
            gw.stop()
            if gw.proc.returncode not in (0, None):
                say(f"  (gateway exited {gw.proc.returncode}: {gw.tail()[-800:]})")
            if profile is not None and profile.exists():
                show_profile(profile, self.args.profile_top)
                if self.args.profile_out:
                    kept = Path(f"{self.args.profile_out}.{name}.prof")
                    shutil.copyfile(profile, kept)
                    say(f"  profile kept as {kept} (python -m pstats {kept})")

    def devices(self, platform: str, n: int) -> list[tuple[str, dict[str, str]]]:
        out: list[tuple[str, dict[str, str]]] = []
        while len(out) < n:
            out += self.mocks.call("devices", platform, min(10_000, n - len(out)))
        return out

    async def wait_deliveries(
        self, expected: int, t0: float, label: str
    ) -> tuple[int, float]:
        """Poll the mocks until `expected` deliveries or progress stalls."""
        last_print = time.monotonic()
        last_count, last_change = -1, time.monotonic()
        limit = max(60.0, expected / 300)
        count = 0
        while True:
            count = await self.mocks.acall("count")
            now = time.monotonic()
            if count != last_count:
                last_count, last_change = count, now
            if count >= expected:
                break
            if now - last_change > 15 or time.time() - t0 > limit:
                say(f"  {label}: stalled at {count}/{expected}")
                break
            if now - last_print >= PROGRESS_S:
                last_print = now
                rate = count / max(1e-9, time.time() - t0)
                say(f"  {label}: {count}/{expected} delivered ({rate:,.0f}/s so far)")
            await asyncio.sleep(0.1)
        return count, time.time()

    # -- fan-out -----------------------------------------------------------------
    async def fanout(self, name: str, platforms: Sequence[str]) -> Result:
        n = self.args.endpoints
        per = [
            n // len(platforms) + (1 if i < n % len(platforms) else 0)
            for i in range(len(platforms))
        ]
        say(f"\n--- {name}: {n} endpoints on {', '.join(platforms)}")
        t = time.monotonic()
        plan: dict[str, Any] = {}
        for platform, count in zip(platforms, per, strict=True):
            creds = self.mocks.call("credentials", platform)
            plan[platform] = (creds, self.devices(platform, count))
            if platform == "APNS" and name == "fanout-apns":
                self.apns_creds = creds
                self.apns_tokens = [tok for tok, _ in plan[platform][1]]
        say(f"  mock devices registered in {time.monotonic() - t:.1f} s")
        store_url = self.store_url(name)
        t = time.monotonic()
        pop = await populate(store_url, plan, say=say)
        say(
            f"  store populated in {time.monotonic() - t:.1f} s "
            f"({len(pop.endpoint_arns)} endpoints + subscriptions)"
        )
        self.mocks.call("reset")
        result = Result(f"{name} ({n} endpoints, store {self.args.store})")
        async with (
            self.gateway(name, store_url) as gw,
            aiohttp.ClientSession() as session,
        ):
            client = SnsClient(gw.url, session)
            pg0 = await self.pg_activity()
            cpu0, mock0 = tree_cpu_seconds(gw.pid), cpu_seconds(self.mocks.pid)
            t0 = time.time()
            status, text = await client.publish(MESSAGE, TopicArn=pop.topic_arn)
            api_s = time.time() - t0
            if status != 200:
                raise RuntimeError(f"publish failed: {status} {text[:300]}")
            count, t_end = await self.wait_deliveries(n, t0, name)
            cpu = tree_cpu_seconds(gw.pid) - cpu0
            mock_cpu = cpu_seconds(self.mocks.pid) - mock0
            wall = t_end - t0
            rss = tree_peak_rss_mib(gw.pid)
            arrivals = await self.mocks.acall("arrival_times")
            stats = await self.mocks.acall("stats")
        pg1 = await self.pg_activity()  # the gateway has stopped: its stats are in
        lat_by = {
            mock_name: [at - t0 for at in times]
            for mock_name, times in arrivals.items()
            if times
        }
        lat = [x for v in lat_by.values() for x in v]
        span = max(lat) if lat else wall
        rate = len(lat) / span if span > 0 else 0.0
        result.add("delivered", f"{len(lat)}/{n} (polled count {count})")
        result.add(
            "deliveries/s",
            f"{rate:,.0f}  (publish -> last delivery {span:.2f} s)",
            "rate",
            rate,
        )
        us = cpu / max(1, len(lat)) * 1e6
        result.add(
            "gateway CPU",
            f"{us:,.0f} µs/delivery ({cpu:.2f} s CPU over {wall:.2f} s wall, "
            f"{cpu / max(wall, 1e-9) * 100:.0f}% of one core)",
            "cpu_us",
            us,
        )
        result.add(
            "mock CPU",
            f"{mock_cpu:.2f} s ({mock_cpu / max(wall, 1e-9) * 100:.0f}% of one core)",
        )
        result.add("Publish API call", ms(api_s))
        result.add(
            "publish->provider",
            f"p50 {ms(pct(lat, 50))}  p99 {ms(pct(lat, 99))}  max {ms(pct(lat, 100))}",
            "p99",
            pct(lat, 99),
        )
        if len(platforms) > 1:
            for mock_name, values in sorted(lat_by.items()):
                result.add(
                    f"  {mock_name}",
                    f"{len(values)} delivered, p50 {ms(pct(values, 50))} "
                    f"p99 {ms(pct(values, 99))}",
                )
        result.add("gateway peak RSS", f"{rss:.0f} MiB (VmHWM)", "rss", rss)
        if pg0 is not None and pg1 is not None:
            result.add("PostgreSQL per delivery", pg1.per(pg0, len(lat)))
        errors = {
            k: {o: c for o, c in v.items() if o != "delivered" and c}
            for k, v in stats.items()
        }
        errors = {k: v for k, v in errors.items() if v}
        if errors:
            result.add("mock counters", str(errors))
        return result

    # -- the console on a big app ----------------------------------------------
    async def console(self) -> Result:
        n = self.args.endpoints
        say(f"\n--- console: one APNs app with {n} endpoints, on one topic")
        creds = self.apns_creds or self.mocks.call("credentials", "APNS")
        # Random tokens (nothing is sent); a CustomUserData shared by 20 each.
        devices = [
            (secrets.token_hex(32), {"CustomUserData": f"user-{i // 20}"})
            for i in range(n)
        ]
        store_url = self.store_url("console")
        t = time.monotonic()
        pop = await populate(store_url, {"APNS": (creds, devices)}, say=say)
        say(f"  store populated in {time.monotonic() - t:.1f} s")
        app = quote(pop.apps["APNS"], safe="")
        deep = devices[n // 2][0]
        search = f"/v1/platform-applications/{app}/endpoints/search"
        calls = {
            "endpoints: first page (100)": f"{search}?limit=100",
            "endpoints: token prefix": f"{search}?tokenPrefix={deep[:6]}",
            "endpoints: CustomUserData": f"{search}?customUserData=user-{n // 40}",
            # Tokens are hex: those from `c` on start three quarters in.
            "endpoints: a page 3/4 in": f"{search}?limit=100&tokenPrefix=c",
            "endpoints: SNS listing, first page": (
                f"/v1/platform-applications/{app}/endpoints"
            ),
            "topic: attributes (counts)": f"/v1/topics/{quote(pop.topic_arn, safe='')}",
            "overview: queue": "/v1/queue",
            "overview: last hour's stats": "/v1/stats/deliveries?bucketSeconds=300",
            "overview: applications": "/v1/platform-applications",
        }
        result = Result(f"console ({n} endpoints, store {self.args.store})")
        async with (
            self.gateway("console", store_url) as gw,
            aiohttp.ClientSession() as session,
        ):
            took = await console_calls(session, gw.url.rstrip("/"), calls)
        for label, values in took.items():
            result.add(
                label,
                f"p50 {ms(pct(values, 50))}  max {ms(pct(values, 100))}",
            )
        pages = [v for label, v in took.items() if label.startswith("endpoints")]
        worst = max(pct(values, 100) for values in pages)
        result.figures["endpoint_page_max"] = worst
        result.figures["topic_attributes_p50"] = pct(
            took["topic: attributes (counts)"], 50
        )
        return result

    # -- ceiling: the adapter alone ----------------------------------------------
    def concurrency(self) -> int:
        """The bare clients' streams in flight: the gateway's per-app limit."""
        from pushgw.config import DeliveryConfig

        delivery = DeliveryConfig()
        return self.args.ceiling_concurrency or min(
            delivery.max_in_flight, delivery.per_app_in_flight
        )

    async def bare_apns(self, n: int) -> Any:
        """An ApnsProvider on the APNs mock, as the gateway builds one, and at
        least `n` registered device tokens in `self.apns_tokens`."""
        from pushgw.config import config_from_mapping
        from pushgw.model import Platform, PlatformApplication
        from pushgw.providers.apns import ApnsProvider

        if self.apns_creds is None or len(self.apns_tokens) < n:
            self.apns_creds = self.mocks.call("credentials", "APNS")
            self.apns_tokens = [tok for tok, _ in self.devices("APNS", n)]
        creds = dict(self.apns_creds)
        app = PlatformApplication(
            arn="arn:aws:sns:us-east-1:123456789012:app/APNS/bench-ceiling",
            name="bench-ceiling",
            platform=Platform.APNS,
            principal=creds.pop("PlatformPrincipal"),
            credential=creds.pop("PlatformCredential"),
            attributes=creds,
        )
        cfg = config_from_mapping(
            {
                "providers": {
                    "apns": {
                        "base_url": self.mocks.urls["APNS"],
                        "ca_file": str(self.ca_file),
                    }
                }
            }
        )
        return await ApnsProvider.create(app=app, settings=cfg.provider("apns"))

    async def ceiling(self) -> Result:
        from pushgw.model import Endpoint
        from pushgw.providers.base import RenderedMessage

        n = min(self.args.endpoints, CEILING_SENDS)
        concurrency = self.concurrency()
        say(f"\n--- ceiling: ApnsProvider alone, {n} sends, concurrency {concurrency}")
        provider = await self.bare_apns(n)
        app = provider.app
        message = RenderedMessage(message_id="ceiling", body=MESSAGE, native=False)
        endpoints = [
            Endpoint(arn=f"e{i}", app_arn=app.arn, token=tok)
            for i, tok in enumerate(self.apns_tokens[:n])
        ]
        self.mocks.call("reset")
        outcomes: dict[str, int] = {}
        sem = asyncio.Semaphore(concurrency)

        async def one(endpoint: Endpoint) -> None:
            try:
                result = await provider.send(endpoint, message)
                key = result.outcome.value
            finally:
                sem.release()
            outcomes[key] = outcomes.get(key, 0) + 1

        mock0 = cpu_seconds(self.mocks.pid)
        cpu0 = time.process_time()
        t0 = time.time()
        tasks: set[asyncio.Task[None]] = set()
        last = time.monotonic()
        for i, endpoint in enumerate(endpoints):
            await sem.acquire()
            task = asyncio.create_task(one(endpoint))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if time.monotonic() - last >= PROGRESS_S:
                last = time.monotonic()
                say(f"  ceiling: {i}/{n} sent ({i / (time.time() - t0):,.0f}/s)")
        await asyncio.gather(*tasks)
        wall = time.time() - t0
        cpu = time.process_time() - cpu0
        mock_cpu = cpu_seconds(self.mocks.pid) - mock0
        await provider.aclose()
        arrivals = await self.mocks.acall("arrival_times")
        lat = [at - t0 for at in arrivals["APNS"]]
        span = max(lat) if lat else wall
        rate = len(lat) / span if span > 0 else 0.0
        result = Result(f"ceiling (bare ApnsProvider, {n} sends, c={concurrency})")
        result.add("outcomes", str(outcomes))
        result.add("deliveries/s", f"{rate:,.0f}  ({span:.2f} s)", "rate", rate)
        us = cpu / max(1, len(lat)) * 1e6
        result.add(
            "client CPU",
            f"{us:,.0f} µs/delivery ({cpu / max(wall, 1e-9) * 100:.0f}% of one core)",
            "cpu_us",
            us,
        )
        result.add(
            "mock CPU",
            f"{mock_cpu:.2f} s ({mock_cpu / max(wall, 1e-9) * 100:.0f}% of one core)",
        )
        result.add(
            "start->provider",
            f"p50 {ms(pct(lat, 50))}  p99 {ms(pct(lat, 99))}",
        )
        return result

    # -- h2load: the mock's own ceiling -----------------------------------------
    async def h2load(self) -> Result:
        """
        nghttp2's h2load (C) sends the ApnsProvider's exact request (headers,
        JWT, body) to one device, `min(N, 50,000)` times with the bare
        client's concurrency on one connection: what the APNs mock serves when
        the client costs next to nothing.
        """
        from pushgw.providers.base import RenderedMessage

        result = Result("h2load (nghttp2's C client, same APNs mock)")
        binary = shutil.which("h2load")
        if binary is None:
            result.add(
                "skipped", "h2load is not installed (apt-get install nghttp2-client)"
            )
            return result
        n = min(self.args.endpoints, CEILING_SENDS)
        concurrency = self.concurrency()
        say(f"\n--- h2load: {n} requests, {concurrency} streams on one connection")
        provider = await self.bare_apns(1)
        token = self.apns_tokens[0]
        message = RenderedMessage(message_id="h2load", body=MESSAGE, native=False)
        request = provider._build(token, message)
        auth = provider.signer.header() if provider.signer is not None else None
        await provider.aclose()
        pseudo = {k: v for k, v in request.headers if k.startswith(b":")}
        body_file = self.tmp / "h2load-body.json"
        body_file.write_bytes(request.body)
        command = [
            binary,
            f"-n{n}",
            "-c1",
            f"-m{concurrency}",
            "-d",
            str(body_file),
        ]
        for name, value in [*request.headers, (b"authorization", auth or b"")]:
            if not name.startswith(b":") and value:
                command += ["-H", f"{name.decode()}: {value.decode()}"]
        url = self.mocks.urls["APNS"].rstrip("/") + pseudo[b":path"].decode()
        command.append(url)
        self.mocks.call("reset")
        mock0 = cpu_seconds(self.mocks.pid)
        out, cpu, wall = await asyncio.to_thread(run_measured, command)
        mock_cpu = cpu_seconds(self.mocks.pid) - mock0
        stats = await self.mocks.acall("stats")
        delivered = stats["APNS"].get("delivered", 0)
        found = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
        rate = float(found.group(3)) if found else 0.0
        result.add("delivered", f"{delivered}/{n}")
        result.add("requests/s", f"{rate:,.0f}", "rate", rate)
        result.add(
            "h2load CPU",
            f"{cpu / max(1, delivered) * 1e6:,.1f} µs/request "
            f"({cpu / max(wall, 1e-9) * 100:.0f}% of one core)",
        )
        result.add(
            "mock CPU",
            f"{mock_cpu / max(1, delivered) * 1e6:,.0f} µs/request "
            f"({mock_cpu / max(wall, 1e-9) * 100:.0f}% of one core)",
        )
        if not found or delivered < n:
            result.add("h2load said", out.strip()[-600:])
        return result

    # -- publish API -------------------------------------------------------------
    async def publish_api(self) -> Result:
        say(
            f"\n--- publish-api: {self.args.rate}/s for {self.args.duration} s, then "
            f"x{STEP_FACTOR} steps of {STEP_S:.0f} s until p99 > "
            f"{P99_LIMIT_S * 1000:.0f} ms or errors"
        )
        creds = self.mocks.call("credentials", "APNS")
        device = self.devices("APNS", 1)
        store_url = self.store_url("publish-api")
        pop = await populate(store_url, {"APNS": (creds, device)}, say=say)
        target = pop.endpoint_arns[0]
        token = device[0][0]
        result = Result(f"publish-api (one APNs endpoint, store {self.args.store})")
        async with self.gateway("publish-api", store_url) as gw:
            connector = aiohttp.TCPConnector(limit=2000)
            async with aiohttp.ClientSession(connector=connector) as session:
                client = SnsClient(gw.url, session)
                for _ in range(20):  # warm up: connection, app cache, provider
                    await client.publish("warm-up", TargetArn=target)
                await asyncio.sleep(0.5)
                pg0 = await self.pg_activity()
                published = 0
                rate = float(self.args.rate)
                duration = float(self.args.duration)
                best: float | None = None
                for step in range(MAX_STEPS):
                    self.mocks.call("reset")
                    cpu0 = tree_cpu_seconds(gw.pid)
                    client0 = time.process_time()
                    step_result = await open_loop(client, target, rate, duration)
                    cpu = tree_cpu_seconds(gw.pid) - cpu0
                    client_cpu = time.process_time() - client0
                    published += step_result.sent
                    await asyncio.sleep(1.0)  # let the last deliveries land
                    arrivals = await self.mocks.acall("arrivals")
                    got = arrivals["APNS"].get(token, [])
                    e2e = provider_latency(step_result.sent_at, got)
                    ok = (
                        step_result.errors == 0
                        and step_result.p99 <= P99_LIMIT_S
                        and step_result.achieved >= 0.95 * rate
                    )
                    line = (
                        f"{rate:,.0f}/s x {duration:.0f} s: sent {step_result.sent}, "
                        f"errors {step_result.errors}, achieved "
                        f"{step_result.achieved:,.0f}/s; API p50 "
                        f"{ms(step_result.p50)} p99 {ms(step_result.p99)}; "
                        f"publish->provider p50 {ms(pct(e2e, 50))} p99 "
                        f"{ms(pct(e2e, 99))} ({len(got)} delivered); gateway CPU "
                        f"{cpu / max(1, step_result.sent) * 1e6:,.0f} µs/publish, "
                        f"bench client CPU "
                        f"{client_cpu / max(1, step_result.sent) * 1e6:,.0f} µs/publish"
                        f"{'' if ok else '  <- not sustained'}"
                    )
                    say(f"  step {step}: {line}")
                    result.add(f"{rate:,.0f}/s", line.split(": ", 1)[1])
                    if step == 0:
                        result.figures["rate"] = rate
                        result.figures["p99_at_rate"] = step_result.p99
                        result.figures["e2e_p99_at_rate"] = pct(e2e, 99)
                        result.figures["cpu_us"] = cpu / max(1, step_result.sent) * 1e6
                    if not ok:
                        break
                    best = rate
                    rate *= STEP_FACTOR
                    duration = STEP_S
            rss = tree_peak_rss_mib(gw.pid)
        pg1 = await self.pg_activity()
        result.add(
            "highest rate sustained",
            f"{best:,.0f}/s" if best is not None else "none (first step failed)",
            "best",
            best or 0.0,
        )
        result.add("gateway peak RSS", f"{rss:.0f} MiB (VmHWM)", "rss", rss)
        if pg0 is not None and pg1 is not None:
            result.add("PostgreSQL per publish", pg1.per(pg0, published))
        return result


@dataclass
class LoopResult:
    sent: int
    errors: int
    achieved: float
    p50: float
    p99: float
    sent_at: dict[str, float]


async def console_calls(
    session: aiohttp.ClientSession, base: str, calls: Mapping[str, str]
) -> dict[str, list[float]]:
    """Each GET of `calls` CONSOLE_CALLS times, one after another: seconds each."""
    headers = {"Authorization": f"Bearer {ADMIN_API_KEY}"}
    took: dict[str, list[float]] = {}
    for label, path in calls.items():
        took[label] = []
        for _ in range(CONSOLE_CALLS):
            t = time.perf_counter()
            async with session.get(base + path, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{label}: GET {path} -> {resp.status}")
            took[label].append(time.perf_counter() - t)
    return took


async def open_loop(
    client: SnsClient, target: str, rate: float, duration: float
) -> LoopResult:
    """Publish at `rate`/s for `duration` s on a fixed schedule (open loop)."""
    total = int(rate * duration)
    latencies: list[float] = []
    errors = 0
    sent_at: dict[str, float] = {}
    tasks: set[asyncio.Task[None]] = set()
    last = time.monotonic()

    async def one(i: int, scheduled: float) -> None:
        nonlocal errors
        body = f"m{i}-{scheduled:.6f}"
        sent_at[body] = time.time()
        try:
            status, _ = await asyncio.wait_for(
                client.publish(body, TargetArn=target), 10
            )
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        # Latency from the scheduled send time: client lag counts (no coordinated
        # omission).
        latencies.append(time.monotonic() - scheduled)
        if status != 200:
            errors += 1

    start = time.monotonic()
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if time.monotonic() - last >= PROGRESS_S:
            last = time.monotonic()
            say(f"    {i}/{total} publishes sent, {len(tasks)} in flight")
    if tasks:
        await asyncio.gather(*tasks)
    elapsed = time.monotonic() - start
    sent_done = len(latencies)
    # Achieved rate: what the client managed to issue on schedule.
    issued = total / max(elapsed - (max(latencies) if latencies else 0), duration)
    return LoopResult(
        sent=sent_done,
        errors=errors,
        achieved=min(issued, total / duration),
        p50=pct(latencies, 50),
        p99=pct(latencies, 99),
        sent_at=sent_at,
    )


def run_measured(command: Sequence[str]) -> tuple[str, float, float]:
    """Run `command`; its output, CPU seconds (from wait4) and wall seconds."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return out, usage.ru_utime + usage.ru_stime, time.monotonic() - t0


def provider_latency(sent_at: dict[str, float], arrivals: list[float]) -> list[float]:
    """Arrival minus send time; the mock keeps arrival order, not bodies here."""
    sends = sorted(sent_at.values())
    got = sorted(arrivals)
    # Deliveries of one endpoint arrive roughly in publish order; pairing the
    # k-th send with the k-th arrival gives the distribution (not per message).
    return [a - s for s, a in zip(sends, got, strict=False)]


def show_profile(path: Path, top: int) -> None:
    say(f"\n  cProfile of the gateway ({path}), top {top} by own time:")
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime")
    width = 0
    entries = []
    for func, (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        filename, line, name = func
        short = filename.split("/site-packages/")[-1].replace(str(Path.cwd()) + "/", "")
        entries.append((tt, ct, nc, f"{short}:{line}({name})"))
    entries.sort(reverse=True)
    width = max((len(e[3]) for e in entries[:top]), default=0)
    say(f"    {'tottime':>8} {'cumtime':>8} {'calls':>9}  function")
    for tt, ct, nc, label in entries[:top]:
        say(f"    {tt:8.2f} {ct:8.2f} {nc:9d}  {label[: max(width, 40)]}")


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def targets(results: dict[str, Result], endpoints: int) -> list[str]:
    """The performance issue's targets, from the figures of this one run."""
    out = []
    apns = results.get("fanout-apns")
    ceiling = results.get("ceiling")
    mixed = results.get("fanout-mixed")
    h2 = results.get("h2load")
    if apns is not None:
        us = apns.figures["cpu_us"]
        out.append(
            f"fan-out gateway CPU <= 80 µs per APNs delivery: {us:,.0f} µs -> "
            f"{verdict(us <= 80)}"
        )
    if apns is not None and ceiling is not None and ceiling.figures.get("rate"):
        ratio = apns.figures["rate"] / ceiling.figures["rate"]
        cpu_ratio = ceiling.figures["cpu_us"] / max(apns.figures["cpu_us"], 1e-9)
        out.append(
            f"fan-out / bare client >= 0.9 (deliveries/s): {apns.figures['rate']:,.0f}"
            f" / {ceiling.figures['rate']:,.0f} = {ratio:.2f} -> {verdict(ratio >= 0.9)}"
            f"; by CPU per delivery (bare / fan-out) {cpu_ratio:.2f}"
        )
    if apns is not None and h2 is not None and h2.figures.get("rate"):
        share = apns.figures["rate"] / h2.figures["rate"]
        out.append(
            f"mock not the cap: fan-out reached {share:.0%} of what the mock serves "
            f"to h2load ({h2.figures['rate']:,.0f}/s) -> {verdict(share <= 0.8)}"
        )
    if mixed is not None:
        us = mixed.figures["cpu_us"]
        out.append(
            f"six-platform fan-out <= 120 µs per delivery: {us:,.0f} µs -> "
            f"{verdict(us <= 120)}"
        )
    api = results.get("publish-api")
    if api is not None and "p99_at_rate" in api.figures:
        us, p99, rate = (
            api.figures["cpu_us"],
            api.figures["p99_at_rate"],
            api.figures["rate"],
        )
        out.append(
            f"publish-api gateway CPU <= 500 µs per publish: {us:,.0f} µs at "
            f"{rate:,.0f}/s -> {verdict(us <= 500)}"
        )
        out.append(
            f"publish-api p99 <= 50 ms at 1,000/s: API {ms(p99)} at {rate:,.0f}/s "
            f"(publish->provider {ms(api.figures['e2e_p99_at_rate'])}) -> "
            + (
                verdict(p99 <= P99_LIMIT_S)
                if rate >= 1000
                else "not measured (--rate 1000)"
            )
        )
    console = results.get("console")
    if console is not None:
        worst = console.figures["endpoint_page_max"]
        out.append(
            f"console endpoint pages <= 50 ms on an app with {endpoints:,} endpoints:"
            f" slowest {ms(worst)} -> {verdict(worst <= CONSOLE_LIMIT_S)}"
        )
    if apns is not None:
        rss = apns.figures["rss"]
        out.append(
            f"1,000,000-subscriber fan-out <= 300 MB RSS: {rss:.0f} MiB at "
            f"{endpoints:,} -> "
            + (
                verdict(rss * 1.048576 <= 300)
                if endpoints >= MAX_ENDPOINTS
                else "not measured (--endpoints 1000000)"
            )
        )
    return out


def scenario_list(text: str) -> tuple[str, ...]:
    """`fanout-apns,ceiling` -> ("fanout-apns", "ceiling"); `all` -> every one."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if names == ("all",):
        return SCENARIOS
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown scenario {', '.join(unknown) or text!r}; "
            f"choose from {', '.join(SCENARIOS)} or all"
        )
    return names


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="pushgw bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--scenario",
        type=scenario_list,
        default=SCENARIOS,
        help=f"comma-separated, in order: {', '.join(SCENARIOS)} (or all)",
    )
    parser.add_argument("--endpoints", type=int, default=50_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--ceiling-concurrency",
        type=int,
        default=0,
        help="bare-client concurrency (default: the gateway's per-app limit)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="run the gateway under cProfile"
    )
    parser.add_argument("--profile-top", type=int, default=30)
    parser.add_argument(
        "--profile-out", default="", help="keep each profile as PREFIX.SCENARIO.prof"
    )
    parser.add_argument(
        "--loop",
        choices=["asyncio", "uvloop"],
        default="uvloop",
        help="event loop of the gateway (server.event_loop) and of the bare client",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="gateway processes (`serve --workers N`; needs --store postgres)",
    )
    args = parser.parse_args(list(argv))
    if args.workers < 1 or (args.workers > 1 and args.store != "postgres"):
        parser.error("--workers N > 1 needs --store postgres")
    if not 1 <= args.endpoints <= MAX_ENDPOINTS:
        parser.error(f"--endpoints: 1..{MAX_ENDPOINTS}")
    if not 0 < args.rate <= 20_000 or not 0 < args.duration <= 300:
        parser.error("--rate 0..20000, --duration 0..300")
    return args


async def amain(args: argparse.Namespace) -> int:
    wanted: Sequence[str] = args.scenario
    with tempfile.TemporaryDirectory(prefix="pushgw-bench-") as tmp_name:
        tmp = Path(tmp_name)
        ca_file = tmp / "mock-ca.pem"
        mocks = MockProcess(ca_file)
        bench = Bench(args=args, tmp=tmp, mocks=mocks, ca_file=ca_file)
        say(
            f"pushgw bench: {', '.join(wanted)}; {os.cpu_count()} CPUs; "
            f"mocks pid {mocks.pid}; store {args.store}; tmp {tmp}"
        )
        wall, cpu = calibrate()
        say(
            f"calibration: 5M-iteration Python loop took {wall:.2f} s wall for "
            f"{cpu:.2f} s process CPU (wall/CPU {wall / max(cpu, 1e-9):.1f}; ~1.0 "
            "on an unshared core: above that, /proc CPU under-counts busy time)"
        )
        runs: dict[str, Callable[[], Any]] = {
            "fanout-apns": lambda: bench.fanout("fanout-apns", ["APNS"]),
            "ceiling": bench.ceiling,
            "h2load": bench.h2load,
            "fanout-mixed": lambda: bench.fanout("fanout-mixed", list(PLATFORMS)),
            "publish-api": bench.publish_api,
            "console": bench.console,
        }
        code = 0
        try:
            for name in wanted:
                try:
                    bench.results[name] = await runs[name]()
                    bench.results[name].show()
                except Exception as exc:  # report and go on with the others
                    say(f"\n=== {name}: FAILED: {type(exc).__name__}: {exc}")
                    code = 1
        finally:
            mocks.stop()
            await bench.drop_pg_schemas()
        lines = targets(bench.results, args.endpoints)
        if lines:
            say("\n=== targets ===")
            for line in lines:
                say(f"  {line}")
        return code


def main(argv: list[str]) -> int:
    # `pushgw bench -- --endpoints N` also works (a leading "--" is dropped).
    if argv and argv[0] == "--":
        argv = argv[1:]
    args = parse(argv)
    return run_on_loop(args.loop, amain(args))
