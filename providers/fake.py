"""
In-process fake provider for tests: records what it was asked to send and
answers by token prefix (the strings are used verbatim in tests; grep for them).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pushgw.model import Endpoint, Platform
from pushgw.providers.base import Outcome, Provider, RenderedMessage, SendResult

BEHAVIOURS: dict[str, SendResult] = {
    "unregistered-": SendResult(Outcome.INVALID_TOKEN, "410 Unregistered", status=410),
    "throttle-": SendResult(Outcome.RETRY, "429 TooManyRequests", 1.0, status=429),
    "down-": SendResult(Outcome.RETRY, "503 ServiceUnavailable", status=503),
    "badpayload-": SendResult(Outcome.PERMANENT, "400 PayloadEmpty", status=400),
    "badcreds-": SendResult(
        Outcome.BAD_CREDENTIALS, "403 InvalidProviderToken", status=403
    ),
}


@dataclass(frozen=True, slots=True)
class FakeDelivery:
    app_arn: str
    endpoint_arn: str
    token: str
    message: RenderedMessage


class FakeProvider(Provider):
    """Records deliveries in `sent` (shared per test through `FakeProvider.sent`)."""

    platforms = frozenset(Platform)
    settings_name = "fake"
    sent: list[FakeDelivery] = []  # noqa: RUF012 - deliberately shared across instances
    delivered = asyncio.Event()

    async def _send_once(
        self, endpoint: Endpoint, message: RenderedMessage
    ) -> SendResult:
        # Through `Provider.send`, like a real adapter: a crash must escape it.
        if endpoint.token.startswith("crash-"):  # a bug in adapter code
            raise RuntimeError("adapter bug while building the request")
        for prefix, result in BEHAVIOURS.items():
            if endpoint.token.startswith(prefix):
                return result
        if endpoint.token.startswith("canonical-"):
            new = "renewed-" + endpoint.token.removeprefix("canonical-")
            self._record(endpoint, message)
            return SendResult(Outcome.CANONICAL_TOKEN, "200 canonical", new_token=new)
        self._record(endpoint, message)
        return SendResult.delivered()

    def _record(self, endpoint: Endpoint, message: RenderedMessage) -> None:
        FakeProvider.sent.append(
            FakeDelivery(self.app.arn, endpoint.arn, endpoint.token, message)
        )
        FakeProvider.delivered.set()

    @classmethod
    def reset(cls) -> None:
        cls.sent = []
        cls.delivered = asyncio.Event()
