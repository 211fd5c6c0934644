"""The operator commands rotate_keys and reencrypt_keys."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from keys import engine
from keys.models import SigningKey
from keys.selectors import jwks_document_get
from keys.services import token_sign
from keys.stores import LocalKeyStore

pytestmark = pytest.mark.django_db
OLD_SECRET = "the-old-key-encryption-secret-0123456789"
NEW_SECRET = "the-new-key-encryption-secret-0123456789"


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_rotate_keys_bootstraps_a_first_key_and_then_has_nothing_to_do():
    first = run("rotate_keys")
    key = SigningKey.objects.get()

    assert f"created {key.kid}" in first
    assert f"activated {key.kid}" in first
    assert "published JWKS version 1" in first
    assert "Nothing due" in run("rotate_keys")


def test_rotate_keys_force_publishes_a_successor_that_does_not_sign_yet():
    run("rotate_keys")
    active = SigningKey.objects.get(phase=engine.ACTIVE)

    output = run("rotate_keys", "--force")

    successor = SigningKey.objects.get(phase=engine.PENDING)
    assert f"created {successor.kid}" in output
    assert successor.kid.encode() in jwks_document_get()[0]
    assert SigningKey.objects.get(phase=engine.ACTIVE) == active


def test_rotate_keys_revoke_removes_the_key_from_the_jwks():
    run("rotate_keys")
    kid = SigningKey.objects.get().kid

    output = run("rotate_keys", "--revoke", kid)

    assert f"Revoked {kid}" in output
    assert kid.encode() not in jwks_document_get()[0]
    assert SigningKey.objects.get(phase=engine.ACTIVE).kid != kid


def test_rotate_keys_names_an_unknown_kid():
    run("rotate_keys")
    with pytest.raises(CommandError, match="no signing key with kid 'nope'"):
        run("rotate_keys", "--revoke", "nope")


def test_force_and_revoke_cannot_be_combined():
    with pytest.raises(CommandError):
        run("rotate_keys", "--force", "--revoke", "x")


def test_rotate_keys_refuses_to_run_with_a_secret_that_cannot_open_the_keys(settings):
    settings.KEY_ENCRYPTION_KEYS = [OLD_SECRET]
    run("rotate_keys")
    settings.KEY_ENCRYPTION_KEYS = [NEW_SECRET]

    with pytest.raises(CommandError, match="KEY_ENCRYPTION_KEY: cannot decrypt signing key"):
        run("rotate_keys")


def test_reencrypt_keys_moves_every_key_to_the_first_secret_so_old_ones_can_go(settings):
    settings.KEY_ENCRYPTION_KEYS = [OLD_SECRET]
    run("rotate_keys")
    run("rotate_keys", "--force")
    settings.KEY_ENCRYPTION_KEYS = [NEW_SECRET, OLD_SECRET]

    assert "Re-encrypted 2 key(s)" in run("reencrypt_keys")
    assert "Re-encrypted 0 key(s)" in run("reencrypt_keys")

    settings.KEY_ENCRYPTION_KEYS = [NEW_SECRET]
    store = LocalKeyStore()
    for key in SigningKey.objects.all():
        assert store.signer(kid=key.kid, algorithm=key.algorithm, reference=bytes(key.store_reference))
    assert token_sign(claims={"sub": "p-1"})
