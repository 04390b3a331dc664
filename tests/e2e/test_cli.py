"""The `pushgw` command's small subcommands, run as real processes."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.harness import ROOT, mock_ports, write_config


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pushgw", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


@pytest.mark.e2e
def test_migrate_creates_the_schema_and_is_idempotent(tmp_path: Path) -> None:
    """`pushgw migrate` applies every migration once; a second run changes nothing."""
    db = tmp_path / "pushgw.db"
    config = write_config(
        tmp_path, store_url=f"sqlite:///{db}", mock_ports=mock_ports()
    )

    first = run("migrate", "--config", str(config))
    second = run("migrate", "--config", str(config))

    assert (0, 0) == (first.returncode, second.returncode)
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
