"""Both ends over real HTTP: the fake Entra → the issuer's exchange (gunicorn) → the example orders
service (gunicorn, verifying with the kit). Scopes, tenants and every kind of refused token."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from tests.support.downstream import (
    SECOND_OID,
    downstream_world,
    issuer_active_signer,
    token_parts,
)
from tests.support.fake_issuer import b64url, b64url_json

INVALID = 'Bearer realm="orders", error="invalid_token"'


@pytest.fixture(scope="module")
def world(tmp_path_factory, issuer_database_template, fake_entra_server):
    fake_entra_server.reset()
    with downstream_world(
        tmp_path_factory.mktemp("world"), issuer_database_template, fake_entra_server, issuer={}, orders={}
    ) as started:
        yield started


@pytest.fixture(autouse=True)
def _healthy_entra(fake_entra_server):
    fake_entra_server.reset()


def numbers(answer) -> list[str]:
    return [order["number"] for order in answer.json()["orders"]]


def test_a_token_with_orders_read_lists_its_own_tenants_orders_only(world):
    acme = world.orders.get("/orders/", world.token("acme"))
    assert acme.status == 200, acme.body
    assert acme.json()["tenant"] == "acme"
    assert numbers(acme) == ["ACME-1001", "ACME-1002", "ACME-1003"]

    globex = world.orders.get("/orders/", world.token("globex"))
    assert numbers(globex) == ["GLOBEX-1001", "GLOBEX-1002", "GLOBEX-1003"]


def test_approving_needs_orders_approve(world):
    viewer = world.token("acme")  # a viewer in acme: orders.read only
    assert token_parts(viewer)[1]["scope"] == "orders.read"
    refused = world.orders.post("/orders/ACME-1001/approve", viewer)
    assert refused.status == 403
    assert refused.headers["www-authenticate"] == (
        'Bearer realm="orders", error="insufficient_scope", '
        'error_description="the token lacks a scope this request needs", scope="orders.approve"'
    )

    approver = world.token("acme", oid=SECOND_OID)
    approved = world.orders.post("/orders/ACME-1002/approve", approver)
    assert approved.status == 200, approved.body
    assert approved.json()["status"] == "approved"
    assert approved.json()["approved_by"] == token_parts(approver)[1]["sub"]
    assert world.orders.post("/orders/ACME-1002/approve", approver).status == 409


def test_one_tenant_never_reaches_another_tenants_orders(world):
    globex_approver = world.token("globex")  # approves in globex, holds nothing in acme for this token
    assert world.orders.get("/orders/ACME-1001/", globex_approver).status == 404
    assert world.orders.post("/orders/ACME-1003/approve", globex_approver).status == 404
    assert world.orders.get("/orders/GLOBEX-1001/", globex_approver).status == 200

    acme = world.orders.get("/orders/ACME-1003/", world.token("acme"))
    assert acme.json()["status"] == "pending"  # untouched by globex's attempt
    assert world.orders.get("/orders/GLOBEX-1001/", world.token("acme")).status == 404


def test_no_token_is_a_401_challenge_without_an_error(world):
    answer = world.orders.get("/orders/")
    assert answer.status == 401
    assert answer.headers["www-authenticate"] == 'Bearer realm="orders"'


def _forge(world, *, header: dict | None = None, **claims) -> str:
    """Claims of a real token, changed, signed with the issuer's real active key."""
    real_header, real_claims = token_parts(world.token("acme"))
    signer = issuer_active_signer(world.database)
    full_header = {**real_header, **(header or {})}
    signing_input = f"{b64url_json(full_header)}.{b64url_json({**real_claims, **claims})}"
    return f"{signing_input}.{b64url(signer.sign(signing_input.encode()))}"


def _hs256_with_our_public_key(world) -> str:
    header, claims = token_parts(world.token("acme"))
    jwks = world.issuer.get("/.well-known/jwks.json").body  # the public key, as published
    signing_input = f"{b64url_json({**header, 'alg': 'HS256'})}.{b64url_json(claims)}"
    return f"{signing_input}.{b64url(hmac.new(jwks, signing_input.encode(), hashlib.sha256).digest())}"


def _alg_none(world) -> str:
    header, claims = token_parts(world.token("acme"))
    return f"{b64url_json({**header, 'alg': 'none'})}.{b64url_json(claims)}."


def _foreign_issuer(world, fake_issuer) -> str:
    # A real issuer elsewhere, its own keys and metadata, minting a token for our audience and tenant.
    return fake_issuer.mint(tenant="acme", scope="orders.read orders.approve")


@pytest.mark.parametrize(
    ("make", "description"),
    [
        (
            lambda world, _: world.token("acme", audience="api://billing"),
            "the token is meant for another audience",
        ),
        (lambda world, _: _forge(world, exp=int(time.time()) - 120), "the token has expired"),
        (
            lambda world, _: _hs256_with_our_public_key(world),
            "the token's signature algorithm is not accepted",
        ),
        (lambda world, _: _alg_none(world), "the token's signature algorithm is not accepted"),
        (
            lambda world, _: _forge(world, header={"typ": "JWT"}),
            "the token is not an access token (typ at+jwt)",
        ),
        (
            lambda world, issuer: _foreign_issuer(world, issuer),
            "the issuer publishes no key with the token's key id",
        ),
        (
            lambda world, _: _forge(world, iss="https://issuer.example.com"),
            "the token is from another issuer",
        ),
        (lambda world, _: _forge(world, tenant=None), "a required claim is missing or malformed"),
        (lambda world, _: "not-a-token", "the token is not a well-formed signed JWT"),
    ],
    ids=[
        "another-audience",
        "expired",
        "hs256-keyed-with-our-public-key",
        "alg-none",
        "typ-jwt",
        "foreign-issuer",
        "our-key-another-iss",
        "no-tenant",
        "garbage",
    ],
)
def test_refused_tokens_are_401_invalid_token(world, fake_issuer, make, description):
    token = make(world, fake_issuer)
    for path, method in (("/orders/", "get"), ("/orders/ACME-1001/approve", "post")):
        answer = getattr(world.orders, method)(path, token)
        assert answer.status == 401, (path, answer.body)
        assert answer.headers["www-authenticate"] == f'{INVALID}, error_description="{description}"'
