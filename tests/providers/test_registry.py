"""The registry: an adapter per SNS platform, and the config table it reads."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pushgw.config import DEFAULT_PROVIDERS
from pushgw.model import Platform, PlatformApplication
from pushgw.providers.adm import AdmProvider
from pushgw.providers.apns import ApnsProvider
from pushgw.providers.baidu import BaiduProvider
from pushgw.providers.base import Provider, ProviderSettings
from pushgw.providers.fcm import FcmProvider
from pushgw.providers.gcm_legacy import GcmLegacyProvider
from pushgw.providers.mpns import MpnsProvider
from pushgw.providers.registry import ADAPTERS, adapter_for, create_provider
from pushgw.providers.wns import WnsProvider


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


SERVICE_ACCOUNT = json.dumps(
    {
        "type": "service_account",
        "project_id": "p",
        "client_email": "sa@p.iam.gserviceaccount.com",
        "private_key": _pem(
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ),
    }
)
P8 = _pem(ec.generate_private_key(ec.SECP256R1()))
APPLE_ATTRIBUTES = {"ApplePlatformTeamID": "TEAM123456", "ApplePlatformBundleID": "b"}


def make_app(
    platform: Platform,
    *,
    principal: str = "principal",
    credential: str = "credential",
    attributes: dict[str, str] | None = None,
) -> PlatformApplication:
    return PlatformApplication(
        arn=f"arn:aws:sns:us-east-1:123456789012:app/{platform.value}/r",
        name="r",
        platform=platform,
        principal=principal,
        credential=credential,
        attributes=attributes or {},
    )


def test_every_platform_has_an_adapter() -> None:
    """Each SNS platform resolves to an adapter that serves it."""
    assert set(Platform) == set(ADAPTERS)
    for platform in Platform:
        cls = adapter_for(make_app(platform, credential=SERVICE_ACCOUNT))

        assert platform in cls.platforms


@pytest.mark.parametrize(
    ("platform", "credential", "expected", "table"),
    [
        (Platform.APNS, P8, ApnsProvider, "apns"),
        (Platform.MACOS_SANDBOX, P8, ApnsProvider, "apns"),
        (Platform.GCM, SERVICE_ACCOUNT, FcmProvider, "fcm"),
        (Platform.GCM, "AIzaSyLegacyServerKey", GcmLegacyProvider, "gcm_legacy"),
        (Platform.ADM, "secret", AdmProvider, "adm"),
        (Platform.BAIDU, "secret", BaiduProvider, "baidu"),
        (Platform.MPNS, "", MpnsProvider, "mpns"),
        (Platform.WNS, "secret", WnsProvider, "wns"),
    ],
)
async def test_create_reads_the_adapters_own_table(
    platform: Platform, credential: str, expected: type[Provider], table: str
) -> None:
    """`create_provider` builds the adapter with the settings of its own table."""
    asked: list[str] = []

    def settings_for(name: str) -> ProviderSettings:
        asked.append(name)
        return ProviderSettings(base_url="https://127.0.0.1:9")

    app = make_app(
        platform,
        credential=credential,
        attributes=APPLE_ATTRIBUTES if platform.is_apple else None,
    )
    provider = await create_provider(app, settings_for)
    await provider.aclose()

    assert expected is type(provider)
    assert [table] == asked
    assert table in DEFAULT_PROVIDERS
