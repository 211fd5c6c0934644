"""TokenVerifier: every check of the issuer's access tokens, each refusal with its reason code."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import pickle
import time
from datetime import UTC, datetime

import pytest

from issuer_verify import REASONS, Claims, InvalidToken, TokenVerifier
from tests.support.fake_issuer import AUDIENCE, IssuerKey, b64url, b64url_json, compact, signed


def refusal(verifier: TokenVerifier, token: object) -> str:
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(token)
    return caught.value.reason


# --- what passes --------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["ES256", "RS256", "PS256"])
def test_it_verifies_the_issuers_tokens_in_every_algorithm(fake_issuer, verifier, algorithm):
    key = fake_issuer.initial[algorithm]
    claims = verifier.verify(fake_issuer.mint(key=key, scope="orders.read orders.approve", roles=["a", "b"]))

    assert isinstance(claims, Claims)
    assert claims.subject == "p-0001"
    assert claims.tenant == "acme"
    assert claims.client_id == "client-1"
    assert claims.scopes == frozenset({"orders.read", "orders.approve"})
    assert claims.roles == frozenset({"a", "b"})
    assert claims.audience == (AUDIENCE,)
    assert claims.issuer == fake_issuer.url
    assert claims.expires_at.tzinfo is UTC
    assert claims.has_scope("orders.approve")
    assert claims.has_scope("orders.read", "orders.approve")
    assert not claims.has_scope("orders.read", "orders.delete")
    assert not claims.has_scope()
    assert claims.has_role("a") and not claims.has_role("c")
    assert claims.raw["jti"] == claims.jwt_id


def test_the_raw_claims_are_read_only(fake_issuer, verifier):
    claims = verifier.verify(fake_issuer.mint())
    with pytest.raises(TypeError):
        claims.raw["tenant"] = "globex"  # type: ignore[index]


def test_an_audience_list_holding_ours_passes(fake_issuer, verifier):
    claims = verifier.verify(fake_issuer.mint(aud=["api://billing", AUDIENCE]))
    assert claims.audience == ("api://billing", AUDIENCE)


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"])
def test_typ_compares_as_a_media_type(fake_issuer, verifier, typ):
    assert verifier.verify(fake_issuer.mint(header={"typ": typ})).tenant == "acme"


def test_roles_are_optional_and_an_empty_scope_gives_none(fake_issuer, verifier):
    claims = verifier.verify(fake_issuer.mint(roles=None, scope=""))
    assert claims.roles == frozenset() and claims.scopes == frozenset()
    assert not claims.has_scope("orders.read")


def test_verify_async_gives_the_same_claims(fake_issuer, verifier):
    token = fake_issuer.mint()
    assert asyncio.run(verifier.verify_async(token)).jwt_id == verifier.verify(token).jwt_id


def test_verify_async_refuses_with_the_same_reasons(fake_issuer, verifier):
    with pytest.raises(InvalidToken) as caught:
        asyncio.run(verifier.verify_async(fake_issuer.mint(aud="api://billing")))
    assert caught.value.reason == "audience"


# --- the header --------------------------------------------------------------------------------
def test_alg_none_is_refused_whatever_else_the_token_says(fake_issuer, verifier):
    header = {"alg": "none", "typ": "at+jwt", "kid": fake_issuer.signing.kid}
    token = f"{b64url_json(header)}.{b64url_json(fake_issuer.claims())}."
    assert refusal(verifier, token) == "unsupported_alg"


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_an_hmac_token_keyed_with_our_public_key_is_refused(fake_issuer, verifier, alg):
    # The classic confusion: the public key (as the JWK's JSON, or its bytes) used as an HMAC secret.
    key = fake_issuer.signing
    header = {"alg": alg, "typ": "at+jwt", "kid": key.kid}
    signing_input = f"{b64url_json(header)}.{b64url_json(fake_issuer.claims())}"
    secret = json.dumps(key.jwk()).encode()
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    mac = hmac.new(secret, signing_input.encode(), digest).digest()
    assert refusal(verifier, f"{signing_input}.{b64url(mac)}") == "unsupported_alg"


@pytest.mark.parametrize("alg", [None, "", "es256", "ES384", "RS512", "EdDSA", 256, ["ES256"]])
def test_algorithms_outside_the_allow_list_are_refused(fake_issuer, verifier, alg):
    assert refusal(verifier, fake_issuer.mint(header={"alg": alg})) == "unsupported_alg"


def test_an_algorithm_the_service_did_not_choose_is_refused(fake_issuer, make_verifier):
    es256_only = make_verifier(algorithms=["ES256"])
    assert refusal(es256_only, fake_issuer.mint(key=fake_issuer.initial["RS256"])) == "unsupported_alg"


def test_a_header_alg_that_differs_from_the_keys_is_refused(fake_issuer, verifier):
    # An RS256 header naming the ES256 key's kid: the key decides the algorithm, not the token.
    rsa_key, ec_key = fake_issuer.initial["RS256"], fake_issuer.initial["ES256"]
    token = signed({"alg": "RS256", "typ": "at+jwt", "kid": ec_key.kid}, fake_issuer.claims(), rsa_key)
    assert refusal(verifier, token) == "key_mismatch"
    # PS256 and RS256 share RSA keys, and still do not stand in for each other.
    ps_key = fake_issuer.initial["PS256"]
    token = signed({"alg": "RS256", "typ": "at+jwt", "kid": ps_key.kid}, fake_issuer.claims(), ps_key)
    assert refusal(verifier, token) == "key_mismatch"


def test_crit_is_refused(fake_issuer, verifier):
    assert refusal(verifier, fake_issuer.mint(header={"crit": ["exp"], "exp": 1})) == "crit"


@pytest.mark.parametrize(
    "member",
    [
        {"jku": "https://attacker.example/jwks.json"},
        {"x5u": "https://attacker.example/cert.pem"},
        {"jwk": {"kty": "EC"}},
        {"x5c": ["MIIB"]},
        {"cty": "JWT"},
        {"b64": False},
    ],
)
def test_header_members_beyond_alg_typ_and_kid_are_refused(fake_issuer, verifier, member):
    assert refusal(verifier, fake_issuer.mint(header=member)) == "header"


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "at+jwt ", "application/jwt", "id_token+jwt", 1])
def test_anything_but_an_access_token_type_is_refused(fake_issuer, verifier, typ):
    assert refusal(verifier, fake_issuer.mint(header={"typ": typ})) == "typ"


@pytest.mark.parametrize("kid", [None, "", 7, "../../etc/passwd", "a b", "k" * 129])
def test_a_missing_or_odd_kid_is_malformed(fake_issuer, verifier, kid):
    assert refusal(verifier, fake_issuer.mint(header={"kid": kid})) == "malformed"


# --- the key and the signature -------------------------------------------------------------------
def test_a_kid_the_issuer_does_not_publish_is_unknown(fake_issuer, verifier):
    stranger = IssuerKey.generate("ES256")
    assert refusal(verifier, fake_issuer.mint(key=stranger)) == "kid_unknown"


def test_a_token_signed_by_another_key_under_our_kid_fails_the_signature(fake_issuer, verifier):
    impostor = IssuerKey.generate("ES256")
    impostor.kid = fake_issuer.signing.kid
    assert refusal(verifier, fake_issuer.mint(key=impostor)) == "signature"


@pytest.mark.parametrize("algorithm", ["ES256", "RS256", "PS256"])
def test_a_changed_claim_fails_the_signature(fake_issuer, verifier, algorithm):
    token = fake_issuer.mint(key=fake_issuer.initial[algorithm])
    header, _claims, signature = token.split(".")
    forged = b64url_json(fake_issuer.claims(tenant="globex"))
    assert refusal(verifier, f"{header}.{forged}.{signature}") == "signature"


@pytest.mark.parametrize("signature", [b"", b"\x00" * 64, b"\x00" * 63, b"\xff" * 64, b"\x01" * 65])
def test_degenerate_ecdsa_signatures_are_refused(fake_issuer, verifier, signature):
    # r = s = 0 is the "psychic signature" (CVE-2022-21449); the others are the wrong size or range.
    header = {"alg": "ES256", "typ": "at+jwt", "kid": fake_issuer.signing.kid}
    assert refusal(verifier, compact(header, fake_issuer.claims(), signature)) == "signature"


def test_an_rsa_signature_of_the_wrong_length_is_refused(fake_issuer, verifier):
    token = fake_issuer.mint(key=fake_issuer.initial["RS256"])
    header, claims, signature = token.split(".")
    padded = b64url(b"\x00" + _b64decode(signature))
    assert refusal(verifier, f"{header}.{claims}.{padded}") == "signature"


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


# --- the claims ---------------------------------------------------------------------------------
def test_a_foreign_issuer_is_refused(fake_issuer, verifier):
    assert refusal(verifier, fake_issuer.mint(iss="https://login.example.com")) == "issuer"
    assert refusal(verifier, fake_issuer.mint(iss=fake_issuer.url + "/")) == "issuer"
    assert refusal(verifier, fake_issuer.mint(iss=None)) == "issuer"


@pytest.mark.parametrize("aud", [None, "api://billing", ["api://billing"], [], [AUDIENCE, 1], {"a": 1}, 7])
def test_another_or_a_malformed_audience_is_refused(fake_issuer, verifier, aud):
    assert refusal(verifier, fake_issuer.mint(aud=aud)) == "audience"


def test_an_expired_token_is_refused_once_the_leeway_is_spent(fake_issuer, verifier):
    now = time.time()
    assert verifier.verify(fake_issuer.mint(exp=int(now) - 20)).tenant == "acme"  # within 30 s
    assert refusal(verifier, fake_issuer.mint(exp=int(now) - 31)) == "expired"


def test_the_lifetime_rules_read_the_verifiers_clock(fake_issuer, verifier, freeze_clock):
    clock = freeze_clock(TokenVerifier, at=2_000_000_000.0)
    token = fake_issuer.mint(now=2_000_000_000)  # exp 600 s later
    assert verifier.verify(token).expires_at == datetime.fromtimestamp(2_000_000_600, UTC)
    clock.advance(629)
    assert verifier.verify(token).tenant == "acme"
    clock.advance(1)
    assert refusal(verifier, token) == "expired"


def test_a_token_not_yet_valid_is_refused(fake_issuer, verifier):
    now = int(time.time())
    assert verifier.verify(fake_issuer.mint(nbf=now + 25)).tenant == "acme"
    assert refusal(verifier, fake_issuer.mint(nbf=now + 45)) == "not_yet_valid"


def test_a_token_issued_in_the_future_is_refused(fake_issuer, verifier):
    now = int(time.time())
    assert refusal(verifier, fake_issuer.mint(iat=now + 45, nbf=None)) == "issued_in_future"


def test_the_leeway_is_the_services_choice_up_to_a_minute(fake_issuer, make_verifier):
    strict = make_verifier(leeway=0)
    assert refusal(strict, fake_issuer.mint(exp=int(time.time()) - 1)) == "expired"
    for leeway in (61, -1, True, "30", float("nan")):
        with pytest.raises(ValueError, match="leeway"):
            make_verifier(leeway=leeway)


@pytest.mark.parametrize("claim", ["sub", "tenant", "jti", "client_id", "scope", "exp", "iat"])
def test_each_required_claim_must_be_present(fake_issuer, verifier, claim):
    assert refusal(verifier, fake_issuer.mint(**{claim: None})) == "missing_claim"


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": ""},
        {"tenant": 7},
        {"jti": ["a"]},
        {"client_id": None, "azp": "client-1"},
        {"scope": ["orders.read"]},
        {"scope": "orders.read  orders.approve"},
        {"scope": " orders.read"},
        {"scope": 'orders.read "x"'},
        {"roles": "viewer"},
        {"roles": ["viewer", 1]},
        {"exp": "1900000000"},
        {"exp": True},
        {"iat": 1e300},
        {"nbf": "soon"},
        {"exp": 1e20},
    ],
)
def test_claims_of_the_wrong_shape_are_refused(fake_issuer, verifier, claims):
    assert refusal(verifier, fake_issuer.mint(**claims)) == "missing_claim"


# --- parsing -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "token",
    [
        None,
        b"a.b.c",
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "a.b.c.d.e",  # JWE compact serialisation
        "eyJ.eyJ.",
        "e30.e30.=",
        "e30=.e30.AAAA",  # padded
        "e30.e30.AA+A",  # standard base64 alphabet
        "e30.e30 .AAAA",
        "x" * 20_000,
    ],
)
def test_what_is_not_a_compact_jws_is_malformed(verifier, token):
    assert refusal(verifier, token) == "malformed"


def test_a_non_canonical_base64url_spelling_is_malformed(fake_issuer, verifier):
    header, _claims, signature = fake_issuer.mint().split(".")
    # "e30" is "{}"; "e31" decodes to the same bytes with a trailing bit set.
    assert _b64decode("e31") == _b64decode("e30")
    assert refusal(verifier, f"{header}.e31.{signature}") == "malformed"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"alg":"ES256","alg":"none","typ":"at+jwt","kid":"k"}',  # a member named twice
        b"[]",
        b'"at+jwt"',
        b'{"alg":"ES256",',
        b"\xef\xbb\xbf{}",  # a byte-order mark
        b'{"a":NaN}',
        b'{"a":Infinity}',
        '{"alg":"ES256"}'.encode("utf-16"),
        b'{"a":"\xff"}',
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_a_header_that_is_not_one_strict_json_object_is_malformed(fake_issuer, verifier, raw):
    token = f"{b64url(raw)}.{b64url_json(fake_issuer.claims())}.{b64url(b'x' * 64)}"
    assert refusal(verifier, token) == "malformed"


def test_claims_with_a_member_named_twice_are_malformed(fake_issuer, verifier):
    header = {"alg": "ES256", "typ": "at+jwt", "kid": fake_issuer.signing.kid}
    claims = b64url(b'{"tenant":"acme","tenant":"globex"}')
    assert refusal(verifier, f"{b64url_json(header)}.{claims}.{b64url(b'x' * 64)}") == "malformed"


# --- the contract ------------------------------------------------------------------------------
def test_every_reason_has_a_description_that_names_no_value():
    for reason, description in REASONS.items():
        error = InvalidToken(reason)
        assert error.reason == reason and error.description == description
        assert '"' not in description and "\\" not in description  # safe inside a quoted header
    with pytest.raises(ValueError):
        InvalidToken("something_new")


def test_a_refusal_survives_pickling_for_process_pools():
    error = pickle.loads(pickle.dumps(InvalidToken("missing_claim", "tenant is required")))  # noqa: S301 (our own bytes)
    assert (error.reason, error.detail) == ("missing_claim", "tenant is required")


@pytest.mark.parametrize(
    "options",
    [
        {"issuer": "http://issuer.example.com"},  # plain http off loopback
        {"issuer": "ftp://issuer.example.com"},
        {"issuer": "https://user:pw@issuer.example.com"},
        {"issuer": "issuer.example.com"},
        {"issuer": "https://issuer.example.com?tenant=a"},
        {"issuer": "https://issuer.example.com#top"},
        {"audience": ""},
        {"jwks_uri": "http://keys.example.com/jwks.json"},
        {"algorithms": ["HS256"]},
        {"algorithms": []},
        {"min_cache_age": 0},
        {"min_cache_age": 100, "max_cache_age": 50},
        {"refetch_cooldown": 0},
        {"fetch_timeout": 0},
    ],
)
def test_a_verifier_refuses_an_unsafe_configuration(options):
    options = {"issuer": "https://issuer.example.com", "audience": AUDIENCE, **options}
    with pytest.raises(ValueError):
        TokenVerifier(**options)
