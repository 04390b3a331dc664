"""The TOML config loader and `pushgw check-config`."""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import subprocess
import sys
import typing
from pathlib import Path
from typing import Annotated, Any

import pytest
import trustme
from cryptography.fernet import Fernet

from pushgw.cli import build_parser
from pushgw.config import (
    Config,
    config_from_mapping,
    find_config,
    load_config,
)
from pushgw.errors import ConfigError
from pushgw.schema import Range
from pushgw.store.factory import open_store

ROOT = Path(__file__).resolve().parents[2]
DEV_TOML = ROOT / "config" / "dev.toml"
NO_ENV: dict[str, str] = {}


def dev_tree(tmp_path: Path) -> Path:
    """A copy of config/ with the mock CA that `pushgw mock-providers` writes."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    (tmp_path / "state").mkdir()
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "state" / "mock-ca.pem"))
    return tmp_path / "config" / "dev.toml"


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
        (
            {"logging": {"level": "verbose"}},
            "logging.level: expected one of debug, info, warning, error, critical;"
            " got 'verbose'",
        ),
        (
            {"logging": {"format": "xml"}},
            "logging.format: expected one of auto, json, console; got 'xml'",
        ),
        ({"server": {"port": 70000}}, "server.port: expected 1..65535, got 70000"),
        ({"server": {"port": 0}}, "server.port: expected 1..65535, got 0"),
        ({"mocks": {"apns_port": -1}}, "mocks.apns_port: expected 1..65535, got -1"),
        ({"server": {"host": ""}}, "server.host: expected a non-empty name"),
        (
            {"server": {"max_body_bytes": 10}},
            "server.max_body_bytes: expected 1024..1.07374e+09, got 10",
        ),
        (
            {"server": {"graceful_timeout_s": 0}},
            "server.graceful_timeout_s: expected > 0",
        ),
        ({"delivery": {"lease_s": -5}}, "delivery.lease_s: expected > 0, got -5.0"),
        (
            {"delivery": {"lease_s": float("nan")}},
            "delivery.lease_s: expected > 0, got nan",
        ),
        (
            {"delivery": {"poll_interval_s": float("inf")}},
            "delivery.poll_interval_s: expected > 0, got inf",
        ),
        ({"delivery": {"chunk_size": 0}}, "delivery.chunk_size: expected >= 1, got 0"),
        (
            {"delivery": {"max_in_flight": -3}},
            "delivery.max_in_flight: expected >= 1, got -3",
        ),
        (
            {"delivery": {"retry_base_s": 10, "retry_max_s": 5}},
            "delivery.retry_max_s: expected >= delivery.retry_base_s (10), got 5",
        ),
        ({"store": {"timeout_s": 0.0}}, "store.timeout_s: expected > 0, got 0.0"),
        (
            {"store": {"url": "mysql://db/x"}},
            "store.url: expected memory:, sqlite:PATH",
        ),
        ({"store": {"url": "sqlite:"}}, "store.url: expected memory:, sqlite:PATH"),
        ({"store": {"url": "pushgw.db"}}, "store.url: expected memory:, sqlite:PATH"),
        (
            {"store": {"url": "postgresql:db.internal/pushgw"}},
            "store.url: expected memory:, sqlite:PATH",
        ),
        (
            {"providers": {"fcm": {"timeout_s": -1}}},
            "providers.fcm.timeout_s: expected > 0, got -1.0",
        ),
        (
            {"providers": {"apns": {"max_connections": 0}}},
            "providers.apns.max_connections: expected >= 1, got 0",
        ),
        (
            {"providers": {"adm": {"token_url": "api.amazon.com/auth"}}},
            "providers.adm.token_url: expected an http:// or https:// URL",
        ),
        ({"sns": {"account": "1234"}}, "sns.account: expected a 12-digit account id"),
        ({"sns": {"region": "us east"}}, "sns.region: expected a region name"),
        (
            {
                "auth": {
                    "sns_keys": [{"access_key_id": "AKIA/1", "secret_access_key": "s"}]
                }
            },
            "auth.sns_keys[0].access_key_id: expected letters, digits",
        ),
        (
            {"auth": {"sns_keys": [{"secret_access_key": "s"}]}},
            "auth.sns_keys[0].access_key_id: required key missing",
        ),
        (
            {"auth": {"sns_keys": [{"access_key_id": "AKIA1"}]}},
            "auth.sns_keys[0]: set exactly one of secret_access_key and"
            " secret_access_key_file",
        ),
        (
            {"auth": {"api_keys": [{"name": "a", "key": "k", "key_file": "f"}]}},
            "auth.api_keys[0]: set exactly one of key and key_file",
        ),
        (
            {
                "auth": {
                    "api_keys": [{"name": "a", "key": "1"}, {"name": "a", "key": "2"}]
                }
            },
            "auth.api_keys[1]: 'a' is already auth.api_keys[0]",
        ),
    ],
)
def test_bad_values(raw: dict[str, Any], message: str) -> None:
    """Out-of-range numbers, unknown choices, malformed URLs and names, and
    inconsistent key entries are ConfigErrors naming the key and the rule."""
    with pytest.raises(ConfigError) as info:
        config_from_mapping(raw, env=NO_ENV)
    assert str(info.value).startswith(message), str(info.value)


def test_postgres_password_is_not_echoed() -> None:
    """A rejected store URL is quoted without its password."""
    with pytest.raises(ConfigError) as info:
        config_from_mapping({"store": {"url": "postgresql:u:hunter2@db"}}, env=NO_ENV)
    assert "hunter2" not in str(info.value)


def test_log_level_ignores_case() -> None:
    """`INFO` keeps working: the logger upper-cases the level anyway."""
    assert "INFO" == config_from_mapping({"logging": {"level": "INFO"}}).logging.level


def _numeric_fields(cls: type, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for name, hint in typing.get_type_hints(cls, include_extras=True).items():
        base = (
            typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint
        )
        if dataclasses.is_dataclass(base):
            out += _numeric_fields(base, f"{prefix}{name}.")  # type: ignore[arg-type]
        elif base in (int, float):
            out.append((f"{prefix}{name}", hint))
    return out


def test_every_numeric_key_has_a_range() -> None:
    """No number in the config is unbounded below: each one carries a Range."""
    from pushgw.config import ProviderEntry

    fields = _numeric_fields(Config) + _numeric_fields(ProviderEntry, "providers.*.")
    unguarded = [
        name
        for name, hint in fields
        if not any(isinstance(m, Range) for m in getattr(hint, "__metadata__", ()))
    ]

    assert len(fields) > 20
    assert [] == unguarded


@pytest.mark.parametrize(
    "url",
    [
        "memory:",
        "sqlite:pushgw.db",
        "sqlite:../state/pushgw.db",
        "sqlite:///var/lib/pushgw/pushgw.db",
        "postgresql://pushgw@db.internal:5432/pushgw?schema=a",
        "postgres://pushgw@db/pushgw",
        "sqlite:",
        "sqlite://host/x",
        "memory:x",
        "mysql://db/x",
        "pushgw.db",
    ],
)
def test_store_url_rule_agrees_with_open_store(url: str) -> None:
    """The loader accepts exactly the store URLs the store factory opens."""
    try:
        open_store(url)
        opens = True
    except ConfigError:
        opens = False
    try:
        config_from_mapping({"store": {"url": url}}, env=NO_ENV)
        loads = True
    except ConfigError:
        loads = False

    assert opens == loads


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
    """A key file that cannot be read fails the load, naming the key and path."""
    raw = {"auth": {"api_keys": [{"name": "a", "key_file": "nope.txt"}]}}

    with pytest.raises(ConfigError) as info:
        config_from_mapping(raw, base_dir=str(tmp_path), env=NO_ENV)

    assert (
        f"auth.api_keys[0].key_file: cannot read {tmp_path / 'nope.txt'}: No such"
        " file or directory (relative to the config file: $CREDENTIALS_DIRECTORY"
        " is not set)"
    ) == str(info.value)
    (tmp_path / "nope.txt").write_text("secret-from-file\n")
    config = config_from_mapping(raw, base_dir=str(tmp_path), env=NO_ENV)
    assert "secret-from-file" == config.api_keys()[0].key


def _set(tree: Any, dotted: str, value: str) -> None:
    """Set `auth.api_keys[0].key_file`-style keys in a raw config mapping."""
    parts = dotted.replace("[0]", ".0").split(".")
    for part in parts[:-1]:
        tree = tree[int(part)] if part.isdigit() else tree[part]
    tree[parts[-1]] = value


@pytest.mark.parametrize(
    ("key", "content", "message"),
    [
        ("store.encryption_key_file", None, "cannot read"),
        ("store.encryption_key_file", b"not-a-key\n", "is not a Fernet key"),
        ("auth.sns_keys[0].secret_access_key_file", b"\n", "is empty"),
        ("auth.api_keys[0].key_file", None, "cannot read"),
        ("providers.apns.ca_file", b"-----BEGIN nothing", "is not a PEM CA bundle"),
        ("providers.apns.ca_file", None, "cannot read"),
    ],
)
def test_files_must_exist_and_hold_what_they_should(
    tmp_path: Path, key: str, content: bytes | None, message: str
) -> None:
    """Key, secret and CA files are read at load time: missing, empty or
    malformed ones are ConfigErrors naming the dotted key."""
    (tmp_path / "k").write_bytes(Fernet.generate_key())
    (tmp_path / "s").write_text("secret")
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    raw: dict[str, Any] = {
        "store": {"encryption_key_file": "k"},
        "auth": {
            "sns_keys": [{"access_key_id": "AKIA1", "secret_access_key_file": "s"}],
            "api_keys": [{"name": "a", "key_file": "s"}],
        },
        "providers": {"apns": {"ca_file": "ca.pem"}},
    }
    config_from_mapping(raw, base_dir=str(tmp_path), env=NO_ENV)  # all good
    broken = tmp_path / "broken"
    if content is not None:
        broken.write_bytes(content)
    _set(raw, key, "broken")

    with pytest.raises(ConfigError) as info:
        config_from_mapping(raw, base_dir=str(tmp_path), env=NO_ENV)

    assert str(info.value).startswith(f"{key}: "), str(info.value)
    assert message in str(info.value)


def test_relative_paths_without_systemd_follow_the_config_file(tmp_path: Path) -> None:
    """Without $STATE_DIRECTORY and $CREDENTIALS_DIRECTORY every relative path
    is relative to the config file's directory (config/dev.toml relies on it)."""
    config = config_from_mapping({}, base_dir=str(tmp_path), env=NO_ENV)

    assert tmp_path / "pushgw.db" == config.state_path("pushgw.db")
    assert tmp_path / "key" == config.secret_path("key")
    assert tmp_path / "ca.pem" == config.path("ca.pem")
    assert Path("/abs/key") == config.secret_path("/abs/key")


