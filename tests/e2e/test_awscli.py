"""The AWS CLI, unchanged but for --endpoint-url, against a real `pushgw serve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.e2e.harness import Mocks, Server

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
AWS_CLI = Path(sys.executable).with_name("aws")
DELIVERY_TIMEOUT_S = 15.0


def aws(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `aws sns <args>` with the server's keys and no user configuration."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_MAX_ATTEMPTS": "1",
    }
    cmd = [
        sys.executable,
        str(AWS_CLI),
        "--endpoint-url",
        server.url,
        "--output",
        "json",
    ]
    return subprocess.run(
        [*cmd, "sns", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def aws_json(server: Server, *args: str) -> Any:
    """Run the CLI, require success and return its JSON output."""
    done = aws(server, *args)

    assert 0 == done.returncode, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


def test_cli_five_step_flow_delivers(pushgw_server: Server, mocks: Mocks) -> None:
    """create-platform-application, create-platform-endpoint and publish deliver."""
    credentials = json.dumps(mocks.credentials("ADM"))
    token = mocks.device("ADM")["token"]

    app = aws_json(
        pushgw_server,
        "create-platform-application",
        "--name",
        "cli-app",
        "--platform",
        "ADM",
        "--attributes",
        credentials,
    )["PlatformApplicationArn"]
    endpoint = aws_json(
        pushgw_server,
        "create-platform-endpoint",
        "--platform-application-arn",
        app,
        "--token",
        token,
        "--custom-user-data",
        "<user id='7'>&</user>",
    )["EndpointArn"]
    attributes = aws_json(
        pushgw_server, "get-endpoint-attributes", "--endpoint-arn", endpoint
    )["Attributes"]
    published = aws_json(
        pushgw_server,
        "publish",
        "--target-arn",
        endpoint,
        "--message",
        "hello from cli",
    )

    received = _wait_received(mocks, token)
    assert "<user id='7'>&</user>" == attributes["CustomUserData"]
    assert published["MessageId"]
    assert "hello from cli" in str(received[0]["payload"])


def test_cli_paginates_and_reports_errors(pushgw_server: Server, mocks: Mocks) -> None:
    """The CLI follows NextToken across pages and reports SNS errors with a failing exit code."""
    sns = boto3.session.Session().client(
        "sns",
        endpoint_url=pushgw_server.url,
        region_name=REGION,
        aws_access_key_id=pushgw_server.access_key,
        aws_secret_access_key=pushgw_server.secret_key,
    )
    app = sns.create_platform_application(
        Name="cli-pages", Platform="ADM", Attributes=mocks.credentials("ADM")
    )["PlatformApplicationArn"]
    for n in range(101):
        sns.create_platform_endpoint(PlatformApplicationArn=app, Token=f"cli-{n}")

    listed = aws_json(
        pushgw_server,
        "list-endpoints-by-platform-application",
        "--platform-application-arn",
        app,
    )
    missing = aws(
        pushgw_server,
        "get-platform-application-attributes",
        "--platform-application-arn",
        app + "-gone",
    )

    assert 101 == len(listed["Endpoints"])
    assert 0 != missing.returncode
    assert "(NotFound)" in missing.stderr
    assert "PlatformApplication does not exist" in missing.stderr


def _wait_received(mocks: Mocks, token: str) -> list[dict[str, Any]]:
    """Poll the mocks' control API (another process) until the device has mail."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT_S
    while time.monotonic() < deadline:
        received = mocks.received(token)
        if received:
            return received
        time.sleep(0.05)
    raise AssertionError(f"nothing delivered after {DELIVERY_TIMEOUT_S} s")
