"""
The one pattern every loopback mock platform follows.

A mock binds 127.0.0.1 (port 0 unless told otherwise), reports its base URL,
plays the platform's part in steps 1 and 2 of the five-step flow (issue
credentials, register simulated devices), records what each device received, and
injects faults by device state or by a scripted schedule.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

# Device states every mock understands. A mock answers a send to a device in a
# non-valid state the way its platform answers an invalid/expired token.
DEVICE_STATES = frozenset({"valid", "unregistered", "invalid", "canonical"})

# Fault kinds a schedule rule may name. Each mock maps them to its platform's
# wire answer (e.g. APNs "unavailable" -> 503 ServiceUnavailable).
FAULT_KINDS = frozenset(
    {
        "invalid_token",  # the platform's invalid/unregistered token answer
        "throttle",  # 429 (or the platform's throttle) + Retry-After
        "unavailable",  # 503 + Retry-After
        "server_error",  # 500
        "latency",  # answer normally after `latency_s`
        "drop",  # close the connection without an answer
        "hang",  # never answer (client timeout path)
        "goaway",  # APNs only: GOAWAY with the stream open
        "expire_auth",  # the platform's expired-auth-token answer (401/403)
        "bad_credentials",  # the platform's rejected-credentials answer
        "html_502",  # FCM only: Google front-end HTML 502 page
    }
)


@dataclass(slots=True)
class FaultRule:
    """One scripted fault: applies to tokens with `token_prefix` ("" = all)."""

    kind: str
    token_prefix: str = ""
    count: int | None = None  # times to apply; None = until cleared
    retry_after: float | None = None
    latency_s: float = 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultRule:
        kind = str(data["kind"])
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        count = data.get("count")
        retry_after = data.get("retry_after")
        return cls(
            kind=kind,
            token_prefix=str(data.get("token_prefix", "")),
            count=int(count) if count is not None else None,
            retry_after=float(retry_after) if retry_after is not None else None,
            latency_s=float(data.get("latency_s", 0.0)),
        )


@dataclass(slots=True)
class FaultSchedule:
    """Rules in order; the first that matches a token and has count left fires."""

    rules: list[FaultRule] = field(default_factory=list)

    def take(self, token: str) -> FaultRule | None:
        for rule in self.rules:
            if not token.startswith(rule.token_prefix):
                continue
            if rule.count is not None:
                if rule.count <= 0:
                    continue
                rule.count -= 1
            return rule
        return None

    def clear(self) -> None:
        self.rules.clear()


@dataclass(frozen=True, slots=True)
class Received:
    """One message a simulated device received."""

    token: str
    payload: Any  # parsed JSON, or the raw text/XML body
    headers: dict[str, str]
    at: float

    def to_json(self) -> dict[str, Any]:
        return {"token": self.token, "payload": self.payload, "headers": self.headers}


class MockPlatform(abc.ABC):
    """Base class of the loopback mocks. Use as an async context manager."""

    platform: ClassVar[str]  # "APNS", "GCM", "ADM", "BAIDU", "MPNS", "WNS"

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.base_url = ""
        self.devices: dict[str, str] = {}  # token -> state
        self.received: dict[str, list[Received]] = collections.defaultdict(list)
        self.stats: collections.Counter[str] = collections.Counter()
        self.faults = FaultSchedule()
        self.requests: list[dict[str, Any]] = []  # every request, for assertions
        self.delivered = asyncio.Event()  # set on every delivery (tests await it)

    @abc.abstractmethod
    async def start(self, *, host: str = "127.0.0.1", port: int = 0) -> str:
        """Bind and serve; returns the base URL."""

    @abc.abstractmethod
    async def stop(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @abc.abstractmethod
    def issue_credentials(self, **options: Any) -> dict[str, str]:
        """
        Step 1: new credentials, as the SNS `Attributes` for
        CreatePlatformApplication (PlatformPrincipal, PlatformCredential, extras).
        """

    @abc.abstractmethod
    def register_device(self, *, state: str = "valid") -> str:
        """Step 2: a new simulated device; returns its token (or channel URI)."""

    def set_device_state(self, token: str, state: str) -> None:
        if state not in DEVICE_STATES:
            raise ValueError(f"unknown device state {state!r}")
        self.devices[token] = state

    def record(self, token: str, payload: Any, headers: dict[str, str]) -> None:
        """Record a delivery to a device and count it."""
        self.received[token].append(
            Received(token=token, payload=payload, headers=headers, at=self.clock())
        )
        self.stats["delivered"] += 1
        self.delivered.set()

    def received_for(self, token: str) -> list[Received]:
        return list(self.received.get(token, []))

    def reset(self) -> None:
        """Forget devices' messages, stats, faults and requests (keep credentials)."""
        self.received.clear()
        self.stats.clear()
        self.faults.clear()
        self.requests.clear()
