"""KEY_STORE=local with KEY_VAULT_WRAP_KEY: local keys sealed under data keys only the vault unwraps.

A copy of the database, even with KEY_ENCRYPTION_KEY, opens nothing; each process unwraps a key once,
so the exchange rate is the local store's; a vault fault while opening a key is a 503, not a 500.
"""

from __future__ import annotations

import pytest

from keys import engine, stores, vault
from keys.errors import KeyDecryptionFailed, KeyStoreUnavailable
from keys.models import SigningKey
from keys.services import active_signer_cache, signing_key_reencrypt, signing_key_rotate, token_sign
from keys.stores import LocalKeyStore
from tests.support.jwks import decoded

pytestmark = pytest.mark.django_db


def active() -> SigningKey:
    return SigningKey.objects.get(phase=engine.ACTIVE)


def test_keys_are_sealed_under_a_data_key_the_vault_wraps_and_sign_locally(wrapped_keys):
    signing_key_rotate()

    assert bytes(active().store_reference)[:1] == LocalKeyStore.WRAPPED_VERSION
    assert decoded(token_sign(claims={"sub": "p-1"})).header["kid"] == active().kid
    assert wrapped_keys.calls["sign"] == 0


def test_a_copy_of_the_database_with_the_secret_opens_nothing_without_the_vault(wrapped_keys):
    signing_key_rotate()
    key = active()

    with pytest.raises(KeyDecryptionFailed, match="sealed under the vault"):
        LocalKeyStore().signer(kid=key.kid, algorithm=key.algorithm, reference=bytes(key.store_reference))


def test_each_process_unwraps_a_key_once(wrapped_keys):
    signing_key_rotate()
    stores._unwrapped.clear()
    before = wrapped_keys.calls["unwrapkey"]

    for _ in range(3):
        active_signer_cache.clear()
        token_sign(claims={"sub": "p-1"})

    assert wrapped_keys.calls["unwrapkey"] - before == 1


def test_a_vault_that_cannot_unwrap_gives_unavailable_and_recovers(wrapped_keys):
    signing_key_rotate()
    stores._unwrapped.clear()
    active_signer_cache.clear()
    wrapped_keys.fail(status=503, operation="unwrapkey")

    with pytest.raises(KeyStoreUnavailable):
        token_sign(claims={"sub": "p-1"})

    vault.guard.reset()
    assert decoded(token_sign(claims={"sub": "p-1"}))


def test_reencrypt_keys_moves_existing_local_keys_under_the_vault(wrapped_keys, settings):
    settings.KEY_VAULT_WRAP_KEY = None
    signing_key_rotate()
    assert bytes(active().store_reference)[:1] == LocalKeyStore.VERSION
    settings.KEY_VAULT_WRAP_KEY = "token-wrap"

    assert signing_key_reencrypt() == 1

    assert bytes(active().store_reference)[:1] == LocalKeyStore.WRAPPED_VERSION
    active_signer_cache.clear()
    assert decoded(token_sign(claims={"sub": "p-1"}))
    assert signing_key_reencrypt() == 0
