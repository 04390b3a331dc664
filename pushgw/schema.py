"""
Typed TOML: frozen dataclasses built from parsed TOML, with the value rules
declared next to each field:

    port: Annotated[int, Range(1, 65535)] = 8080
    level: Annotated[str, OneOf("debug", "info", ...)] = "info"
    encryption_key_file: Annotated[str, File(secret=True, content=fernet_key)] = ""

Why `Annotated` and not a validation library: mypy still sees a plain `int`, the
frozen dataclasses stay the one model of the config, and `build` reads the rules
with `typing.get_type_hints(..., include_extras=True)`. pydantic or attrs+cattrs
would add a second model system and their own error wording for what is about
200 lines here, and the errors must name the dotted key in our words
(`delivery.lease_s: expected > 0, got -5.0`).

`build(cls, data, prefix)` rejects unknown keys, wrong types (bool is never an
int) and broken rules, each as a ConfigError naming the dotted key. A rule's
`check(value)` returns what was expected, or None. `File` rules are checked after
the whole config is built (`file_fields`), because where a relative path points
depends on the config file's directory and on systemd's directories
(`Config.path`, `Config.secret_path`).
"""

from __future__ import annotations

import dataclasses
import math
import re
import ssl
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from pushgw.errors import ConfigError

T = TypeVar("T")
# Field metadata for what the loader fills in (the config file's directory and
# so on): `field(default=".", metadata=DERIVED)` is not a key of the file.
DERIVED: Mapping[str, bool] = types.MappingProxyType({"derived": True})


class Constraint:
    """A rule one config value must keep."""

    def check(self, value: Any) -> str | None:
        """What was expected, if `value` breaks the rule; None if it keeps it."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Range(Constraint):
    """A number in low..high; `low_open` excludes `low` itself (times: > 0)."""

    low: float
    high: float | None = None
    low_open: bool = False

    def check(self, value: Any) -> str | None:
        # TOML has inf and nan; neither is a usable time or count.
        finite = math.isfinite(value)
        below = value < self.low or (self.low_open and value == self.low)
        above = self.high is not None and value > self.high
        if finite and not below and not above:
            return None
        return f"expected {self.describe()}, got {value!r}"

    def describe(self) -> str:
        if self.high is not None:
            return f"{self.low:g}..{self.high:g}"
        return f"> {self.low:g}" if self.low_open else f">= {self.low:g}"


@dataclass(frozen=True, slots=True, init=False)
class OneOf(Constraint):
    """One of a fixed set of strings."""

    choices: tuple[str, ...]
    ignore_case: bool

    def __init__(self, *choices: str, ignore_case: bool = False) -> None:
        object.__setattr__(self, "choices", choices)
        object.__setattr__(self, "ignore_case", ignore_case)

    def check(self, value: Any) -> str | None:
        probe = value.lower() if self.ignore_case else value
        if probe in self.choices:
            return None
        return f"expected one of {', '.join(self.choices)}; got {value!r}"


@dataclass(frozen=True, slots=True)
class Pattern(Constraint):
    """A string matching `regex` in full; `what` says it in words."""

    regex: str
    what: str

    def check(self, value: Any) -> str | None:
        if re.fullmatch(self.regex, value):
            return None
        return f"expected {self.what}, got {value!r}"


@dataclass(frozen=True, slots=True)
class HttpUrl(Constraint):
    """An http(s) URL with a host, or "" where the key may be unset."""

    def check(self, value: Any) -> str | None:
        if value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.hostname:
            return None
        return f'expected an http:// or https:// URL with a host (or ""), got {value!r}'


# The grammar of `pushgw.store.factory.open_store`; tests/unit/test_config.py
# checks that the two agree on a table of URLs.
STORE_URLS = "memory:, sqlite:PATH, sqlite:///ABSOLUTE/PATH or postgresql://..."


@dataclass(frozen=True, slots=True)
class StoreUrl(Constraint):
    """A store URL `open_store` understands."""

    def check(self, value: Any) -> str | None:
        scheme, colon, rest = value.partition(":")
        scheme = scheme.lower()
        ok = bool(colon) and (
            (scheme == "memory" and not rest.strip("/"))
            or (scheme == "sqlite" and _sqlite_path_ok(rest))
            or (scheme in ("postgresql", "postgres") and rest.startswith("//"))
        )
        if ok:
            return None
        return f"expected {STORE_URLS}; got {_without_password(value)!r}"


def _sqlite_path_ok(rest: str) -> bool:
    if rest.startswith("///"):
        return len(rest) > 3
    return bool(rest) and not rest.startswith("//")  # sqlite://host is no file


def _without_password(url: str) -> str:
    """A store URL fit for an error message: `user:password@` loses the password."""
    return re.sub(r"(?<=:)[^:@/]*(?=@)", "***", url)


ContentCheck = Callable[[Path, bytes], str | None]


@dataclass(frozen=True, slots=True)
class File(Constraint):
    """
    A file the daemon reads. When set ("" = unset) it must exist, be readable
    and pass `content`. `secret` files resolve relative paths against
    $CREDENTIALS_DIRECTORY (systemd `LoadCredential=`) when it is set.
    """

    secret: bool = False
    content: ContentCheck | None = None

    def check(self, value: Any) -> str | None:
        return None  # the path is checked once resolved: see check_path

    def check_path(self, path: Path) -> str | None:
        """What is wrong with the file at `path`, or None."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            return f"cannot read {path}: {exc.strerror or exc}"
        return None if self.content is None else self.content(path, data)


