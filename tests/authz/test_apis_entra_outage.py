"""POST /oauth2/token while Entra is unreachable: the stored keys, or 503 temporarily_unavailable.

The exchange goes through the whole Django stack; the keys come from the fake Entra over real HTTP
or, when it is down, from the database, as for a worker started during the outage.
"""

from __future__ import annotations

import json
import logging

import pytest

from accounts.entra import jwks_cache
from tests import fake_entra as entra

pytestmark = pytest.mark.django_db


def assert_unavailable(response) -> None:
    """503 temporarily_unavailable in the RFC 6749 shape, with Retry-After and no caching."""
    assert response.status_code == 503, response.content
    assert response["Cache-Control"] == "no-store"
    assert int(response["Retry-After"]) >= 1
    assert response.json() == {
        "error": "temporarily_unavailable",
        "error_description": "the identity provider's keys are unavailable; retry later",
    }


def test_with_no_keys_and_entra_down_the_exchange_answers_503_not_400(
    exchange, fake_entra, orders_policy, caplog
):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    fake_entra.mode = entra.DOWN

    with caplog.at_level(logging.INFO, logger="authz.decisions"):
        response = exchange()

    assert_unavailable(response)
    [record] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "authz.decisions"]
    assert record["reason"] == "entra.unavailable"


def test_the_retry_after_says_when_the_keys_will_be_fetched_again(exchange, fake_entra, orders_policy):
    fake_entra.mode = entra.DOWN

    assert exchange()["Retry-After"] == str(jwks_cache.retry_after)
    assert fake_entra.total_fetches == 1
    assert_unavailable(exchange())  # answered at once, without asking Entra again
    assert fake_entra.total_fetches == 1


def test_a_restarted_worker_exchanges_with_the_stored_keys_while_entra_is_down(
    exchange, fake_entra, orders_policy
):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    assert exchange().status_code == 200
    jwks_cache.clear()  # the worker restarts: nothing in memory
    fake_entra.mode = entra.DOWN

    response = exchange()

    assert response.status_code == 200, response.content
    assert fake_entra.jwks_fetches() == 1


def test_a_forged_token_while_entra_is_down_with_stored_keys_is_still_refused(
    exchange, fake_entra, orders_policy
):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    assert exchange().status_code == 200
    jwks_cache.clear()
    fake_entra.mode = entra.DOWN

    kid = fake_entra.directory(entra.TENANT_ID).signing[0]
    forged = fake_entra.mint(key=entra.rsa_key(), header={"kid": kid})
    response = exchange(forged)

    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_request"
