"""The `pushgw` command's small subcommands, run as real processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
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
