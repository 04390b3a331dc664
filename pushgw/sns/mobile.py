"""SNS's reserved mobile-push message attributes (SNS_API §6.4), shared by the
publish-time checks (service) and the request shaping (delivery)."""

from __future__ import annotations

from collections.abc import Mapping

from pushgw.model import MessageAttribute

MOBILE_PREFIX = "AWS.SNS.MOBILE."

# Reserved mobile attributes: they shape the provider request and are not
# delivered as data [doc: sns-message-attributes].
RESERVED_MOBILE = frozenset(
    MOBILE_PREFIX + name
    for name in (
        "ADM.TTL",
        "APNS_MDM.TTL",
        "APNS_MDM_SANDBOX.TTL",
        "APNS_PASSBOOK.TTL",
        "APNS_PASSBOOK_SANDBOX.TTL",
        "APNS_SANDBOX.TTL",
        "APNS_VOIP.TTL",
        "APNS_VOIP_SANDBOX.TTL",
        "APNS.COLLAPSE_ID",
        "APNS.PRIORITY",
        "APNS.PUSH_TYPE",
        "APNS.TOPIC",
        "APNS.TTL",
        "BAIDU.DeployStatus",
        "BAIDU.MessageKey",
        "BAIDU.MessageType",
        "BAIDU.TTL",
        "FCM.TTL",
        "GCM.TTL",
        "MACOS_SANDBOX.TTL",
        "MACOS.TTL",
        "MPNS.NotificationClass",
        "MPNS.TTL",
        "MPNS.Type",
        "WNS.CachePolicy",
        "WNS.Group",
        "WNS.Match",
        "WNS.SuppressPopup",
        "WNS.Tag",
        "WNS.TTL",
        "WNS.Type",
    )
)


def ttl_attribute(
    platform: str, attributes: Mapping[str, MessageAttribute]
) -> int | None:
    """The TTL attribute that applies to `platform` (FCM.TTL also for GCM)."""
    names = [f"{MOBILE_PREFIX}{platform}.TTL"]
    if platform == "GCM":
        names.insert(0, f"{MOBILE_PREFIX}FCM.TTL")
    for name in names:
        value = attributes.get(name)
        if value is not None and value.string_value is not None:
            return int(value.string_value)
    return None
