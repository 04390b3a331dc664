"""
Provider credentials encrypted at rest.

A `CredentialSealer` is handed to every store: the stores call `sealed()` on an
application before writing it and `opened()` on what they read, so an app's
principal and credential reach the database file (or a dump) only as Fernet
tokens (AES-128-CBC + HMAC-SHA256, from `cryptography`). The key comes from a
file (`store.encryption_key_file`, e.g. a systemd credential; make one with
`Fernet.generate_key()`). Without a key the sealer passes values through.
"""

from __future__ import annotations

import dataclasses

from cryptography.fernet import Fernet, InvalidToken

from pushgw.errors import StoreError
from pushgw.model import PlatformApplication

PREFIX = "fernet:"  # marks sealed values, so clear ones from before are still read


class CredentialSealer:
    """Seals and opens an application's principal and credential."""

    def __init__(self, key: bytes | None = None) -> None:
        self._fernet = Fernet(key) if key else None

    @property
    def encrypts(self) -> bool:
        return self._fernet is not None

    def sealed(self, app: PlatformApplication) -> PlatformApplication:
        if self._fernet is None:
            return app
        return dataclasses.replace(
            app,
            principal=self._seal(app.principal),
            credential=self._seal(app.credential),
        )

    def opened(self, app: PlatformApplication) -> PlatformApplication:
        if not (_is_sealed(app.principal) or _is_sealed(app.credential)):
            return app
        return dataclasses.replace(
            app,
            principal=self._open(app.principal),
            credential=self._open(app.credential),
        )

    def _seal(self, value: str) -> str:
        assert self._fernet is not None
        if not value:
            return value
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def _open(self, value: str) -> str:
        if not _is_sealed(value):
            return value
        if self._fernet is None:
            raise StoreError(
                "credentials are encrypted: set store.encryption_key_file to read them"
            )
        try:
            return self._fernet.decrypt(value.removeprefix(PREFIX).encode()).decode()
        except InvalidToken as exc:
            raise StoreError(
                "cannot decrypt credentials: wrong encryption key"
            ) from exc


PLAIN = CredentialSealer()  # no key: values are stored as they are


def _is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)
