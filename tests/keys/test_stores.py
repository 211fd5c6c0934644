"""The local key store: keys sealed with AES-GCM, signatures a standard JOSE library accepts."""

import json

import pytest
from cryptography.hazmat.primitives import serialization
from django.core.exceptions import ImproperlyConfigured
from joserfc import jws
from joserfc.jwk import ECKey, RSAKey

from keys.errors import KeyDecryptionFailed
from keys.jwks import jwk_published
from keys.stores import RSA_KEY_SIZE, LocalKeyStore, b64url, jwk_thumbprint, key_store_get

SECRET = "first-key-encryption-secret-0123456789"
OLD_SECRET = "older-key-encryption-secret-0123456789"


@pytest.fixture(scope="module")
def rsa_key():
    return LocalKeyStore([SECRET]).create(algorithm="RS256")


def imported(new_key, *, algorithm=None):
    jwk = jwk_published(kid=new_key.kid, algorithm=algorithm or new_key.algorithm, jwk=new_key.public_jwk)
    return (ECKey if jwk["kty"] == "EC" else RSAKey).import_key(jwk)


def test_the_kid_is_the_rfc_7638_thumbprint():
    new = LocalKeyStore([SECRET]).create(algorithm="ES256")
    assert new.kid == imported(new).thumbprint() == jwk_thumbprint(new.public_jwk)


def test_the_kid_matches_the_rfc_7638_example():
    # RFC 7638 §3.1
    example = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
        "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368"
        "QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2N"
        "cRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(example) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("algorithm", ["ES256", "RS256", "PS256"])
def test_signatures_verify_with_an_independent_jose_library(algorithm, rsa_key):
    store = LocalKeyStore([SECRET])
    new = store.create(algorithm="ES256") if algorithm == "ES256" else rsa_key
    signer = store.signer(kid=new.kid, algorithm=algorithm, reference=new.reference)
    signing_input = f"{b64url(json.dumps({'alg': algorithm}).encode())}.{b64url(b'payload')}"
    compact = f"{signing_input}.{b64url(signer.sign(signing_input.encode()))}"
    verifier = imported(new, algorithm=algorithm)
    assert jws.deserialize_compact(compact, verifier, algorithms=[algorithm]).payload == b"payload"


def test_rsa_keys_are_3072_bits(rsa_key):
    store = LocalKeyStore([SECRET])
    der = store.unseal(kid=rsa_key.kid, sealed=rsa_key.reference)
    assert serialization.load_der_private_key(der, password=None).key_size == RSA_KEY_SIZE == 3072


def test_the_public_jwk_holds_no_private_member(rsa_key):
    es = LocalKeyStore([SECRET]).create(algorithm="ES256")
    assert set(es.public_jwk) == {"kty", "crv", "x", "y"}
    assert set(rsa_key.public_jwk) == {"kty", "n", "e"}


def test_a_sealed_key_does_not_contain_the_private_key():
    store = LocalKeyStore([SECRET])
    new = store.create(algorithm="ES256")
    der = store.unseal(kid=new.kid, sealed=new.reference)
    assert der not in new.reference
    assert der[-32:] not in new.reference


def test_it_refuses_to_open_a_key_with_the_wrong_secret():
    new = LocalKeyStore([OLD_SECRET]).create(algorithm="ES256")
    with pytest.raises(KeyDecryptionFailed, match="KEY_ENCRYPTION_KEY"):
        LocalKeyStore([SECRET]).signer(kid=new.kid, algorithm="ES256", reference=new.reference)


def test_it_refuses_a_sealed_key_moved_to_another_kid():
    store = LocalKeyStore([SECRET])
    first, second = store.create(algorithm="ES256"), store.create(algorithm="ES256")
    with pytest.raises(KeyDecryptionFailed):
        store.signer(kid=second.kid, algorithm="ES256", reference=first.reference)


def test_it_refuses_a_tampered_sealed_key():
    store = LocalKeyStore([SECRET])
    new = store.create(algorithm="ES256")
    tampered = new.reference[:-1] + bytes([new.reference[-1] ^ 1])
    with pytest.raises(KeyDecryptionFailed):
        store.signer(kid=new.kid, algorithm="ES256", reference=tampered)


def test_every_listed_secret_decrypts_and_the_first_encrypts():
    old = LocalKeyStore([OLD_SECRET]).create(algorithm="ES256")
    rotated = LocalKeyStore([SECRET, OLD_SECRET])
    assert rotated.signer(kid=old.kid, algorithm="ES256", reference=old.reference).kid == old.kid
    resealed = rotated.reseal(kid=old.kid, sealed=old.reference)
    assert resealed is not None
    assert LocalKeyStore([SECRET]).signer(kid=old.kid, algorithm="ES256", reference=resealed)
    assert rotated.reseal(kid=old.kid, sealed=resealed) is None


def test_a_key_type_never_signs_with_another_algorithm():
    store = LocalKeyStore([SECRET])
    new = store.create(algorithm="ES256")
    with pytest.raises(ValueError, match="cannot sign RS256"):
        store.signer(kid=new.kid, algorithm="RS256", reference=new.reference).sign(b"data")


def test_azure_key_vault_without_a_vault_url_is_refused_clearly(settings):
    settings.KEY_VAULT_URL = None
    with pytest.raises(ImproperlyConfigured, match="KEY_VAULT_URL: required by KEY_STORE=azure-keyvault"):
        key_store_get("azure-keyvault")


def test_the_configured_store_is_local_by_default():
    assert isinstance(key_store_get(), LocalKeyStore)