def test_relative_paths_under_systemd_follow_its_directories(tmp_path: Path) -> None:
    """$STATE_DIRECTORY holds a relative SQLite path and $CREDENTIALS_DIRECTORY
    the relative secret files; CA files stay relative to the config file."""
    state, creds = tmp_path / "state", tmp_path / "creds"
    creds.mkdir()
    (creds / "encryption.key").write_bytes(Fernet.generate_key())
    (creds / "sns-secret").write_text("from-credentials\n")
    env = {
        "STATE_DIRECTORY": f"{state}:/var/lib/other",
        "CREDENTIALS_DIRECTORY": str(creds),
    }
    raw = {
        "store": {"url": "sqlite:pushgw.db", "encryption_key_file": "encryption.key"},
        "auth": {
            "sns_keys": [
                {"access_key_id": "AKIA1", "secret_access_key_file": "sns-secret"}
            ]
        },
    }

    config = config_from_mapping(raw, base_dir=str(tmp_path / "etc"), env=env)

    assert state / "pushgw.db" == config.state_path("pushgw.db")
    assert creds / "encryption.key" == config.secret_path("encryption.key")
    assert tmp_path / "etc" / "ca.pem" == config.path("ca.pem")
    assert "from-credentials" == config.sns_access_keys()["AKIA1"].secret_access_key


