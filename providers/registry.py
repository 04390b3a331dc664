"""
Which adapter serves which platform application, and with which settings.

Written out explicitly (no plugin discovery): one line per platform.
"""

from __future__ import annotations

from collections.abc import Callable

from providers.base import Provider, ProviderSettings
from pushgw.model import Platform, PlatformApplication


def adapter_for(app: PlatformApplication) -> tuple[type[Provider], str]:
    """The adapter class for an app and the `[providers.<name>]` config it uses."""
    # Imports are local so a daemon only loads the adapters it uses.
    if app.platform.is_apple:
        from providers.apns import ApnsProvider

        return ApnsProvider, "apns"
    if app.platform is Platform.GCM:
        from providers.gcm import gcm_provider_class

        cls = gcm_provider_class(app)
        return cls, "fcm" if cls.__name__ == "FcmProvider" else "gcm_legacy"
    if app.platform is Platform.ADM:
        from providers.adm import AdmProvider

        return AdmProvider, "adm"
    if app.platform is Platform.BAIDU:
        from providers.baidu import BaiduProvider

        return BaiduProvider, "baidu"
    if app.platform is Platform.MPNS:
        from providers.mpns import MpnsProvider

        return MpnsProvider, "mpns"
    from providers.wns import WnsProvider

    return WnsProvider, "wns"


async def create_provider(
    app: PlatformApplication, settings_for: Callable[[str], ProviderSettings]
) -> Provider:
    cls, name = adapter_for(app)
    return await cls.create(app=app, settings=settings_for(name))
