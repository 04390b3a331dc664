"""Platform applications (SNS_API §4)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from pushgw import arn as arns
from pushgw.errors import InvalidParameterError, missing_attributes
from pushgw.model import (
    APP_SETTABLE_ATTRIBUTES,
    CREDENTIAL_ATTRIBUTES,
    Platform,
    PlatformApplication,
)
from pushgw.service import credentials
from pushgw.service.base import PAGE_SIZE, ServiceBase
from pushgw.service.types import Listing

APP_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
EVENT_ATTRIBUTES = (
    "EventEndpointCreated",
    "EventEndpointDeleted",
    "EventEndpointUpdated",
    "EventDeliveryFailure",
)
# Read-only attributes derived from the credentials.
DERIVED_ATTRIBUTES = frozenset({"AuthenticationMethod", "AppleCertificateExpiryDate"})


class AppsMixin(ServiceBase):
    async def create_platform_application(
        self,
        *,
        name: str | None,
        platform: str | None,
        attributes: Mapping[str, str] | None,
    ) -> str:
        if not attributes:
            raise missing_attributes()
        name = self.required(name, "name")
        platform_value = self.required(platform, "platform")
        _check_app_name(name)
        try:
            plat = Platform(platform_value)
        except ValueError:
            raise InvalidParameterError(
                f"Invalid parameter: Platform Reason: {platform_value} is not supported"
            ) from None
        _check_pairing(plat, attributes)
        public = await self._public_attributes(attributes)
        principal = attributes.get("PlatformPrincipal", "")
        credential = attributes.get("PlatformCredential", "")
        public.update(
            credentials.validate(
                plat,
                principal=principal,
                credential=credential,
                attributes=public,
                now=self.clock(),
            )
        )
        arn = self.arns.app(plat, name)
        # [SPEC] the same Name+Platform again returns the same ARN and replaces the
        # credentials and attributes; endpoints are kept.
        old = await self.store.get_app(arn)
        await self.store.put_app(
            PlatformApplication(
                arn=arn,
                name=name,
                platform=plat,
                principal=principal,
                credential=credential,
                enabled=True,
                attributes=public,
                created_at=old.created_at if old else self.clock(),
            )
        )
        return arn

    async def get_platform_application_attributes(
        self, arn: str | None
    ) -> dict[str, str]:
        app = await self.app_or_404(arn)
        return app.public_attributes()

    async def set_platform_application_attributes(
        self, arn: str | None, attributes: Mapping[str, str] | None
    ) -> None:
        value = self.required(arn, "platformApplicationArn")
        arns.parse_app(value)  # checked before the empty-attributes check (§4.2)
        if not attributes:
            raise missing_attributes()
        app = await self.app_or_404(value)
        public = dict(app.attributes)
        public.update(await self._public_attributes(attributes))
        principal = attributes.get("PlatformPrincipal", app.principal)
        credential = attributes.get("PlatformCredential", app.credential)
        enabled = app.enabled
        if "Enabled" in attributes:
            enabled = _bool_attribute("Enabled", attributes["Enabled"])
        if CREDENTIAL_ATTRIBUTES & attributes.keys():
            for key in DERIVED_ATTRIBUTES:
                public.pop(key, None)
            public.update(
                credentials.validate(
                    app.platform,
                    principal=principal,
                    credential=credential,
                    attributes=public,
                    now=self.clock(),
                )
            )
            enabled = True  # new valid credentials re-enable the app [INFERENCE]
        await self.store.update_app(
            dataclasses.replace(
                app,
                principal=principal,
                credential=credential,
                enabled=enabled,
                attributes=public,
            )
        )

    async def list_platform_applications(
        self, next_token: str | None
    ) -> Listing[PlatformApplication]:
        after = self.decode_token(next_token, "apps")
        page = await self.store.list_apps(after=after, limit=PAGE_SIZE)
        return Listing(page.items, self.next_token("apps", page.next_after))

    async def delete_platform_application(self, arn: str | None) -> None:
        value = self.required(arn, "platformApplicationArn")
        arns.parse_app(value)
        await self.store.delete_app(value)  # idempotent [INFERENCE]

    async def _public_attributes(self, attributes: Mapping[str, str]) -> dict[str, str]:
        """Validate settable attributes; return the non-credential ones."""
        public: dict[str, str] = {}
        for key, value in attributes.items():
            if key not in APP_SETTABLE_ATTRIBUTES:
                raise InvalidParameterError(
                    f"Invalid parameter: Attributes Reason: Invalid attribute name: {key}"
                )
            if key in CREDENTIAL_ATTRIBUTES or key == "Enabled":
                continue
            if key in EVENT_ATTRIBUTES and value:
                await self._check_event_topic(key, value)
            if key == "SuccessFeedbackSampleRate" and not (
                value.isdigit() and 0 <= int(value) <= 100
            ):
                raise InvalidParameterError(
                    "Invalid parameter: Attributes Reason: SuccessFeedbackSampleRate"
                    " must be an integer from 0 to 100"
                )
            public[key] = value
        return public

    async def _check_event_topic(self, key: str, value: str) -> None:
        try:
            parsed = arns.parse(value, param=key)
        except InvalidParameterError:
            parsed = None
        if parsed is None or "/" in parsed.resource:
            raise InvalidParameterError(
                f"Invalid parameter: Attributes Reason: {key} has invalid ARN format"
            )
        if await self.store.get_topic(value) is None:
            raise InvalidParameterError(
                f"Invalid parameter: Attributes Reason: {key} is not an existing Topic"
            )


def _check_app_name(name: str) -> None:
    if name == "":
        raise InvalidParameterError("Invalid parameter:  Reason: cannot be empty")
    if len(name) > 256:
        raise InvalidParameterError(
            f"Invalid parameter: {name} Reason: must be at most 256 characters long"
        )
    if not APP_NAME.match(name):
        raise InvalidParameterError(
            f"Invalid parameter: {name} Reason: must contain only characters 'a'-'z',"
            " 'A'-'Z', '0'-'9', '_', '-', and '.'"
        )


def _check_pairing(platform: Platform, attributes: Mapping[str, str]) -> None:
    has_principal = "PlatformPrincipal" in attributes
    has_credential = "PlatformCredential" in attributes
    if has_principal and not has_credential:
        raise InvalidParameterError(
            "Invalid parameter: Attributes Reason: PlatformPrincipal attribute"
            " provided without PlatformCredential"
        )
    if has_credential and not has_principal and platform is not Platform.GCM:
        raise InvalidParameterError(
            "Invalid parameter: Attributes Reason: PlatformCredential attribute"
            " provided without PlatformPrincipal"
        )
    if not has_credential:
        raise InvalidParameterError(
            "Invalid parameter: Attributes Reason: PlatformCredential attribute is"
            " required"
        )


def _bool_attribute(name: str, value: str) -> bool:
    if value not in ("true", "false"):
        raise InvalidParameterError(
            f"Invalid parameter: Attributes Reason: Invalid value for attribute:"
            f" {name}: must be true or false"
        )
    return value == "true"
