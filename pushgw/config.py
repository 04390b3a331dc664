"""
Configuration: TOML into frozen dataclasses, one loader for `pushgw check-config`,
`pushgw serve` and a SIGHUP reload, so what check-config accepts, serve runs.

Unknown keys, wrong types and broken constraints are errors that name the dotted
key and the rule (`delivery.lease_s: expected > 0, got -5.0`). The constraints sit
next to each field as `Annotated[...]` metadata (`pushgw/schema.py` says why):
every number has a range, every enum its choices, the store URL its grammar, and
every file the daemon reads (key, secret and CA files) must exist and be readable
when the config is loaded, not when the first request needs it. Times are float
seconds with `_s` in the name.

Where the file comes from (`find_config`): `--config`, else $PUSHGW_CONFIG, else
/etc/pushgw/pushgw.toml. There is no development fallback: `make` passes
`--config config/dev.toml`.

Where relative paths point (systemd sets the two variables for the unit):
- `store.url = "sqlite:NAME"`: $STATE_DIRECTORY (`StateDirectory=`) when set;
- secret files (`store.encryption_key_file`, `auth.*.secret_access_key_file`,
  `auth.*.key_file`): $CREDENTIALS_DIRECTORY (`LoadCredential=`) when set;
- otherwise, and for every other path (CA files), the config file's directory.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pushgw.errors import ConfigError
from pushgw.providers.base import ProviderSettings
from pushgw.schema import (
    DERIVED,
    File,
    HttpUrl,
    OneOf,
    Pattern,
    Range,
    StoreUrl,
    build,
    fernet_key,
    file_fields,
    non_empty,
    pem_ca,
)

CONFIG_ENV = "PUSHGW_CONFIG"
SYSTEM_CONFIG = "/etc/pushgw/pushgw.toml"
STATE_ENV = "STATE_DIRECTORY"  # systemd StateDirectory=
CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"  # systemd LoadCredential=

# The shapes most fields share. Times must be > 0: a zero lease, poll or timeout
# is a busy loop or an instant failure, never what was meant.
Seconds = Annotated[float, Range(0, low_open=True)]
Count = Annotated[int, Range(1)]
Port = Annotated[int, Range(1, 65535)]
Name = Annotated[str, Pattern(r"\S+", "a non-empty name without spaces")]
Url = Annotated[str, HttpUrl()]
SecretFile = Annotated[str, File(secret=True, content=non_empty)]
CaFile = Annotated[str, File(content=pem_ca)]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    host: Name = "127.0.0.1"
    port: Port = 8080
    # Hard limit on request bodies; SNS itself accepts 256 KiB messages.
    max_body_bytes: Annotated[int, Range(1024, 1 << 30)] = 1_048_576
    # SIGTERM: let in-flight sends finish this long (keep it under the unit's
    # TimeoutStopSec=, or systemd kills the drain).
    graceful_timeout_s: Seconds = 10.0
    # How clients reach this gateway (behind a proxy, its public https URL):
    # the base of SubscribeURL, UnsubscribeURL and SigningCertURL in what HTTP
    # subscribers receive. "" = http(s)://host:port as bound.
    public_url: Url = ""
    # Serve HTTPS on `port` with this certificate chain and key (both or none).
    tls_cert_file: Annotated[str, File(content=non_empty)] = ""
    tls_key_file: SecretFile = ""
    # uvloop measured 8-10% less CPU per fan-out delivery and per publish than
    # asyncio's loop, in interleaved bench runs (README, "Library decisions").
    event_loop: Annotated[str, OneOf("uvloop", "asyncio")] = "uvloop"


@dataclass(frozen=True, slots=True, kw_only=True)
class SnsConfig:
    # Both go into ARNs and the SigV4 scope, where ':' and '/' are separators.
    region: Annotated[
        str, Pattern(r"[a-z0-9]+(-[a-z0-9]+)*", "a region name such as us-east-1")
    ] = "us-east-1"
    account: Annotated[str, Pattern(r"\d{12}", "a 12-digit account id")] = (
        "123456789012"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSubscriptionsConfig:
    """Delivery to HTTP/HTTPS subscribers (`[http_subscriptions]`)."""

    # RSA key and X.509 certificate (PEM) that sign what subscribers receive;
    # the certificate is served at SigningCertURL. Unset: a key pair is made at
    # start (one daemon, development only: a warning is logged).
    signing_key_file: SecretFile = ""
    signing_cert_file: Annotated[str, File(content=non_empty)] = ""
    # Subscriber URLs on loopback and private networks (development and tests
    # only). Cloud metadata addresses stay refused.
    allow_private_urls: bool = False
    # Extra CA bundle trusted for https subscribers (a test CA).
    ca_file: CaFile = ""
    timeout_s: Seconds = 15.0  # one delivery attempt, connect to last byte
    max_in_flight: Count = 64  # HTTP deliveries at once, per process (own lane)
    max_connections_per_host: Count = 8
    max_response_bytes: Annotated[int, Range(0, 1 << 24)] = 65_536  # read, then dropped


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreConfig:
    # memory: | sqlite:///abs/path.db | sqlite:relative/path.db | postgresql://...
    # A relative SQLite path is under $STATE_DIRECTORY when set (`state_path`).
    url: Annotated[str, StoreUrl()] = "sqlite:pushgw.db"
    # Fernet key file (44 base64 chars): provider credentials are encrypted at
    # rest with it. "" = stored in clear (development only; a warning is logged).
    encryption_key_file: Annotated[str, File(secret=True, content=fernet_key)] = ""
    # Deadline of one store operation (PostgreSQL statements and connects): a
    # stalled database becomes an error the daemon retries, never a hang.
    timeout_s: Seconds = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessKey:
    """An SNS access key pair; `actions` limits it (None = every action)."""

    access_key_id: str
    secret_access_key: str
    actions: frozenset[str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    """A JSON-API bearer key; `actions` limits it (None = every action);
    `admin` lets it use the admin routes (queue, ledger, replay)."""

    name: str
    key: str
    actions: frozenset[str] | None = None
    admin: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SnsKeyEntry:
    # The SigV4 credential scope is split on '/', so no '/' in the id.
    access_key_id: Annotated[
        str, Pattern(r"[A-Za-z0-9_.-]+", "letters, digits, '_', '.' or '-'")
    ]
    secret_access_key: str = ""  # exactly one of the two (checked by _check)
    secret_access_key_file: SecretFile = ""  # preferred in production
    actions: list[Name] = field(default_factory=list)  # empty = all


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKeyEntry:
    name: Name
    key: str = ""  # exactly one of the two (checked by _check)
    key_file: SecretFile = ""
    actions: list[Name] = field(default_factory=list)
    admin: bool = False  # the admin routes: queue, delivery ledger, replay


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthConfig:
    sns_keys: list[SnsKeyEntry] = field(default_factory=list)
    api_keys: list[ApiKeyEntry] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryConfig:
    enabled: bool = True  # run the dispatcher in this process
    max_in_flight: Count = 512  # sends in flight, whole process
    per_app_in_flight: Count = 256  # sends in flight per platform application
    claim_batch: Count = 256  # jobs claimed per store round trip
    lease_s: Seconds = 60.0  # a claimed job is someone else's after this
    poll_interval_s: Seconds = 0.5  # idle polling when no wake-up arrives
    chunk_size: Count = 1000  # subscriptions per topic fan-out chunk
    retry_base_s: Seconds = 1.0  # first back-off; doubles each attempt, with jitter
    retry_max_s: Seconds = 300.0  # >= retry_base_s (checked by _check)
    default_ttl_s: Seconds = 2_419_200.0  # SNS default: 4 weeks
    app_backoff_s: Seconds = 5.0  # pause an app whose provider is failing
    # This node's stable identity in job leases. A restarted daemon takes its own
    # previous leases back at once (other nodes wait for them to expire), so it
    # must be unique per daemon sharing a store. "" = host name + config path.
    node_id: str = ""
    # A topic ARN that receives SNS's delivery-status record of every push
    # failure (and of sampled successes, SuccessFeedbackSampleRate) as a
    # message: subscribe an HTTP endpoint to it. "" = logged only.
    status_topic_arn: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerConfig:
    """The delivery ledger and its dead letters (`[ledger]`, pushgw/ledger.py)."""

    # Delivery records, dead letters and message counters older than this are
    # pruned (the per-minute rollup is kept 24 h at most).
    retention_s: Seconds = 604_800.0
    # Most delivery records kept that are not dead letters (sampled successes),
    # and most dead letters (failures); the oldest beyond go first.
    max_deliveries: Count = 200_000
    max_dead_letters: Count = 1_000_000
    # Most messages whose counters are kept (GET /v1/messages/{id}); the least
    # recently attempted beyond go first, with their counters.
    max_messages: Count = 1_000_000
    # A record of every success, not only of sampled ones (SuccessFeedbackSampleRate):
    # a fan-out to a million devices then writes a million rows.
    record_successes: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggingConfig:
    # The levels structlog's filtering logger knows (log.configure upper-cases).
    level: Annotated[
        str, OneOf("debug", "info", "warning", "error", "critical", ignore_case=True)
    ] = "info"
    # auto: JSON unless stdout is a terminal.
    format: Annotated[str, OneOf("auto", "json", "console")] = "auto"
    access_log: bool = False  # one `http_request` line per API request


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsConfig:
    """Prometheus metrics on /metrics (`[metrics]`)."""

    # Report the gauges read from the shared store: the backlog (pushgw_jobs),
    # disabled apps and credential expiry. The daemons sharing one store elect
    # one of them to report them (a lease in the store; pushgw_cluster_reporter
    # is 1 there), so sum() over the nodes counts them once; false: this node
    # never does. Node-local metrics (counters, histograms, in-flight sends,
    # store_up, task health) are always reported.
    cluster_gauges: bool = True
    # The reporting node's lease, renewed every third of this: when that node
    # dies, another reports within this long (plus a scrape interval).
    reporter_lease_s: Seconds = 30.0
    # Label pushgw_disabled_apps and pushgw_credential_expiry_seconds with the
    # application name too: one series per app (mind the cardinality).
    per_app_labels: bool = False
    # The app gauges are read from the store (every app, every page) at most
    # this often; scrapes in between use the last reading.
    apps_refresh_s: Seconds = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderEntry:
    base_url: Url = ""
    sandbox_url: Url = ""
    token_url: Url = ""
    timeout_s: Seconds = 10.0
    max_connections: Count = 10
    allow_loopback: bool = False
    ca_file: CaFile = ""
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

    control_port: Port = 9100
    apns_port: Port = 9101
    fcm_port: Port = 9102
    adm_port: Port = 9103
    baidu_port: Port = 9104
    mpns_port: Port = 9105
    wns_port: Port = 9106
    # The APNs mock's test CA: written by the mocks, so not a File to check.
    ca_file: str = "state/mock-ca.pem"


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    sns: SnsConfig = field(default_factory=SnsConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    http_subscriptions: HttpSubscriptionsConfig = field(
        default_factory=HttpSubscriptionsConfig
    )
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    ledger: LedgerConfig = field(default_factory=LedgerConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    providers: dict[str, ProviderEntry] = field(
        default_factory=lambda: dict(DEFAULT_PROVIDERS)
    )
    mocks: MocksConfig = field(default_factory=MocksConfig)
    # The config file's directory: relative paths resolve against it by default.
    base_dir: str = field(default=".", metadata=DERIVED)
    # $STATE_DIRECTORY and $CREDENTIALS_DIRECTORY at load time ("" = unset).
    state_dir: str = field(default="", metadata=DERIVED)
    credentials_dir: str = field(default="", metadata=DERIVED)
    # The file this config was read from ("" when built in code).
    source: str = field(default="", metadata=DERIVED)

    def provider(self, name: str) -> ProviderSettings:
        entry = self.providers.get(name, DEFAULT_PROVIDERS[name])
        if entry.ca_file:
            entry = dataclasses.replace(entry, ca_file=str(self.path(entry.ca_file)))
        return entry.settings()

    @property
    def public_url(self) -> str:
        """The base URL subscribers are given (no trailing slash)."""
        if self.server.public_url:
            return self.server.public_url.rstrip("/")
        scheme = "https" if self.server.tls_cert_file else "http"
        return f"{scheme}://{self.server.host}:{self.server.port}"

    def path(self, value: str) -> Path:
        """Resolve a path from the config file relative to the file's directory."""
        return _under(self.base_dir, value)

    def state_path(self, value: str) -> Path:
        """Resolve a state path (the SQLite file): $STATE_DIRECTORY, else `path`."""
        return _under(self.state_dir or self.base_dir, value)

    def secret_path(self, value: str) -> Path:
        """Resolve a secret file: $CREDENTIALS_DIRECTORY, else `path`."""
        return _under(self.credentials_dir or self.base_dir, value)

    def sns_access_keys(self) -> dict[str, AccessKey]:
        keys = {}
        for i, entry in enumerate(self.auth.sns_keys):
            secret = entry.secret_access_key or self._read_secret(
                entry.secret_access_key_file,
                f"auth.sns_keys[{i}].secret_access_key_file",
            )
            keys[entry.access_key_id] = AccessKey(
                access_key_id=entry.access_key_id,
                secret_access_key=secret,
                actions=frozenset(entry.actions) or None,
            )
        return keys

    def api_keys(self) -> list[ApiKey]:
        out = []
        for i, entry in enumerate(self.auth.api_keys):
            key = entry.key or self._read_secret(
                entry.key_file, f"auth.api_keys[{i}].key_file"
            )
            out.append(
                ApiKey(
                    name=entry.name,
                    key=key,
                    actions=frozenset(entry.actions) or None,
                    admin=entry.admin,
                )
            )
        return out

    def _read_secret(self, path: str, dotted: str) -> str:
        # The loader checked the file; this still fails cleanly if it has gone
        # since (a SIGHUP reload reads the secrets again).
        if not path:
            raise ConfigError(f"{dotted}: a secret or a secret file is required")
        try:
            return self.secret_path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{dotted}: cannot read {path}: {exc}") from exc


