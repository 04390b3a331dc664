"""
The admin CLI as an operator runs it: `python -m pushgw apps|endpoints|topics
…` as a subprocess against a real `pushgw serve` (SQLite) and the mock
platforms, the daemon's URL and its admin key read from the daemon's own
config file (tests/e2e/harness.py: its first API key has `admin = true`).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from tests.e2e.harness import PUBLISH_API_KEY, ROOT, Mocks, Server, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PREFIX = "arn:aws:sns:us-east-1:123456789012:"
ENV_VARS = ("PUSHGW_URL", "PUSHGW_API_KEY", "PUSHGW_CONFIG", "CREDENTIALS_DIRECTORY")


@pytest.fixture(name="daemon")
def _daemon(pushgw_server: Server) -> Server:
    """`pushgw serve` on the harness's config, whose first API key is an
    admin key: the CLI finds the URL and that key in the config file."""
    return pushgw_server


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
    env = {"PUSHGW_URL": daemon.url, "PUSHGW_API_KEY": daemon.api_key}
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


def wait_for(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_ledger_commands_after_an_invalid_token(daemon: Server, mocks: Mocks) -> None:
    """A push to an unregistered token fails; the CLI shows the message, the
    failure and the queue; once the endpoint has a good token again, `failures
    replay` re-queues the dead letter and the device gets the message once."""
    config = ["--config", str(daemon.config)]
    app = daemon.json(
        "POST",
        "/v1/platform-applications",
        {"name": "shop", "platform": "GCM", "attributes": mocks.credentials("GCM")},
    ).json()["platformApplicationArn"]
    bad = mocks.device("GCM", state="unregistered")["token"]
    endpoint = daemon.json(
        "POST", f"/v1/platform-applications/{app}/endpoints", {"token": bad}
    ).json()["endpointArn"]
    message_id = daemon.json(
        "POST", "/v1/publish", {"targetArn": endpoint, "message": "hello again"}
    ).json()["messageId"]

    def failures() -> list[dict[str, Any]]:
        listed = ok(
            pushgw("failures", "list", "--message", message_id, "--json", *config)
        )
        return list(json.loads(listed))

    (record,) = wait_for(failures, "the failure in the ledger")
    table_out = ok(pushgw("failures", "list", "--app", app, "--since", "1h", *config))
    shown = ok(pushgw("messages", "show", message_id, *config)).splitlines()
    shown_json = json.loads(
        ok(pushgw("messages", "show", message_id, "--json", *config))
    )
    queue = ok(pushgw("queue", *config)).splitlines()
    queue_json = json.loads(ok(pushgw("queue", "--json", *config)))
    denied = pushgw("queue", "--key", PUBLISH_API_KEY, *config)

    assert (endpoint, app, "failed", "InvalidPlatformToken") == (
        record["endpointArn"],
        record["appArn"],
        record["status"],
        record["failureType"],
    )
    assert record["deadLetter"] and record["replayedAt"] is None
    rows = table_out.splitlines()
    assert ["ID", "AT", "STATUS", "FAILURE"] == rows[0].split()[:4]
    assert 2 == len(rows) and rows[1].split()[0] == str(record["id"])
    assert [message_id, endpoint] == [
        w for w in rows[1].split() if w in (message_id, endpoint)
    ]
    assert ["Message", "ID", message_id] == shown[0].split()
    assert ["Failed", "1"] in [line.split() for line in shown]
    assert 1 == shown_json["totals"]["failed"] and message_id == shown_json["messageId"]
    assert queue[0].startswith("backlog: 0 jobs (due 0, leased 0, scheduled 0,")
    assert 0 == sum(queue_json["totals"].values())
    assert 1 == denied.returncode
    assert denied.stderr.startswith("pushgw: AccessDenied: ")
    assert "admin = true" in denied.stderr

    good = mocks.device("GCM")["token"]
    patched = daemon.json(
        "PATCH",
        f"/v1/endpoints/{endpoint}",
        {"attributes": {"Token": good, "Enabled": "true"}},
    )
    assert 204 == patched.status_code, patched.text
    replayed = pushgw("failures", "replay", "--message", message_id, *config)
    again = pushgw("failures", "replay", "--message", message_id, "--json", *config)

    assert (0, "replayed 1 dead letter\n") == (replayed.returncode, replayed.stdout)
    assert "replayed 1 of 1 (100%)\n" == replayed.stderr
    assert {"replayed": 0, "remaining": 0} == json.loads(ok(again))
    received = wait_for(lambda: mocks.received(good), "the replayed delivery")
    time.sleep(1.0)  # nothing more arrives
    assert 1 == len(mocks.received(good)), received
    (after,) = [r for r in failures() if r["id"] == record["id"]]
    assert after["replayedAt"] is not None


def test_replay_in_batches_stops_at_what_was_there(
    daemon: Server, mocks: Mocks
) -> None:
    """12 dead letters replayed 5 at a time (three calls to the real API), with
    progress on stderr. The replayed pushes fail again (the tokens are still
    bad) and become new dead letters: the run stops at the 12 it started with
    whenever they appear, and `--all` (since=0 to the API) takes them later."""
    config = ["--config", str(daemon.config)]
    app = daemon.json(
        "POST",
        "/v1/platform-applications",
        {"name": "batch", "platform": "GCM", "attributes": mocks.credentials("GCM")},
    ).json()["platformApplicationArn"]
    for _ in range(12):
        token = mocks.device("GCM", state="unregistered")["token"]
        endpoint = daemon.json(
            "POST", f"/v1/platform-applications/{app}/endpoints", {"token": token}
        ).json()["endpointArn"]
        daemon.json("POST", "/v1/publish", {"targetArn": endpoint, "message": "m"})

    def dead_letters() -> int:
        listed = pushgw(
            "failures", "list", "--app", app, "--dead-letters", "--json", *config
        )
        return len(json.loads(ok(listed)))

    wait_for(lambda: dead_letters() == 12, "12 dead letters")
    replayed = pushgw("failures", "replay", "--app", app, "--batch", "5", *config)
    everything = pushgw("failures", "replay", "--all", "--json", *config)

    assert 0 == replayed.returncode, replayed.stderr
    assert replayed.stdout.startswith("replayed 12 dead letters\n")
    assert "replayed 12 of 12 (100%)" == replayed.stderr.splitlines()[-1]
    assert 0 == everything.returncode, everything.stderr
    assert {"replayed", "remaining"} == set(json.loads(everything.stdout))
