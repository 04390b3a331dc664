"""SIGHUP re-reads the config and applies the keys without a restart."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from tests.e2e.harness import Server


@pytest.mark.e2e
def test_sighup_applies_new_api_keys(pushgw_server: Server) -> None:
    """A key added to the config file works after SIGHUP; the removed one stops."""
    new_key = "rotated-json-api-key"
    text = pushgw_server.config.read_text()
    pushgw_server.config.write_text(text.replace(pushgw_server.api_key, new_key))

    pushgw_server.process.proc.send_signal(signal.SIGHUP)

    def status(key: str) -> int:
        return httpx.get(
            pushgw_server.url + "/v1/topics", headers={"Authorization": f"Bearer {key}"}
        ).status_code

    deadline = time.monotonic() + 10
    while status(new_key) != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 200 == status(new_key)
    assert 401 == status(pushgw_server.api_key)
    assert "config_reloaded" in pushgw_server.process.logs()
