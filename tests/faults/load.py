"""
Load and observation for fault scenarios, each on a background thread so that a
sync test can inject a fault meanwhile:

* `PublishStream`: JSON-API publishes to individual endpoints at a steady rate,
  each with a unique body, every answer recorded (accepted = 200 + messageId).
* `ReadyzProbe`: polls `/readyz` with a short client timeout, every answer kept.
* `Receipts`: which (device token, message body) pairs are owed, and which the
  mocks say have arrived; sweeps ask only about devices still owed something.
* `tally`: every body each device received, for losses and duplicates.
"""

from __future__ import annotations

import asyncio
import collections
import json
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx

from tests.e2e.harness import Mocks, Server

PUBLISH_TIMEOUT_S = 15.0  # the daemon answers within ~10 s even mid-outage


@dataclass(slots=True)
class Publish:
    """One publish of the stream and its answer."""

    index: int
    token: str
    endpoint_arn: str
    body: str
    sent: float  # time.monotonic()
    done: float | None = None
    status: int | None = None
    message_id: str | None = None
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status == 200 and bool(self.message_id)

    @property
    def outcome(self) -> str:
        if self.status is not None:
            return str(self.status)
        return self.error or "pending"


class _LoopThread:
    """A thread running one coroutine on its own asyncio loop."""

    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.failure: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # reported by join(); the test must see it
            self.failure = exc

    async def _run(self) -> None:
        raise NotImplementedError

    def halt(self) -> None:
        """Ask the thread to stop; do not wait."""
        self._stop.set()

    def join(self, timeout: float) -> None:
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"{self._thread.name} did not stop in {timeout:g} s")
        if self.failure is not None:
            raise AssertionError(f"{self._thread.name} crashed: {self.failure!r}")


class PublishStream(_LoopThread):
    """`rate` publishes a second, round-robin over `targets` (token, endpoint
    ARN), not waiting for answers (a slow answer does not slow the stream)."""

    def __init__(
        self,
        server: Server,
        targets: Sequence[tuple[str, str]],
        *,
        rate: float = 20.0,
        prefix: str = "stream",
        timeout_s: float = PUBLISH_TIMEOUT_S,
    ) -> None:
        super().__init__("publish-stream")
        assert targets, "a stream needs targets"
        self.server = server
        self.targets = list(targets)
        self.rate = rate
        self.prefix = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.timeout_s = timeout_s
        self.records: list[Publish] = []
        self.stopped_at: float | None = None

    async def _run(self) -> None:
        async with aiohttp.ClientSession(
            base_url=self.server.url,
            headers={"Authorization": f"Bearer {self.server.api_key}"},
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            connector=aiohttp.TCPConnector(limit=0),
        ) as client:
            tasks: set[asyncio.Task[None]] = set()
            due = time.monotonic()
            index = 0
            while not self._stop.is_set():
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(min(wait, 0.05))
                    continue
                token, arn = self.targets[index % len(self.targets)]
                record = Publish(
                    index, token, arn, f"{self.prefix}-{index:05d}", time.monotonic()
                )
                self.records.append(record)
                task = asyncio.create_task(self._one(client, record))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                index += 1
                due += 1.0 / self.rate
            self.stopped_at = time.monotonic()
            if tasks:
                await asyncio.wait(tasks, timeout=self.timeout_s + 5)

    async def _one(self, client: aiohttp.ClientSession, record: Publish) -> None:
        try:
            async with client.post(
                "/v1/publish",
                json={"targetArn": record.endpoint_arn, "message": record.body},
            ) as r:
                record.status = r.status
                if r.status == 200:
                    record.message_id = str((await r.json()).get("messageId") or "")
                else:
                    record.error = (await r.text())[:200]
        except TimeoutError:
            record.error = "timeout"
        except aiohttp.ClientError as exc:
            record.error = f"{type(exc).__name__}"
        finally:
            record.done = time.monotonic()

    def stop(self) -> None:
        """Stop publishing; wait for the answers still due (bounded)."""
        self.join(self.timeout_s + 10)

    # -- views -------------------------------------------------------------
    def accepted(self, *, sent_before: float | None = None) -> list[Publish]:
        return [
            r
            for r in list(self.records)
            if r.accepted and (sent_before is None or r.sent <= sent_before)
        ]

    def unanswered(self, *, sent_before: float) -> int:
        return sum(
            1 for r in list(self.records) if r.sent <= sent_before and r.done is None
        )

    def outcomes(self) -> dict[str, int]:
        return dict(collections.Counter(r.outcome for r in self.records))


@dataclass(frozen=True, slots=True)
class Probe:
    started: float
    finished: float
    status: int | None  # None: no HTTP answer (timeout / connection error)
    detail: str


