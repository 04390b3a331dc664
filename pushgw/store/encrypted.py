"""
Provider credentials encrypted at rest.

`EncryptedStore` wraps any Store: an application's principal and credential are
sealed with Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) before they
reach the backend and opened when read, so the database file or a dump never
holds them in clear. The key comes from a file (`store.encryption_key_file`,
e.g. a systemd credential); `pushgw gen-key` style: `Fernet.generate_key()`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from pushgw.errors import StoreError
from pushgw.model import PlatformApplication
from pushgw.store.base import Page, Store

PREFIX = "fernet:"  # marks sealed values, so clear ones from before are still read


class EncryptedStore:
    """Delegates everything to `inner`, sealing application credentials."""

    def __init__(self, inner: Store, key: bytes) -> None:
        self._inner = inner
        self._fernet = Fernet(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _seal(self, value: str) -> str:
        if not value:
            return value
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def _open(self, value: str) -> str:
        if not value.startswith(PREFIX):
            return value
        try:
            return self._fernet.decrypt(value.removeprefix(PREFIX).encode()).decode()
        except InvalidToken as exc:
            raise StoreError(
                "cannot decrypt credentials: wrong encryption key"
            ) from exc

    def _sealed(self, app: PlatformApplication) -> PlatformApplication:
        return dataclasses.replace(
            app,
            principal=self._seal(app.principal),
            credential=self._seal(app.credential),
        )

    def _opened(self, app: PlatformApplication | None) -> PlatformApplication | None:
        if app is None:
            return None
        return dataclasses.replace(
            app,
            principal=self._open(app.principal),
            credential=self._open(app.credential),
        )

    async def put_app(self, app: PlatformApplication) -> PlatformApplication:
        await self._inner.put_app(self._sealed(app))
        return app

    async def update_app(self, app: PlatformApplication) -> None:
        await self._inner.update_app(self._sealed(app))

    async def get_app(self, arn: str) -> PlatformApplication | None:
        return self._opened(await self._inner.get_app(arn))

    async def list_apps(self, *, after: int, limit: int) -> Page[PlatformApplication]:
        page = await self._inner.list_apps(after=after, limit=limit)
        items = [a for a in map(self._opened, page.items) if a is not None]
        return Page(items, page.next_after)
