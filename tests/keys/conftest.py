"""Fixtures of the key tests: the key services' clock, frozen, the rotation policy under test, and
the fake Key Vault."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from keys import services as key_services
from keys.engine import RotationPolicy
from tests.fake_keyvault import FakeKeyVault
from tests.support.clock import FrozenClock

T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def clock(freeze_clock: Any) -> FrozenClock[datetime]:
    """The key services' wall clock, at T0 until the test moves it."""
    return freeze_clock(key_services, at=T0)


@pytest.fixture
def weekly_rotation(settings: Any) -> RotationPolicy:
    """ES256 keys rotated weekly, each published an hour before it signs; 10-minute tokens."""
    settings.KEY_ALGORITHM = "ES256"
    settings.TOKEN_LIFETIME = 600
    settings.KEY_PUBLISH_LEAD = 3600
    settings.JWKS_MAX_AGE = 900
    settings.KEY_ROTATION_INTERVAL = 7 * 86_400
    return key_services.rotation_policy()


@pytest.fixture(scope="session")
def fake_key_vault_server(tmp_path_factory: Any) -> Iterator[FakeKeyVault]:
    """One loopback HTTPS fake Key Vault (and managed-identity endpoint) for the session."""
    vault = FakeKeyVault(tmp_path_factory.mktemp("fake-key-vault"))
    yield vault
    vault.close()


@pytest.fixture
def key_vault(fake_key_vault_server: FakeKeyVault, settings: Any, monkeypatch: Any) -> Iterator[FakeKeyVault]:
    """KEY_STORE=azure-keyvault against the fake: the real SDK trusts its certificate through
    REQUESTS_CA_BUNDLE and gets its token through azure-identity's managed-identity path."""
    from keys import stores, vault

    fake = fake_key_vault_server
    fake.reset()
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.cert_path))
    monkeypatch.setenv("IDENTITY_ENDPOINT", fake.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", fake.identity_header)
    settings.KEY_STORE = "azure-keyvault"
    settings.KEY_VAULT_URL = fake.url.rstrip("/")
    settings.KEY_VAULT_KEY_NAME = "token-signing"
    settings.KEY_VAULT_VERIFY_CHALLENGE_RESOURCE = False
    stores._stores.clear()
    vault._credentials.clear()
    vault.guard.reset()
    key_services.key_caches_clear()
    yield fake
    stores._stores.clear()
    vault._credentials.clear()
    vault.guard.reset()
    key_services.key_caches_clear()


@pytest.fixture
def wrapped_keys(key_vault: FakeKeyVault, settings: Any) -> Iterator[FakeKeyVault]:
    """KEY_STORE=local with KEY_VAULT_WRAP_KEY: local keys sealed under data keys the fake vault wraps."""
    from azure.keyvault.keys import KeyClient, KeyOperation

    from keys import stores, vault

    settings.KEY_STORE = "local"
    settings.KEY_VAULT_WRAP_KEY = "token-wrap"
    client = KeyClient(settings.KEY_VAULT_URL, vault._credential(), verify_challenge_resource=False)
    client.create_rsa_key(
        "token-wrap", size=2048, key_operations=[KeyOperation.wrap_key, KeyOperation.unwrap_key]
    )
    vault._wrappers.clear()
    stores._unwrapped.clear()
    yield key_vault
    vault._wrappers.clear()
    stores._unwrapped.clear()
