"""POST /oauth2/token against the red-team findings: what a token names and what a refusal reveals.

Roles only for what the token carries, one answer for a caller without access whatever the audience,
group values that are not group ids, and app-only tokens recognised by Microsoft's rule.
"""

from __future__ import annotations

import json
import logging

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from authz.models import Grant, Permission, Role
from tests import fake_entra as entra
from tests.support.exchange import GROUP, OTHER_OID, days

pytestmark = pytest.mark.django_db


def claims_of(client, response) -> dict:
    assert response.status_code == 200, response.content
    key_set = KeySet.import_key_set(client.get("/.well-known/jwks.json").json())
    return jwt.decode(response.json()["access_token"], key_set, algorithms=["ES256", "RS256", "PS256"]).claims


def refusal(response) -> tuple[int, dict]:
    assert response.status_code >= 400, response.content
    return response.status_code, response.json()


def decisions(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "authz.decisions"]


# --- 2. roles only for what the token carries ----------------------------------------------------
def test_the_token_names_no_role_that_gives_nothing_for_its_audience(client, exchange, orders_policy):
    biller = Role.objects.create(slug="biller", name="Biller")
    biller.permissions.set([Permission.objects.get(code="billing.read")])
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    orders_policy.grant(biller, orders_policy.acme)

    assert claims_of(client, exchange())["roles"] == ["viewer"]
    assert claims_of(client, exchange(audience="api://billing"))["roles"] == ["biller", "viewer"]


def test_the_token_names_no_role_whose_permissions_need_a_feature_the_tenant_lacks(
    client, exchange, orders_policy
):
    exporter = Role.objects.create(slug="exporter", name="Exporter")
    exporter.permissions.set([Permission.objects.get(code="orders.export")])
    orders_policy.grant(orders_policy.viewer, orders_policy.globex)  # globex has no "exports" feature
    orders_policy.grant(exporter, orders_policy.globex)

    claims = claims_of(client, exchange())

    assert claims["roles"] == ["viewer"]
    assert claims["scope"] == "orders.read"


def test_a_role_that_gives_nothing_for_the_audience_is_still_access_to_the_tenant(exchange, orders_policy):
    orders_policy.grant(orders_policy.editor, orders_policy.acme)

    status, body = refusal(exchange(audience="api://empty"))

    assert (status, body["error"]) == (400, "invalid_target")


# --- 3. no audience enumeration for a caller without access ---------------------------------------
@pytest.mark.parametrize(
    "setup",
    [
        lambda policy: None,
        lambda policy: policy.grant(policy.viewer, policy.acme, subject=OTHER_OID),
        lambda policy: policy.grant(policy.viewer, policy.acme, valid_until=days(-1)),
    ],
    ids=["no-grant-anywhere", "grants-for-others-only", "only-an-expired-grant"],
)
@pytest.mark.parametrize("tenant", [None, "acme", "nosuch"])
def test_a_caller_without_access_gets_one_answer_whatever_the_audience(
    exchange, orders_policy, setup, tenant
):
    setup(orders_policy)

    registered = refusal(exchange(tenant=tenant))
    unregistered = refusal(exchange(tenant=tenant, audience="api://nosuch"))
    scoped = refusal(exchange(tenant=tenant, audience="api://nosuch", scope="orders.read"))

    assert registered == unregistered == scoped
    assert registered[1]["error"] == "invalid_request"


def test_a_caller_without_access_to_a_suspended_tenant_gets_one_answer_whatever_the_audience(
    exchange, orders_policy
):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    orders_policy.acme.status = "suspended"
    orders_policy.acme.save()

    assert refusal(exchange(tenant="acme")) == refusal(exchange(tenant="acme", audience="api://nosuch"))


def test_the_decision_log_keeps_the_real_reason_without_the_audience(exchange, orders_policy, caplog):
    with caplog.at_level(logging.INFO, logger="authz.decisions"):
        refusal(exchange(audience="api://nosuch-secret-name"))

    [record] = decisions(caplog)
    assert record["reason"] == "tenant.none"
    assert "audience not registered" in record["notes"]
    assert record["audience"] is None
    assert "nosuch-secret-name" not in caplog.text


def test_a_caller_with_access_still_learns_that_an_audience_is_not_registered(exchange, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)

    status, body = refusal(exchange(audience="api://nosuch"))

    assert (status, body["error"]) == (400, "invalid_target")
    assert "not registered" in body["error_description"]


# --- 4. group values that are not group ids --------------------------------------------------------
def test_group_values_that_are_not_group_ids_match_nothing_and_the_log_says_so(
    exchange, fake_entra, orders_policy, caplog
):
    # A row written around validation, named like a group's display name.
    Grant.objects.bulk_create(
        [
            Grant(
                tenant=orders_policy.acme,
                role=orders_policy.viewer,
                provider=entra.TENANT_ID,
                subject_type="group",
                subject_id="Acme Admins",
            )
        ]
    )
    token = fake_entra.mint(groups=["Acme Admins", "7D4C1A2B-3E5F-4A6B-8C7D-9E0F1A2B3C4D", "x" * 300])

    with caplog.at_level(logging.INFO, logger="authz.decisions"):
        status, body = refusal(exchange(token))

    assert (status, body["error"]) == (400, "invalid_request")
    [record] = decisions(caplog)
    assert "groups: 3 values are not group object ids and were ignored" in record["notes"]
    assert "Acme Admins" not in caplog.text


def test_group_ids_in_a_token_with_display_names_still_apply(client, exchange, fake_entra, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme, subject=GROUP, kind="group")

    claims = claims_of(client, exchange(fake_entra.mint(groups=["Acme Admins", GROUP])))

    assert claims["roles"] == ["viewer"]


# --- 5. app-only tokens by Microsoft's rule --------------------------------------------------------
def test_a_token_without_scp_that_is_not_proven_app_only_is_refused(exchange, fake_entra, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    token = fake_entra.mint(scp=None, roles=[entra.ROLE])  # no idtyp, and sub is not the oid

    status, body = refusal(exchange(token))

    assert (status, body["error"]) == (400, "invalid_request")
    assert "neither delegated scopes (scp) nor" in body["error_description"]


def test_a_token_without_scp_and_idtyp_is_app_only_when_sub_is_its_oid(exchange, fake_entra, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    token = fake_entra.mint(scp=None, roles=[entra.ROLE], sub=entra.OID)

    assert exchange(token).status_code == 200
