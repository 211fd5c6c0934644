"""Entra token validation through real HTTP against the fake Entra: every rule and the attack catalogue."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from accounts.dev_directory import DevTokenRequest, dev_key_path, dev_token_create, thumbprint
from accounts.entra import EntraTokenValidator, TokenRejected, entra_token_validate
from tests.fake_entra import (
    AUDIENCE_ID,
    CLIENT_ID,
    OID,
    ROLE,
    SCOPE,
    SECOND_TENANT_ID,
    TENANT_ID,
    UNTRUSTED_TENANT_ID,
    b64url,
    b64url_json,
    public_jwk,
    rsa_key,
    sign,
)

NOW = 1_800_000_000.0


def rejected(token: object, *, validator: EntraTokenValidator | None = None) -> TokenRejected:
    with pytest.raises(TokenRejected) as caught:
        if validator is None:
            entra_token_validate(token=token)  # type: ignore[arg-type]
        else:
            validator.validate(token)
    assert "eyJ" not in caught.value.description  # never echoes a token
    return caught.value


def forge(header: dict, payload: dict, signature: bytes = b"") -> str:
    return f"{b64url_json(header)}.{b64url_json(payload)}.{b64url(signature)}"


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


@pytest.fixture
def validator_at_now(freeze_clock) -> EntraTokenValidator:
    """A validator whose lifetime rules read ``NOW``."""
    validator = EntraTokenValidator()
    freeze_clock(validator, at=NOW)
    return validator


# --- accepted ------------------------------------------------------------------------------


def test_it_accepts_a_delegated_token_and_returns_the_identity(fake_entra):
    groups = ["aaaaaaaa-0000-4000-8000-000000000001", "aaaaaaaa-0000-4000-8000-000000000002"]
    identity = entra_token_validate(token=fake_entra.mint(groups=groups))

    assert identity.tid == TENANT_ID
    assert identity.oid == OID
    assert identity.client_id == CLIENT_ID
    assert identity.app_only is False
    assert identity.scopes == {SCOPE, "User.Read"}
    assert identity.groups == set(groups)
    assert identity.groups_overage is False
    assert identity.issuer == f"{fake_entra.authority}/{TENANT_ID}/v2.0"
    assert not hasattr(identity, "email") and not hasattr(identity, "name")


def test_it_accepts_an_app_only_token_with_a_required_role(fake_entra):
    identity = entra_token_validate(token=fake_entra.mint(app_only=True))

    assert identity.app_only is True
    assert identity.roles == {ROLE}
    assert identity.scopes == frozenset()


def test_it_accepts_every_configured_audience_and_trusted_directory(fake_entra):
    assert entra_token_validate(token=fake_entra.mint(aud=AUDIENCE_ID)).oid == OID
    assert entra_token_validate(token=fake_entra.mint(SECOND_TENANT_ID)).tid == SECOND_TENANT_ID


def test_it_flags_group_overage_instead_of_trusting_an_absent_groups_claim(fake_entra):
    token = fake_entra.mint(_claim_names={"groups": "src1"}, _claim_sources={"src1": {"endpoint": "x"}})

    identity = entra_token_validate(token=token)

    assert identity.groups_overage is True
    assert identity.groups == frozenset()


def test_it_fetches_a_directory_s_keys_once_and_serves_later_tokens_from_the_cache(fake_entra):
    for _ in range(3):
        entra_token_validate(token=fake_entra.mint())

    assert fake_entra.jwks_fetches() == 1


def test_it_accepts_v1_tokens_only_when_enabled(fake_entra, settings):
    token = fake_entra.mint(iss=f"https://sts.windows.net/{TENANT_ID}/", ver="1.0", azp=None, appid=CLIENT_ID)

    assert rejected(token).check == "issuer"
    settings.ENTRA_ALLOW_V1_TOKENS = True
    assert entra_token_validate(token=token).client_id == CLIENT_ID


# --- the attack catalogue (RFC 8725, jwt_tool) ---------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_it_refuses_alg_none_in_any_case_before_fetching_keys(fake_entra, alg):
    claims = claims_of(fake_entra.mint())
    kid = fake_entra.directory(TENANT_ID).signing[0]

    assert rejected(forge({"alg": alg, "kid": kid}, claims)).check == "algorithm"
    assert fake_entra.total_fetches == 0


def test_it_refuses_hs256_signed_with_the_public_key_as_secret(fake_entra):
    kid, key = fake_entra.directory(TENANT_ID).signing
    public = key.public_key()
    secret = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{b64url_json({'alg': 'HS256', 'kid': kid})}.{b64url_json(claims_of(fake_entra.mint()))}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()

    assert rejected(f"{signing_input}.{b64url(signature)}").check == "algorithm"
    assert fake_entra.total_fetches == 0


def test_it_refuses_hs256_with_a_blank_secret(fake_entra):
    kid = fake_entra.directory(TENANT_ID).signing[0]
    signing_input = f"{b64url_json({'alg': 'HS256', 'kid': kid})}.{b64url_json(claims_of(fake_entra.mint()))}"
    signature = hmac.new(b"", signing_input.encode(), hashlib.sha256).digest()

    assert rejected(f"{signing_input}.{b64url(signature)}").check == "algorithm"


def test_it_refuses_an_ecdsa_zero_signature(fake_entra):
    kid = fake_entra.directory(TENANT_ID).signing[0]

    token = forge({"alg": "ES256", "kid": kid}, claims_of(fake_entra.mint()), bytes(64))

    assert rejected(token).check == "algorithm"
    assert fake_entra.total_fetches == 0


def test_it_refuses_other_rsa_algorithms_even_with_the_right_key(fake_entra):
    kid, key = fake_entra.directory(TENANT_ID).signing

    token = jwt.encode(claims_of(fake_entra.mint()), key, algorithm="PS256", headers={"kid": kid})

    assert rejected(token).check == "algorithm"


def test_it_refuses_an_embedded_jwk_signed_by_the_attacker(fake_entra):
    attacker = rsa_key()
    header = {"kid": "attacker", "jwk": public_jwk(attacker, "attacker")}

    assert rejected(fake_entra.mint(key=attacker, header=header)).check == "header"
    assert fake_entra.total_fetches == 0


@pytest.mark.parametrize("name", ["jku", "x5u"])
def test_it_refuses_key_urls_in_the_header(fake_entra, name):
    token = fake_entra.mint(header={name: "https://attacker.example/keys"})

    assert rejected(token).check == "header"
    assert fake_entra.total_fetches == 0


def test_it_refuses_an_x5c_certificate_chain_in_the_header(fake_entra):
    assert rejected(fake_entra.mint(header={"x5c": ["MIIB"]})).check == "header"


@pytest.mark.parametrize(
    "kid",
    ["../../../../../../dev/null", "/etc/passwd", "x' UNION SELECT 'secret' --", "1; DROP TABLE keys", "", 7],
)
def test_it_refuses_kid_injection_without_fetching(fake_entra, kid):
    attacker = rsa_key()

    assert rejected(fake_entra.mint(key=attacker, header={"kid": kid})).check == "header"
    assert fake_entra.total_fetches == 0


def test_it_refuses_a_kid_the_directory_does_not_publish(fake_entra):
    token = fake_entra.mint(key=rsa_key(), header={"kid": "kid-not-published"})

    assert rejected(token).check == "kid_unknown"


def test_it_refuses_a_token_signed_by_another_key_under_a_real_kid(fake_entra):
    assert rejected(fake_entra.mint(key=rsa_key())).check == "signature"


def test_it_refuses_a_swapped_payload(fake_entra):
    genuine = fake_entra.mint()
    header, _, signature = genuine.split(".")
    other_payload = fake_entra.mint(oid="66666666-6666-4666-8666-666666666666").split(".")[1]

    assert rejected(f"{header}.{other_payload}.{signature}").check == "signature"


def test_it_refuses_a_stripped_signature(fake_entra):
    header, payload, _ = fake_entra.mint().split(".")

    assert rejected(f"{header}.{payload}.").check == "signature"


def test_it_refuses_unknown_critical_header_extensions(fake_entra):
    assert rejected(fake_entra.mint(header={"crit": ["exp"], "exp": 1})).check == "header"
    assert rejected(fake_entra.mint(header={"crit": ["b64"], "b64": False})).check == "header"


def test_it_refuses_an_expired_token(fake_entra, validator_at_now):
    assert rejected(fake_entra.mint(now=NOW - 3600 - 31), validator=validator_at_now).check == "expired"


def test_it_refuses_a_token_that_is_not_valid_yet(fake_entra, validator_at_now):
    token = fake_entra.mint(now=NOW, nbf=int(NOW) + 600)

    assert rejected(token, validator=validator_at_now).check == "not_yet_valid"


def test_it_refuses_a_token_issued_in_the_future(fake_entra, validator_at_now):
    token = fake_entra.mint(now=NOW + 600, nbf=int(NOW))

    assert rejected(token, validator=validator_at_now).check == "issued_in_future"


def test_it_accepts_a_token_within_the_clock_skew_leeway(fake_entra, validator_at_now):
    token = fake_entra.mint(now=NOW + 20)

    assert validator_at_now.validate(token).oid == OID


def test_it_refuses_a_wrong_audience(fake_entra):
    assert rejected(fake_entra.mint(aud="api://another-service")).check == "audience"
    assert rejected(fake_entra.mint(aud=[AUDIENCE_ID, "api://another-service"])).check == "audience"


@pytest.mark.parametrize("audience", ["00000003-0000-0000-c000-000000000000", "https://graph.microsoft.com"])
def test_it_refuses_a_microsoft_graph_token(fake_entra, audience):
    assert rejected(fake_entra.mint(aud=audience)).check == "audience"


def test_it_refuses_an_untrusted_directory_without_any_fetch(fake_entra):
    token = fake_entra.mint(UNTRUSTED_TENANT_ID)

    assert rejected(token).check == "tenant"
    assert fake_entra.total_fetches == 0


def test_it_refuses_an_issuer_of_another_directory(fake_entra):
    token = fake_entra.mint(iss=f"{fake_entra.authority}/{SECOND_TENANT_ID}/v2.0")

    assert rejected(token).check == "issuer"


def test_it_refuses_an_issuer_of_another_authority(fake_entra):
    token = fake_entra.mint(iss=f"https://login.microsoftonline.com/{TENANT_ID}/v2.0")

    assert rejected(token).check == "issuer"


def test_it_refuses_a_key_that_the_jwks_scopes_to_another_issuer(fake_entra):
    fake_entra.directory(TENANT_ID).key_issuer = f"{{authority}}/{SECOND_TENANT_ID}/v2.0"

    assert rejected(fake_entra.mint()).check == "issuer"


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat", "aud", "iss", "oid"])
def test_it_refuses_a_token_missing_a_required_claim(fake_entra, claim):
    assert rejected(fake_entra.mint(**{claim: None})).check == "claims_missing"


def test_it_refuses_a_token_without_tid_before_any_fetch(fake_entra):
    kid, key = fake_entra.directory(TENANT_ID).signing
    claims = claims_of(fake_entra.mint())
    del claims["tid"]

    assert rejected(sign({"alg": "RS256", "kid": kid}, claims, key)).check == "claims_missing"
    # Without tid, its issuer names a directory that is not trusted ("None"): no provider at all.
    assert rejected(fake_entra.mint(tid=None)).check == "issuer"
    assert fake_entra.total_fetches == 0


@pytest.mark.parametrize(
    "claims",
    [
        {"oid": "not-a-guid"},
        {"oid": "ABCDEF01-2345-4678-89AB-CDEF01234567"},
        {"exp": "tomorrow"},
        {"exp": True},
        {"roles": "Admin"},
        {"groups": [1, 2]},
        {"scp": ["access_as_user"]},
        {"idtyp": "app"},
    ],
)
def test_it_refuses_malformed_claims(fake_entra, claims):
    assert rejected(fake_entra.mint(**claims)).check == "claims_invalid"


def test_it_refuses_a_delegated_token_without_the_required_scope(fake_entra):
    assert rejected(fake_entra.mint(scp="User.Read")).check == "scope"
    assert rejected(fake_entra.mint(scp="")).check == "scope"


def test_it_refuses_delegated_tokens_when_no_scope_is_required(fake_entra, settings):
    settings.ENTRA_REQUIRED_SCOPES = []

    assert rejected(fake_entra.mint()).check == "scope"


def test_it_refuses_an_app_only_token_without_a_required_role(fake_entra):
    assert rejected(fake_entra.mint(app_only=True, roles=["Other.Role"])).check == "role"
    assert rejected(fake_entra.mint(app_only=True, roles=None)).check == "role"


def test_it_refuses_a_user_token_that_hides_its_scopes(fake_entra):
    assert rejected(fake_entra.mint(scp=None, idtyp="user", roles=[ROLE])).check == "scope"


@pytest.mark.parametrize(
    "token",
    [
        None,
        b"bytes.are.refused",
        "",
        "garbage",
        "a.b",
        "a.b.c.d",
        "!!!.???.***",
        "e30.e30.e30.e30",
        f"{b64url(b'[1]')}.{b64url(b'{}')}.",
        f"{b64url(b'not json')}.{b64url(b'{}')}.",
        f"{b64url_json({'alg': 'RS256', 'kid': 'k'})}.{b64url(bytes([0xFF, 0xFE]))}.",
        f"{b64url_json({'alg': 'RS256', 'kid': 'k'})}..",
    ],
)
def test_it_refuses_garbage_as_malformed(fake_entra, token):
    assert rejected(token).check == "malformed"
    assert fake_entra.total_fetches == 0


def test_it_refuses_an_oversized_token_before_parsing(fake_entra):
    token = fake_entra.mint(padding="x" * 16 * 1024)

    assert rejected(token).check == "too_large"
    assert fake_entra.total_fetches == 0


def test_it_refuses_an_ecdsa_token_signed_with_a_real_ec_key(fake_entra):
    token = jwt.encode(
        claims_of(fake_entra.mint()), ec.generate_private_key(ec.SECP256R1()), "ES256", headers={"kid": "ec"}
    )

    assert rejected(token).check == "algorithm"


def test_it_names_the_failed_check_but_never_the_token_in_its_message(fake_entra):
    token = fake_entra.mint(aud="api://another-service")

    error = rejected(token)

    assert token not in str(error)
    assert error.description == "the token was not issued for this service"


def test_the_default_validator_reads_the_real_clock(fake_entra):
    assert entra_token_validate(token=fake_entra.mint(now=time.time())).oid == OID


def test_it_refuses_a_second_spelling_of_the_same_signature(fake_entra):
    header, payload, signature = fake_entra.mint().split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    respelled = signature[:-1] + alphabet[last ^ 0b0001]  # only the 4 unused trailing bits change

    assert rejected(f"{header}.{payload}.{respelled}").check == "malformed"


def test_it_refuses_a_kid_with_a_trailing_newline_without_fetching(fake_entra):
    kid = fake_entra.directory(TENANT_ID).signing[0]
    assert rejected(fake_entra.mint(header={"kid": kid + "\n"})).check == "header"
    assert fake_entra.total_fetches == 0


def test_it_refuses_duplicate_claim_names_even_when_validly_signed(fake_entra):
    """RFC 7515 §5.2: two parsers keeping different duplicates is how confusion attacks start."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    kid, key = fake_entra.directory(TENANT_ID).signing
    genuine = claims_of(fake_entra.mint())
    body = json.dumps(genuine)[:-1] + ', "aud": "https://graph.microsoft.com"}'
    signing_input = f"{b64url_json({'alg': 'RS256', 'typ': 'JWT', 'kid': kid})}.{b64url(body.encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    assert rejected(f"{signing_input}.{b64url(signature)}").check == "malformed"


