"""
Helpers for delivery end-to-end tests: a platform application with many
endpoints subscribed to one topic, set up quickly over keep-alive connections,
and per-device receipt checks against the mocks' control API.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from tests.e2e.harness import Mocks, Server, register_devices

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Fleet:
    """One application, its endpoints (token -> endpoint ARN) and one topic."""

    app_arn: str
    topic_arn: str
    endpoints: dict[str, str]

    @property
    def tokens(self) -> list[str]:
        return list(self.endpoints)


def wait_until(
    check: Callable[[], T | None], *, timeout: float, interval: float = 0.1, what: str
) -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


async def _map(
    client: aiohttp.ClientSession,
    items: Sequence[T],
    call: Callable[[aiohttp.ClientSession, T], Any],
    concurrency: int,
) -> list[Any]:
    """`call(client, item)` for every item, `concurrency` at a time, in order."""
    results: list[Any] = [None] * len(items)
    cursor = iter(range(len(items)))

    async def worker() -> None:
        for index in cursor:
            results[index] = await call(client, items[index])

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def _client(
    base_url: str, headers: dict[str, str] | None = None
) -> aiohttp.ClientSession:
    # aiohttp rather than httpx: the client's own CPU time dominated set-up
    # (about 2.5 ms a request with httpx.AsyncClient, several times less here).
    return aiohttp.ClientSession(
        base_url=base_url,
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=60.0),
        connector=aiohttp.TCPConnector(limit=32),
    )


def build_fleet(
    server: Server,
    mocks: Mocks,
    *,
    valid: int,
    bad_states: Sequence[str] = (),
    concurrency: int = 16,
) -> Fleet:
    """An APNs app (token auth), `valid` good devices plus one per `bad_states`
    entry, each an endpoint subscribed to one new topic."""
    r = server.json(
        "POST",
        "/v1/platform-applications",
        {
            "name": "e2e-fleet",
            "platform": "APNS",
            "attributes": mocks.credentials("APNS"),
        },
    )
    assert r.status_code == 201, r.text
    app_arn = r.json()["platformApplicationArn"]
    r = server.json("POST", "/v1/topics", {"name": "e2e-fleet-topic"})
    assert r.status_code in (200, 201), r.text
    topic_arn = r.json()["topicArn"]

    tokens = [d["token"] for d in register_devices(mocks, "APNS", valid)]
    for state in bad_states:
        tokens.append(mocks.device("APNS", state)["token"])

    async def create(client: aiohttp.ClientSession, token: str) -> str:
        async with client.post(
            f"/v1/platform-applications/{app_arn}/endpoints", json={"token": token}
        ) as r:
            assert r.status == 201, await r.text()
            return str((await r.json())["endpointArn"])

    async def subscribe(client: aiohttp.ClientSession, endpoint_arn: str) -> None:
        async with client.post(
            f"/v1/topics/{topic_arn}/subscriptions",
            json={"protocol": "application", "endpointArn": endpoint_arn},
        ) as r:
            assert r.status in (200, 201), await r.text()

    async def setup() -> list[str]:
        headers = {"Authorization": f"Bearer {server.api_key}"}
        async with _client(server.url, headers) as client:
            arns = await _map(client, tokens, create, concurrency)
            await _map(client, arns, subscribe, concurrency)
        return arns

    arns = asyncio.run(setup())
    return Fleet(app_arn, topic_arn, dict(zip(tokens, arns, strict=True)))


def received_counts(mocks: Mocks, tokens: Sequence[str]) -> dict[str, int]:
    """How many messages each device received, asked of the mocks concurrently."""

    async def count(client: aiohttp.ClientSession, token: str) -> int:
        async with client.get("/received", params={"token": token}) as r:
            r.raise_for_status()
            return len((await r.json())["messages"])

    async def run() -> list[int]:
        async with _client(mocks.control) as client:
            return await _map(client, tokens, count, 16)

    return dict(zip(tokens, asyncio.run(run()), strict=True))


def endpoint_enabled(server: Server, arns: Sequence[str]) -> dict[str, str]:
    """The `Enabled` attribute of each endpoint, read through the JSON API."""

    async def enabled(client: aiohttp.ClientSession, arn: str) -> str:
        async with client.get(f"/v1/endpoints/{arn}") as r:
            assert r.status == 200, await r.text()
            return str((await r.json())["attributes"]["Enabled"])

    async def run() -> list[str]:
        headers = {"Authorization": f"Bearer {server.api_key}"}
        async with _client(server.url, headers) as client:
            return await _map(client, arns, enabled, 16)

    return dict(zip(arns, asyncio.run(run()), strict=True))