def non_empty(path: Path, data: bytes) -> str | None:
    """A secret file must hold a secret (an empty one would be a valid key "")."""
    return None if data.strip() else f"{path} is empty"


def fernet_key(path: Path, data: bytes) -> str | None:
    """The key file must hold what `EncryptedStore` hands to `Fernet()`."""
    from cryptography.fernet import Fernet  # only configs with a key pay for it

    try:
        Fernet(data.strip())
    except (ValueError, TypeError):
        return f"{path} is not a Fernet key (32 url-safe base64-encoded bytes)"
    return None


def pem_ca(path: Path, data: bytes) -> str | None:
    """A CA file must load the way `ProviderSettings.ssl_context` loads it."""
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(path))
    except ssl.SSLError as exc:
        return f"{path} is not a PEM CA bundle: {exc.reason or exc}"
    return None


def file_fields(obj: Any, prefix: str = "") -> Iterator[tuple[str, File, str]]:
    """(dotted key, rule, value) of every set `File` field under `obj`."""
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        dotted = prefix + f.name
        for rule in _rules(hints[f.name]):
            if isinstance(rule, File) and value:
                yield dotted, rule, value
        if dataclasses.is_dataclass(value):
            yield from file_fields(value, dotted + ".")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if dataclasses.is_dataclass(item):
                    yield from file_fields(item, f"{dotted}[{i}].")
        elif isinstance(value, dict):
            for key, item in value.items():
                if dataclasses.is_dataclass(item):
                    yield from file_fields(item, f"{dotted}.{key}.")


def _hints(cls: type) -> dict[str, Any]:
    # include_extras keeps the Annotated[...] metadata that holds the rules.
    return typing.get_type_hints(cls, include_extras=True)


def _rules(hint: Any) -> tuple[Constraint, ...]:
    if typing.get_origin(hint) is not Annotated:
        return ()
    return tuple(m for m in hint.__metadata__ if isinstance(m, Constraint))


def build(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    """`cls` from a TOML table; `prefix` is the table's dotted key plus "."."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a table")
    hints = _hints(cls)
    fields = [
        f
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if not f.metadata.get("derived")
    ]
    names = {f.name for f in fields}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(f"{prefix}{key}: unknown key")
        kwargs[key] = _convert(hints[key], value, f"{prefix}{key}")
    for f in fields:
        required = (
            f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        )
        if required and f.name not in kwargs:
            raise ConfigError(f"{prefix}{f.name}: required key missing")
    return cls(**kwargs)


def _convert(hint: Any, value: Any, dotted: str) -> Any:
    rules = _rules(hint)
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, dotted + ".")  # type: ignore[arg-type]
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
    converted = float(value) if hint is float else value  # type: ignore[arg-type]
    for rule in rules:
        problem = rule.check(converted)
        if problem is not None:
            raise ConfigError(f"{dotted}: {problem}")
    return converted
