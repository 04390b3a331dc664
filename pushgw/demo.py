"""
`pushgw demo`: the five-step flow for all six platforms, for real.

It starts the six loopback mock platforms (with their control API) and the
daemon as a separate `pushgw serve` process on the given config, then drives the
daemon over its HTTP JSON API exactly as an app backend would:

  1. credentials from each platform (mock control API)
  2. a device token from each platform (a simulated device)
  3. CreatePlatformApplication   4. CreatePlatformEndpoint
  5. Publish to each endpoint, then once to a topic they are all subscribed to

and prints what every simulated device received. Exit status 1 if any device
missed a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp

from pushgw.config import Config, load_config
from pushgw.providers.mocks.runner import MockFleet, start_fleet

PLATFORMS = ("APNS", "GCM", "ADM", "BAIDU", "MPNS", "WNS")
WAIT_S = 30.0


def say(text: str = "") -> None:
    print(text, flush=True)


class Client:
    """The daemon's JSON API, as an app backend uses it."""

    def __init__(self, session: aiohttp.ClientSession, base: str, key: str) -> None:
        self.session = session
        self.base = base
        self.headers = {"Authorization": f"Bearer {key}"}

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(
            method, self.base + path, json=body, headers=self.headers
        ) as resp:
            data = await resp.json() if resp.status != 204 else None
            if resp.status >= 400:
                raise RuntimeError(f"{method} {path}: {resp.status} {data}")
            return data


async def wait_ready(session: aiohttp.ClientSession, base: str, proc: Any) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError(f"pushgw serve exited with {proc.returncode}")
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(base + "/readyz") as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise RuntimeError("pushgw serve did not become ready")


async def five_steps(api: Client, fleet: MockFleet) -> dict[str, dict[str, str]]:
    devices: dict[str, dict[str, str]] = {}
    for platform in PLATFORMS:
        say(f"── {platform}")
        creds = fleet.credentials(platform, {})
        say(f"  1. credentials issued by the {platform} mock: {sorted(creds)}")
        device = fleet.device(platform)
        token = device["token"]
        say(f"  2. device token: {token[:40]}{'…' if len(token) > 40 else ''}")
        app = await api.call(
            "POST",
            "/v1/platform-applications",
            {
                "name": f"demo-{platform.lower()}",
                "platform": platform,
                "attributes": creds,
            },
        )
        app_arn = app["platformApplicationArn"]
        say(f"  3. CreatePlatformApplication → {app_arn}")
        endpoint = await api.call(
            "POST",
            f"/v1/platform-applications/{app_arn}/endpoints",
            {"token": token, "attributes": device["attributes"]},
        )
        endpoint_arn = endpoint["endpointArn"]
        say(f"  4. CreatePlatformEndpoint → {endpoint_arn}")
        sent = await api.call(
            "POST",
            "/v1/publish",
            {"targetArn": endpoint_arn, "message": f"Hello {platform} from pushgw"},
        )
        say(f"  5. Publish → MessageId {sent['messageId']}")
        devices[platform] = {"token": token, "endpoint": endpoint_arn}
    return devices


async def topic_publish(api: Client, devices: dict[str, dict[str, str]]) -> None:
    topic = await api.call("POST", "/v1/topics", {"name": "demo-everyone"})
    topic_arn = topic["topicArn"]
    for device in devices.values():
        await api.call(
            "POST",
            f"/v1/topics/{topic_arn}/subscriptions",
            {"endpointArn": device["endpoint"]},
        )
    sent = await api.call(
        "POST",
        "/v1/publish",
        {"topicArn": topic_arn, "message": "One topic publish to all six platforms"},
    )
    say(
        f"── topic {topic_arn}: {len(devices)} subscriptions, MessageId {sent['messageId']}"
    )


async def wait_received(fleet: MockFleet, devices: dict[str, dict[str, str]]) -> bool:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if all(len(fleet.received(d["token"])) >= 2 for d in devices.values()):
            break
        await asyncio.sleep(0.1)
    ok = True
    say("\nWhat each simulated device received:")
    for platform, device in devices.items():
        got = fleet.received(device["token"])
        ok &= len(got) >= 2
        mark = "ok " if len(got) >= 2 else "MISSING"
        say(f"  [{mark}] {platform}: {len(got)} message(s)")
        for item in got:
            payload = item["payload"]
            text = payload if isinstance(payload, str) else json.dumps(payload)
            say(f"         {text[:110]}")
    return ok


def builtin_config() -> str:
    """A copy of the packaged development config in a new directory of its own
    (its state goes beside it), for `pushgw demo` without --config."""
    root = Path(tempfile.mkdtemp(prefix="pushgw-demo-"))
    target = root / "config"
    target.mkdir()
    for name in (
        "dev.toml",
        "dev-encryption.key",
        "dev-sns-signing.key",
        "dev-sns-signing.pem",
    ):
        (target / name).write_bytes(
            resources.files("pushgw").joinpath("defaults", name).read_bytes()
        )
    say(f"using the built-in development config, state in {root}")
    return str(target / "dev.toml")


async def run_demo(config_path: str | None) -> int:
    if config_path is None:
        config_path = builtin_config()
    # The fleet writes the mock CA the config names; `serve` checks it after.
    config: Config = load_config(config_path, check_files=False)
    fleet, runner = await start_fleet(config)
    base = f"http://{config.server.host}:{config.server.port}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-P",  # not the current directory first: a ./pushgw folder is not us
        "-m",
        "pushgw",
        "serve",
        "--config",
        config_path,
        stdout=asyncio.subprocess.DEVNULL
        if not os.environ.get("PUSHGW_DEMO_LOGS")
        else None,
    )
    ok = False
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, base, proc)
            say(
                f"pushgw serve is up on {base} (pid {proc.pid}); mocks on 127.0.0.1:"
                f"{config.mocks.apns_port}-{config.mocks.wns_port}\n"
            )
            api = Client(session, base, config.api_keys()[0].key)
            devices = await five_steps(api, fleet)
            await topic_publish(api, devices)
            ok = await wait_received(fleet, devices)
    except (RuntimeError, aiohttp.ClientError) as exc:
        say(f"\nDemo FAILED: {exc}")
        say("(rerun with PUSHGW_DEMO_LOGS=1 to see the daemon's logs)")
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
        await runner.cleanup()
        await fleet.stop()
    say(
        "\nDemo "
        + (
            "passed: every device received its messages."
            if ok
            else "FAILED: some devices missed messages."
        )
    )
    return 0 if ok else 1
