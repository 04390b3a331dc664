"""
`open_store(url)`: a Store from a URL in the config.

    memory:                          InMemoryStore (tests, demos)
    sqlite:///var/lib/pushgw/db      SqliteStore on an absolute path
    sqlite:relative/path.db          SqliteStore on a path relative to the cwd
    postgresql://user@host/db        PostgresStore (also postgres://); the query
                                     parameter `schema=name` picks the schema

The store is returned unopened: the caller awaits `.open()`.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pushgw.errors import ConfigError
from pushgw.store.base import Store
from pushgw.store.sealing import PLAIN, CredentialSealer


def open_store(
    url: str, *, timeout_s: float = 5.0, sealer: CredentialSealer = PLAIN
) -> Store:
    """
    Build the store named by `url` (see the module docstring); `timeout_s` is
    the deadline of one PostgreSQL statement or connect.

    Raises:
        ConfigError: the URL's scheme is unknown or its path is empty.
    """
    scheme, _, rest = url.partition(":")
    scheme = scheme.lower()
    if scheme == "memory" and not rest.strip("/"):
        from pushgw.store.memory import InMemoryStore

        return InMemoryStore(sealer=sealer)
    if scheme == "sqlite":
        from pushgw.store.sqlite import SqliteStore

        return SqliteStore(_sqlite_path(url, rest), sealer=sealer)
    if scheme in ("postgresql", "postgres"):
        from pushgw.store.postgres import PostgresStore

        dsn, schema = _split_schema(url)
        return PostgresStore(dsn, schema=schema, timeout_s=timeout_s, sealer=sealer)
    raise ConfigError(
        f"unknown store URL {url!r}: expected memory:, sqlite:///path or postgresql://"
    )


def _sqlite_path(url: str, rest: str) -> str:
    # sqlite:///abs/path -> /abs/path; sqlite:rel/path -> rel/path;
    # sqlite://host/... is not a thing for a local file.
    if rest.startswith("///"):
        path = rest[2:]
    elif rest.startswith("//"):
        raise ConfigError(f"{url!r}: use sqlite:///absolute/path or sqlite:relative")
    else:
        path = rest
    if not path:
        raise ConfigError(f"{url!r}: the SQLite path is empty")
    return path


def _split_schema(url: str) -> tuple[str, str]:
    """Take our `schema=` query parameter out of a libpq URL."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), "public") or "public"
    kept = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=kept)), schema