def test_example_configs_load_under_the_unit(tmp_path: Path) -> None:
    """The shipped production examples load with the directories the unit
    gives them, their secrets in the credentials directory."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "encryption.key").write_bytes(Fernet.generate_key())
    for name in ("sns-secret", "api-key"):
        (creds / name).write_text("secret")
    env = {
        "STATE_DIRECTORY": str(tmp_path / "state"),
        "CREDENTIALS_DIRECTORY": str(creds),
    }

    example = load_config(ROOT / "config" / "pushgw.example.toml", env=env)
    postgres = load_config(ROOT / "config" / "pushgw.postgres.toml", env=env)

    assert tmp_path / "state" / "pushgw.db" == example.state_path(
        example.store.url.removeprefix("sqlite:")
    )
    assert creds / "encryption.key" == example.secret_path(
        example.store.encryption_key_file
    )
    assert {"AKIAEXAMPLEPRODKEY01"} == set(postgres.sns_access_keys())


@pytest.mark.parametrize(
    ("explicit", "env", "expected"),
    [
        ("a.toml", {"PUSHGW_CONFIG": "b.toml"}, ("a.toml", "--config")),
        (None, {"PUSHGW_CONFIG": "b.toml"}, ("b.toml", "$PUSHGW_CONFIG")),
        (None, {"PUSHGW_CONFIG": ""}, ("/etc/pushgw/pushgw.toml", "default")),
        (None, {}, ("/etc/pushgw/pushgw.toml", "default")),
    ],
)
def test_config_search_order(
    explicit: str | None, env: dict[str, str], expected: tuple[str, str]
) -> None:
    """--config, then $PUSHGW_CONFIG, then /etc/pushgw/pushgw.toml; never dev.toml."""
    assert expected == find_config(explicit, env)


def test_every_option_has_help() -> None:
    """Every subcommand and every option of `pushgw` says what it does."""
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    missing = [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, command in [("pushgw", parser), *sub.choices.items()]
        for action in command._actions
        if not action.help and not isinstance(action, argparse._SubParsersAction)
    ]
    helps = {a.dest: a.help for a in sub._choices_actions}

    assert [] == missing
    assert set(sub.choices) == {k for k, v in helps.items() if v}


def test_dev_toml_loads(tmp_path: Path) -> None:
    """config/dev.toml loads, with paths relative to its directory."""
    dev = dev_tree(tmp_path)

    config = load_config(dev, env=NO_ENV)

    assert 8080 == config.server.port
    assert "dev-only-json-api-key" == config.api_keys()[0].key
    assert "https://127.0.0.1:9102" == config.providers["fcm"].base_url
    assert str(tmp_path / "state" / "mock-ca.pem") == str(
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


def test_check_config_accepts_dev_toml(tmp_path: Path) -> None:
    """`pushgw check-config config/dev.toml` exits 0 once the mock CA exists."""
    result = run_check_config(dev_tree(tmp_path))
    assert 0 == result.returncode, result.stderr


def test_check_config_rejects_bad_file(tmp_path: Path) -> None:
    """A bad file exits 2 with the dotted key on stderr."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[providers.apns]\ntimeout_s = "5"\n')
    result = run_check_config(bad)
    assert 2 == result.returncode
    assert "providers.apns.timeout_s: expected float, got str" in result.stderr
    assert "Traceback" not in result.stderr