def _under(directory: str, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else Path(directory) / p


def find_config(
    explicit: str | None, env: Mapping[str, str] = os.environ
) -> tuple[str, str]:
    """
    The config file to use and why: `--config`, else $PUSHGW_CONFIG, else
    /etc/pushgw/pushgw.toml. Never the development config: a daemon started
    without `--config` must not quietly run on dev keys and loopback mocks.

    Returns:
        (path, origin), origin being "--config", "$PUSHGW_CONFIG" or "default".
    """
    if explicit:
        return explicit, "--config"
    if env.get(CONFIG_ENV):
        return env[CONFIG_ENV], f"${CONFIG_ENV}"
    return SYSTEM_CONFIG, "default"


def load_config(
    path: str | Path,
    *,
    env: Mapping[str, str] | None = None,
    check_files: bool = True,
) -> Config:
    """
    Read and validate a TOML config file.

    Args:
        path: the TOML file; relative paths inside it resolve against its
            directory (or the systemd directories in `env`, see the module doc).
        env: where $STATE_DIRECTORY and $CREDENTIALS_DIRECTORY come from
            (default: the process environment).
        check_files: check that the key, secret and CA files exist and are
            readable. Only the commands that do not read them turn this off
            (`mock-providers` and `demo` write the CA the config names).

    Raises:
        ConfigError: naming the dotted key and the broken rule.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    config = config_from_mapping(
        raw,
        base_dir=str(path.parent.resolve()),
        env=env,
        check_files=check_files,
    )
    return dataclasses.replace(config, source=str(path.resolve()))


def config_from_mapping(
    raw: Mapping[str, Any],
    *,
    base_dir: str = ".",
    env: Mapping[str, str] | None = None,
    check_files: bool = True,
) -> Config:
    """The loader behind `load_config`, for a mapping already parsed."""
    env = os.environ if env is None else env
    data = dict(raw)
    providers_raw = data.pop("providers", {})
    config = build(Config, data)
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
        providers[name] = build(ProviderEntry, defaults, f"providers.{name}.")
    config = dataclasses.replace(
        config,
        providers=providers,
        base_dir=base_dir,
        # STATE_DIRECTORY lists one path per StateDirectory= entry; ours is first.
        state_dir=env.get(STATE_ENV, "").split(":")[0],
        credentials_dir=env.get(CREDENTIALS_ENV, ""),
    )
    _check(config)
    if check_files:
        _check_files(config)
    return config


def _check(config: Config) -> None:
    """Rules between fields; each field's own rules ran in `_convert`."""
    d = config.delivery
    if d.retry_max_s < d.retry_base_s:
        raise ConfigError(
            f"delivery.retry_max_s: expected >= delivery.retry_base_s "
            f"({d.retry_base_s:g}), got {d.retry_max_s:g}"
        )
    for table, names, pair in (
        (
            "server",
            ("tls_cert_file", "tls_key_file"),
            (config.server.tls_cert_file, config.server.tls_key_file),
        ),
        (
            "http_subscriptions",
            ("signing_key_file", "signing_cert_file"),
            (
                config.http_subscriptions.signing_key_file,
                config.http_subscriptions.signing_cert_file,
            ),
        ),
    ):
        if bool(pair[0]) != bool(pair[1]):
            raise ConfigError(f"{table}: set both {names[0]} and {names[1]}, or none")
    _check_keys(
        "auth.sns_keys",
        ("secret_access_key", "secret_access_key_file"),
        [
            (e.access_key_id, e.secret_access_key, e.secret_access_key_file)
            for e in config.auth.sns_keys
        ],
    )
    _check_keys(
        "auth.api_keys",
        ("key", "key_file"),
        [(e.name, e.key, e.key_file) for e in config.auth.api_keys],
    )


def _check_keys(
    table: str, names: tuple[str, str], entries: list[tuple[str, str, str]]
) -> None:
    """Each key entry has its secret inline or in a file (not both), and a
    unique id: a second entry with the same id would silently replace the first."""
    seen: dict[str, int] = {}
    for i, (ident, inline, from_file) in enumerate(entries):
        if bool(inline) == bool(from_file):
            raise ConfigError(
                f"{table}[{i}]: set exactly one of {names[0]} and {names[1]}"
            )
        if ident in seen:
            raise ConfigError(
                f"{table}[{i}]: {ident!r} is already {table}[{seen[ident]}]"
            )
        seen[ident] = i


def _check_files(config: Config) -> None:
    """Every key, secret and CA file named in the config can be read."""
    for dotted, rule, value in file_fields(config):
        path = config.secret_path(value) if rule.secret else config.path(value)
        problem = rule.check_path(path)
        if problem is not None:
            raise ConfigError(
                f"{dotted}: {problem}{_relative_hint(config, rule, value)}"
            )


def _relative_hint(config: Config, rule: File, value: str) -> str:
    """Say where a relative path was looked for: the classic systemd surprise."""
    if Path(value).is_absolute():
        return ""
    if rule.secret:
        if config.credentials_dir:
            return f" (relative to ${CREDENTIALS_ENV})"
        return f" (relative to the config file: ${CREDENTIALS_ENV} is not set)"
    return " (relative to the config file)"
