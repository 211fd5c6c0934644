"""POST /oauth2/token: the RFC 8693 exchange through the whole stack, with a fake Entra on loopback."""

from __future__ import annotations

import json
import logging
import time

import pytest
from django.test import override_settings
from joserfc import jwt
from joserfc.jwk import KeySet

from accounts.models import Principal
from authz.throttling import AddressRateThrottle, PrincipalRateThrottle
from keys.models import SigningKey
from keys.services import key_caches_clear
from tests import fake_entra as entra
from tests.support.caches import REDIS_DOWN
from tests.support.exchange import GROUP, OTHER_OID, days
from tests.support.jwks import CONTRACT_CLAIMS

pytestmark = pytest.mark.django_db


def verified(client, access_token: str) -> jwt.Token:
    """Verify with an independent JOSE library (joserfc) against our published JWKS."""
    key_set = KeySet.import_key_set(client.get("/.well-known/jwks.json").json())
    token = jwt.decode(access_token, key_set, algorithms=["ES256", "RS256", "PS256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": "https://issuer.test"},
        aud={"essential": True, "value": "api://orders"},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
        client_id={"essential": True},
    ).validate(token.claims)
    return token


def assert_refused(response, error: str, status: int = 400) -> dict:
    assert response.status_code == status, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error
    return body


# --- the happy path ------------------------------------------------------------------------------
def test_it_issues_an_rfc_9068_token_verified_by_an_independent_library(client, exchange, orders_policy):
    orders_policy.grant(orders_policy.editor, orders_policy.acme)
    response = exchange()
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"
    body = response.json()
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == "orders.export orders.read orders.write"

    token = verified(client, body["access_token"])
    assert token.header["typ"] == "at+jwt"
    assert token.header["alg"] == "ES256"
    assert token.header["kid"] == SigningKey.objects.get(phase="active").kid
    claims = token.claims
    principal = Principal.objects.get(provider=entra.TENANT_ID, subject=entra.OID)
    assert claims["sub"] == str(principal.id) != entra.OID
    assert claims["client_id"] == entra.CLIENT_ID
    assert claims["tenant"] == "acme"
    assert claims["roles"] == ["editor"]
    assert claims["scope"] == body["scope"]
    assert claims["exp"] - claims["iat"] == 600
    assert claims["nbf"] == claims["iat"]
    assert set(claims) == CONTRACT_CLAIMS


