"""What the daemon says when it starts, in-process (memory store, no providers)."""

from __future__ import annotations

from typing import Any

import pytest
import structlog

from pushgw.config import config_from_mapping
from pushgw.daemon import Gateway
from tests.e2e.harness import free_port


async def started_events(server: dict[str, Any], delivery: bool = True) -> list[str]:
    """The events a Gateway logs from construction to a completed start."""
    config = config_from_mapping(
        {
            "server": {"port": free_port(), **server},
            "store": {"url": "memory:"},
            "delivery": {"enabled": delivery},
        }
    )
    with structlog.testing.capture_logs() as logs:
        gateway = Gateway(config)
        await gateway.start()
        await gateway.stop()
    return [line["event"] for line in logs]


@pytest.mark.parametrize(
    ("server", "delivery", "warnings"),
    [
        ({}, True, 1),  # http://127.0.0.1:<port>
        ({"public_url": "http://push.example.com"}, True, 1),
        ({"public_url": "https://push.example.com"}, True, 0),
        # Sends nothing to subscribers: signs nothing either.
        ({"public_url": "http://push.example.com"}, False, 0),
    ],
)
async def test_plain_http_signing_cert_url_is_warned_of_once(
    server: dict[str, Any], delivery: bool, warnings: int
) -> None:
    """An http:// SigningCertURL, which standard SNS validators refuse, is
    warned of once at start, by a daemon that delivers."""
    events = await started_events(server, delivery)

    assert warnings == events.count("signing_cert_url_not_https")
    assert 1 == events.count("pushgw_started")
