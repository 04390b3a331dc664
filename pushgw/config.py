"""
Configuration: TOML into frozen dataclasses.

Unknown keys and wrong types are errors that name the dotted key
(`providers.apns.timeout_s: expected float, got str`); `pushgw check-config` runs
this same loader. Times are float seconds with `_s` in the name.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from providers.base import ProviderSettings
from pushgw.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1_048_576  # hard limit on request bodies
    graceful_timeout_s: float = 10.0  # SIGTERM: let in-flight sends finish this long


@dataclass(frozen=True, slots=True, kw_only=True)
class SnsConfig:
    region: str = "us-east-1"
    account: str = "123456789012"


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreConfig:
    # memory: | sqlite:///abs/path.db | sqlite:relative/path.db | postgresql://...
    url: str = "sqlite:state/pushgw.db"
    # Fernet key file (44 base64 chars): provider credentials are encrypted at
    # rest with it. "" = stored in clear (development only; a warning is logged).
    encryption_key_file: str = ""
    # Deadline of one store operation (PostgreSQL statements and connects): a
    # stalled database becomes an error the daemon retries, never a hang.
    timeout_s: float = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessKey:
    """An SNS access key pair; `actions` limits it (None = every action)."""

    access_key_id: str
    secret_access_key: str
    actions: frozenset[str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    """A JSON-API bearer key; `actions` limits it (None = every action)."""

    name: str
    key: str
    actions: frozenset[str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SnsKeyEntry:
    access_key_id: str
    secret_access_key: str = ""
    secret_access_key_file: str = ""  # preferred in production (systemd credentials)
    actions: list[str] = field(default_factory=list)  # empty = all


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKeyEntry:
    name: str
    key: str = ""
    key_file: str = ""
    actions: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthConfig:
    sns_keys: list[SnsKeyEntry] = field(default_factory=list)
    api_keys: list[ApiKeyEntry] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryConfig:
    enabled: bool = True  # run the dispatcher in this process
    max_in_flight: int = 512  # sends in flight, whole process
    per_app_in_flight: int = 256  # sends in flight per platform application
    claim_batch: int = 256  # jobs claimed per store round trip
    lease_s: float = 60.0  # a claimed job is someone else's after this
    poll_interval_s: float = 0.5  # idle polling when no wake-up arrives
    chunk_size: int = 1000  # subscriptions per topic fan-out chunk
    retry_base_s: float = 1.0  # first back-off; doubles each attempt, with jitter
    retry_max_s: float = 300.0
    default_ttl_s: float = 2_419_200.0  # SNS default: 4 weeks
    app_backoff_s: float = 5.0  # pause an app whose provider is failing
    # This node's stable identity in job leases. A restarted daemon takes its own
    # previous leases back at once (other nodes wait for them to expire), so it
    # must be unique per daemon sharing a store. "" = host name + config path.
    node_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggingConfig:
    level: str = "info"
    format: str = "auto"  # auto (JSON unless a tty) | json | console


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderEntry:
    base_url: str = ""
    sandbox_url: str = ""
    token_url: str = ""
    timeout_s: float = 10.0
    max_connections: int = 10
    allow_loopback: bool = False
    ca_file: str = ""
    scope: str = ""

    def settings(self) -> ProviderSettings:
        return ProviderSettings(
            base_url=self.base_url,
            sandbox_url=self.sandbox_url or None,
            token_url=self.token_url or None,
            timeout_s=self.timeout_s,
            max_connections=self.max_connections,
            allow_loopback=self.allow_loopback,
            ca_file=self.ca_file or None,
            scope=self.scope or None,
        )


# Production endpoints; config overrides them (dev.toml points at the mocks).
DEFAULT_PROVIDERS: Mapping[str, ProviderEntry] = {
    "apns": ProviderEntry(
        base_url="https://api.push.apple.com",
        sandbox_url="https://api.sandbox.push.apple.com",
    ),
    "fcm": ProviderEntry(base_url="https://fcm.googleapis.com"),
    "gcm_legacy": ProviderEntry(base_url="https://fcm.googleapis.com"),
    "adm": ProviderEntry(
        base_url="https://api.amazon.com",
        token_url="https://api.amazon.com/auth/O2/token",
    ),
    "baidu": ProviderEntry(base_url="http://api.tuisong.baidu.com"),
    "mpns": ProviderEntry(),
    "wns": ProviderEntry(token_url="https://login.live.com/accesstoken.srf"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class MocksConfig:
    """Ports of `pushgw mock-providers` (fixed so configs can point at them)."""

    control_port: int = 9100
    apns_port: int = 9101
    fcm_port: int = 9102
    adm_port: int = 9103
    baidu_port: int = 9104
    mpns_port: int = 9105
    wns_port: int = 9106
    ca_file: str = "state/mock-ca.pem"  # the APNs mock's test CA, written at start


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    sns: SnsConfig = field(default_factory=SnsConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    providers: dict[str, ProviderEntry] = field(
        default_factory=lambda: dict(DEFAULT_PROVIDERS)
    )
    mocks: MocksConfig = field(default_factory=MocksConfig)
    # Directory relative paths in this file are resolved against.
    base_dir: str = "."
    # The file this config was read from ("" when built in code).
    source: str = ""

    def provider(self, name: str) -> ProviderSettings:
        entry = self.providers.get(name, DEFAULT_PROVIDERS[name])
        if entry.ca_file:
            entry = dataclasses.replace(entry, ca_file=str(self.path(entry.ca_file)))
        return entry.settings()

    def path(self, value: str) -> Path:
        """Resolve a path from the config file relative to the file's directory."""
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_dir) / p

    def sns_access_keys(self) -> dict[str, AccessKey]:
        keys = {}
        for entry in self.auth.sns_keys:
            secret = entry.secret_access_key or self._read_secret(
                entry.secret_access_key_file, "auth.sns_keys.secret_access_key_file"
            )
            keys[entry.access_key_id] = AccessKey(
                access_key_id=entry.access_key_id,
                secret_access_key=secret,
                actions=frozenset(entry.actions) or None,
            )
        return keys

    def api_keys(self) -> list[ApiKey]:
        out = []
        for entry in self.auth.api_keys:
            key = entry.key or self._read_secret(
                entry.key_file, "auth.api_keys.key_file"
            )
            out.append(
                ApiKey(
                    name=entry.name, key=key, actions=frozenset(entry.actions) or None
                )
            )
        return out

    def _read_secret(self, path: str, dotted: str) -> str:
        if not path:
            raise ConfigError(f"{dotted}: a secret or a secret file is required")
        try:
            return self.path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{dotted}: cannot read {path}: {exc}") from exc


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file. Raises ConfigError."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    config = config_from_mapping(raw, base_dir=str(path.parent.resolve()))
    return dataclasses.replace(config, source=str(path.resolve()))


