"""Platform endpoints (SNS_API §5), with the idempotency rules of §5.1."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Mapping

from pushgw import arn as arns
from pushgw.errors import (
    ConflictError,
    InvalidParameterError,
    NotFoundApiError,
    NotFoundError,
    missing_attributes,
)
from pushgw.model import Endpoint, Platform, PlatformApplication
from pushgw.service.base import PAGE_SIZE, ServiceBase
from pushgw.service.types import Listing
from pushgw.sns import events

ENDPOINT_ATTRIBUTES = frozenset({"CustomUserData", "Enabled", "Token"})
BAIDU_ATTRIBUTES = frozenset({"ChannelId", "UserId"})
MAX_CUSTOM_USER_DATA = 2048  # bytes, UTF-8
MAX_TOKEN = 4096
SEARCH_LIMIT = 1000  # endpoints per page of search_endpoints, at most
APPLE_TOKEN = re.compile(r"^(?:[0-9a-f]{2}){8,100}$")  # even-length hex, ≤ 200 chars


class EndpointsMixin(ServiceBase):
    async def create_platform_endpoint(
        self,
        *,
        app_arn: str | None,
        token: str | None,
        custom_user_data: str | None,
        attributes: Mapping[str, str] | None,
    ) -> str:
        app = await self.app_or_404(app_arn)
        token = self.required(token, "token")
        supplied = dict(attributes or {})
        _check_names(app.platform, supplied)
        if custom_user_data is not None and "CustomUserData" not in supplied:
            # Both given: the Attributes value wins (SNS_API §5.1).
            supplied["CustomUserData"] = custom_user_data
        if "Token" in supplied:
            token = supplied["Token"]
        token = self._check_token(app, token)
        supplied.pop("Token", None)
        _check_values(supplied)
        extras = _baidu_attributes(app.platform, token, supplied)
        existing = await self.store.get_endpoint_by_token(app.arn, token)
        if existing is None:
            endpoint = Endpoint(
                arn=self.arns.endpoint(app.platform, app.name),
                app_arn=app.arn,
                token=token,
                enabled=supplied.get("Enabled", "true") == "true",
                custom_user_data=supplied.get("CustomUserData"),
                attributes=extras,
                created_at=self.clock(),
            )
            try:
                await self.store.insert_endpoint(endpoint)
            except ConflictError:
                # Another request registered the token meanwhile: same rules.
                existing = await self.store.get_endpoint_by_token(app.arn, token)
                if existing is None:
                    raise
            else:
                await self._endpoint_event(app, "EventEndpointCreated", endpoint)
                return endpoint.arn
        return _idempotent(existing, supplied)

    async def get_endpoint_attributes(self, arn: str | None) -> dict[str, str]:
        endpoint = await self._endpoint_or_404(arn)
        return endpoint.public_attributes()

    async def set_endpoint_attributes(
        self, arn: str | None, attributes: Mapping[str, str] | None
    ) -> None:
        value = self.required(arn, "endpointArn")
        arns.parse_endpoint(value)
        if not attributes:
            raise missing_attributes()
        endpoint = await self._endpoint_or_404(value)
        app = await self.store.get_app(endpoint.app_arn)
        platform = app.platform if app else Platform.GCM
        supplied = dict(attributes)
        _check_names(platform, supplied)
        _check_values(supplied)
        token = endpoint.token
        if "Token" in supplied:
            token = (
                self._check_token(app, supplied["Token"]) if app else supplied["Token"]
            )
        extras = dict(endpoint.attributes)
        extras.update({k: supplied[k] for k in BAIDU_ATTRIBUTES & supplied.keys()})
        updated = dataclasses.replace(
            endpoint,
            token=token,
            enabled=(
                supplied["Enabled"] == "true"
                if "Enabled" in supplied
                else endpoint.enabled
            ),
            custom_user_data=supplied.get("CustomUserData", endpoint.custom_user_data),
            attributes=extras,
        )
        try:
            await self.store.update_endpoint(updated)
        except NotFoundError:
            raise NotFoundApiError("Endpoint does not exist") from None
        except ConflictError:
            other = await self.store.get_endpoint_by_token(endpoint.app_arn, token)
            raise InvalidParameterError(
                f"Invalid parameter: Token Reason: Endpoint"
                f" {other.arn if other else ''} already exists with the same Token"
            ) from None
        if app is not None and updated != endpoint:
            await self._endpoint_event(app, "EventEndpointUpdated", updated)

    async def list_endpoints_by_platform_application(
        self, app_arn: str | None, next_token: str | None
    ) -> Listing[Endpoint]:
        app = await self.app_or_404(app_arn)
        after = self.decode_token(next_token, "endpoints")
        page = await self.store.list_endpoints(app.arn, after=after, limit=PAGE_SIZE)
        return Listing(page.items, self.next_token("endpoints", page.next_after))

    async def search_endpoints(
        self,
        *,
        app_arn: str | None,
        token_prefix: str | None = None,
        custom_user_data: str | None = None,
        limit: str | None = None,
        next_token: str | None = None,
    ) -> Listing[Endpoint]:
        """
        Not an SNS action (the console's, and the CLI's): an application's
        endpoints whose token starts with `token_prefix` and whose CustomUserData
        is `custom_user_data` (either may be empty: no condition), in token
        order, `limit` (1..1000, default 100) a page. The NextToken is the last
        token seen, so every page is one index range however large the app.
        """
        app = await self.app_or_404(app_arn)
        size = _search_limit(limit)
        page = await self.store.search_endpoints(
            app.arn,
            token_prefix=token_prefix or "",
            custom_user_data=custom_user_data or None,
            after=_decode_search_token(next_token),
            limit=size,
        )
        following = page.next_after
        return Listing(
            page.items,
            None if following is None else _encode_search_token(following),
        )

    async def delete_endpoint(self, arn: str | None) -> None:
        value = self.required(arn, "endpointArn")
        arns.parse_endpoint(value)
        endpoint = await self.store.get_endpoint(value)
        if endpoint is None:
            return  # idempotent (SNS_API §5.4)
        await self.store.delete_endpoint(value)
        app = await self.store.get_app(endpoint.app_arn)
        if app is not None:
            await self._endpoint_event(app, "EventEndpointDeleted", endpoint)

    # -- helpers ---------------------------------------------------------------
    async def _endpoint_or_404(self, arn: str | None) -> Endpoint:
        value = self.required(arn, "endpointArn")
        arns.parse_endpoint(value)
        endpoint = await self.store.get_endpoint(value)
        if endpoint is None:
            raise NotFoundApiError("Endpoint does not exist")
        return endpoint

    def _check_token(self, app: PlatformApplication, token: str) -> str:
        if token == "":
            raise InvalidParameterError(
                "Invalid parameter: Token Reason: cannot be empty"
            )
        if len(token) > MAX_TOKEN or any(c.isspace() for c in token):
            raise InvalidParameterError(
                "Invalid parameter: Token Reason: Token is not of correct length"
            )
        if app.platform.is_apple:
            # APNs tokens are stored and returned lowercase (SNS_API §5.1).
            token = token.lower()
            if not APPLE_TOKEN.match(token):
                raise InvalidParameterError(
                    "Invalid parameter: Token Reason: iOS device tokens must be an"
                    " even number of hexadecimal characters (at most 200)"
                )
        if app.platform in (Platform.WNS, Platform.MPNS) and self.channel_check:
            reason = self.channel_check(app.platform, token)
            if reason is not None:
                raise InvalidParameterError(
                    f"Invalid parameter: Token Reason: {reason}"
                )
        return token

    async def _endpoint_event(
        self, app: PlatformApplication, attribute: str, endpoint: Endpoint
    ) -> None:
        payload = events.endpoint_event(app, endpoint, attribute, now=self.clock())
        await self.emit_app_event(app, attribute, payload)


def _check_names(platform: Platform, supplied: Mapping[str, str]) -> None:
    allowed = ENDPOINT_ATTRIBUTES
    if platform is Platform.BAIDU:
        allowed = allowed | BAIDU_ATTRIBUTES
    for key in supplied:
        if key not in allowed:
            raise InvalidParameterError(
                f"Invalid parameter: Attributes Reason: Invalid attribute name: {key}"
            )


def _check_values(supplied: Mapping[str, str]) -> None:
    data = supplied.get("CustomUserData")
    if data is not None and len(data.encode()) > MAX_CUSTOM_USER_DATA:
        raise InvalidParameterError(
            "Invalid parameter: Attributes Reason: Invalid value for attribute:"
            " CustomUserData: must be at most 2048 bytes long in UTF-8 encoding"
        )
    enabled = supplied.get("Enabled")
    if enabled is not None and enabled not in ("true", "false"):
        raise InvalidParameterError(
            "Invalid parameter: Attributes Reason: Invalid value for attribute:"
            " Enabled: must be true or false"
        )


def _baidu_attributes(
    platform: Platform, token: str, supplied: Mapping[str, str]
) -> dict[str, str]:
    if platform is not Platform.BAIDU:
        return {}
    for key in ("ChannelId", "UserId"):
        if not supplied.get(key):
            raise InvalidParameterError(
                f"Invalid parameter: Attributes Reason: {key} is required for BAIDU"
                " endpoints"
            )
    if supplied["ChannelId"] != token:
        raise InvalidParameterError(
            "Invalid parameter: Token Reason: must be the same as the ChannelId"
            " attribute"
        )
    return {"ChannelId": supplied["ChannelId"], "UserId": supplied["UserId"]}


def _idempotent(existing: Endpoint, supplied: Mapping[str, str]) -> str:
    """
    Rules 2–4 of SNS_API §5.1: the existing ARN when every *supplied* attribute
    equals the stored one (attributes not supplied are not compared), else the
    "different attributes" error naming the existing endpoint.
    """
    stored = existing.public_attributes()
    for key, value in supplied.items():
        if stored.get(key) != value:
            raise InvalidParameterError(
                f"Invalid parameter: Token Reason: Endpoint {existing.arn} already"
                " exists with the same Token, but different attributes."
            )
    return existing.arn


_SEARCH_TOKEN = "search:"


def _encode_search_token(token: str) -> str:
    return base64.urlsafe_b64encode((_SEARCH_TOKEN + token).encode()).decode()


def _decode_search_token(value: str | None) -> str | None:
    """The token a search NextToken stands for; a forged or foreign one is refused."""
    if not value:
        return None
    try:
        text = base64.urlsafe_b64decode(value.encode()).decode()
    except (binascii.Error, UnicodeError, ValueError):
        text = ""
    if not text.startswith(_SEARCH_TOKEN):
        raise InvalidParameterError("Invalid parameter: NextToken")
    return text[len(_SEARCH_TOKEN) :]


def _search_limit(value: str | None) -> int:
    if value is None or value == "":
        return PAGE_SIZE
    if value.isascii() and value.isdigit() and 1 <= int(value) <= SEARCH_LIMIT:
        return int(value)
    raise InvalidParameterError(
        f"Invalid parameter: limit Reason: must be an integer from 1 to {SEARCH_LIMIT}"
    )
