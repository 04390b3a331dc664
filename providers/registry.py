"""
Which adapter serves which platform application, and with which settings.

One entry per SNS platform, written out explicitly (no plugin discovery). Each
adapter class names the `[providers.<name>]` config table it reads
(`Provider.settings_name`), so nothing here depends on class names. Imports are
local so a daemon only loads the adapters it uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pushgw.model import APPLE_PLATFORMS, Platform, PlatformApplication
from pushgw.providers.base import Provider, ProviderSettings

AdapterLookup = Callable[[PlatformApplication], type[Provider]]


def _apns(app: PlatformApplication) -> type[Provider]:
    from pushgw.providers.apns import ApnsProvider

    return ApnsProvider


def _gcm(app: PlatformApplication) -> type[Provider]:
    # FCM v1 or the legacy API, told apart by the credential (providers.gcm).
    from pushgw.providers.gcm import gcm_provider_class

    return gcm_provider_class(app)


def _adm(app: PlatformApplication) -> type[Provider]:
    from pushgw.providers.adm import AdmProvider

    return AdmProvider


def _baidu(app: PlatformApplication) -> type[Provider]:
    from pushgw.providers.baidu import BaiduProvider

    return BaiduProvider


def _mpns(app: PlatformApplication) -> type[Provider]:
    from pushgw.providers.mpns import MpnsProvider

    return MpnsProvider


def _wns(app: PlatformApplication) -> type[Provider]:
    from pushgw.providers.wns import WnsProvider

    return WnsProvider


ADAPTERS: Mapping[Platform, AdapterLookup] = {
    **dict.fromkeys(APPLE_PLATFORMS, _apns),  # APNS(_SANDBOX), _VOIP, MACOS ...
    Platform.GCM: _gcm,
    Platform.ADM: _adm,
    Platform.BAIDU: _baidu,
    Platform.MPNS: _mpns,
    Platform.WNS: _wns,
}


def adapter_for(app: PlatformApplication) -> type[Provider]:
    """The adapter class for an app (its `settings_name` picks the config table)."""
    return ADAPTERS[app.platform](app)


async def create_provider(
    app: PlatformApplication, settings_for: Callable[[str], ProviderSettings]
) -> Provider:
    cls = adapter_for(app)
    return await cls.create(app=app, settings=settings_for(cls.settings_name))