def config_from_mapping(raw: Mapping[str, Any], *, base_dir: str = ".") -> Config:
    data = dict(raw)
    providers_raw = data.pop("providers", {})
    config = _build(Config, data, "")
    if not isinstance(providers_raw, Mapping):
        raise ConfigError("providers: expected a table")
    providers = dict(DEFAULT_PROVIDERS)
    for name, entry in providers_raw.items():
        if name not in DEFAULT_PROVIDERS:
            raise ConfigError(
                f"providers.{name}: unknown provider (known: "
                f"{', '.join(sorted(DEFAULT_PROVIDERS))})"
            )
        if not isinstance(entry, Mapping):
            raise ConfigError(f"providers.{name}: expected a table")
        defaults = dataclasses.asdict(DEFAULT_PROVIDERS[name])
        defaults.update(entry)
        providers[name] = _build(ProviderEntry, defaults, f"providers.{name}.")
    config = dataclasses.replace(config, providers=providers, base_dir=base_dir)
    _check(config)
    return config


def _check(config: Config) -> None:
    if config.logging.format not in ("auto", "json", "console"):
        raise ConfigError("logging.format: expected one of auto, json, console")
    if not (0 < config.server.port < 65536):
        raise ConfigError("server.port: expected 1..65535")
    for name in ("max_in_flight", "per_app_in_flight", "claim_batch", "chunk_size"):
        if getattr(config.delivery, name) < 1:
            raise ConfigError(f"delivery.{name}: expected a positive integer")


def _build(cls: type[T], data: Mapping[str, Any], prefix: str) -> T:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names or key in ("base_dir", "source"):
            raise ConfigError(f"{prefix}{key}: unknown key")
        kwargs[key] = _convert(hints[key], value, f"{prefix}{key}")
    return cls(**kwargs)


def _convert(hint: Any, value: Any, dotted: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, dotted + ".")  # type: ignore[arg-type]
    if origin is list:
        (item_type,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{dotted}: expected a list")
        return [_convert(item_type, v, f"{dotted}[{i}]") for i, v in enumerate(value)]
    if origin in (types.UnionType, typing.Union):
        raise ConfigError(f"{dotted}: unsupported config type")  # not used
    expected: tuple[type, ...] = (int, float) if hint is float else (hint,)
    # bool is an int in Python; do not let `true` pass for a number or vice versa.
    if isinstance(value, bool) != (hint is bool) or not isinstance(value, expected):
        raise ConfigError(
            f"{dotted}: expected {hint.__name__}, got {type(value).__name__}"
        )
    return float(value) if hint is float else value  # type: ignore[arg-type]
