"""One identity, one provider: the same id from another trusted provider gets nothing of the first's.

The fake Entra serves two trusted directories; a directory is a provider named by its id. Grants are
made for users and groups of the first; tokens of the second carry the very same object and group
ids. The attack is run through the exchange over a real socket; the finer cases through the client.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from accounts.models import Principal
from authz.services import principal_throttle_key
from keys.services import key_caches_clear, signing_key_rotate
from tests import fake_entra as entra
from tests.support.exchange import GROUP, OTHER_OID
from tests.support.jwks import served_claims

FIRST, SECOND = entra.TENANT_ID, entra.SECOND_TENANT_ID


def post_over_http(url: str, token: str, **fields: str) -> tuple[int, dict]:
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": token,
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "audience": "api://orders",
        **fields,
    }
    try:
        with urllib.request.urlopen(  # noqa: S310 (the live server on loopback)
            f"{url}/oauth2/token", urllib.parse.urlencode(form).encode(), timeout=10
        ) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as refused:
        return refused.code, json.load(refused)


def claims_of(client, response) -> dict:
    assert response.status_code == 200, response.content
    return served_claims(client, response.json()["access_token"])


@pytest.mark.django_db(transaction=True)
def test_a_token_of_another_directory_with_the_same_ids_gets_none_of_the_grants_over_http(
    live_server, fake_entra, orders_policy
):
    key_caches_clear()
    signing_key_rotate()
    orders_policy.grant(orders_policy.editor, orders_policy.acme, provider=FIRST)
    orders_policy.grant(
        orders_policy.viewer, orders_policy.globex, subject=GROUP, kind="group", provider=FIRST
    )

    own = post_over_http(live_server.url, fake_entra.mint(FIRST), tenant="acme")
    same_oid = post_over_http(live_server.url, fake_entra.mint(SECOND))
    same_oid_named = post_over_http(live_server.url, fake_entra.mint(SECOND), tenant="acme")
    same_group = post_over_http(
        live_server.url, fake_entra.mint(SECOND, oid=OTHER_OID, groups=[GROUP]), tenant="globex"
    )

    assert own[0] == 200 and own[1]["scope"] == "orders.export orders.read orders.write"
    assert same_oid == (400, {"error": "invalid_request", "error_description": "no access to any tenant"})
    # The very answer a tenant that does not exist gets: nothing tells the caller a grant exists.
    assert same_oid_named == (
        400,
        {"error": "invalid_request", "error_description": "no access to tenant 'acme'"},
    )
    assert same_group == (
        400,
        {"error": "invalid_request", "error_description": "no access to tenant 'globex'"},
    )
    key_caches_clear()


def test_each_directory_gets_only_its_own_grants_and_its_own_sub(client, exchange, fake_entra, orders_policy):
    orders_policy.grant(orders_policy.editor, orders_policy.acme, provider=FIRST)
    orders_policy.grant(orders_policy.viewer, orders_policy.acme, provider=SECOND)

    first = claims_of(client, exchange(fake_entra.mint(FIRST)))
    second = claims_of(client, exchange(fake_entra.mint(SECOND)))

    assert first["roles"] == ["editor"] and second["roles"] == ["viewer"]
    assert first["sub"] != second["sub"]
    assert {str(p.id) for p in Principal.objects.filter(subject=entra.OID)} == {first["sub"], second["sub"]}
    assert Principal.objects.get(provider=SECOND, subject=entra.OID).id.hex == second["sub"].replace("-", "")


def test_a_group_grant_applies_only_to_tokens_of_its_provider(client, exchange, fake_entra, orders_policy):
    orders_policy.grant(
        orders_policy.viewer, orders_policy.acme, subject=GROUP, kind="group", provider=SECOND
    )

    first = exchange(fake_entra.mint(FIRST, groups=[GROUP]))
    second = exchange(fake_entra.mint(SECOND, oid=OTHER_OID, groups=[GROUP]))

    assert first.status_code == 400 and first.json()["error_description"] == "no access to any tenant"
    assert claims_of(client, second)["roles"] == ["viewer"]


def test_under_overage_graph_is_asked_only_about_the_groups_of_the_tokens_provider(
    exchange, fake_entra, fake_graph, orders_policy
):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme, subject=GROUP, kind="group", provider=FIRST)
    fake_graph.member(SECOND, entra.OID, GROUP)
    overage = {"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"endpoint": "https://graph"}}}

    refused = exchange(fake_entra.mint(SECOND, **overage))

    assert refused.status_code == 400
    # Directory 1's group ids are neither shown to Graph for directory 2 nor applied.
    assert fake_graph.checks == []


def test_the_principal_rate_limit_counts_each_provider_apart_and_keeps_subjects_out_of_the_cache():
    first = principal_throttle_key(provider=FIRST, subject=entra.OID)
    second = principal_throttle_key(provider=SECOND, subject=entra.OID)
    email = principal_throttle_key(provider="acme-okta", subject="ada@example.com")

    assert first != second and first == principal_throttle_key(provider=FIRST, subject=entra.OID)
    assert entra.OID not in first and "ada" not in email
    assert all(len(key) == 40 and key.isalnum() for key in (first, second, email))