class ReadyzProbe(_LoopThread):
    """GET /readyz every `interval_s`, each with a `timeout_s` client timeout."""

    def __init__(
        self, base_url: str, *, interval_s: float = 0.25, timeout_s: float = 3.0
    ) -> None:
        super().__init__("readyz-probe")
        self.url = base_url + "/readyz"
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.samples: list[Probe] = []

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    r = await client.get(self.url)
                    status: int | None = r.status_code
                    detail = r.text[:300]
                except httpx.TimeoutException:
                    status, detail = None, "timeout"
                except httpx.HTTPError as exc:
                    status, detail = None, type(exc).__name__
                self.samples.append(Probe(started, time.monotonic(), status, detail))
                await asyncio.sleep(
                    max(0.0, started + self.interval_s - time.monotonic())
                )

    def stop(self) -> None:
        self.join(self.timeout_s + 5)

    def between(self, start: float, end: float) -> list[Probe]:
        return [p for p in list(self.samples) if start <= p.started <= end]

    def saw(self, status: int, start: float, end: float) -> bool:
        return any(p.status == status for p in self.between(start, end))

    def first_ok_after(self, t: float) -> float | None:
        """Seconds from `t` to the end of the first 200 answer asked after `t`."""
        for p in list(self.samples):
            if p.started >= t and p.status == 200:
                return p.finished - t
        return None

    def summary(self, start: float, end: float) -> dict[str, int]:
        return dict(
            collections.Counter(
                str(p.status) if p.status is not None else p.detail
                for p in self.between(start, end)
            )
        )


def alert_of(payload: Any) -> str:
    """The text an APNs payload carries (`aps.alert`), or the payload as JSON."""
    if isinstance(payload, dict):
        aps = payload.get("aps")
        if isinstance(aps, dict) and isinstance(aps.get("alert"), str):
            return str(aps["alert"])
    return json.dumps(payload, sort_keys=True)


async def _fetch(
    mocks: Mocks, tokens: Sequence[str], concurrency: int = 16
) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    cursor = iter(tokens)

    async def worker(client: aiohttp.ClientSession) -> None:
        for token in cursor:
            async with client.get("/received", params={"token": token}) as r:
                r.raise_for_status()
                messages = (await r.json())["messages"]
                out[token] = [alert_of(m.get("payload")) for m in messages]

    async with aiohttp.ClientSession(
        base_url=mocks.control,
        timeout=aiohttp.ClientTimeout(total=60),
        connector=aiohttp.TCPConnector(limit=concurrency),
    ) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return out


def tally(mocks: Mocks, tokens: Iterable[str]) -> dict[str, collections.Counter[str]]:
    """Every body each device received, with counts."""
    got = asyncio.run(_fetch(mocks, list(tokens)))
    return {t: collections.Counter(bodies) for t, bodies in got.items()}


class Receipts:
    """(token, body) pairs owed, and those seen at the mocks so far."""

    def __init__(self, mocks: Mocks) -> None:
        self.mocks = mocks
        self.owed: dict[str, set[str]] = collections.defaultdict(set)
        self.seen: dict[str, set[str]] = collections.defaultdict(set)

    def expect(self, token: str, body: str) -> None:
        self.owed[token].add(body)

    def expect_all(self, pairs: Iterable[tuple[str, str]]) -> None:
        for token, body in pairs:
            self.expect(token, body)

    def missing(self) -> list[tuple[str, str]]:
        return [
            (t, b) for t, bodies in self.owed.items() for b in bodies - self.seen[t]
        ]

    def sweep(self) -> int:
        """Ask the mocks about every device still owed something; how many
        pairs are still missing after."""
        tokens = [t for t, bodies in self.owed.items() if bodies - self.seen[t]]
        if tokens:
            for token, bodies in asyncio.run(_fetch(self.mocks, tokens)).items():
                self.seen[token].update(bodies)
        return len(self.missing())


def delivered_total(mocks: Mocks) -> int:
    return int(mocks.stats()["APNS"].get("delivered", 0))


def disabled_endpoints(server: Server, app_arn: str) -> list[str]:
    """Endpoints of the app with Enabled=false (paged through ListEndpoints)."""
    disabled: list[str] = []
    token: str | None = None
    with httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=30.0,
    ) as client:
        while True:
            r = client.get(
                f"/v1/platform-applications/{app_arn}/endpoints",
                params={"nextToken": token} if token else None,
            )
            assert r.status_code == 200, r.text
            page = r.json()
            disabled += [
                e["endpointArn"]
                for e in page["endpoints"]
                if e["attributes"].get("Enabled") != "true"
            ]
            token = page.get("nextToken")
            if not token:
                return disabled


def app_enabled(server: Server, app_arn: str) -> str:
    r = server.json("GET", f"/v1/platform-applications/{app_arn}")
    assert r.status_code == 200, r.text
    return str(r.json()["attributes"].get("Enabled"))
