"""From a stored SNS message to what one adapter sends to one endpoint."""

from __future__ import annotations

from pushgw import payload
from pushgw.model import Message, Platform
from pushgw.providers.base import RenderedMessage
from pushgw.sns.mobile import MOBILE_PREFIX, ttl_attribute


def render(message: Message, platform: Platform) -> RenderedMessage | None:
    """The platform's view of `message`, or None if SNS would send nothing."""
    selected = payload.select(message, platform)
    if selected is None:
        return None
    body, native = selected
    reserved = {
        k: v for k, v in message.attributes.items() if k.startswith(MOBILE_PREFIX)
    }
    ttl = ttl_attribute(platform.value, message.attributes)
    return RenderedMessage(
        message_id=message.id,
        body=body,
        native=native,
        subject=message.subject,
        attributes=reserved,
        expires_at=message.created_at + ttl if ttl is not None else None,
        published_at=message.created_at,
    )


def expires_at(message: Message, platform: Platform, default_ttl_s: float) -> float:
    """When the gateway gives up on a message for this platform (SNS_API §8.3)."""
    ttl = ttl_attribute(platform.value, message.attributes)
    return message.created_at + (ttl if ttl is not None else default_ttl_s)
