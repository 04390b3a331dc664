"""
`pushgw mock-providers`: all six loopback mock platforms in one process, on the
fixed ports of `[mocks]` in the config, plus a small JSON control API.

Control API (127.0.0.1:`mocks.control_port`):
    POST /credentials/{platform}   step 1: {"attributes": {...}} for
                                   CreatePlatformApplication (body: options,
                                   e.g. {"auth": "certificate"} or {"kind": "api_key"})
    POST /devices/{platform}       step 2: {"token": ..., "attributes": {...}}
                                   (body: {"state": "valid" | "unregistered" | ...});
                                   with {"count": N}: {"devices": [...]} (load tests)
    GET  /received?token=...       what that simulated device received
    GET  /stats                    counts per platform and outcome
    POST /faults                   {"platform": "APNS", "rules": [FaultRule, ...]}
    POST /reset                    forget messages, stats and faults
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from pushgw.config import Config
from pushgw.log import get_logger
from pushgw.providers.mocks.adm import AdmMock
from pushgw.providers.mocks.apns import ApnsMock
from pushgw.providers.mocks.baidu import BaiduMock
from pushgw.providers.mocks.base import FaultRule, MockPlatform
from pushgw.providers.mocks.fcm import FcmMock
from pushgw.providers.mocks.mpns import MpnsMock
from pushgw.providers.mocks.wns import WnsMock

log = get_logger("pushgw.mocks")

# SNS platform name -> the mock that plays it (all Apple flavours share one).
PLATFORM_MOCK = {
    "APNS": "APNS",
    "APNS_SANDBOX": "APNS",
    "APNS_VOIP": "APNS",
    "APNS_VOIP_SANDBOX": "APNS",
    "MACOS": "APNS",
    "MACOS_SANDBOX": "APNS",
    "GCM": "GCM",
    "ADM": "ADM",
    "BAIDU": "BAIDU",
    "MPNS": "MPNS",
    "WNS": "WNS",
}


class MockFleet:
    """The six mocks, started together; used by the CLI, the demo and the bench."""

    def __init__(self) -> None:
        apns = ApnsMock()
        self.mocks: dict[str, MockPlatform] = {
            "APNS": apns,
            # The two TLS mocks share one CA, so one `ca_file` trusts both.
            "GCM": FcmMock(ca=apns.ca),
            "ADM": AdmMock(),
            "BAIDU": BaiduMock(),
            "MPNS": MpnsMock(),
            "WNS": WnsMock(),
        }

    @property
    def apns(self) -> ApnsMock:
        mock = self.mocks["APNS"]
        assert isinstance(mock, ApnsMock)
        return mock

    async def start(self, ports: Mapping[str, int] | None = None) -> dict[str, str]:
        urls = {}
        for name, mock in self.mocks.items():
            urls[name] = await mock.start(port=(ports or {}).get(name, 0))
        return urls

    async def stop(self) -> None:
        for mock in self.mocks.values():
            with contextlib.suppress(Exception):
                await mock.stop()

    def mock_for(self, platform: str) -> MockPlatform:
        name = PLATFORM_MOCK.get(platform.upper())
        if name is None:
            raise web.HTTPNotFound(text=f"unknown platform {platform}")
        return self.mocks[name]

    def credentials(self, platform: str, options: Mapping[str, Any]) -> dict[str, str]:
        return self.mock_for(platform).issue_credentials(**options)

    def device(self, platform: str, state: str = "valid") -> dict[str, Any]:
        mock = self.mock_for(platform)
        token = mock.register_device(state=state)
        attributes: dict[str, str] = {}
        if isinstance(mock, BaiduMock):
            attributes = {"ChannelId": token, "UserId": mock.user_id_for(token)}
        return {"token": token, "attributes": attributes}

    def received(self, token: str) -> list[dict[str, Any]]:
        for mock in self.mocks.values():
            got = mock.received_for(token)
            if got:
                return [r.to_json() for r in got]
        return []

    def stats(self) -> dict[str, dict[str, int]]:
        return {name: dict(mock.stats) for name, mock in self.mocks.items()}

    def reset(self) -> None:
        for mock in self.mocks.values():
            mock.reset()


def control_app(fleet: MockFleet) -> web.Application:
    async def body(request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise web.HTTPBadRequest(text="body is not JSON") from None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text="body must be a JSON object")
        return data

    async def credentials(request: web.Request) -> web.Response:
        platform = request.match_info["platform"]
        attributes = fleet.credentials(platform, await body(request))
        return web.json_response(
            {"platform": platform.upper(), "attributes": attributes}
        )

    async def devices(request: web.Request) -> web.Response:
        data = await body(request)
        platform = request.match_info["platform"]
        state = str(data.get("state", "valid"))
        count = data.get("count")
        try:
            if count is None:
                return web.json_response(fleet.device(platform, state))
            if not isinstance(count, int) or not 1 <= count <= 100_000:
                raise ValueError("count must be an integer from 1 to 100000")
            devices = [fleet.device(platform, state) for _ in range(count)]
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        return web.json_response({"devices": devices})

    async def received(request: web.Request) -> web.Response:
        token = request.query.get("token", "")
        return web.json_response({"token": token, "messages": fleet.received(token)})

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(fleet.stats())

    async def faults(request: web.Request) -> web.Response:
        data = await body(request)
        mock = fleet.mock_for(str(data.get("platform", "")))
        try:
            rules = [FaultRule.from_json(r) for r in data.get("rules", [])]
        except (KeyError, ValueError, TypeError) as exc:
            raise web.HTTPBadRequest(text=f"bad fault rule: {exc}") from None
        mock.faults.rules = rules
        return web.json_response({"rules": len(rules)})

    async def reset(_: web.Request) -> web.Response:
        fleet.reset()
        return web.json_response({"reset": True})

    app = web.Application()
    app.router.add_post("/credentials/{platform}", credentials)
    app.router.add_post("/devices/{platform}", devices)
    app.router.add_get("/received", received)
    app.router.add_get("/stats", stats)
    app.router.add_post("/faults", faults)
    app.router.add_post("/reset", reset)
    return app


def fleet_ports(config: Config) -> dict[str, int]:
    m = config.mocks
    return {
        "APNS": m.apns_port,
        "GCM": m.fcm_port,
        "ADM": m.adm_port,
        "BAIDU": m.baidu_port,
        "MPNS": m.mpns_port,
        "WNS": m.wns_port,
    }


async def start_fleet(config: Config) -> tuple[MockFleet, web.AppRunner]:
    fleet = MockFleet()
    urls = await fleet.start(fleet_ports(config))
    ca_path = config.path(config.mocks.ca_file)
    ca_path.parent.mkdir(parents=True, exist_ok=True)
    fleet.apns.write_ca(ca_path)
    runner = web.AppRunner(control_app(fleet), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", config.mocks.control_port).start()
    log.info(
        "mocks_started",
        control=config.mocks.control_port,
        ca_file=str(ca_path),
        **{k.lower(): v for k, v in urls.items()},
    )
    return fleet, runner


async def run_mocks(config: Config) -> None:
    fleet, runner = await start_fleet(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await fleet.stop()
