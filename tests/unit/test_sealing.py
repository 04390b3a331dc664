"""Provider credentials are encrypted at rest, in every store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from pushgw.errors import StoreError
from pushgw.model import Platform, PlatformApplication
from pushgw.store.memory import InMemoryStore
from pushgw.store.sealing import CredentialSealer
from pushgw.store.sqlite import SqliteStore

ARN = "arn:aws:sns:us-east-1:123456789012:app/ADM/a"
APP = PlatformApplication(
    arn=ARN, name="a", platform=Platform.ADM, principal="client-id", credential="s3cret"
)


async def test_memory_store_holds_sealed_values_and_reads_clear_ones() -> None:
    """The stored object holds ciphertext; reads give the clear values."""
    store = InMemoryStore(sealer=CredentialSealer(Fernet.generate_key()))

    await store.put_app(APP)

    raw = store.apps[ARN][1]
    assert "s3cret" not in raw.credential and raw.credential.startswith("fernet:")
    assert "client-id" not in raw.principal
    assert APP == await store.get_app(ARN)
    assert [APP] == (await store.list_apps(after=0, limit=10)).items


async def test_sqlite_file_never_holds_the_credential(tmp_path: Path) -> None:
    """Neither the database file nor its WAL contains the secret."""
    path = tmp_path / "pushgw.db"
    store = SqliteStore(str(path), sealer=CredentialSealer(Fernet.generate_key()))
    await store.open()
    try:
        await store.put_app(APP)
        await store.update_app(APP)
        assert APP == await store.get_app(ARN)
    finally:
        await store.close()

    with sqlite3.connect(path) as conn:
        (credential,) = conn.execute("SELECT credential FROM apps").fetchone()
    assert credential.startswith("fernet:")
    assert [] == files_holding(tmp_path, b"s3cret")


def files_holding(directory: Path, secret: bytes) -> list[Path]:
    return [f for f in directory.iterdir() if secret in f.read_bytes()]


async def test_clear_values_from_before_encryption_are_still_read() -> None:
    """A row written without encryption is returned as it is."""
    store = InMemoryStore()
    await store.put_app(APP)

    store.sealer = CredentialSealer(Fernet.generate_key())

    assert APP == await store.get_app(ARN)


async def test_sealed_values_without_the_key_are_an_error_not_garbage() -> None:
    """Encrypted credentials read without a key (or with another) say so."""
    store = InMemoryStore(sealer=CredentialSealer(Fernet.generate_key()))
    await store.put_app(APP)

    store.sealer = CredentialSealer()
    with pytest.raises(StoreError, match="encryption_key_file"):
        await store.get_app(ARN)
    store.sealer = CredentialSealer(Fernet.generate_key())
    with pytest.raises(StoreError, match="wrong encryption key"):
        await store.get_app(ARN)
