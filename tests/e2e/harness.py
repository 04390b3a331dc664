"""
Real processes for end-to-end tests: `pushgw mock-providers` and `pushgw serve`
started with `sys.executable -m pushgw`, on free loopback ports, each with its own
config file in a temporary directory.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from pushgw.providers.mocks.config import mock_urls, provider_tables, to_toml

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
API_KEY = "e2e-json-api-key"  # admin scope: the admin routes too
PUBLISH_API_KEY = "e2e-publish-only-json-key"  # Publish/PublishBatch, no admin
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(
    directory: Path,
    *,
    store_url: str,
    mock_ports: Mapping[str, int],
    port: int | None = None,
    delivery: Mapping[str, Any] | None = None,
    server: Mapping[str, Any] | None = None,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
    name: str = "pushgw.toml",
) -> Path:
    """A config like config/dev.toml, on the given ports and store."""
    port = port or free_port()
    sections: dict[str, Mapping[str, Any]] = {
        "server": {
            "host": "127.0.0.1",
            "port": port,
            "graceful_timeout_s": 5.0,
            **(server or {}),
        },
        "store": {"url": store_url},
        "delivery": {
            "poll_interval_s": 0.2,
            "retry_base_s": 0.2,
            "retry_max_s": 2.0,
            **(delivery or {}),
        },
        "logging": {"level": "info", "format": "json"},
        **provider_tables(mock_urls(mock_ports), ca_file="mock-ca.pem"),
        "mocks": {
            "control_port": mock_ports["control"],
            "apns_port": mock_ports["apns"],
            "fcm_port": mock_ports["fcm"],
            "adm_port": mock_ports["adm"],
            "baidu_port": mock_ports["baidu"],
            "mpns_port": mock_ports["mpns"],
            "wns_port": mock_ports["wns"],
            "ca_file": "mock-ca.pem",
        },
        **(extra or {}),
    }
    keys = [
        (
            "auth.sns_keys",
            {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY},
        ),
        (
            "auth.sns_keys",
            {
                "access_key_id": "AKIAPUBLISHONLY00001",
                "secret_access_key": "publish-only-secret",
                "actions": ["Publish", "PublishBatch"],
            },
        ),
        ("auth.api_keys", {"name": "e2e", "key": API_KEY, "admin": True}),
        (
            "auth.api_keys",
            {
                "name": "e2e-publisher",
                "key": PUBLISH_API_KEY,
                "actions": ["Publish", "PublishBatch"],
            },
        ),
    ]
    path = directory / name
    path.write_text(to_toml(sections, keys))
    return path


def mock_ports() -> dict[str, int]:
    return {
        n: free_port()
        for n in ("control", "apns", "fcm", "adm", "baidu", "mpns", "wns")
    }


class Process:
    """A `python -m pushgw ...` child whose output goes to a log file."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pushgw", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=env,
        )

    def wait_http(
        self, url: str, timeout: float = 30.0, verify: ssl.SSLContext | bool = True
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"process exited: {self.log_path.read_text()[-3000:]}"
                )
            try:
                if httpx.get(url, timeout=1.0, verify=verify).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{url} not up: {self.log_path.read_text()[-3000:]}")

    def terminate(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._log.close()

    def logs(self) -> str:
        return self.log_path.read_text()


class Mocks:
    """`pushgw mock-providers` and a client for its control API."""

    def __init__(self, directory: Path, ports: dict[str, int], config: Path) -> None:
        self.ports = ports
        self.control = f"http://127.0.0.1:{ports['control']}"
        self.process = Process(
            ["mock-providers", "--config", str(config)], directory / "mocks.log"
        )
        try:
            self.process.wait_http(self.control + "/stats")
        except BaseException:
            self.process.terminate()
            raise

    def credentials(self, platform: str, **options: Any) -> dict[str, str]:
        r = httpx.post(f"{self.control}/credentials/{platform}", json=options)
        r.raise_for_status()
        return dict(r.json()["attributes"])

    def device(self, platform: str, state: str = "valid") -> dict[str, Any]:
        r = httpx.post(f"{self.control}/devices/{platform}", json={"state": state})
        r.raise_for_status()
        return dict(r.json())

    def received(self, token: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.control}/received", params={"token": token})
        r.raise_for_status()
        return list(r.json()["messages"])

    def stats(self) -> dict[str, dict[str, int]]:
        return dict(httpx.get(f"{self.control}/stats").json())

    def faults(self, platform: str, rules: list[dict[str, Any]]) -> None:
        httpx.post(
            f"{self.control}/faults", json={"platform": platform, "rules": rules}
        )

    def stop(self) -> None:
        self.process.terminate()


class Server:
    """`pushgw serve` on a config; `.url` is its base URL."""

    def __init__(
        self,
        directory: Path,
        config: Path,
        port: int,
        name: str = "serve",
        *,
        ca_file: str | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.config = config
        # With `ca_file` the daemon serves HTTPS (server.tls_cert_file).
        self.verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=ca_file) if ca_file else True
        )
        self.url = f"{'https' if ca_file else 'http'}://127.0.0.1:{port}"
        self.api_key = API_KEY
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.process = Process(
            ["serve", "--config", str(config), *args], directory / f"{name}.log"
        )
        try:
            self.process.wait_http(self.url + "/healthz", verify=self.verify)
        except BaseException:
            self.process.terminate()  # never leave a daemon behind a failed start
            raise

    def json(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return httpx.request(
            method,
            self.url + path,
            json=body,
            timeout=30.0,
            verify=self.verify,
            headers={"Authorization": f"Bearer {self.api_key}"},
        )

    def stop(self) -> int:
        return self.process.terminate()


def start_server(
    directory: Path,
    mocks: Mocks,
    *,
    store_url: str | None = None,
    name: str = "serve",
    args: Sequence[str] = (),
    **config: Any,
) -> Server:
    """`pushgw serve` on a free port with a config of its own, `<name>.toml`
    (`write_config`'s other keywords: delivery, server, extra); the store is
    `pushgw.db` in `directory` unless `store_url` says otherwise."""
    port = free_port()
    path = write_config(
        directory,
        store_url=store_url or f"sqlite:///{directory / 'pushgw.db'}",
        mock_ports=mocks.ports,
        port=port,
        name=f"{name}.toml",
        **config,
    )
    return Server(directory, path, port, name=name, args=args)


def register_devices(
    mocks: Mocks, platform: str, count: int, state: str = "valid"
) -> list[dict[str, Any]]:
    """`count` simulated devices in one control-API call."""
    r = httpx.post(
        f"{mocks.control}/devices/{platform}",
        json={"state": state, "count": count},
        timeout=120.0,
    )
    r.raise_for_status()
    return list(r.json()["devices"])
