"""
`pushgw serve` as deploy/pushgw.service runs it: systemd's variables set
($NOTIFY_SOCKET, $WATCHDOG_USEC, $STATE_DIRECTORY, $CREDENTIALS_DIRECTORY), the
example config's relative paths, a real process. (The sandbox itself is rated by
tests/unit/test_deploy.py.)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.e2e.harness import ROOT, free_port

API_KEY = "key-from-the-credentials-directory"


class NotifySocket:
    """A fake systemd $NOTIFY_SOCKET: an AF_UNIX datagram socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(10)

    def next(self, *, skip: str = "WATCHDOG=1") -> list[str]:
        """The next datagram's lines that is not a watchdog ping."""
        while True:
            lines = self.sock.recv(4096).decode().split("\n")
            if lines != [skip]:
                return lines

    def wait_for(self, line: str) -> None:
        while line not in self.next(skip=""):
            pass


@pytest.fixture(name="unit_dirs")
def _unit_dirs(tmp_path: Path) -> dict[str, Path]:
    dirs = {name: tmp_path / name for name in ("etc", "state", "creds")}
    for d in dirs.values():
        d.mkdir()
    (dirs["creds"] / "encryption.key").write_bytes(Fernet.generate_key())
    (dirs["creds"] / "api-key").write_text(API_KEY + "\n")
    return dirs


@pytest.mark.e2e
def test_serve_under_the_units_environment(
    tmp_path: Path, unit_dirs: dict[str, Path]
) -> None:
    """READY=1 once listening; watchdog pings; the SQLite file in the state
    directory; secrets from the credentials directory; a SIGHUP reported as
    RELOADING=1 then READY=1; SIGTERM as STOPPING=1 and exit status 0."""
    port = free_port()
    config = unit_dirs["etc"] / "pushgw.toml"
    config.write_text(
        f"[server]\nport = {port}\n"
        '[store]\nurl = "sqlite:pushgw.db"\nencryption_key_file = "encryption.key"\n'
        '[[auth.api_keys]]\nname = "ops"\nkey_file = "api-key"\n'
        '[logging]\nformat = "json"\n'
    )
    notify = NotifySocket(tmp_path / "notify")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "NOTIFY_SOCKET": str(notify.path),
        "WATCHDOG_USEC": "1000000",  # a ping every 0.5 s
        "STATE_DIRECTORY": str(unit_dirs["state"]),
        "CREDENTIALS_DIRECTORY": str(unit_dirs["creds"]),
    }
    with (tmp_path / "serve.log").open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pushgw", "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=env,
        )
    try:
        ready = notify.next()
        notify.wait_for("WATCHDOG=1")
        status = httpx.get(
            f"http://127.0.0.1:{port}/v1/topics",
            headers={"Authorization": f"Bearer {API_KEY}"},
        ).status_code

        proc.send_signal(signal.SIGHUP)
        reloading = notify.next()
        reloaded = notify.next()
        proc.send_signal(signal.SIGTERM)
        stopping = notify.next()
        code = proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    log = (tmp_path / "serve.log").read_text()
    assert ["READY=1", f"STATUS=Serving on 127.0.0.1:{port}"] == ready, log
    assert 200 == status
    assert (unit_dirs["state"] / "pushgw.db").is_file()
    assert not (unit_dirs["etc"] / "pushgw.db").exists()
    assert "RELOADING=1" == reloading[0]
    assert reloading[1].startswith("MONOTONIC_USEC=")
    assert "READY=1" == reloaded[0]
    assert reloaded[1].endswith("; config reloaded"), reloaded
    assert "STOPPING=1" == stopping[0]
    assert 0 == code, log
    assert "credentials_stored_in_clear" not in log
