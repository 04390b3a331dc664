"""Provider credentials are encrypted at rest."""

from __future__ import annotations

from cryptography.fernet import Fernet

from pushgw.model import Platform, PlatformApplication
from pushgw.store.encrypted import EncryptedStore
from pushgw.store.memory import InMemoryStore

ARN = "arn:aws:sns:us-east-1:123456789012:app/ADM/a"


async def test_credentials_are_sealed_in_the_backend_and_opened_on_read() -> None:
    """The backend holds ciphertext; reads through the wrapper give the clear values."""
    inner = InMemoryStore()
    store = EncryptedStore(inner, Fernet.generate_key())
    app = PlatformApplication(
        arn=ARN,
        name="a",
        platform=Platform.ADM,
        principal="client-id",
        credential="s3cret",
    )

    await store.put_app(app)

    raw = inner.apps[ARN][1]
    assert "s3cret" not in raw.credential and raw.credential.startswith("fernet:")
    assert "client-id" not in raw.principal
    assert app == await store.get_app(ARN)
    assert [app] == (await store.list_apps(after=0, limit=10)).items


async def test_clear_values_from_before_encryption_are_still_read() -> None:
    """A row written without encryption is returned as it is."""
    inner = InMemoryStore()
    app = PlatformApplication(
        arn=ARN, name="a", platform=Platform.ADM, principal="p", credential="c"
    )
    await inner.put_app(app)

    store = EncryptedStore(inner, Fernet.generate_key())

    assert app == await store.get_app(ARN)
