"""
Evidence for the APNs client choice: unpatched aioapns 4.0 vs providers.h2client.

Runs the fault scenarios of PROVIDERS.md §1.9 against `ApnsMock` on loopback
and prints one table (scenario x client -> outcome), then a throughput check
of `ApnsProvider` (and aioapns) against the mock running in another process.

    .venv/bin/python -m bench.apns_evidence                 # both parts
    .venv/bin/python -m bench.apns_evidence --throughput-only -n 50000 -c 1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aioapns import APNs, NotificationRequest
from aioapns.connection import APNsProductionClientProtocol

from pushgw.model import Endpoint, Platform, PlatformApplication
from pushgw.providers.apns import ApnsProvider
from pushgw.providers.base import Outcome, ProviderSettings, RenderedMessage, SendResult
from pushgw.providers.mocks.apns import ApnsMock
from pushgw.providers.mocks.base import FaultRule

MESSAGE = RenderedMessage(message_id="m", body="hello", native=False)
PAYLOAD = {"aps": {"alert": "hello"}}


class _FatalCounter(logging.Handler):
    """Counts asyncio's "Fatal error ... data_received" (a torn-down connection)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "Fatal error" in record.getMessage() or record.exc_info:
            self.count += 1


FATAL = _FatalCounter()


@dataclass
class Rig:
    """One mock plus one client of each kind, pointed at it."""

    mock: ApnsMock
    ca_file: str
    attrs: dict[str, str]
    token: str

    def ours(self, *, timeout_s: float = 5.0) -> ApnsProvider:
        attrs = dict(self.attrs)
        app = PlatformApplication(
            arn="arn:bench",
            name="bench",
            platform=Platform.APNS,
            principal=attrs.pop("PlatformPrincipal"),
            credential=attrs.pop("PlatformCredential"),
            attributes=attrs,
        )
        settings = ProviderSettings(
            base_url=self.mock.base_url, ca_file=self.ca_file, timeout_s=timeout_s
        )
        return ApnsProvider(app=app, settings=settings)

    def aioapns(self) -> APNs:
        return make_aioapns(self.mock.base_url, self.ca_file, self.attrs)


def make_aioapns(base_url: str, ca_file: str, attrs: dict[str, str]) -> APNs:
    port = int(base_url.rsplit(":", 1)[1])

    class MockProtocol(APNsProductionClientProtocol):
        APNS_SERVER = "127.0.0.1"
        APNS_PORT = port

    client = APNs(
        key=attrs["PlatformCredential"],
        key_id=attrs["PlatformPrincipal"],
        team_id=attrs["ApplePlatformTeamID"],
        topic=attrs["ApplePlatformBundleID"],
        ssl_context=ssl.create_default_context(cafile=ca_file),
        max_connection_attempts=3,
    )
    client.pool.protocol_class = MockProtocol  # documented override, §1.9
    return client


@contextlib.asynccontextmanager
async def rig(**mock_options: Any) -> Any:
    async with ApnsMock(**mock_options) as mock:
        with tempfile.TemporaryDirectory() as tmp:
            ca_file = str(Path(tmp) / "ca.pem")
            mock.write_ca(ca_file)
            attrs = mock.issue_credentials()
            yield Rig(mock, ca_file, attrs, mock.register_device())


async def aio_send(client: APNs, token: str, timeout_s: float) -> str:
    """One aioapns send, wrapped in wait_for as production users do."""
    request = NotificationRequest(device_token=token, message=PAYLOAD)
    try:
        result = await asyncio.wait_for(client.send_notification(request), timeout_s)
    except TimeoutError:
        return "timeout"
    except Exception as exc:
        return f"error {type(exc).__name__}"
    return "ok" if result.is_successful else f"{result.status} {result.description}"


async def our_send(provider: ApnsProvider, token: str) -> str:
    result = await provider.send(Endpoint(arn="e", app_arn="a", token=token), MESSAGE)
    return "ok" if result.outcome is Outcome.DELIVERED else _short(result)


def _short(result: SendResult) -> str:
    return f"{result.outcome.value} ({result.reason[:48]})"


def tally(items: list[str]) -> str:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return ", ".join(f"{n}x {k}" for k, n in sorted(counts.items()))


def aio_leak(client: APNs) -> int:
    conns = client.pool.connections
    return sum(len(c.requests) + len(c.request_streams) for c in conns)


def aio_close(client: APNs) -> None:
    client.pool.close()


# -- scenarios: each returns (aioapns outcome, our outcome) ----------------------


async def scenario_baseline() -> tuple[str, str]:
    async with rig() as r:
        client, ours = r.aioapns(), r.ours()
        a = await asyncio.gather(*(aio_send(client, r.token, 5) for _ in range(500)))
        b = await asyncio.gather(*(our_send(ours, r.token) for _ in range(500)))
        aio_close(client)
        await ours.aclose()
    return tally(a), tally(b)


