"""The `pushgw` command's small subcommands, run as real processes."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
import trustme

from tests.e2e.harness import (
    ROOT,
    Mocks,
    mock_ports,
    start_server,
    write_config,
)

# The variables that pick the config and its directories; each test sets its own.
SEARCH_VARS = ("PUSHGW_CONFIG", "STATE_DIRECTORY", "CREDENTIALS_DIRECTORY")


def run(
    *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in SEARCH_VARS}
    return subprocess.run(
        [sys.executable, "-m", "pushgw", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**base, **(env or {})},
        timeout=60,
        check=False,
    )


def stderr_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.mark.e2e
def test_migrate_creates_the_schema_and_is_idempotent(tmp_path: Path) -> None:
    """`pushgw migrate` applies every migration once; a second run changes nothing."""
    db = tmp_path / "pushgw.db"
    config = write_config(
        tmp_path, store_url=f"sqlite:///{db}", mock_ports=mock_ports()
    )

    first = run("migrate", "--config", str(config))
    second = run("migrate", "--config", str(config))

    assert (0, 0) == (first.returncode, second.returncode), first.stderr
    assert f"migrations applied: sqlite:///{db}\n" == second.stdout
    with sqlite3.connect(db) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations")]
    assert sorted(versions) == versions and len(versions) >= 2


@pytest.mark.e2e
def test_unknown_subcommand_and_bad_config_fail_cleanly(tmp_path: Path) -> None:
    """Usage errors exit 2 with a message, never a traceback."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[store]\nurl = 5\n")

    unknown = run("frobnicate")
    broken = run("serve", "--config", str(bad))

    assert 2 == unknown.returncode
    assert 2 == broken.returncode
    assert "store.url: expected str, got int" in broken.stderr
    assert "Traceback" not in unknown.stderr + broken.stderr


