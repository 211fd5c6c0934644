"""The JWKS endpoint as a downstream verifier sees it: public keys, caching and revalidation."""

from __future__ import annotations

import jwt
import pytest

from keys.services import jwks_publish, signing_key_rotate, token_sign

pytestmark = pytest.mark.django_db

JWKS_PATH = "/.well-known/jwks.json"
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


@pytest.fixture
def published() -> None:
    signing_key_rotate()
    jwks_publish()


@pytest.mark.parametrize("algorithm", ["ES256", "RS256", "PS256"])
def test_it_publishes_public_members_only_with_kid_alg_and_use(client, settings, algorithm):
    settings.KEY_ALGORITHM = algorithm
    signing_key_rotate()
    jwks_publish()

    keys = client.get(JWKS_PATH).json()["keys"]

    assert [key["alg"] for key in keys] == [algorithm]
    for key in keys:
        assert not PRIVATE_MEMBERS & set(key), key
        assert key["use"] == "sig"
        assert key["kid"]


def test_a_verifier_checks_an_issued_token_with_the_published_keys(client, published):
    token = token_sign(claims={"iss": "https://issuer.test", "sub": "p-1", "aud": "api://orders"})
    keys = jwt.PyJWKSet.from_dict(client.get(JWKS_PATH).json())
    header = jwt.get_unverified_header(token)

    signing_key = next(key for key in keys.keys if key.key_id == header["kid"])
    claims = jwt.decode(token, signing_key.key, algorithms=[header["alg"]], audience="api://orders")

    assert claims["sub"] == "p-1"


def test_it_is_json_cacheable_by_everyone_for_jwks_max_age(client, settings, published):
    settings.JWKS_MAX_AGE = 321

    response = client.get(JWKS_PATH)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "public, max-age=321"


def test_its_etag_is_strong_and_quoted(client, published):
    etag = client.get(JWKS_PATH)["ETag"]

    assert not etag.startswith("W/")
    assert len(etag) > 2 and etag[0] == etag[-1] == '"'


@pytest.mark.parametrize(
    "if_none_match",
    [
        "{etag}",
        "W/{etag}",  # If-None-Match compares weakly (RFC 9110 13.1.2)
        '"older", {etag}',
        '"older",{etag} , "other"',
        "*",
    ],
)
def test_a_matching_if_none_match_gets_304_with_the_cache_headers(client, settings, published, if_none_match):
    etag = client.get(JWKS_PATH)["ETag"]

    response = client.get(JWKS_PATH, headers={"if-none-match": if_none_match.format(etag=etag)})

    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == etag
    assert response["Cache-Control"] == f"public, max-age={settings.JWKS_MAX_AGE}"


@pytest.mark.parametrize("if_none_match", ['"older"', '"older", W/"other"', "not-an-etag", "{bare}", ""])
def test_anything_else_gets_the_full_document(client, published, if_none_match):
    full = client.get(JWKS_PATH)
    bare = full["ETag"].strip('"')

    response = client.get(JWKS_PATH, headers={"if-none-match": if_none_match.format(bare=bare)})

    assert response.status_code == 200
    assert response.content == full.content


def test_head_gets_the_headers_without_the_body(client, published):
    response = client.head(JWKS_PATH)

    assert response.status_code == 200
    assert response.content == b""
    assert response["ETag"] == client.get(JWKS_PATH)["ETag"]
    revalidated = client.head(JWKS_PATH, headers={"if-none-match": response["ETag"]})
    assert revalidated.status_code == 304


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_it_refuses_methods_other_than_get_and_head(client, published, method):
    response = getattr(client, method)(JWKS_PATH)

    assert response.status_code == 405
    assert set(response["Allow"].split(", ")) == {"GET", "HEAD"}


def test_a_new_key_set_gets_a_new_etag_and_old_copies_are_refreshed(client, published):
    before = client.get(JWKS_PATH)

    signing_key_rotate(force=True)
    jwks_publish()
    response = client.get(JWKS_PATH, headers={"if-none-match": before["ETag"]})

    assert response.status_code == 200
    assert response["ETag"] != before["ETag"]
    assert len(response.json()["keys"]) == len(before.json()["keys"]) + 1


def test_a_repeated_request_costs_at_most_one_query(client, published, django_assert_max_num_queries):
    client.get(JWKS_PATH)

    with django_assert_max_num_queries(1):
        assert client.get(JWKS_PATH).status_code == 200
