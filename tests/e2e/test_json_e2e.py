"""The JSON API against a real `pushgw serve` and the loopback FCM mock."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Mocks, Server

DEADLINE_S = 10.0


def wait_received(mocks: Mocks, token: str, count: int = 1) -> list[dict[str, Any]]:
    """Poll the mock until `token` has `count` messages or the deadline passes."""
    deadline = time.monotonic() + DEADLINE_S
    got = mocks.received(token)
    while len(got) < count and time.monotonic() < deadline:
        time.sleep(0.05)
        got = mocks.received(token)
    return got


def five_steps(server: Server, mocks: Mocks, message: str) -> tuple[str, str, str]:
    """Credentials, app, device, endpoint, publish; returns (credential, token, id)."""
    credentials = mocks.credentials("GCM")
    r = server.json(
        "POST",
        "/v1/platform-applications",
        {"name": "e2e-gcm", "platform": "GCM", "attributes": credentials},
    )
    assert 201 == r.status_code, r.text
    app_arn = r.json()["platformApplicationArn"]
    token = str(mocks.device("GCM")["token"])
    r = server.json(
        "POST", f"/v1/platform-applications/{app_arn}/endpoints", {"token": token}
    )
    assert 201 == r.status_code, r.text
    endpoint_arn = r.json()["endpointArn"]
    r = server.json(
        "POST", "/v1/publish", {"targetArn": endpoint_arn, "message": message}
    )
    assert 200 == r.status_code, r.text
    return credentials["PlatformCredential"], token, r.json()["messageId"]


@pytest.mark.e2e
def test_five_steps_over_json_api(pushgw_server: Server, mocks: Mocks) -> None:
    """A message published over the JSON API reaches the mock FCM device once."""
    _, token, message_id = five_steps(pushgw_server, mocks, "hello over json")
    assert 36 == len(message_id)
    received = wait_received(mocks, token)
    assert 1 == len(received), received
    assert "hello over json" in json.dumps(received[0]["payload"])
    time.sleep(0.3)
    assert 1 == len(mocks.received(token))


@pytest.mark.e2e
def test_logs_hold_no_secrets_but_request_ids(
    pushgw_server: Server, mocks: Mocks
) -> None:
    """Logs never show the device token or private key, but do show request ids."""
    credential, token, _ = five_steps(pushgw_server, mocks, "log check")
    assert 1 == len(wait_received(mocks, token))
    # A failing SNS Query request is logged with its request id.
    failed = httpx.post(
        pushgw_server.url + "/", data={"Action": "ListTopics"}, timeout=10.0
    )
    assert 403 == failed.status_code
    sns_request_id = re.search(r"<RequestId>([^<]+)</RequestId>", failed.text)
    assert sns_request_id is not None, failed.text
    # A failing JSON request echoes the client's request id.
    request_id = f"e2e-{uuid.uuid4()}"
    r = httpx.get(
        pushgw_server.url + "/v1/topics/arn:aws:sns:us-east-1:123456789012:missing",
        headers={
            "Authorization": f"Bearer {pushgw_server.api_key}",
            "x-request-id": request_id,
        },
        timeout=10.0,
    )
    assert 404 == r.status_code
    assert request_id == r.headers["x-request-id"]
    pushgw_server.stop()

    text = pushgw_server.process.logs()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert lines, text[-2000:]
    private_key = json.loads(credential)["private_key"]
    key_body = private_key.splitlines()[3]  # a distinctive base64 line of the key
    assert 40 < len(key_body)
    assert token not in text
    assert token[8:40] not in text
    assert key_body not in text
    assert "PRIVATE KEY" not in text
    logged_ids = {line.get("request_id") for line in lines}
    assert sns_request_id.group(1) in logged_ids, text[-2000:]