def start_failure(config: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """`pushgw serve` on a config it cannot start with; its result and run time."""
    # The CA the mocks would write: the config must load before the start fails.
    trustme.CA().cert_pem.write_to_path(str(config.parent / "mock-ca.pem"))
    started = time.monotonic()
    result = run("serve", "--config", str(config))
    return result, time.monotonic() - started


@pytest.mark.e2e
def test_serve_on_a_taken_port_exits_at_once_with_one_line(tmp_path: Path) -> None:
    """The port is in use: `pushgw serve` exits 1 promptly (no hang on the store's
    writer thread) and says why in one line on stderr, no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(
            tmp_path,
            store_url=f"sqlite:///{tmp_path / 'pushgw.db'}",
            mock_ports=mock_ports(),
            port=port,
        )
        result, elapsed = start_failure(config)

    assert 1 == result.returncode
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert [f"pushgw: cannot listen on 127.0.0.1:{port}: address already in use"] == [
        e.lower() for e in errors
    ], result.stderr
    assert elapsed < 10, f"took {elapsed:.1f} s"  # interpreter start-up included


@pytest.mark.e2e
def test_serve_with_an_unreachable_store_exits_at_once_with_one_line(
    tmp_path: Path,
) -> None:
    """PostgreSQL refusing connections: exit 1 promptly with one line."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: refused
        config = write_config(
            tmp_path,
            store_url=f"postgresql://postgres@127.0.0.1:{port}/test",
            mock_ports=mock_ports(),
        )
        result, elapsed = start_failure(config)

    assert 1 == result.returncode
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert 1 == len(errors), result.stderr
    assert errors[0].startswith("pushgw: cannot open the store: "), errors
    assert "Traceback" not in result.stderr
    assert elapsed < 10, f"took {elapsed:.1f} s"


# A value `pushgw check-config` used to pass and `serve` then crashed on (or ran
# with), each with the one line that now names the key and the rule.
BAD_VALUES = [
    (
        '[logging]\nlevel = "verbose"\n',
        "logging.level: expected one of debug, info, warning, error, critical;"
        " got 'verbose'",
    ),
    (
        '[store]\nencryption_key_file = "missing.key"\n',
        "store.encryption_key_file: cannot read {dir}/missing.key: No such file or"
        " directory (relative to the config file: $CREDENTIALS_DIRECTORY is not set)",
    ),
    ("[delivery]\nlease_s = -5\n", "delivery.lease_s: expected > 0, got -5.0"),
    (
        '[store]\nurl = "mysql://db/pushgw"\n',
        "store.url: expected memory:, sqlite:PATH, sqlite:///ABSOLUTE/PATH or"
        " postgresql://...; got 'mysql://db/pushgw'",
    ),
    (
        '[[auth.api_keys]]\nname = "ops"\nkey = "k"\nactions = ["Publsh"]\n',
        "auth.api_keys 'ops': unknown action 'Publsh' (actions are SNS action"
        " names, e.g. Publish)",
    ),
]


def bad_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


@pytest.mark.e2e
@pytest.mark.parametrize(("text", "message"), BAD_VALUES)
def test_check_config_rejects_bad_values(
    tmp_path: Path, text: str, message: str
) -> None:
    """check-config exits 2 with one line naming the dotted key and the rule."""
    result = run("check-config", str(bad_config(tmp_path, text)))

    assert 2 == result.returncode
    assert [f"pushgw: config error: {message.format(dir=tmp_path)}"] == stderr_lines(
        result
    )
    assert "" == result.stdout


@pytest.mark.e2e
@pytest.mark.parametrize(("text", "message"), BAD_VALUES)
def test_serve_rejects_bad_values_before_starting(
    tmp_path: Path, text: str, message: str
) -> None:
    """serve runs the same loader: exit 2, the same one line, no traceback."""
    result = run("serve", "--config", str(bad_config(tmp_path, text)))

    assert 2 == result.returncode
    assert [f"pushgw: config error: {message.format(dir=tmp_path)}"] == stderr_lines(
        result
    )


@pytest.mark.e2e
def test_config_search_order(tmp_path: Path) -> None:
    """--config wins over $PUSHGW_CONFIG, which is used when --config is absent."""
    good = tmp_path / "good.toml"
    good.write_text('[store]\nurl = "memory:"\n')
    bad = bad_config(tmp_path, "[delivery]\nlease_s = -5\n")

    from_env = run("check-config", env={"PUSHGW_CONFIG": str(good)})
    explicit = run(
        "check-config", "--config", str(bad), env={"PUSHGW_CONFIG": str(good)}
    )
    positional = run("check-config", str(good), env={"PUSHGW_CONFIG": str(bad)})

    assert (0, f"{good}: OK\n") == (from_env.returncode, from_env.stdout)
    assert 2 == explicit.returncode
    assert "delivery.lease_s" in explicit.stderr
    assert (0, f"{good}: OK\n") == (positional.returncode, positional.stdout)


@pytest.mark.e2e
@pytest.mark.skipif(
    Path("/etc/pushgw/pushgw.toml").exists(), reason="this host has a real config"
)
@pytest.mark.parametrize("command", ["serve", "check-config", "migrate"])
def test_without_config_the_system_file_is_used_never_dev_toml(command: str) -> None:
    """No --config and no $PUSHGW_CONFIG: /etc/pushgw/pushgw.toml, and its absence
    is an error saying so (the development config is never picked up)."""
    result = run(command)

    assert 2 == result.returncode
    assert [
        "pushgw: config error: cannot read /etc/pushgw/pushgw.toml: No such file or"
        " directory (no --config given and $PUSHGW_CONFIG is not set)"
    ] == stderr_lines(result)


@pytest.mark.e2e
def test_help_names_the_search_order() -> None:
    """`pushgw serve --help` says where the config comes from."""
    result = run("serve", "--help")

    assert 0 == result.returncode
    assert (
        "Config file: --config FILE, else $PUSHGW_CONFIG, else /etc/pushgw/pushgw.toml"
        in result.stdout
    )


@pytest.mark.e2e
def test_dev_commands_never_search_for_a_config(tmp_path: Path) -> None:
    """demo and mock-providers never search: on a production host the default
    would be the production config (and its store). mock-providers needs
    --config; demo without it uses the built-in development config in a new
    temporary directory, whatever $PUSHGW_CONFIG says."""
    production = tmp_path / "production.toml"
    production.write_text('[store]\nurl = "sqlite:///must-not-be-touched.db"\n')
    env = {"PUSHGW_CONFIG": str(production)}

    mocks = run("mock-providers", env=env)
    demo = run("demo", env=env)

    assert 2 == mocks.returncode
    assert "the following arguments are required: --config/-c" in mocks.stderr
    assert 0 == demo.returncode, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert "using the built-in development config" in demo.stdout
    assert not Path("/must-not-be-touched.db").exists()


@pytest.mark.parametrize("event_loop", ["uvloop", "asyncio", None])
def test_serve_runs_on_the_configured_event_loop(
    tmp_path: Path, mocks: Mocks, event_loop: str | None
) -> None:
    """uvloop by default, asyncio's loop when server.event_loop says so."""
    server_table = {} if event_loop is None else {"event_loop": event_loop}
    server = start_server(tmp_path, mocks, server=server_table)
    try:
        lines = server.process.logs().splitlines()
        logs = [json.loads(line) for line in lines if line.startswith("{")]
    finally:
        server.stop()
    started = [line for line in logs if line.get("event") == "pushgw_started"]
    assert [line["event_loop"] for line in started] == [event_loop or "uvloop"]
    # No server.public_url: SigningCertURL is http://127.0.0.1:<port>/…
    [plain] = [
        line for line in logs if line.get("event") == "signing_cert_url_not_https"
    ]
    assert ("warning", server.url) == (
        plain["level"],
        plain["public_url"],
    )
