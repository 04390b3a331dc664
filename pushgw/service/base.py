"""Shared state and helpers of the service mixins."""

from __future__ import annotations

import base64
import binascii
import functools
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from pushgw import arn as arns
from pushgw import netguard
from pushgw.errors import (
    ForeignAccountError,
    InvalidParameterError,
    NotFoundApiError,
    ValidationError,
)
from pushgw.model import Message, Platform, PlatformApplication
from pushgw.sns import events

if TYPE_CHECKING:
    from pushgw.arn import ArnBuilder
    from pushgw.store.base import EndpointEnqueued, JobClaim, Store

PAGE_SIZE = 100  # [SPEC] exactly 100 per page (SNS_API §3)


class LocalDelivery(Protocol):
    """
    This process's dispatcher as a publish to an endpoint sees it: the job is
    stored leased to it (`reserve`) and handed over in memory (`run_claimed`),
    or, if the store refused, its slot given back (`unreserve`).
    """

    def reserve(self) -> JobClaim | None: ...

    def unreserve(self) -> None: ...

    def run_claimed(self, message: Message, enqueued: EndpointEnqueued) -> None: ...


class ServiceBase:
    """Holds the store, the ARN builder and the clock; no HTTP, no providers."""

    def __init__(
        self,
        *,
        store: Store,
        arns: ArnBuilder,
        clock: Callable[[], float] = time.time,
        on_enqueue: Callable[[Message], None] | None = None,
        delivery: LocalDelivery | None = None,
        channel_check: Callable[[Platform, str], str | None] | None = None,
        url_check: Callable[[str], str | None] | None = None,
    ) -> None:
        self.store = store
        self.arns = arns
        self.clock = clock
        # Wakes the local dispatcher after a publish (other nodes poll / LISTEN).
        self.on_enqueue = on_enqueue or (lambda _message: None)
        # Runs endpoint publishes in this process without a claim round trip.
        self.delivery = delivery
        # WNS/MPNS tokens are URLs: this refuses ones outside the providers'
        # domains (SSRF guard); returns the reason, or None when allowed.
        self.channel_check = channel_check
        # HTTP/HTTPS subscriber URLs: the same guard (netguard); the reason a
        # URL is refused, or None. The default refuses private addresses.
        self.url_check = url_check or functools.partial(
            netguard.check_subscriber_url, allow_private=False
        )

    @property
    def account(self) -> str:
        return self.arns.account

    # -- request helpers -------------------------------------------------------
    @staticmethod
    def required(value: str | None, member: str) -> str:
        """A modelled-required member; absent → the AWS validation-layer error."""
        if value is None:
            raise ValidationError(
                f"1 validation error detected: Value null at '{member}' failed to"
                " satisfy constraint: Member must not be null"
            )
        return value

    @staticmethod
    def encode_token(kind: str, seq: int) -> str:
        return base64.urlsafe_b64encode(f"{kind}:{seq}".encode()).decode()

    @staticmethod
    def decode_token(token: str | None, kind: str) -> int:
        """The `seq` a NextToken stands for; a forged or foreign one is refused."""
        if token is None or token == "":
            return 0
        try:
            text = base64.urlsafe_b64decode(token.encode()).decode()
            got_kind, _, seq = text.partition(":")
            if got_kind == kind and seq.isdigit():
                return int(seq)
        except (binascii.Error, UnicodeError, ValueError):
            pass
        raise InvalidParameterError("Invalid parameter: NextToken")

    def next_token(self, kind: str, after: int | None) -> str | None:
        return self.encode_token(kind, after) if after is not None else None

    def own_arn(self, value: str, *, param: str, action: str) -> arns.ParsedArn:
        """
        Parse an ARN that must name a resource of this gateway: another region's
        ARN is an invalid parameter (what topic actions have always answered),
        another account's is refused as SNS refuses it (`ForeignAccountError`).
        """
        parsed = arns.parse(value, param=param)
        if parsed.region != self.arns.region:
            raise InvalidParameterError(f"Invalid parameter: {param}")
        if parsed.account != self.account:
            raise ForeignAccountError(
                action=action, arn=value, principal=self.arns.root
            )
        return parsed

    # -- lookups with SNS's not-found errors -----------------------------------
    async def app_or_404(self, arn: str | None) -> PlatformApplication:
        value = self.required(arn, "platformApplicationArn")
        arns.parse_app(value)
        app = await self.store.get_app(value)
        if app is None:
            raise NotFoundApiError("PlatformApplication does not exist")
        return app

    # -- events (SNS_API §8.4) -------------------------------------------------
    async def emit_app_event(
        self, app: PlatformApplication, attribute: str, payload: Mapping[str, object]
    ) -> None:
        """Publish an application event to the topic named in `attribute`, if any."""
        message = await events.publish_event(
            self.store, app, attribute, payload, now=self.clock()
        )
        if message is not None:
            self.on_enqueue(message)