@pytest.mark.parametrize("nesting", [b"[" * 5000, b'{"a":' * 2000, b'{"a":' + b"[" * 5000])
def test_it_refuses_deeply_nested_json_as_malformed_not_a_crash(fake_entra, nesting):
    """json.loads raises RecursionError (not a ValueError) past ~1000 levels: that was a 500."""
    header = b64url_json({"alg": "RS256", "kid": "k"})

    assert rejected(f"{header}.{b64url(nesting)}.").check == "malformed"
    assert rejected(f"{b64url(nesting)}.{b64url_json({})}.").check == "malformed"
    assert fake_entra.total_fetches == 0


# --- parsing edges and the development directory -------------------------------------------


@pytest.mark.parametrize("segment", ["header", "payload", "signature"])
def test_a_segment_of_a_length_no_base64url_text_has_is_malformed(fake_entra, segment):
    """One character in a group of four decodes to nothing: the decoder's error is a refusal, not a 500."""
    parts = dict(zip(["header", "payload", "signature"], fake_entra.mint().split("."), strict=True))
    parts[segment] = parts[segment][:4] + "A"

    assert rejected(".".join(parts.values())).check == "malformed"
    assert fake_entra.total_fetches == 0


@pytest.mark.parametrize("token", [".e30.sig", "e30..sig", "..sig", "..", ".e30.", "e30.."])
def test_an_empty_header_or_payload_is_refused_at_the_split(fake_entra, token):
    error = rejected(token.replace("e30", b64url_json({"alg": "RS256", "kid": "k"})))

    assert error.check == "malformed"
    assert error.description == "the token is not a signed JWT (three base64url parts)"


