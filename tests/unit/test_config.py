"""The TOML config loader and `pushgw check-config`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pushgw.config import config_from_mapping, load_config
from pushgw.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DEV_TOML = ROOT / "config" / "dev.toml"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"server": {"porty": 1}}, "server.porty: unknown key"),
        ({"serverr": {}}, "serverr: unknown key"),
        ({"base_dir": "/tmp"}, "base_dir: unknown key"),
        ({"providers": {"apns": {"timeoutt_s": 1.0}}}, "providers.apns.timeoutt_s"),
        (
            {"auth": {"api_keys": [{"name": "a", "kye": "x"}]}},
            "auth.api_keys[0].kye: unknown key",
        ),
    ],
)
def test_unknown_key_names_dotted_path(raw: dict[str, Any], message: str) -> None:
    """An unknown key anywhere is a ConfigError naming its dotted path."""
    with pytest.raises(ConfigError) as info:
        config_from_mapping(raw)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"providers": {"apns": {"timeout_s": "5"}}},
            "providers.apns.timeout_s: expected float, got str",
        ),
        ({"server": {"port": "8080"}}, "server.port: expected int, got str"),
        ({"server": {"port": 80.5}}, "server.port: expected int, got float"),
        ({"server": {"port": True}}, "server.port: expected int, got bool"),
        (
            {"delivery": {"enabled": 1}},
            "delivery.enabled: expected bool, got int",
        ),
        (
            {"delivery": {"lease_s": False}},
            "delivery.lease_s: expected float, got bool",
        ),
        ({"delivery": {"enabled": "true"}}, "delivery.enabled: expected bool, got str"),
        ({"server": "x"}, "server: expected a table"),
        ({"auth": {"api_keys": {"name": "a"}}}, "auth.api_keys: expected a list"),
        (
            {"auth": {"api_keys": [{"name": "a", "actions": [1]}]}},
            "auth.api_keys[0].actions[0]: expected str, got int",
        ),
    ],
)
def test_wrong_type_names_dotted_path(raw: dict[str, Any], message: str) -> None:
    """A wrong type (bool and int never confused) names the key and both types."""
    with pytest.raises(ConfigError) as info:
        config_from_mapping(raw)
    assert message == str(info.value)


def test_int_is_accepted_for_float() -> None:
    """An integer is a valid float setting and is stored as a float."""
    config = config_from_mapping(
        {"delivery": {"lease_s": 30}, "providers": {"fcm": {"timeout_s": 3}}}
    )
    assert 30.0 == config.delivery.lease_s
    assert isinstance(config.delivery.lease_s, float)
    assert 3.0 == config.providers["fcm"].timeout_s
    assert isinstance(config.providers["fcm"].timeout_s, float)


def test_provider_override_keeps_defaults() -> None:
    """A provider table overrides only the keys it names."""
    config = config_from_mapping({"providers": {"apns": {"timeout_s": 2.5}}})
    assert 2.5 == config.providers["apns"].timeout_s
    assert "https://api.push.apple.com" == config.providers["apns"].base_url
    assert "https://fcm.googleapis.com" == config.providers["fcm"].base_url


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"providers": {"gcmx": {}}}, "providers.gcmx: unknown provider"),
        ({"providers": {"apns": "x"}}, "providers.apns: expected a table"),
        ({"providers": []}, "providers: expected a table"),
        ({"logging": {"format": "xml"}}, "logging.format: expected one of"),
        ({"server": {"port": 70000}}, "server.port: expected 1..65535"),
        ({"delivery": {"chunk_size": 0}}, "delivery.chunk_size: expected a positive"),
    ],
)
def test_bad_values(raw: dict[str, Any], message: str) -> None:
    """Unknown providers and out-of-range values are ConfigErrors."""
    with pytest.raises(ConfigError) as info:
        config_from_mapping(raw)
    assert str(info.value).startswith(message)


def test_api_keys_and_actions() -> None:
    """Empty actions mean every action; a key file is read relative to the config."""
    config = config_from_mapping(
        {
            "auth": {
                "api_keys": [
                    {"name": "all", "key": "k1"},
                    {"name": "pub", "key": "k2", "actions": ["Publish"]},
                ]
            }
        }
    )
    keys = {k.name: k for k in config.api_keys()}
    assert keys["all"].actions is None
    assert frozenset({"Publish"}) == keys["pub"].actions


def test_missing_key_file_is_config_error(tmp_path: Path) -> None:
    """A key entry with neither a key nor a readable key file is a ConfigError."""
    config = config_from_mapping(
        {"auth": {"api_keys": [{"name": "a", "key_file": "nope.txt"}]}},
        base_dir=str(tmp_path),
    )
    with pytest.raises(ConfigError, match=r"^auth\.api_keys\.key_file: cannot read"):
        config.api_keys()
    (tmp_path / "nope.txt").write_text("secret-from-file\n")
    assert "secret-from-file" == config.api_keys()[0].key


def test_dev_toml_loads() -> None:
    """config/dev.toml loads, with paths relative to its directory."""
    config = load_config(DEV_TOML)
    assert 8080 == config.server.port
    assert "dev-only-json-api-key" == config.api_keys()[0].key
    assert "https://127.0.0.1:9102" == config.providers["fcm"].base_url
    assert str(ROOT / "state" / "mock-ca.pem") == str(
        config.path(config.mocks.ca_file).resolve()
    )


def test_invalid_toml_is_config_error(tmp_path: Path) -> None:
    """Unparseable TOML and a missing file are ConfigErrors, not tracebacks."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\nport = 1\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


def run_check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pushgw", "check-config", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_check_config_accepts_dev_toml() -> None:
    """`pushgw check-config config/dev.toml` exits 0."""
    result = run_check_config(DEV_TOML)
    assert 0 == result.returncode, result.stderr


def test_check_config_rejects_bad_file(tmp_path: Path) -> None:
    """A bad file exits 2 with the dotted key on stderr."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[providers.apns]\ntimeout_s = "5"\n')
    result = run_check_config(bad)
    assert 2 == result.returncode
    assert "providers.apns.timeout_s: expected float, got str" in result.stderr
    assert "Traceback" not in result.stderr
