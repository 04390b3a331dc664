"""
The admin CLI (`pushgw.admin_cli`) against an in-process fake daemon: an aiohttp
server answering the JSON API's and the admin contract's JSON
(/work/shared-notes/admin-api-contract.md), so formatting, paging, errors and
argument handling are checked without a real daemon (tests/e2e/
test_admin_cli_e2e.py runs the same commands against `pushgw serve`).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import stat
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from cryptography.fernet import Fernet

from pushgw import admin_cli
from pushgw.admin_cli import UsageError, resolve_target, since_value, table
from pushgw.cli import main
from pushgw.config import load_config

ADMIN_KEY = "admin-key"
PLAIN_KEY = "publish-key"  # valid, not admin: the ledger answers 403
PREFIX = "arn:aws:sns:us-east-1:123456789012:"
APPS = [f"{PREFIX}app/GCM/app{i}" for i in range(3)]
ENV_VARS = ("PUSHGW_URL", "PUSHGW_API_KEY", "PUSHGW_CONFIG", "CREDENTIALS_DIRECTORY")


def error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status
    )


def delivery(ident: int, at: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": ident,
        "messageId": f"m-{ident}",
        "endpointArn": f"{PREFIX}endpoint/GCM/app0/e{ident}",
        "appArn": APPS[0],
        "platform": "GCM",
        "status": status,
        "failureType": "InvalidPlatformToken" if status == "failed" else None,
        "reason": "UNREGISTERED" if status == "failed" else "TTL expired",
        "providerStatus": 404 if status == "failed" else None,
        "attempts": 1,
        "at": at,
        "deadLetter": True,
        "replayedAt": None,
        **extra,
    }


@dataclass
class FakeDaemon:
    """What the JSON API would answer; every request is recorded."""

    url: str = ""
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    dead_letters: int = 0
    grows_by: int = 0  # new dead letters appearing per replay call
    records: list[dict[str, Any]] = field(
        default_factory=lambda: [
            delivery(5, "2026-12-03T10:00:05.000Z", "failed"),
            delivery(4, "2026-12-03T10:00:04.000Z", "expired"),
            delivery(3, "2026-12-03T10:00:03.000Z", "failed", replayedAt="x"),
            delivery(2, "2026-12-03T10:00:02.000Z", "expired"),
            delivery(1, "2026-12-03T10:00:01.000Z", "failed", deadLetter=False),
        ]
    )

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        r = app.router
        r.add_get("/v1/platform-applications", self.list_apps)
        r.add_get("/v1/platform-applications/{arn}/endpoints", self.list_endpoints)
        r.add_get(
            "/v1/platform-applications/{arn}/endpoints/search", self.list_endpoints
        )
        r.add_get("/v1/stats/deliveries", self.stats)
        r.add_get("/v1/platform-applications/{arn}", self.show_app)
        r.add_get("/v1/topics", self.list_topics)
        r.add_get("/v1/queue", self.queue)
        r.add_get("/v1/messages/{id}", self.message)
        r.add_get("/v1/deliveries", self.deliveries)
        r.add_post("/v1/deliveries/replay", self.replay)
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.requests.append((request.method, request.raw_path, body))
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if key not in (ADMIN_KEY, PLAIN_KEY):
            return error(401, "Unauthorized", "Invalid bearer key")
        ledger = request.path.startswith(
            ("/v1/queue", "/v1/messages", "/v1/deliv", "/v1/stats")
        )
        if ledger and key != ADMIN_KEY:
            return error(403, "AccessDenied", "Key publisher is not an admin key")
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPNotFound:
            return error(404, "NotFound", f"No route for {request.path}")
        return response

    async def list_apps(self, request: web.Request) -> web.Response:
        start = int(request.query.get("nextToken", "0"))
        page = [
            {
                "platformApplicationArn": arn,
                "attributes": {"Enabled": "true" if i != 1 else "false"},
            }
            for i, arn in enumerate(APPS)
        ][start : start + 2]
        answer: dict[str, Any] = {"platformApplications": page}
        if start + 2 < len(APPS):
            answer["nextToken"] = str(start + 2)
        return web.json_response(answer)

    async def show_app(self, request: web.Request) -> web.Response:
        arn = request.match_info["arn"]
        if arn not in APPS:
            return error(404, "NotFound", "PlatformApplication does not exist")
        return web.json_response(
            {
                "platformApplicationArn": arn,
                "attributes": {"Enabled": "true", "AuthenticationMethod": "Token"},
            }
        )

    async def list_endpoints(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "endpoints": [
                    {
                        "endpointArn": f"{PREFIX}endpoint/GCM/app0/e1",
                        "attributes": {
                            "Enabled": "true",
                            "Token": "t" * 100,
                            "CustomUserData": "user\n\x1b[31mred",
                        },
                    },
                    {
                        "endpointArn": f"{PREFIX}endpoint/GCM/app0/e2",
                        "attributes": {"Enabled": "false", "Token": "short"},
                    },
                ]
            }
        )

    async def stats(self, request: web.Request) -> web.Response:
        def bucket(start: str, platform: str, *counts: int) -> dict[str, Any]:
            return {"start": start, "platform": platform} | dict(
                zip(("delivered", "failed", "expired"), counts, strict=True)
            )

        return web.json_response(
            {
                "buckets": [
                    bucket("2026-12-03T10:00:00.000Z", "APNS", 90, 9, 1),
                    bucket("2026-12-03T10:00:00.000Z", "GCM", 5, 0, 0),
                    bucket("2026-12-03T10:05:00.000Z", "APNS", 10, 0, 0),
                ]
            }
        )

    async def list_topics(self, _: web.Request) -> web.Response:
        return web.json_response({"topics": []})

    async def queue(self, _: web.Request) -> web.Response:
        backlog = [
            {
                "state": "scheduled",
                "kind": "endpoint",
                "appArn": APPS[0],
                "platform": "GCM",
                "jobs": 7,
            },
            {
                "state": "due",
                "kind": "topic",
                "appArn": None,
                "platform": None,
                "jobs": 1,
            },
            {
                "state": "due",
                "kind": "endpoint",
                "appArn": APPS[0],
                "platform": "GCM",
                "jobs": 12,
            },
        ]
        totals = {"due": 13, "leased": 0, "scheduled": 7, "waiting_for_app": 0}
        return web.json_response({"backlog": backlog, "totals": totals})

    async def message(self, request: web.Request) -> web.Response:
        if request.match_info["id"] != "m-1":
            return error(404, "NotFound", "No ledger record for that message")
        return web.json_response(
            {
                "messageId": "m-1",
                "topicArn": f"{PREFIX}news",
                "targetArn": None,
                "createdAt": "2026-12-03T10:00:00.000Z",
                "firstAttemptAt": "2026-12-03T10:00:00.100Z",
                "lastAttemptAt": "2026-12-03T10:00:01.000Z",
                "pendingJobs": 4,
                "pendingFanout": {"chunks": 1, "subscriptions": 1000, "more": True},
                "counts": [
                    {
                        "platform": "GCM",
                        "status": "delivered",
                        "failureType": None,
                        "count": 98,
                    },
                    {
                        "platform": "GCM",
                        "status": "failed",
                        "failureType": "InvalidPlatformToken",
                        "count": 2,
                    },
                    {
                        "platform": "GCM",
                        "status": "pending",
                        "failureType": None,
                        "count": 3,
                    },
                ],
                "totals": {"delivered": 98, "failed": 2, "expired": 0, "pending": 3},
            }
        )

    async def deliveries(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("since") == "yesterday":
            return error(400, "InvalidParameter", "since: expected ISO-8601")
        rows = [r for r in self.records if r["status"] == q.get("status", r["status"])]
        limit, start = int(q.get("limit", "100")), int(q.get("nextToken", "0"))
        token = str(start + limit) if start + limit < len(rows) else None
        return web.json_response(
            {"deliveries": rows[start : start + limit], "nextToken": token}
        )

    async def replay(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "ids" in body:
            return web.json_response({"replayed": len(body["ids"]), "remaining": 0})
        replayed = min(body["limit"], self.dead_letters)
        remaining = self.dead_letters - replayed
        self.dead_letters = remaining + self.grows_by  # new ones, afterwards
        return web.json_response({"replayed": replayed, "remaining": remaining})

    def paths(self, method: str = "GET") -> list[str]:
        return [path for m, path, _ in self.requests if m == method]

    def bodies(self) -> list[Any]:
        return [body for m, _, body in self.requests if m == "POST"]


@pytest.fixture(name="clean_env")
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(name="daemon")
async def _daemon(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FakeDaemon]:
    fake = FakeDaemon()
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("PUSHGW_URL", fake.url)
    monkeypatch.setenv("PUSHGW_API_KEY", ADMIN_KEY)
    yield fake
    await runner.cleanup()


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture(name="cli")
def _cli(capsys: pytest.CaptureFixture[str]) -> Any:
    async def cli(*argv: str) -> Result:
        def call() -> int:
            try:
                main(list(argv))
            except SystemExit as exc:
                return int(exc.code or 0)
            raise AssertionError("main() returned without SystemExit")

        code = await asyncio.to_thread(call)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return cli


# -- lists, shows and --json -------------------------------------------------------


async def test_apps_list_is_an_aligned_table_of_every_page(daemon, cli) -> None:
    result = await cli("apps", "list")

    assert 0 == result.code, result.err
    assert [
        "NAME  PLATFORM  ENABLED  CERT EXPIRES  ARN",
        f"app0  GCM       true     -             {APPS[0]}",
        f"app1  GCM       false    -             {APPS[1]}",
        f"app2  GCM       true     -             {APPS[2]}",
    ] == result.out.splitlines()
    assert [
        "/v1/platform-applications",
        "/v1/platform-applications?nextToken=2",
    ] == daemon.paths()


async def test_list_json_is_one_array_and_limit_stops_paging(daemon, cli) -> None:
    every = await cli("apps", "list", "--json")
    first = await cli("apps", "list", "--json", "--limit", "1")

    assert APPS == [a["platformApplicationArn"] for a in json.loads(every.out)]
    assert [
        {"platformApplicationArn": APPS[0], "attributes": {"Enabled": "true"}}
    ] == json.loads(first.out)
    assert 3 == len(daemon.paths())  # two pages, then one


async def test_show_sends_the_arn_percent_encoded_and_prints_attributes(
    daemon, cli
) -> None:
    shown = await cli("apps", "show", APPS[1])
    as_json = await cli("apps", "show", APPS[1], "--json")

    assert [
        f"PlatformApplicationArn  {APPS[1]}",
        "AuthenticationMethod    Token",
        "Enabled                 true",
    ] == shown.out.splitlines()
    assert {
        "platformApplicationArn": APPS[1],
        "attributes": {"Enabled": "true", "AuthenticationMethod": "Token"},
    } == json.loads(as_json.out)
    encoded = "arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Aapp%2FGCM%2Fapp1"
    assert [f"/v1/platform-applications/{encoded}"] * 2 == daemon.paths()


async def test_endpoint_table_shortens_tokens_and_escapes_control_characters(
    daemon, cli
) -> None:
    result = await cli("endpoints", "list", APPS[0])

    lines = result.out.splitlines()
    assert lines[0].split() == ["ENABLED", "TOKEN", "CUSTOM", "USER", "DATA", "ARN"]
    assert lines[1].startswith("true     " + "t" * 39 + "…  user\\n\\x1b[31mred  ")
    assert lines[2].split() == ["false", "short", "-", f"{PREFIX}endpoint/GCM/app0/e2"]
    assert "\x1b" not in result.out


async def test_endpoints_list_with_a_filter_is_the_endpoint_search(daemon, cli) -> None:
    result = await cli(
        "endpoints", "list", APPS[0], "--token-prefix", "ab", "--custom-user-data", "u"
    )

    assert 0 == result.code
    (path,) = daemon.paths()
    assert (
        path.startswith("/v1/platform-applications/") and "/endpoints/search?" in path
    )
    assert {"tokenPrefix": ["ab"], "customUserData": ["u"]} == parse_qs(
        urlsplit(path).query
    )
    assert f"{PREFIX}endpoint/GCM/app0/e2" in result.out


async def test_stats_sums_the_buckets_by_platform(daemon, cli) -> None:
    result = await cli("stats", "--since", "2026-12-03T10:00:00Z", "--bucket", "300")
    scripts = await cli("stats", "--json")

    lines = result.out.splitlines()
    assert "since 2026-12-03T10:00:00Z" == lines[0]
    assert ["APNS", "100", "9", "1", "90.9", "%"] == lines[2].split()
    assert ["GCM", "5", "0", "0", "100.0", "%"] == lines[3].split()
    query = parse_qs(urlsplit(daemon.paths()[0]).query)
    assert {"since": ["2026-12-03T10:00:00Z"], "bucketSeconds": ["300"]} == query
    assert 3 == len(json.loads(scripts.out)["buckets"])


async def test_an_empty_list_says_so(daemon, cli) -> None:
    people = await cli("topics", "list")
    scripts = await cli("topics", "list", "--json")

    assert ("no topics\n", []) == (people.out, json.loads(scripts.out))


# -- the ledger --------------------------------------------------------------------


async def test_queue_prints_totals_and_the_backlog_by_state_and_app(
    daemon, cli
) -> None:
    result = await cli("queue")

    assert [
        "backlog: 20 jobs (due 13, leased 0, scheduled 7, waiting_for_app 0)",
        "",
        "STATE      KIND      PLATFORM  APP" + " " * 46 + "JOBS",
        f"due        endpoint  GCM       {APPS[0]}    12",
        "due        topic     -         -" + " " * 51 + "1",
        f"scheduled  endpoint  GCM       {APPS[0]}     7",
    ] == result.out.splitlines()


async def test_messages_show_prints_the_counts(daemon, cli) -> None:
    result = await cli("messages", "show", "m-1")
    missing = await cli("messages", "show", "m-2")

    lines = result.out.splitlines()
    assert "Message ID     m-1" == lines[0]
    assert "Target         -" == lines[2]
    assert [
        "Delivered      98",
        "Failed         2",
        "Expired        0",
        "Pending        3",
        "Fan-out to go  1000+ subscriptions in 1 chunk(s)",
    ] == lines[7:12]
    assert [
        "PLATFORM  STATUS     FAILURE               COUNT",
        "GCM       delivered  -                        98",
        "GCM       failed     InvalidPlatformToken      2",
        "GCM       pending    -                         3",
    ] == lines[13:]
    assert (1, "") == (missing.code, missing.out)
    assert (
        "pushgw: NotFound: No ledger record for that message (HTTP 404)\n"
        == missing.err
    )


async def test_failures_list_merges_failed_and_expired_newest_first(
    daemon, cli
) -> None:
    result = await cli("failures", "list", "--json")
    table_out = await cli("failures", "list", "--limit", "3")

    assert [5, 4, 3, 2, 1] == [r["id"] for r in json.loads(result.out)]
    lines = table_out.out.splitlines()
    assert lines[0].split()[:4] == ["ID", "AT", "STATUS", "FAILURE"]
    assert [line.split()[0] for line in lines[1:]] == ["5", "4", "3"]
    assert "  replayed  " in lines[3] and "  yes  " in lines[1]


async def test_failures_list_passes_the_filters(daemon, cli) -> None:
    await cli(
        "failures",
        "list",
        "--app",
        APPS[0],
        "--reason",
        "InvalidPlatformToken",
        "--status",
        "failed",
        "--since",
        "2026-12-01T00:00:00Z",
        "--message",
        "m-5",
        "--dead-letters",
        "--limit",
        "2",
    )

    (path,) = daemon.paths()
    assert path.startswith("/v1/deliveries?")
    query = dict(p.split("=", 1) for p in path.split("?", 1)[1].split("&"))
    assert {
        "app": "arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Aapp%2FGCM%2Fapp0",
        "reason": "InvalidPlatformToken",
        "status": "failed",
        "since": "2026-12-01T00%3A00%3A00Z",
        "message": "m-5",
        "deadLetter": "true",
        "limit": "2",
    } == query


async def test_a_bad_filter_is_the_apis_error_line(daemon, cli) -> None:
    result = await cli("failures", "list", "--since", "yesterday")

    assert 1 == result.code
    assert (
        "pushgw: InvalidParameter: since: expected ISO-8601 (HTTP 400)\n" == result.err
    )


def test_since_accepts_durations_ago() -> None:
    now = datetime(2026, 12, 3, 12, 0, 0, 250_000, tzinfo=UTC)

    assert "2026-12-03T10:00:00.250Z" == since_value("2h", now)
    assert "2026-11-26T12:00:00.250Z" == since_value("7d", now)
    assert "2026-12-03T11:59:30.250Z" == since_value("30s", now)
    assert "1764756000" == since_value("1764756000", now)  # as given


# -- replay --------------------------------------------------------------------------


async def test_replay_calls_until_nothing_remains_with_progress(daemon, cli) -> None:
    daemon.dead_letters = 2500

    result = await cli(
        "failures", "replay", "--app", APPS[0], "--reason", "Expired", "--yes"
    )

    assert (0, "replayed 2500 dead letters\n") == (result.code, result.out)
    filters = {"app": APPS[0], "reason": "Expired"}
    # The last batch asks for no more than were there at the start.
    assert [
        {**filters, "limit": 1000},
        {**filters, "limit": 1000},
        {**filters, "limit": 500},
    ] == daemon.bodies()
    lines = result.err.splitlines()
    assert "replayed 1,000 of 2,500 (40%)" == lines[0]
    assert "replayed 2,500 of 2,500 (100%)" == lines[-1]


async def test_replay_json_and_batch_size(daemon, cli) -> None:
    daemon.dead_letters = 5

    result = await cli("failures", "replay", "--all", "--batch", "2", "--json")

    assert {"replayed": 5, "remaining": 0} == json.loads(result.out)
    assert [
        {"since": 0, "limit": 2},
        {"since": 0, "limit": 2},
        {"since": 0, "limit": 1},
    ] == daemon.bodies()


async def test_replay_stops_at_what_was_there_when_it_started(daemon, cli) -> None:
    """Replayed dead letters that fail again are not replayed again and again."""
    daemon.dead_letters, daemon.grows_by = 3000, 500

    result = await cli("failures", "replay", "--since", "1h")

    assert 0 == result.code, result.err
    assert result.out.startswith("replayed 3000 dead letters\n1000 more appeared")
    assert [1000, 1000, 1000] == [body["limit"] for body in daemon.bodies()]
    assert "replayed 3,000 of 3,000 (100%)" == result.err.splitlines()[-1]
    since = daemon.bodies()[0]["since"]
    assert since.endswith("Z") and since < datetime.now(UTC).isoformat()


async def test_replay_by_id_sends_the_ids_in_batches(daemon, cli) -> None:
    result = await cli(
        "failures", "replay", "--id", "3", "1", "--id", "2", "3", "--batch", "2"
    )

    assert "replayed 3 dead letters\n" == result.out
    assert [{"ids": [1, 2], "limit": 2}, {"ids": [3], "limit": 2}] == daemon.bodies()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_replay_asks_first_on_a_terminal(
    daemon, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon.dead_letters = 1
    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    refused = await cli("failures", "replay", "--message", "m-1")
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    accepted = await cli("failures", "replay", "--message", "m-1")

    assert 1 == refused.code
    assert refused.err.startswith("Replay dead letters (messageId=m-1) through http")
    assert refused.err.endswith("? [y/N] pushgw: nothing replayed\n")
    assert (0, "replayed 1 dead letter\n") == (accepted.code, accepted.out)
    assert [{"messageId": "m-1", "limit": 1000}] == daemon.bodies()


@pytest.mark.parametrize(
    "argv",
    [
        ("failures", "replay"),
        ("failures", "replay", "--all", "--app", APPS[0]),
    ],
)
async def test_replay_needs_one_selection(daemon, cli, argv) -> None:
    result = await cli(*argv)

    assert 2 == result.code
    assert 1 == len(result.err.splitlines()) and result.err.startswith("pushgw: ")
    assert [] == daemon.requests


# -- errors ---------------------------------------------------------------------------


async def test_a_key_without_admin_scope_is_told_so(
    daemon, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUSHGW_API_KEY", PLAIN_KEY)
    denied = await cli("queue")
    invalid = await cli("queue", "--key", "nope")

    assert (1, 1) == (denied.code, invalid.code)
    assert (
        "pushgw: AccessDenied: Key publisher is not an admin key (HTTP 403); key"
        " from $PUSHGW_API_KEY (the admin commands need a key with admin = true)\n"
        == denied.err
    )
    assert (
        "pushgw: Unauthorized: Invalid bearer key (HTTP 401); key from --key\n"
        == invalid.err
    )


async def test_a_daemon_without_the_route_is_named(daemon, cli) -> None:
    result = await cli("topics", "show", f"{PREFIX}news")

    assert 1 == result.code
    assert result.err.endswith(f"; {daemon.url} does not serve it (an older pushgw?)\n")


async def test_connection_refused_names_the_url(clean_env, cli) -> None:
    port = admin_cli_free_port()

    result = await cli(
        "apps", "list", "--url", f"http://127.0.0.1:{port}", "--key", "k"
    )

    assert (1, "") == (result.code, result.out)
    assert (
        f"pushgw: cannot connect to http://127.0.0.1:{port} (from --url):"
        " connection refused\n" == result.err
    )


def admin_cli_free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: nothing listens there


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (("apps", "show", "myapp"), "expected an ARN"),
        (("apps", "list", "--limit", "0"), "expected >= 1"),
        (("failures", "replay", "--all", "--batch", "20000"), "expected <= 10000"),
        (("apps", "list", "--key", "a", "--key-file", "b"), "not allowed with"),
        (("apps",), "required: ACTION"),
    ],
)
async def test_usage_errors_exit_2(daemon, cli, argv, text) -> None:
    result = await cli(*argv)

    assert 2 == result.code
    assert text in result.err
    assert "Traceback" not in result.err


async def test_no_daemon_to_talk_to_is_a_usage_error(
    clean_env, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUSHGW_CONFIG", str(tmp_path / "absent.toml"))

    result = await cli("apps", "list")

    assert 2 == result.code
    assert result.err.startswith("pushgw: config error: cannot read ")
    assert 1 == len(result.err.splitlines())


# -- where the daemon is, and which key ------------------------------------------------


def namespace(**given: Any) -> argparse.Namespace:
    base = {"url": None, "key": None, "key_file": None, "config": None, "ca_file": None}
    return argparse.Namespace(**{**base, **given})


@pytest.fixture(name="config_file")
def _config_file(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "admin.key").write_text("key-from-file\n")
    path = tmp_path / "pushgw.toml"
    path.write_text(
        """