def test_a_token_of_exactly_the_maximum_length_is_read_and_one_character_more_is_not(fake_entra):
    limit = EntraTokenValidator.max_length
    token = token_of_length(fake_entra, limit)

    assert entra_token_validate(token=token).oid == OID
    assert rejected(token + "A").check == "too_large"


def token_of_length(fake_entra, length: int) -> str:
    """A genuine token of exactly ``length`` characters, padded with a claim. A base64url segment is
    never 1 longer than a multiple of 4, so the header (with or without typ and x5t, which Entra
    sends as the kid) takes up the rest."""
    kid = fake_entra.directory(TENANT_ID).signing[0]
    for header in ({}, {"typ": None}, {"x5t": kid}, {"typ": None, "x5t": kid}):
        unpadded = len(fake_entra.mint(header=header, padding=""))
        estimate = (length - unpadded) * 3 // 4
        for size in range(estimate - 3, estimate + 4):
            token = fake_entra.mint(header=header, padding="x" * size)
            if len(token) == length:
                return token
    raise AssertionError(f"no token of {length} characters")


def test_with_the_development_directory_on_a_real_directory_is_still_checked_against_its_own_keys(
    fake_entra, settings, tmp_path
):
    """The local key stands for the development directory only: a token naming a real tenant and
    signed with the local key is refused, and a real tenant's own token is still accepted."""
    settings.DEBUG = True
    settings.ENTRA_DEV_DIRECTORY = True
    settings.VAR_DIR = tmp_path
    entra_token_validate(token=dev_token_create(request=DevTokenRequest(oid=OID), now=time.time()))
    local_key = serialization.load_pem_private_key(dev_key_path().read_bytes(), password=None)
    assert isinstance(local_key, rsa.RSAPrivateKey)
    forged_header = {"alg": "RS256", "typ": "JWT", "kid": thumbprint(local_key.public_key())}

    assert rejected(sign(forged_header, claims_of(fake_entra.mint()), local_key)).check == "kid_unknown"
    assert entra_token_validate(token=fake_entra.mint()).tid == TENANT_ID
