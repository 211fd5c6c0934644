"""Schemathesis against /api/schema/: no 5xx, RFC-shaped errors, responses true to the document.

The exchange gets 600 derandomized examples (deadline off), positive and negative, with form and
JSON bodies; a hook swaps in real tokens from the fake Entra (valid, app-only, expired, for another
audience, from an untrusted directory, alg none) and a registered audience, so the fuzzer reaches
past parsing into validation, policy and signing instead of stopping at "not a JWT".
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from authz.models import Audience, Grant, Permission, Role, Tenant
from authz.throttling import AddressRateThrottle, PrincipalRateThrottle
from keys.services import key_caches_clear, signing_key_rotate
from tests import fake_entra as entra

SEED = 20_260_501
EXCHANGE_EXAMPLES = 600
OTHER_EXAMPLES = 40
TOKEN_PATH = "/oauth2/token"


@pytest.fixture
def issuer_api(db, fake_entra, monkeypatch):
    """The whole WSGI app with a signing key, one grant, real tokens and generous rate limits."""
    cache.clear()
    key_caches_clear()
    signing_key_rotate()
    read = Permission.objects.create(code="orders.read")
    Audience.objects.create(identifier="api://orders", name="Orders").permissions.set([read])
    viewer = Role.objects.create(slug="viewer", name="Viewer")
    viewer.permissions.set([read])
    acme = Tenant.objects.create(slug="acme", name="Acme")
    Grant.objects.create(
        tenant=acme, role=viewer, subject_type="user", provider=entra.TENANT_ID, subject_id=entra.OID
    )
    # 600 examples in well under a minute would trip the production rates (1200/min per address).
    monkeypatch.setattr(AddressRateThrottle, "THROTTLE_RATES", {"exchange_address": "100000/minute"})
    monkeypatch.setattr(PrincipalRateThrottle, "THROTTLE_RATES", {"exchange_principal": "100000/minute"})

    tokens = [
        fake_entra.mint(),
        fake_entra.mint(app_only=True),
        fake_entra.mint(exp=1_000_000_000, iat=999_990_000, nbf=999_990_000),
        fake_entra.mint(aud="https://graph.microsoft.com"),
        fake_entra.mint(entra.UNTRUSTED_TENANT_ID),
        _unsigned(fake_entra.mint()),
    ]
    # As Django's test client does: the end of a request must not close the connection that holds
    # the test's transaction (on PostgreSQL it would, its autocommit being off).
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    try:
        schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
        cache.clear()
        yield schema, tokens
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)
        cache.clear()


def _unsigned(token: str) -> str:
    _header, payload, _signature = token.split(".")
    return f"{entra.b64url_json({'alg': 'none', 'typ': 'JWT'})}.{payload}."


def _with(body: dict, *, token: str | None, audience: str | None, tidy: bool) -> dict:
    """The generated body with a real token, a registered audience, and without optional noise."""
    body = dict(body)
    if tidy:
        for name in ("resource", "scope", "tenant"):
            body.pop(name, None)
    if token is not None:
        body["subject_token"] = token
    if audience is not None:
        body["audience"] = audience
    return body


def _form_flattens(case) -> bool:
    """A form body cannot carry an object: schemathesis spreads its members into fields of their own
    (``{"requested_token_type": {"": null}}`` is sent as ``=null``), so the field the case calls
    invalid is never sent and the check would blame the server for a request it never got."""
    return (
        case.media_type == "application/x-www-form-urlencoded"
        and isinstance(case.body, dict)
        and any(isinstance(value, dict) for value in case.body.values())
    )


def rfc_6749_error_shape(ctx, response, case) -> bool | None:
    """Every 4xx/5xx of the token endpoint is {"error", "error_description"} only, never cached."""
    if case.operation.path != TOKEN_PATH or response.status_code < 400:
        return None
    assert response.headers.get("cache-control") == ["no-store"], response.headers
    body = json.loads(response.content)
    assert isinstance(body, dict) and set(body) == {"error", "error_description"}, body
    assert all(isinstance(value, str) and value for value in body.values()), body
    assert "eyJ" not in body["error_description"], "the description echoes a token"
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
SETTINGS = {
    "derandomize": True,
    "deadline": None,
    "database": None,
    "suppress_health_check": list(HealthCheck),
}


def cases(operation) -> st.SearchStrategy:
    """Positive and negative cases of one operation, as schemathesis generates them."""
    return operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)


def test_the_token_endpoint_never_fails_and_answers_every_error_in_the_rfc_shape(issuer_api):
    schema, tokens = issuer_api
    operation = schema[TOKEN_PATH]["POST"]
    calls = Counter()

    @given(
        case=cases(operation),
        # Weighted towards the valid token and the registered audience (sampled_from is uniform).
        token=st.sampled_from([None, tokens[0], tokens[0], *tokens]),
        audience=st.sampled_from([None, "api://orders", "api://orders"]),
        tidy=st.booleans(),
    )
    @settings(max_examples=EXCHANGE_EXAMPLES, **SETTINGS)
    @seed(SEED)
    def exchange(case, token, audience, tidy):
        if isinstance(case.body, dict):
            case.body = _with(case.body, token=token, audience=audience, tidy=tidy)
        checks = (
            CHECKS if not _form_flattens(case) else [c for c in CHECKS if c is not negative_data_rejection]
        )
        response = case.call_and_validate(checks=checks, additional_checks=[rfc_6749_error_shape])
        calls[response.status_code] += 1

    exchange()
    # The fuzzer went past parsing: tokens were issued and refused for reasons beyond the body.
    assert calls[200] > 0 and calls[400] > 0, calls
    assert sum(calls.values()) >= EXCHANGE_EXAMPLES


def test_the_well_known_endpoints_and_probes_answer_as_documented(issuer_api):
    schema, _tokens = issuer_api
    operations = [op.ok() for op in schema.get_all_operations() if op.ok().path != TOKEN_PATH]
    assert {op.path for op in operations} >= {"/.well-known/jwks.json", "/.well-known/openid-configuration"}

    for operation in operations:

        @given(case=cases(operation))
        @settings(max_examples=OTHER_EXAMPLES, **SETTINGS)
        @seed(SEED)
        def probe(case):
            case.call_and_validate(checks=CHECKS)

        probe()
