"""What a client is told when its Entra token is refused: one check and one description per rule."""

from __future__ import annotations

import pytest

from accounts.entra import TokenRejected, entra_token_validate
from tests.fake_entra import b64url, b64url_json, rsa_key

NOT_A_JWT = "the token is not a JWT"
RS256_HEADER = b64url_json({"alg": "RS256", "kid": "k"})


def respelled(token: str) -> str:
    """The same signature bytes with the unused trailing bits set: a second spelling."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return token[:-1] + alphabet[alphabet.index(token[-1]) ^ 0b0001]


REFUSALS = {
    "not-a-string": (lambda entra: None, "malformed", NOT_A_JWT),
    "empty": (lambda entra: "", "malformed", NOT_A_JWT),
    "too-large": (
        lambda entra: entra.mint(padding="x" * 16 * 1024),
        "too_large",
        "the token is longer than 16384 characters",
    ),
    "two-parts": (
        lambda entra: "e30.e30",
        "malformed",
        "the token is not a signed JWT (three base64url parts)",
    ),
    "impossible-length": (lambda entra: f"{RS256_HEADER}.e30.A", "malformed", NOT_A_JWT),
    "second-spelling": (lambda entra: respelled(entra.mint()), "malformed", NOT_A_JWT),
    "not-json": (lambda entra: f"{b64url(b'not json')}.e30.", "malformed", NOT_A_JWT),
    "not-an-object": (lambda entra: f"{RS256_HEADER}.{b64url(b'[]')}.", "malformed", NOT_A_JWT),
    "alg-none": (
        lambda entra: entra.mint(header={"alg": "none"}),
        "algorithm",
        "only RS256 signatures are accepted",
    ),
    "jku": (
        lambda entra: entra.mint(header={"jku": "https://attacker.example/keys"}),
        "header",
        "keys are taken only from the provider's JWKS (jku/x5u/x5c/jwk)",
    ),
    "crit": (
        lambda entra: entra.mint(header={"crit": ["b64"]}),
        "header",
        "the token has critical header extensions",
    ),
    "kid-number": (
        lambda entra: entra.mint(header={"kid": 7}),
        "header",
        "the token has no usable key id (kid)",
    ),
    "kid-unknown": (
        lambda entra: entra.mint(key=rsa_key(), header={"kid": "kid-not-published"}),
        "kid_unknown",
        "its directory publishes no such signing key",
    ),
    "signature": (lambda entra: entra.mint(key=rsa_key()), "signature", "the token's signature is not valid"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_each_refusal_names_its_check_and_tells_the_client_why(fake_entra, case):
    """The description is the client's ``error_description``: safe, stable, one per rule."""
    make_token, check, description = REFUSALS[case]

    with pytest.raises(TokenRejected) as caught:
        entra_token_validate(token=make_token(fake_entra))

    assert (caught.value.check, caught.value.description) == (check, description)