async def scenario_leak() -> tuple[str, str]:
    async with rig() as r:
        client, ours = r.aioapns(), r.ours()
        sem = asyncio.Semaphore(200)

        async def bounded(make: Callable[[], Awaitable[str]]) -> str:
            async with sem:
                return await make()

        await asyncio.gather(
            *(bounded(lambda: aio_send(client, r.token, 5)) for _ in range(5000))
        )
        await asyncio.gather(
            *(bounded(lambda: our_send(ours, r.token)) for _ in range(5000))
        )
        a, b = aio_leak(client), ours.pool.tracked
        aio_close(client)
        await ours.aclose()
    return f"map entries left: {a}", f"map entries left: {b}"


async def _late(
    r: Rig, send_slow: Awaitable[str], send_other: Callable[[str], Awaitable[str]]
) -> str:
    mock = r.mock
    other = mock.register_device()
    mock.faults.clear()
    mock.faults.rules.append(
        FaultRule("latency", token_prefix=r.token, count=1, latency_s=0.3)
    )
    mock.faults.rules.append(
        FaultRule("latency", token_prefix=other, count=20, latency_s=0.6)
    )
    fatal_before = FATAL.count
    others = [asyncio.ensure_future(send_other(other)) for _ in range(20)]
    await asyncio.sleep(
        0.05
    )  # let the 20 streams open before the slow one (bench only)
    slow = await send_slow
    results = await asyncio.gather(*others)
    sent = sum(1 for req in mock.requests if req["token"] == other)
    crashed = FATAL.count - fatal_before
    return (
        f"slow: {slow}; others: {tally(results)}; "
        f"{sent - 20} resent; fatal protocol errors: {crashed}"
    )


async def scenario_late_answer() -> tuple[str, str]:
    async with rig() as r:
        r.mock.late_answers = True
        client = r.aioapns()
        await aio_send(client, r.token, 5)  # open the connection
        a = await _late(
            r,
            aio_send(client, r.token, 0.1),
            lambda token: aio_send(client, token, 3),
        )
        aio_close(client)
    async with rig() as r:
        r.mock.late_answers = True
        fast, slow = r.ours(timeout_s=3), r.ours(timeout_s=0.1)
        slow.pool = fast.pool  # same connection, shorter timeout for the slow one
        await our_send(fast, r.token)
        b = await _late(r, our_send(slow, r.token), lambda token: our_send(fast, token))
        await fast.aclose()
    return a, b


async def scenario_no_body() -> tuple[str, str]:
    async with rig() as r:
        r.mock.error_without_body = True
        client, ours = r.aioapns(), r.ours(timeout_s=2)
        r.mock.faults.rules.append(FaultRule("throttle", count=2))
        a = await aio_send(client, r.token, 2)
        leak = aio_leak(client)
        b = await our_send(ours, r.token)
        aio_close(client)
        await ours.aclose()
    return (
        f"{a} (2 s); map entries left: {leak}",
        f"{b}; map entries left: {ours.pool.tracked}",
    )


async def scenario_hang() -> tuple[str, str]:
    async with rig() as r:
        client, ours = r.aioapns(), r.ours(timeout_s=0.5)
        r.mock.faults.rules.append(FaultRule("hang", count=2))
        a = await aio_send(client, r.token, 0.5)
        leak = aio_leak(client)
        b = await our_send(ours, r.token)
        aio_close(client)
        await ours.aclose()
    return f"{a} (wait_for 0.5 s); map entries left: {leak}", (
        f"{b}; map entries left: {ours.pool.tracked}"
    )


async def scenario_pre_settings() -> tuple[str, str]:
    async with rig(token_strict=True) as r:
        r.mock.settings_delay_s = 0.2
        client = r.aioapns()
        a = await asyncio.gather(*(aio_send(client, r.token, 3) for _ in range(50)))
        refused_a = r.mock.stats["protocol_error"]
        aio_close(client)
    async with rig(token_strict=True) as r:
        r.mock.settings_delay_s = 0.2
        ours = r.ours(timeout_s=3)
        b = await asyncio.gather(*(our_send(ours, r.token) for _ in range(50)))
        refused_b = r.mock.stats["protocol_error"]
        await ours.aclose()
    return (
        f"{tally(a)}; server GOAWAY(PROTOCOL_ERROR): {refused_a}",
        f"{tally(b)}; server GOAWAY(PROTOCOL_ERROR): {refused_b}",
    )


