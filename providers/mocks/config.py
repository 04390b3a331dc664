"""
Config tables that point every adapter at the loopback mocks, and a tiny TOML
writer for them: shared by the end-to-end test harness and `pushgw bench`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def mock_urls(ports: Mapping[str, int]) -> dict[str, str]:
    """Base URLs of the six mocks from their ports (keys as in `[mocks]`)."""
    return {
        "APNS": f"https://127.0.0.1:{ports['apns']}",
        "GCM": f"https://127.0.0.1:{ports['fcm']}",
        "ADM": f"http://127.0.0.1:{ports['adm']}",
        "BAIDU": f"http://127.0.0.1:{ports['baidu']}",
        "MPNS": f"http://127.0.0.1:{ports['mpns']}",
        "WNS": f"http://127.0.0.1:{ports['wns']}",
    }


def provider_tables(
    urls: Mapping[str, str], *, ca_file: str
) -> dict[str, dict[str, Any]]:
    """`[providers.*]` tables for mocks at `urls` (platform -> base URL)."""
    return {
        "providers.apns": {
            "base_url": urls["APNS"],
            "sandbox_url": urls["APNS"],
            "ca_file": ca_file,
        },
        "providers.fcm": {"base_url": urls["GCM"], "ca_file": ca_file},
        "providers.gcm_legacy": {"base_url": urls["GCM"], "ca_file": ca_file},
        "providers.adm": {
            "base_url": urls["ADM"],
            "token_url": f"{urls['ADM']}/auth/O2/token",
        },
        "providers.baidu": {"base_url": urls["BAIDU"]},
        "providers.mpns": {"allow_loopback": True},
        "providers.wns": {
            "token_url": f"{urls['WNS']}/accesstoken.srf",
            "allow_loopback": True,
        },
    }


def to_toml(
    tables: Mapping[str, Mapping[str, Any]],
    arrays: Sequence[tuple[str, Mapping[str, Any]]] = (),
) -> str:
    """`[table]`s then `[[array]]` entries, for flat values only."""
    lines: list[str] = []
    for name, values in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {_value(v)}" for k, v in values.items()]
        lines.append("")
    for name, values in arrays:
        lines.append(f"[[{name}]]")
        lines += [f"{k} = {_value(v)}" for k, v in values.items()]
        lines.append("")
    return "\n".join(lines)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
