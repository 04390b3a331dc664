"""deploy/pushgw.service: systemd accepts it, its sandbox stays tight, and it
agrees with the example config about states and credentials."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from pushgw.config import load_config
from tests.tools import required_tool

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "pushgw.service"
INSTALLED_BINARY = "/opt/pushgw/.venv/bin/pushgw"
MAX_EXPOSURE = 2.0  # `systemd-analyze security` scale: 0 safe .. 10 exposed
# --threshold counts in tenths of that scale (its default is 100): 20 means 2.0,
# and `--threshold=2` would demand 0.2.
THRESHOLD = round(MAX_EXPOSURE * 10)


def systemd_analyze() -> str:
    """The systemd-analyze binary; CI must have it, a laptop may skip."""
    return required_tool("systemd-analyze", "systemd")


def unit_copy(tmp_path: Path) -> Path:
    """The unit with its venv binary pointed at a stub: `verify` checks that every
    Exec*= command exists, and /opt/pushgw is not installed here."""
    stub = tmp_path / "pushgw"
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    copy = tmp_path / UNIT.name  # --offline names the unit after the file
    copy.write_text(UNIT.read_text().replace(INSTALLED_BINARY, str(stub)))
    return copy


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [systemd_analyze(), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def directives(name: str) -> list[str]:
    prefix = f"{name}="
    return [
        line.removeprefix(prefix)
        for line in UNIT.read_text().splitlines()
        if line.startswith(prefix)
    ]


def test_unit_verifies(tmp_path: Path) -> None:
    """`systemd-analyze verify` passes without a warning (no typo'd directive,
    no unknown section, every command present)."""
    result = analyze("verify", "--man=no", str(unit_copy(tmp_path)))

    assert 0 == result.returncode, result.stderr
    assert "" == result.stderr.strip()


def test_unit_exposure_is_at_most_two(tmp_path: Path) -> None:
    """`systemd-analyze security --offline=yes` rates the unit 2.0 or better,
    by its printed score and by its exit status under --threshold."""
    result = analyze(
        "security",
        "--offline=yes",
        f"--threshold={THRESHOLD}",
        "--no-pager",
        str(unit_copy(tmp_path)),
    )
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)

    assert found is not None, result.stdout + result.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, result.stdout
    assert 0 == result.returncode, result.stdout + result.stderr


def test_unit_reloads_by_sighup_on_bookworm() -> None:
    """Debian bookworm has systemd 252: Type=notify-reload (253+) is not used;
    the reload is a SIGHUP the daemon answers with RELOADING=1 ... READY=1."""
    assert ["notify"] == directives("Type")
    assert ["/bin/kill -HUP $MAINPID"] == directives("ExecReload")
    assert ["main"] == directives("NotifyAccess")


def test_unit_and_example_config_agree(tmp_path: Path) -> None:
    """The example config, as the unit runs it, keeps its database in the
    unit's state directory and reads the secret the unit loads as a credential,
    and the stop timeout leaves room for the graceful drain."""
    credentials = {c.partition(":")[0] for c in directives("LoadCredential")}
    creds = tmp_path / "creds"
    creds.mkdir()
    for name in credentials:
        (creds / name).write_bytes(b"ZmVybmV0LWtleS0tLS0tLS0tLS0tLS0tLS0tLS0tLS0=")
    env = {"STATE_DIRECTORY": "/var/lib/pushgw", "CREDENTIALS_DIRECTORY": str(creds)}

    config = load_config(ROOT / "config" / "pushgw.example.toml", env=env)
    db = config.state_path(config.store.url.removeprefix("sqlite:"))

    assert ["pushgw"] == directives("StateDirectory")
    assert Path("/var/lib/pushgw/pushgw.db") == db
    assert {config.store.encryption_key_file} == credentials
    assert ["0077"] == directives("UMask")
    (stop_timeout,) = directives("TimeoutStopSec")
    assert config.server.graceful_timeout_s < float(stop_timeout)
