"""Signing: tokens a downstream verifier accepts, the per-process signer, private keys never in clear."""

from __future__ import annotations

import pytest
from django.db import connection

from keys.errors import NoActiveKey
from keys.models import SigningKey
from keys.selectors import signing_key_active_exists
from keys.services import ActiveSignerCache, signing_key_rotate, token_sign
from tests.support.jwks import active_kid, decoded, sign_at, verify_at

pytestmark = pytest.mark.django_db


def test_issued_tokens_carry_typ_kid_and_alg_and_verify_against_the_jwks(clock, weekly_rotation):
    signing_key_rotate()

    token = sign_at(clock, aud="api://orders")

    header = decoded(token).header
    assert header == {"alg": "ES256", "kid": active_kid(), "typ": "at+jwt"}
    assert verify_at(token, clock)["aud"] == "api://orders"


@pytest.mark.parametrize("algorithm", ["RS256", "PS256"])
def test_rsa_algorithms_sign_verifiable_tokens(clock, weekly_rotation, settings, algorithm):
    settings.KEY_ALGORITHM = algorithm
    signing_key_rotate()

    token = sign_at(clock)

    assert decoded(token).header["alg"] == algorithm
    assert verify_at(token, clock)["sub"] == "p-1"


def test_the_signer_cache_rechecks_the_active_key_at_most_every_interval(
    clock, weekly_rotation, freeze_clock, django_assert_num_queries
):
    signing_key_rotate()
    cache = ActiveSignerCache(recheck_seconds=5)
    ticks = freeze_clock(cache, at=0.0)
    with django_assert_num_queries(1):
        first = cache.get()
        ticks.now = 4.9
        assert cache.get() is first
    ticks.now = 5.0
    with django_assert_num_queries(1):
        assert cache.get() is first  # same kid: the decrypted key is kept, not reloaded


def test_signing_needs_no_query_per_token(clock, weekly_rotation, django_assert_num_queries):
    signing_key_rotate()
    sign_at(clock)

    with django_assert_num_queries(0):
        for _ in range(50):
            sign_at(clock)


def test_without_an_active_key_signing_is_a_clear_domain_error(clock, weekly_rotation):
    with pytest.raises(NoActiveKey):
        token_sign(claims={"sub": "p-1"})
    assert not signing_key_active_exists()


def test_claims_must_be_a_dict(clock, weekly_rotation):
    signing_key_rotate()
    with pytest.raises(TypeError):
        token_sign(claims=[("sub", "p-1")])


def test_the_database_never_holds_a_private_key_in_clear(clock, weekly_rotation, settings):
    from cryptography.hazmat.primitives import serialization

    from keys.stores import b64url, key_store_get

    signing_key_rotate()
    settings.KEY_ALGORITHM = "RS256"
    signing_key_rotate(force=True)
    store = key_store_get()
    needles: list[bytes] = [b"PRIVATE KEY"]
    for key in SigningKey.objects.all():
        der = store.unseal(kid=key.kid, sealed=bytes(key.store_reference))
        private = serialization.load_der_private_key(der, password=None)
        numbers = private.private_numbers()
        secrets = (
            [numbers.private_value]
            if hasattr(numbers, "private_value")
            else [numbers.d, numbers.p, numbers.q]
        )
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        needles += [der, der[-32:], pem.splitlines()[1]]
        for secret in secrets:
            raw = secret.to_bytes((secret.bit_length() + 7) // 8, "big")
            needles += [raw, b64url(raw).encode(), raw.hex().encode(), str(secret).encode()]

    dump = _database_dump()

    assert SigningKey.objects.count() == 2
    for needle in needles:
        assert needle not in dump


def _database_dump() -> bytes:
    """Every value of every table, as raw bytes (binary as stored, text as UTF-8)."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - table names from introspection
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        chunks.append(bytes(value))
                    elif value is not None:
                        chunks.append(str(value).encode("utf-8"))
    return b"\x00".join(chunks)
