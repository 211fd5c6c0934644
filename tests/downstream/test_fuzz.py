"""Hostile input never escapes as anything but ``InvalidToken``: property tests with hypothesis."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from issuer_verify import Claims, InvalidToken, TokenVerifier
from issuer_verify.keys import jwks_parse
from tests.support.fake_issuer import AUDIENCE, b64url, b64url_json, signed

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=8,
)
HEADER_NAMES = ["alg", "typ", "kid", "crit", "jku", "jwk", "x5u", "x5c", "cty", "b64", "zip"]
CLAIM_NAMES = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id", "tenant", "roles", "scope"]


@pytest.fixture
def warm_verifier(fake_issuer) -> TokenVerifier:
    verifier = TokenVerifier(issuer=fake_issuer.url, audience=AUDIENCE)
    verifier.verify(fake_issuer.mint())
    return verifier


def outcome(verifier: TokenVerifier, token: object) -> str:
    """'ok' or the reason code; any other exception fails the test."""
    try:
        claims = verifier.verify(token)
    except InvalidToken as exc:
        return exc.reason
    assert isinstance(claims, Claims)
    return "ok"


@FUZZ
@given(token=st.text(max_size=300) | st.binary(max_size=100) | st.integers() | st.none())
@example(token="..")
@example(token="a.b.")
@example(token="\u0661.\u0662.\u0663")  # non-ASCII digits that str.isdigit() would accept
def test_arbitrary_input_is_refused_cleanly(warm_verifier, token):
    assert outcome(warm_verifier, token) != "ok"


@FUZZ
@given(
    parts=st.lists(st.binary(max_size=120), min_size=1, max_size=5),
)
def test_arbitrary_base64url_segments_are_refused_cleanly(warm_verifier, parts):
    assert outcome(warm_verifier, ".".join(b64url(part) for part in parts)) != "ok"


@FUZZ
@given(
    header=st.dictionaries(st.sampled_from(HEADER_NAMES), json_values, max_size=6),
    claims=st.dictionaries(st.sampled_from(CLAIM_NAMES) | st.text(max_size=6), json_values, max_size=12),
    signature=st.binary(max_size=300),
)
def test_arbitrary_headers_and_claims_are_refused_cleanly(warm_verifier, header, claims, signature):
    token = f"{b64url_json(header)}.{b64url_json(claims)}.{b64url(signature)}"
    assert outcome(warm_verifier, token) != "ok"


@FUZZ
@given(
    header=st.fixed_dictionaries(
        {"alg": st.just("ES256"), "typ": st.sampled_from(["at+jwt", "JWT"])},
        optional={name: json_values for name in ["crit", "jku", "cty"]},
    ),
    overrides=st.dictionaries(st.sampled_from(CLAIM_NAMES), json_values, max_size=3),
)
def test_correctly_signed_tokens_with_arbitrary_claims_never_raise_anything_else(
    fake_issuer, warm_verifier, header, overrides
):
    # Signed by the issuer's real key over the contract's claims with a few replaced (None deletes):
    # the claim rules alone decide, and they either give well-typed claims or refuse cleanly.
    token = signed(
        {**header, "kid": fake_issuer.signing.kid}, fake_issuer.claims(**overrides), fake_issuer.signing
    )
    try:
        claims = warm_verifier.verify(token)
    except InvalidToken:
        return
    assert all(isinstance(value, str) and value for value in (claims.subject, claims.tenant, claims.jwt_id))
    assert all(isinstance(scope, str) for scope in claims.scopes | claims.roles)
    assert AUDIENCE in claims.audience


@FUZZ
@given(data=st.data())
def test_any_change_to_a_valid_token_is_refused(fake_issuer, warm_verifier, data):
    token = fake_issuer.mint(key=fake_issuer.initial[data.draw(st.sampled_from(["ES256", "RS256", "PS256"]))])
    position = data.draw(st.integers(0, len(token) - 1))
    edit = data.draw(st.sampled_from(["replace", "insert", "delete"]))
    character = data.draw(st.sampled_from("AZaz09-_.=+/ \x00é"))
    if edit == "replace":
        changed = token[:position] + character + token[position + 1 :]
    elif edit == "insert":
        changed = token[:position] + character + token[position:]
    else:
        changed = token[:position] + token[position + 1 :]
    assume(changed != token)
    assert outcome(warm_verifier, changed) != "ok"


@FUZZ
@given(document=st.dictionaries(st.just("keys") | st.text(max_size=4), json_values, max_size=3))
def test_an_arbitrary_jwks_raises_only_value_error(document):
    with contextlib.suppress(ValueError):
        jwks_parse(document)


@FUZZ
@given(
    jwk=st.fixed_dictionaries(
        {"kid": st.text(max_size=10), "alg": st.sampled_from(["ES256", "RS256", "PS256", "HS256"])},
        optional={
            "kty": st.sampled_from(["EC", "RSA", "oct"]) | json_values,
            "crv": st.sampled_from(["P-256", "P-384"]) | json_values,
            "x": st.binary(max_size=40).map(b64url) | json_values,
            "y": st.binary(max_size=40).map(b64url) | json_values,
            "n": st.binary(min_size=250, max_size=300).map(b64url) | json_values,
            "e": st.sampled_from(["AQAB", "Aw", "AA", "Ag"]) | json_values,
            "use": st.sampled_from(["sig", "enc"]) | json_values,
            "key_ops": json_values,
        },
    )
)
def test_arbitrary_jwks_entries_raise_only_value_error(jwk):
    with contextlib.suppress(ValueError):
        jwks_parse({"keys": [jwk]})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200) | json_values.map(lambda value: json.dumps(value).encode()))
def test_a_verifier_served_garbage_keys_refuses_cleanly(fake_issuer, body):
    fake_issuer.jwks_body = body
    verifier = TokenVerifier(issuer=fake_issuer.url, audience=AUDIENCE)
    assert outcome(verifier, fake_issuer.mint()) == "jwks_unavailable"