async def _fault_burst(kind: str) -> tuple[str, str]:
    async with rig() as r:
        client = r.aioapns()
        r.mock.faults.rules.append(FaultRule(kind, count=1))
        a = await asyncio.gather(*(aio_send(client, r.token, 3) for _ in range(10)))
        sent_a = len(r.mock.requests)
        aio_close(client)
    async with rig() as r:
        ours = r.ours(timeout_s=3)
        r.mock.faults.rules.append(FaultRule(kind, count=1))
        b = await asyncio.gather(*(our_send(ours, r.token) for _ in range(10)))
        sent_b = len(r.mock.requests)
        await ours.aclose()
    return (
        f"{tally(a)}; {sent_a} requests for 10",
        f"{tally(b)}; {sent_b} requests for 10",
    )


SCENARIOS: dict[str, Callable[[], Awaitable[tuple[str, str]]]] = {
    "baseline: 500 x 200": scenario_baseline,
    "5,000 x 200: stream maps afterwards": scenario_leak,
    "late 200 after caller timeout (20 others in flight)": scenario_late_answer,
    "429 without JSON body": scenario_no_body,
    "server never answers": scenario_hang,
    "50 concurrent, token-strict server, SETTINGS 0.2 s late": scenario_pre_settings,
    "GOAWAY with 10 streams open": lambda: _fault_burst("goaway"),
    "connection aborted with 10 streams open": lambda: _fault_burst("drop"),
}


async def run_scenarios() -> None:
    rows = []
    for name, scenario in SCENARIOS.items():
        try:
            a, b = await asyncio.wait_for(scenario(), 60)
        except Exception as exc:  # keep the table going; report what broke
            a = b = f"bench error {type(exc).__name__}: {exc}"
        rows.append((name, a, b))
        print(f".. {name}", flush=True)
    print()
    print("| scenario | aioapns 4.0 (unpatched) | pushgw providers.h2client |")
    print("|---|---|---|")
    for name, a, b in rows:
        print(f"| {name} | {a} | {b} |")


# -- throughput: mock in a child process ---------------------------------------


def _mock_process(pipe: multiprocessing.connection.Connection) -> None:
    async def main() -> None:
        async with ApnsMock() as mock:
            with tempfile.TemporaryDirectory() as tmp:
                ca_file = str(Path(tmp) / "ca.pem")
                mock.write_ca(ca_file)
                pipe.send(
                    (
                        mock.base_url,
                        ca_file,
                        mock.issue_credentials(),
                        mock.register_device(),
                    )
                )
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                loop.add_reader(pipe.fileno(), stop.set)
                await stop.wait()
                pipe.recv()
                stats: dict[str, float] = dict(mock.stats)
                stats["cpu_s"] = round(time.process_time(), 2)
                pipe.send(stats)

    asyncio.run(main())


async def _drive(
    send: Callable[[], Awaitable[str]], n: int, c: int
) -> tuple[float, str]:
    remaining = n
    results: list[str] = []

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            results.append(await send())

    await send()  # connect + JWT outside the timing
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(c)))
    cpu_us = (time.process_time() - cpu) / n * 1e6
    rate = n / (time.perf_counter() - started)
    return rate, f"{tally(results)}; client CPU {cpu_us:.0f} µs/send"


async def throughput(n: int, c: int, with_aioapns: bool) -> None:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_mock_process, args=(child,), daemon=True)
    proc.start()
    try:
        base_url, ca_file, attrs, token = parent.recv()
        r = Rig(ApnsMock.__new__(ApnsMock), ca_file, attrs, token)
        r.mock.base_url = base_url
        ours = r.ours(timeout_s=30)
        rate, summary = await _drive(lambda: our_send(ours, token), n, c)
        print(
            f"pushgw ApnsProvider: {n} sends, concurrency {c}: {rate:,.0f} sends/s ({summary})"
        )
        await ours.aclose()
        if with_aioapns:
            client = make_aioapns(base_url, ca_file, attrs)
            rate, summary = await _drive(lambda: aio_send(client, token, 30), n, c)
            print(
                f"aioapns 4.0 (raw):   {n} sends, concurrency {c}: {rate:,.0f} sends/s ({summary})"
            )
            aio_close(client)
        parent.send("stop")
        print(f"mock stats: {parent.recv()}")
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[1] if __doc__ else None
    )
    parser.add_argument(
        "-n", type=int, default=20000, help="sends for the throughput check"
    )
    parser.add_argument("-c", type=int, default=500, help="concurrent senders")
    parser.add_argument("--throughput-only", action="store_true")
    parser.add_argument("--scenarios-only", action="store_true")
    parser.add_argument("--no-aioapns-throughput", action="store_true")
    args = parser.parse_args()
    logging.getLogger("aioapns").setLevel(logging.CRITICAL)
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.addHandler(FATAL)
    asyncio_log.propagate = False
    if not args.throughput_only:
        asyncio.run(run_scenarios())
        print()
    if not args.scenarios_only:
        asyncio.run(throughput(args.n, args.c, not args.no_aioapns_throughput))


if __name__ == "__main__":
    main()
