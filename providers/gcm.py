"""
SNS `GCM` applications come in two kinds, told apart by their credential.

A service-account JSON (`{"type": "service_account", ...}`) speaks FCM HTTP v1
(`providers.fcm`). Anything else is a legacy server API key and speaks the legacy
`/fcm/send` protocol (`providers.gcm_legacy`), which Google shut down in 2024 and
which therefore only works against the loopback mock.
"""

from __future__ import annotations

import json

from pushgw.model import PlatformApplication
from pushgw.providers.base import Provider
from pushgw.providers.fcm import FcmProvider
from pushgw.providers.gcm_legacy import GcmLegacyProvider


def is_service_account(credential: str) -> bool:
    """True if the credential looks like a JSON object (a service account)."""
    text = credential.strip()
    if not text.startswith("{"):
        return False
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return True  # broken JSON: FcmProvider reports what is wrong with it


def gcm_provider_class(app: PlatformApplication) -> type[Provider]:
    """
    The adapter class for an SNS `GCM` application.

    Args:
        app: its `credential` is a service-account JSON or a legacy server key.

    Returns:
        `FcmProvider` for JSON credentials (whose constructor raises
        `ProviderSetupError` if the JSON is not a usable service account),
        `GcmLegacyProvider` otherwise.
    """
    if is_service_account(app.credential):
        return FcmProvider
    return GcmLegacyProvider
