"""issuer_verify.fastapi: the claims dependency and the scope and role dependencies, over real HTTP.

No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations at run time,
and they name a dependency local to the fixture.
"""

from typing import Annotated

import pytest
from fastapi import Depends, FastAPI

from issuer_verify import Claims, TokenVerifier
from issuer_verify.fastapi import TokenAuth
from tests.support.asgi import asgi_served, get, post
from tests.support.fake_issuer import AUDIENCE, DOWN


@pytest.fixture
def api(fake_issuer):
    auth = TokenAuth(TokenVerifier(issuer=fake_issuer.url, audience=AUDIENCE), realm="orders")
    app = FastAPI()

    @app.get("/me")
    async def me(claims: Annotated[Claims, Depends(auth)]) -> dict:
        return {"subject": claims.subject, "tenant": claims.tenant}

    @app.get("/orders")
    async def orders(claims: Annotated[Claims, Depends(auth.require_scopes("orders.read"))]) -> dict:
        return {"tenant": claims.tenant}

    @app.post("/orders/1/approve")
    async def approve(claims: Annotated[Claims, Depends(auth.require_scopes("orders.approve"))]) -> dict:
        return {"approved": True}

    @app.get("/audit")
    async def audit(claims: Annotated[Claims, Depends(auth.require_roles("auditor"))]) -> dict:
        return {"audited": True}

    with asgi_served(app) as url:
        yield url


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_the_claims_dependency_gives_the_verified_claims(api, fake_issuer):
    answer = get(f"{api}/me", authorization=bearer(fake_issuer.mint(sub="p-7", tenant="globex")))
    assert answer.status == 200
    assert answer.json() == {"subject": "p-7", "tenant": "globex"}


def test_no_token_is_a_401_with_a_bearer_challenge(api):
    answer = get(f"{api}/me")
    assert answer.status == 401
    assert answer.headers["www-authenticate"] == 'Bearer realm="orders"'


def test_a_refused_token_is_a_401_invalid_token(api, fake_issuer):
    answer = get(f"{api}/orders", authorization=bearer(fake_issuer.mint(aud="api://billing")))
    assert answer.status == 401
    assert answer.headers["www-authenticate"] == (
        'Bearer realm="orders", error="invalid_token", '
        'error_description="the token is meant for another audience"'
    )


def test_a_missing_scope_is_a_403_insufficient_scope(api, fake_issuer):
    token = fake_issuer.mint(scope="orders.read")
    assert get(f"{api}/orders", authorization=bearer(token)).status == 200
    request_answer = post(f"{api}/orders/1/approve", authorization=bearer(token))
    assert request_answer.status == 403
    assert request_answer.headers["www-authenticate"] == (
        'Bearer realm="orders", error="insufficient_scope", '
        'error_description="the token lacks a scope this request needs", scope="orders.approve"'
    )


def test_a_missing_role_is_a_plain_403(api, fake_issuer):
    answer = get(f"{api}/audit", authorization=bearer(fake_issuer.mint(roles=["viewer"])))
    assert answer.status == 403 and "www-authenticate" not in answer.headers
    assert get(f"{api}/audit", authorization=bearer(fake_issuer.mint(roles=["auditor"]))).status == 200


def test_unavailable_keys_are_a_503_with_retry_after(api, fake_issuer):
    fake_issuer.mode = DOWN
    answer = get(f"{api}/me", authorization=bearer(fake_issuer.mint()))
    assert answer.status == 503
    assert answer.headers["retry-after"] == "5"


def test_dependencies_refuse_what_is_not_a_scope_or_role(fake_issuer):
    auth = TokenAuth(TokenVerifier(issuer=fake_issuer.url, audience=AUDIENCE))
    assert auth.realm == AUDIENCE
    with pytest.raises(ValueError):
        auth.require_scopes()
    with pytest.raises(ValueError):
        auth.require_scopes('a"b')
    with pytest.raises(ValueError):
        auth.require_roles()
    with pytest.raises(ValueError):
        TokenAuth(auth.verifier, realm='a"b')