def test_it_accepts_a_json_body_and_the_jwt_token_type(exchange, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    response = exchange(json=True, subject_token_type="urn:ietf:params:oauth:token-type:jwt")
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == "orders.read"


def test_the_subject_is_stable_across_exchanges_and_tokens_are_unique(client, exchange, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    first = verified(client, exchange().json()["access_token"]).claims
    second = verified(client, exchange().json()["access_token"]).claims
    assert first["sub"] == second["sub"]
    assert first["jti"] != second["jti"]
    assert Principal.objects.count() == 1


def test_resource_is_a_synonym_of_audience(exchange, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    assert exchange(audience=None, resource="api://orders").status_code == 200


def test_an_app_only_token_is_exchanged_for_its_service_principal(exchange, fake_entra, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    response = exchange(fake_entra.mint(app_only=True))
    assert response.status_code == 200, response.content


# --- tenants -------------------------------------------------------------------------------------
def test_the_only_tenant_with_access_is_chosen(exchange, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.globex)
    # expired: no access there
    orders_policy.grant(orders_policy.editor, orders_policy.acme, valid_until=days(-1))
    assert exchange().json()["scope"] == "orders.read"


def test_several_tenants_need_the_tenant_parameter(client, exchange, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    orders_policy.grant(orders_policy.editor, orders_policy.globex)
    body = assert_refused(exchange(), "invalid_request")
    assert "tenant" in body["error_description"]
    response = exchange(tenant="globex")
    assert response.status_code == 200
    assert verified(client, response.json()["access_token"]).claims["tenant"] == "globex"


def test_an_unknown_tenant_and_a_tenant_without_grants_answer_alike(exchange, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    unknown = assert_refused(exchange(tenant="nosuch"), "invalid_request")
    no_grant = assert_refused(exchange(tenant="globex"), "invalid_request")
    assert unknown["error_description"].replace("nosuch", "X") == no_grant["error_description"].replace(
        "globex", "X"
    )


def test_a_suspended_tenant_gives_nothing(exchange, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    orders_policy.acme.status = "suspended"
    orders_policy.acme.save()
    assert "suspended" in assert_refused(exchange(tenant="acme"), "invalid_request")["error_description"]


def test_an_unknown_user_gets_no_token(exchange, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme, subject=OTHER_OID)
    assert_refused(exchange(), "invalid_request")


def test_expired_and_future_grants_give_nothing(exchange, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme, valid_until=days(-1))
    orders_policy.grant(orders_policy.editor, orders_policy.acme, valid_from=days(1))
    assert_refused(exchange(), "invalid_request")


def test_a_grant_change_takes_effect_on_the_very_next_exchange(exchange, orders_policy):
    grant = orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    assert exchange().json()["scope"] == "orders.read"
    grant.role = orders_policy.editor
    grant.save()
    assert exchange().json()["scope"] == "orders.export orders.read orders.write"
    grant.delete()
    assert_refused(exchange(), "invalid_request")


# --- audiences, features, scope ------------------------------------------------------------------
def test_an_unregistered_audience_is_an_invalid_target(exchange, orders_policy):
    orders_policy.grant(orders_policy.editor, orders_policy.acme)
    assert_refused(exchange(audience="api://nosuch"), "invalid_target")


def test_an_audience_that_gives_the_caller_nothing_is_an_invalid_target(exchange, orders_policy):
    orders_policy.grant(orders_policy.editor, orders_policy.acme)
    assert_refused(exchange(audience="api://empty"), "invalid_target")


def test_permissions_are_filtered_to_what_the_audience_registered(client, exchange, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)  # viewer holds orders.read and billing.read
    assert exchange().json()["scope"] == "orders.read"
    assert exchange(audience="api://billing").json()["scope"] == "billing.read"


def test_a_permission_needing_a_feature_applies_only_where_the_tenant_has_it(exchange, orders_policy):
    orders_policy.grant(orders_policy.editor, orders_policy.globex)  # globex has no "exports" feature
    assert exchange().json()["scope"] == "orders.read orders.write"


def test_scope_narrows_the_token_and_its_roles(client, exchange, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    orders_policy.grant(orders_policy.editor, orders_policy.acme)
    response = exchange(scope="orders.write")
    assert response.json()["scope"] == "orders.write"
    assert verified(client, response.json()["access_token"]).claims["roles"] == ["editor"]


def test_scope_beyond_the_effective_permissions_is_an_invalid_scope(exchange, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    body = assert_refused(exchange(scope="orders.read orders.write"), "invalid_scope")
    assert "orders.write" in body["error_description"]


def test_a_group_grant_applies_when_the_token_proves_membership(exchange, fake_entra, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme, subject=GROUP, kind="group")
    assert exchange(fake_entra.mint(groups=[GROUP])).status_code == 200
    assert_refused(exchange(fake_entra.mint(groups=[OTHER_OID])), "invalid_request")


def test_group_grants_do_not_apply_under_group_overage_and_the_log_says_so(
    exchange, fake_entra, orders_policy, caplog
):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme, subject=GROUP, kind="group")
    overage = fake_entra.mint(_claim_names={"groups": "src1"}, _claim_sources={"src1": {"endpoint": "x"}})
    with caplog.at_level(logging.INFO, logger="authz.decisions"):
        assert_refused(exchange(overage), "invalid_request")
    [record] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "authz.decisions"]
    assert any("group_overage" in note for note in record["notes"])


# --- the subject token ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "forge",
    [
        lambda e: e.mint(header={"alg": "none"}).rsplit(".", 1)[0] + ".",
        lambda e: e.mint(
            exp=int(time.time()) - 3600, iat=int(time.time()) - 7200, nbf=int(time.time()) - 7200
        ),
        lambda e: e.mint(aud="https://graph.microsoft.com"),
        lambda e: e.mint(tid=entra.UNTRUSTED_TENANT_ID),
        lambda e: e.mint(scp="User.Read"),
        lambda e: e.mint().rsplit(".", 1)[0] + ".",
        lambda e: "garbage.garbage.garbage",
    ],
    ids=[
        "alg-none",
        "expired",
        "graph-audience",
        "untrusted-directory",
        "missing-scope",
        "stripped",
        "garbage",
    ],
)
def test_a_bad_subject_token_is_an_invalid_request_that_never_echoes_it(
    exchange, fake_entra, orders_policy, forge
):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    token = forge(fake_entra)
    response = exchange(token)
    assert_refused(response, "invalid_request")
    assert token.encode() not in response.content
    assert token.split(".")[1].encode() not in response.content


def test_no_signing_key_is_a_503_in_the_rfc_shape(exchange, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    SigningKey.objects.all().delete()
    key_caches_clear()
    response = exchange()
    assert_refused(response, "temporarily_unavailable", status=503)
    assert response["Retry-After"]


# --- malformed requests --------------------------------------------------------------------------
def test_other_methods_get_405_in_the_rfc_shape(client, signing_key):
    for method in ("get", "put", "delete", "patch"):
        response = getattr(client, method)("/oauth2/token")
        assert_refused(response, "invalid_request", status=405)
        assert "POST" in response["Allow"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("{not json", "application/json"),
        ("[1, 2]", "application/json"),
        ('{"grant_type": ["a"]}', "application/json"),
        ('{"grant_type": 1}', "application/json"),
        ("\xff\xfe", "application/x-www-form-urlencoded"),
        ("<token/>", "application/xml"),
        ("grant_type=x", "text/plain"),
        ("a" * 70_000, "application/x-www-form-urlencoded"),
        ("grant_type=" + "a" * 70_000, "application/x-www-form-urlencoded"),
        ("[" * 5000, "application/json"),
        ('{"a":' * 3000 + "1" + "}" * 3000, "application/json"),
        ('{"grant_type": "x", "grant_type": "y"}', "application/json"),
    ],
    ids=[
        "bad-json",
        "json-list",
        "json-list-field",
        "json-number",
        "bad-bytes",
        "xml",
        "text",
        "huge",
        "huge-field",
        "deep-list",
        "deep-object",
        "json-repeated",
    ],
)
def test_a_malformed_body_is_a_clean_400(client, signing_key, body, content_type):
    response = client.post("/oauth2/token", body, content_type=content_type)
    assert_refused(response, "invalid_request")


def test_a_repeated_field_is_refused(client, signing_key, fake_entra):
    token = fake_entra.mint()
    body = f"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token={token}"
    body += f"&subject_token={token}&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt"
    response = client.post("/oauth2/token", body, content_type="application/x-www-form-urlencoded")
    assert_refused(response, "invalid_request")


def test_an_unknown_grant_type_is_unsupported(exchange):
    assert_refused(exchange(grant_type="client_credentials"), "unsupported_grant_type")


def test_delegation_is_not_supported_yet(exchange):
    assert_refused(
        exchange(actor_token="a.b.c", actor_token_type="urn:ietf:params:oauth:token-type:jwt"),
        "invalid_request",
    )


# --- throttling ----------------------------------------------------------------------------------
def test_too_many_requests_from_one_address_get_429_with_retry_after(exchange, orders_policy, monkeypatch):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    monkeypatch.setattr(AddressRateThrottle, "THROTTLE_RATES", {"exchange_address": "2/minute"})
    assert exchange().status_code == 200
    assert exchange().status_code == 200
    response = exchange()
    assert_refused(response, "invalid_request", status=429)
    assert 1 <= int(response["Retry-After"]) <= 60


def test_too_many_requests_for_one_principal_get_429(exchange, fake_entra, orders_policy, monkeypatch):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    orders_policy.grant(orders_policy.viewer, orders_policy.acme, subject=OTHER_OID)
    monkeypatch.setattr(PrincipalRateThrottle, "THROTTLE_RATES", {"exchange_principal": "1/minute"})
    assert exchange().status_code == 200
    assert_refused(exchange(), "invalid_request", status=429)
    # Another principal from the same address is not affected.
    assert exchange(fake_entra.mint(oid=OTHER_OID)).status_code == 200


def test_forged_tokens_do_not_spend_a_principals_quota(exchange, fake_entra, orders_policy, monkeypatch):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    monkeypatch.setattr(PrincipalRateThrottle, "THROTTLE_RATES", {"exchange_principal": "1/minute"})
    forged = fake_entra.mint(key=entra.rsa_key())
    for _ in range(3):
        assert_refused(exchange(forged), "invalid_request")
    assert exchange().status_code == 200


# --- the decision log ----------------------------------------------------------------------------
def test_each_exchange_logs_one_json_decision_without_the_token(exchange, fake_entra, orders_policy, caplog):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    token = fake_entra.mint()
    with caplog.at_level(logging.INFO, logger="authz.decisions"):
        issued = exchange(token).json()["access_token"]
        assert_refused(exchange(token, audience="api://nosuch"), "invalid_target")
        assert_refused(exchange(token, grant_type="password"), "unsupported_grant_type")
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "authz.decisions"]
    assert [(r["outcome"], r["reason"]) for r in records] == [
        ("issued", "ok"),
        ("refused", "audience.unknown"),
        ("refused", "request.grant_type"),
    ]
    assert records[0]["tenant"] == "acme"
    assert records[0]["scope"] == "orders.read"
    assert records[0]["jti"] and records[0]["principal"] and records[0]["client_id"] == entra.CLIENT_ID
    assert records[1]["audience"] is None  # an unregistered audience is not echoed into the log
    text = caplog.text
    assert token not in text and issued not in text
    assert token.split(".")[2] not in text and issued.split(".")[2] not in text


# --- cost ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("grants", [10, 200])
def test_the_warm_path_costs_at_most_four_queries_whatever_the_number_of_grants(
    exchange, orders_policy, grants, django_assert_max_num_queries
):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    for n in range(grants):
        orders_policy.grant(
            orders_policy.editor, orders_policy.globex, subject=f"{n:08x}-0000-4000-8000-000000000000"
        )
    assert exchange().status_code == 200  # warms the principal, JWKS and signer caches
    with django_assert_max_num_queries(4):
        assert exchange().status_code == 200


# --- over a real socket --------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_a_downstream_service_verifies_our_token_over_http(live_server, fake_entra, orders_policy):
    import urllib.parse
    import urllib.request

    from keys.services import signing_key_rotate

    key_caches_clear()
    signing_key_rotate()
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    form = urllib.parse.urlencode(
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": fake_entra.mint(),
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "audience": "api://orders",
        }
    ).encode()
    with urllib.request.urlopen(f"{live_server.url}/oauth2/token", form, timeout=10) as answer:  # noqa: S310
        issued = json.load(answer)
    with urllib.request.urlopen(f"{live_server.url}/.well-known/jwks.json", timeout=10) as answer:  # noqa: S310
        key_set = KeySet.import_key_set(json.load(answer))
    token = jwt.decode(issued["access_token"], key_set, algorithms=["ES256"])
    assert token.claims["scope"] == "orders.read"
    key_caches_clear()


def test_an_exchange_records_when_the_principal_was_last_seen(exchange, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    assert exchange().status_code == 200
    principal = Principal.objects.get(provider=entra.TENANT_ID, subject=entra.OID)
    assert principal.last_seen_at is not None


def test_exchanges_and_the_jwks_keep_working_when_the_redis_cache_is_down(client, exchange, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    with override_settings(CACHES=REDIS_DOWN):
        assert client.get("/.well-known/jwks.json").status_code == 200
        assert exchange().status_code == 200


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "image/png"])
def test_every_answer_is_json_whatever_the_client_accepts(client, exchange, orders_policy, accept):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    assert exchange(HTTP_ACCEPT=accept).status_code == 200
    assert_refused(exchange(HTTP_ACCEPT=accept, audience="api://nosuch"), "invalid_target")
    response = client.post(
        "/oauth2/token?format=xml", "x=1", content_type="application/x-www-form-urlencoded"
    )
    assert_refused(response, "invalid_request")
