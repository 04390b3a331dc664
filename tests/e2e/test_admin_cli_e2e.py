"""
The admin CLI as an operator runs it: `python -m pushgw apps|endpoints|topics
…` as a subprocess against a real `pushgw serve` (SQLite) and the mock
platforms, the daemon's URL and its admin key read from the daemon's own
config file.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from tests.e2e.harness import ROOT, Mocks, Server, free_port, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN_KEY = "e2e-admin-key"
PREFIX = "arn:aws:sns:us-east-1:123456789012:"
ENV_VARS = ("PUSHGW_URL", "PUSHGW_API_KEY", "PUSHGW_CONFIG", "CREDENTIALS_DIRECTORY")


def admin_config(directory: Path, mocks: Mocks, port: int) -> Path:
    """The harness's config plus an admin key (after the harness's own key,
    so the CLI must pick the admin one), its secret in a key file."""
    config = write_config(
        directory,
        store_url=f"sqlite:///{directory / 'pushgw.db'}",
        mock_ports=mocks.ports,
        port=port,
    )
    key_file = directory / "admin.key"
    key_file.write_text(ADMIN_KEY + "\n")
    key_file.chmod(0o600)
    with config.open("a") as out:
        out.write(
            '\n[[auth.api_keys]]\nname = "ops"\nkey_file = "admin.key"\nadmin = true\n'
        )
    return config


@pytest.fixture(name="daemon")
def _daemon(tmp_path: Path, mocks: Mocks) -> Iterator[Server]:
    port = free_port()
    server = Server(tmp_path, admin_config(tmp_path, mocks, port), port)
    yield server
    server.stop()


def pushgw(
    *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    return subprocess.run(
        [sys.executable, "-m", "pushgw", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**base, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=120,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert 0 == result.returncode, result.stderr
    return result.stdout


def setup_catalogue(daemon: Server, mocks: Mocks, endpoints: int) -> dict[str, Any]:
    """A GCM app with `endpoints` endpoints (more than a page), an APNs app, a topic."""
    gcm = daemon.json(
        "POST",
        "/v1/platform-applications",
        {"name": "shop", "platform": "GCM", "attributes": mocks.credentials("GCM")},
    ).json()["platformApplicationArn"]
    apns = daemon.json(
        "POST",
        "/v1/platform-applications",
        {
            "name": "shop-ios",
            "platform": "APNS",
            "attributes": mocks.credentials("APNS"),
        },
    ).json()["platformApplicationArn"]
    arns = []
    for i in range(endpoints):
        answer = daemon.json(
            "POST",
            f"/v1/platform-applications/{gcm}/endpoints",
            {"token": f"token-{i:04d}-" + "x" * 60, "customUserData": f"user {i}"},
        )
        assert 201 == answer.status_code, answer.text
        arns.append(answer.json()["endpointArn"])
    topic = daemon.json("POST", "/v1/topics", {"name": "news"}).json()["topicArn"]
    return {"gcm": gcm, "apns": apns, "endpoints": arns, "topic": topic}


def test_lists_and_shows_as_tables_and_json(daemon: Server, mocks: Mocks) -> None:
    made = setup_catalogue(daemon, mocks, endpoints=105)
    config = ["--config", str(daemon.config)]

    apps = ok(pushgw("apps", "list", *config)).splitlines()
    apps_json = json.loads(ok(pushgw("apps", "list", "--json", *config)))
    endpoints_json = json.loads(
        ok(pushgw("endpoints", "list", made["gcm"], "--json", *config))
    )
    endpoints = ok(pushgw("endpoints", "list", made["gcm"], *config)).splitlines()
    limited = json.loads(
        ok(pushgw("endpoints", "list", made["gcm"], "--json", "--limit", "3", *config))
    )
    topics = ok(pushgw("topics", "list", *config)).splitlines()

    assert ["NAME", "PLATFORM", "ENABLED", "CERT", "EXPIRES", "ARN"] == apps[0].split()
    rows = sorted(line.split()[:3] for line in apps[1:])
    assert [["shop", "GCM", "true"], ["shop-ios", "APNS", "true"]] == rows
    # --json is the API's items as they are, every page followed (SNS pages by 100).
    listed = daemon.json("GET", "/v1/platform-applications").json()
    assert listed["platformApplications"] == apps_json
    assert sorted(made["endpoints"]) == sorted(e["endpointArn"] for e in endpoints_json)
    assert 1 + 105 == len(endpoints)
    assert endpoints[1].split()[0] == "true" and "…" in endpoints[1]
    assert 3 == len(limited)
    assert ["NAME", "ARN"] == topics[0].split()
    assert ["news", made["topic"]] == topics[1].split()


def test_show_prints_attributes_and_errors_are_one_line(
    daemon: Server, mocks: Mocks
) -> None:
    made = setup_catalogue(daemon, mocks, endpoints=1)
    config = ["--config", str(daemon.config)]
    endpoint = made["endpoints"][0]

    app = ok(pushgw("apps", "show", made["gcm"], *config)).splitlines()
    shown = ok(pushgw("endpoints", "show", endpoint, *config)).splitlines()
    as_json = json.loads(ok(pushgw("endpoints", "show", endpoint, "--json", *config)))
    topic = ok(pushgw("topics", "show", made["topic"], *config)).splitlines()
    missing = pushgw("topics", "show", f"{PREFIX}no-such-topic", *config)

    assert ["PlatformApplicationArn", made["gcm"]] == app[0].split()
    assert ["Enabled", "true"] in [line.split() for line in app]
    assert ["EndpointArn", endpoint] == shown[0].split()
    assert ["CustomUserData", "user", "0"] in [line.split() for line in shown]
    assert daemon.json("GET", f"/v1/endpoints/{endpoint}").json() == as_json
    assert ["TopicArn", made["topic"]] == topic[0].split()
    assert ["SubscriptionsConfirmed", "0"] in [line.split() for line in topic]
    assert (1, "") == (missing.returncode, missing.stdout)
    assert "pushgw: NotFound: Topic does not exist (HTTP 404)\n" == missing.stderr


def test_url_and_key_from_the_environment_and_their_errors(
    daemon: Server, tmp_path: Path
) -> None:
    """$PUSHGW_URL and $PUSHGW_API_KEY instead of a config; a wrong key and a
    daemon that is not there are one line each, exit 1."""
    env = {"PUSHGW_URL": daemon.url, "PUSHGW_API_KEY": ADMIN_KEY}
    port = free_port()

    listed = pushgw("topics", "list", env=env)
    wrong = pushgw("topics", "list", env={**env, "PUSHGW_API_KEY": "wrong"})
    down = pushgw(
        "topics", "list", env={**env, "PUSHGW_URL": f"http://127.0.0.1:{port}"}
    )
    nothing = pushgw("topics", "list", env={"PUSHGW_CONFIG": str(tmp_path / "none")})

    assert (0, "no topics\n") == (listed.returncode, listed.stdout)
    assert 1 == wrong.returncode
    assert (
        "pushgw: Unauthorized: Invalid bearer key (HTTP 401); key from $PUSHGW_API_KEY\n"
        == wrong.stderr
    )
    assert 1 == down.returncode
    assert (
        f"pushgw: cannot connect to http://127.0.0.1:{port} (from $PUSHGW_URL):"
        " connection refused\n" == down.stderr
    )
    assert 2 == nothing.returncode
    assert 1 == len(nothing.stderr.splitlines())


def test_keys_generate_makes_keys_the_daemon_takes(tmp_path: Path) -> None:
    key_file = tmp_path / "encryption.key"
    api_file = tmp_path / "api.key"

    printed = ok(pushgw("keys", "generate", "encryption"))
    written = pushgw("keys", "generate", "encryption", "--out", str(key_file))
    api = ok(pushgw("keys", "generate", "api", "--out", str(api_file)))
    again = pushgw("keys", "generate", "encryption", "--out", str(key_file))
    config = tmp_path / "pushgw.toml"
    config.write_text(
        '[store]\nurl = "memory:"\nencryption_key_file = "encryption.key"\n'
        '[[auth.api_keys]]\nname = "ops"\nkey_file = "api.key"\nadmin = true\n'
    )
    checked = pushgw("check-config", str(config))

    Fernet(printed.strip().encode())
    assert (0, "") == (written.returncode, written.stdout)
    assert "" == api
    for path in (key_file, api_file):
        assert 0o600 == stat.S_IMODE(path.stat().st_mode)
    assert 1 == again.returncode and "exists; not overwritten" in again.stderr
    assert 0 == checked.returncode, checked.stderr