[server]
host = "0.0.0.0"
port = 8123

[[auth.api_keys]]
name = "backend"
key = "not-admin"

[[auth.api_keys]]
name = "ops"
key_file = "admin.key"
admin = true
"""
    )
    yield path


def test_url_and_key_come_from_the_config_when_not_given(config_file: Path) -> None:
    target = resolve_target(namespace(config=str(config_file)), env={})

    assert "http://127.0.0.1:8123" == target.url  # a wildcard bind, on loopback
    assert "key-from-file" == target.key
    assert f"auth.api_keys 'ops' of {config_file}" == target.key_origin


def test_the_config_is_found_as_serve_finds_it(config_file: Path) -> None:
    env = {"PUSHGW_CONFIG": str(config_file)}

    assert "key-from-file" == resolve_target(namespace(), env=env).key


def test_options_beat_the_environment_which_beats_the_config(
    config_file: Path, tmp_path: Path
) -> None:
    env = {
        "PUSHGW_CONFIG": str(config_file),
        "PUSHGW_URL": "https://push.example/",
        "PUSHGW_API_KEY": "env-key",
    }
    key_file = tmp_path / "other.key"
    key_file.write_text("option-file-key\n")

    from_env = resolve_target(namespace(), env=env)
    from_options = resolve_target(
        namespace(url="http://10.0.0.1:9000", key_file=str(key_file)), env=env
    )

    assert ("https://push.example", "env-key") == (from_env.url, from_env.key)
    assert ("http://10.0.0.1:9000", "option-file-key") == (
        from_options.url,
        from_options.key,
    )


def test_public_url_wins_and_the_key_file_follows_credentials_directory(
    tmp_path: Path,
) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "admin.key").write_text("from-credentials\n")
    path = tmp_path / "pushgw.toml"
    path.write_text(
        '[server]\npublic_url = "https://push.example/base/"\n'
        '[[auth.api_keys]]\nname = "ops"\nkey_file = "admin.key"\nadmin = true\n'
    )
    env = {"CREDENTIALS_DIRECTORY": str(creds)}

    target = resolve_target(namespace(config=str(path)), env=env)

    assert ("https://push.example/base", "from-credentials") == (
        target.url,
        target.key,
    )


def test_no_admin_key_in_the_config_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "pushgw.toml"
    path.write_text('[[auth.api_keys]]\nname = "backend"\nkey = "k"\n')

    with pytest.raises(UsageError, match="no admin key: give --key or --key-file"):
        resolve_target(namespace(config=str(path)), env={})


def test_admin_is_a_key_field_of_the_config(config_file: Path) -> None:
    keys = load_config(config_file).api_keys()

    assert [("backend", False), ("ops", True)] == [(k.name, k.admin) for k in keys]


# -- keys -------------------------------------------------------------------------------


async def test_keys_generate_prints_only_the_key(clean_env, cli) -> None:
    first = await cli("keys", "generate", "encryption")
    second = await cli("keys", "generate", "encryption")
    api = await cli("keys", "generate", "api")

    Fernet(first.out.strip().encode())  # a valid Fernet key
    assert first.out != second.out and first.out.endswith("=\n")
    assert 43 == len(api.out.strip()) and "" == api.err
    assert 1 == len(first.out.splitlines())


async def test_keys_generate_out_writes_mode_0600_and_never_overwrites(
    clean_env, cli, tmp_path: Path
) -> None:
    target = tmp_path / "encryption.key"
    old = os.umask(0)
    try:
        written = await cli("keys", "generate", "encryption", "--out", str(target))
    finally:
        os.umask(old)
    before = target.read_text()
    again = await cli("keys", "generate", "api", "--out", str(target))

    assert (0, "") == (written.code, written.out)
    assert 0o600 == stat.S_IMODE(target.stat().st_mode)
    Fernet(before.strip().encode())
    assert 1 == again.code
    assert f"pushgw: {target} exists; not overwritten\n" == again.err
    assert before == target.read_text()


# -- formatting ---------------------------------------------------------------------


def test_table_right_aligns_numbers_and_marks_missing_values() -> None:
    text = table(("NAME", "JOBS", "OK"), [("a", 5, True), ("long name", 120, None)])

    assert [
        "NAME       JOBS  OK",
        "a             5  yes",
        "long name   120  -",
    ] == text.splitlines()


def test_every_admin_command_has_help() -> None:
    parser = admin_cli_parser()
    for name in ("apps", "endpoints", "topics", "messages", "failures", "keys"):
        assert name in parser.format_help()


def admin_cli_parser() -> argparse.ArgumentParser:
    from pushgw.cli import build_parser

    return build_parser()


def test_module_has_no_daemon_side_imports() -> None:
    """The CLI reaches the daemon only through HTTP: no store, no service."""
    source = Path(admin_cli.__file__).read_text()

    assert "pushgw.store" not in source and "pushgw.service" not in source
