"""Tokens of every kind of provider, validated over real HTTP against the fakes: what each kind accepts."""

from __future__ import annotations

import pytest

from accounts.identity import TokenRejected, token_validate
from accounts.models import ProviderKeySet
from accounts.providers import provider_names, providers_configured
from tests import fake_entra as entra
from tests import fake_providers as fakes

pytestmark = pytest.mark.django_db


def rejected(token: str) -> TokenRejected:
    with pytest.raises(TokenRejected) as caught:
        token_validate(token=token)
    assert "eyJ" not in caught.value.description
    return caught.value


# --- each kind, accepted -----------------------------------------------------------------------


def test_a_generic_provider_s_es256_token_with_scp_as_a_list_is_its_subject(fake_providers):
    identity = token_validate(token=fake_providers.oidc.mint())

    assert (identity.provider, identity.subject) == ("okta", fakes.OIDC_SUBJECT)
    assert identity.client_id == fakes.OIDC_CLIENT_ID
    assert identity.scopes == {fakes.SCOPE, "openid"}
    assert identity.app_only is False
    assert (identity.tid, identity.oid, identity.groups_overage) == ("", "", False)
    assert identity.issuer == fake_providers.oidc.issuer


def test_a_generic_provider_s_scope_string_is_read_as_rfc_9068_writes_it(fake_providers):
    identity = token_validate(token=fake_providers.oidc.mint(scp=None, scope=f"{fakes.SCOPE} profile"))

    assert identity.scopes == {fakes.SCOPE, "profile"}


def test_a_generic_provider_s_token_carrying_both_scope_and_scp_is_refused(fake_providers):
    assert rejected(fake_providers.oidc.mint(scope=fakes.SCOPE)).check == "claims_invalid"


def test_an_external_id_token_is_the_tenant_s_object_id_under_the_provider_s_name(fake_providers):
    identity = token_validate(token=fake_providers.external.mint())

    assert (identity.provider, identity.subject) == ("customers", fakes.USER_OID)
    assert (identity.tid, identity.oid) == (fakes.EXTERNAL_TENANT_ID, fakes.USER_OID)
    assert identity.issuer == f"{fake_providers.external.origin}/{fakes.EXTERNAL_TENANT_ID}/v2.0"


def test_a_b2c_token_is_checked_with_the_keys_of_the_user_flow_it_names(fake_providers):
    identity = token_validate(token=fake_providers.b2c.mint())

    assert (identity.provider, identity.subject) == ("consumers", fakes.USER_OID)
    assert (identity.tid, identity.oid) == ("", "")
    # The metadata of the flow as configured (tfp says B2C_1_signupsignin), and of no other flow.
    assert fake_providers.b2c.metadata_fetches(fakes.SIGN_IN_FLOW_CONFIGURED) == 1
    assert fake_providers.b2c.total_fetches == 2  # its metadata and its JWKS


def test_an_older_b2c_token_naming_its_flow_in_acr_is_accepted(fake_providers):
    identity = token_validate(token=fake_providers.b2c.mint(tfp=None, acr=fakes.SIGN_IN_FLOW.upper()))

    assert identity.subject == fakes.USER_OID


def test_a_b2c_token_naming_two_different_flows_is_refused(fake_providers):
    assert rejected(fake_providers.b2c.mint(acr=fakes.RESET_FLOW)).check == "claims_invalid"
    assert fake_providers.total_fetches == 0


def test_a_b2c_subject_may_be_the_object_id_when_configured(fake_providers, trust):
    trust(fake_providers.b2c.entry("consumers", subject_claim="oid"))

    identity = token_validate(token=fake_providers.b2c.mint(sub="another-pairwise-subject"))

    assert identity.subject == fakes.USER_OID


def test_a_ps256_provider_verifies_rsa_pss_signatures(fake_providers, trust):
    trust(fake_providers.external.entry("customers", algorithms=["PS256"]))

    identity = token_validate(token=fake_providers.external.mint(algorithm="PS256"))

    assert identity.provider == "customers"
    assert rejected(fake_providers.external.mint(algorithm="RS256")).check == "algorithm"


def test_entra_directories_still_validate_as_before_beside_declared_providers(fake_providers, fake_entra):
    identity = token_validate(token=fake_entra.mint())

    assert (identity.provider, identity.subject) == (entra.TENANT_ID, entra.OID)
    assert (identity.tid, identity.oid) == (entra.TENANT_ID, entra.OID)


def test_the_trusted_providers_are_the_entra_directories_then_the_declared_ones(fake_providers):
    assert provider_names() == [entra.TENANT_ID, entra.SECOND_TENANT_ID, "okta", "customers", "consumers"]
    external = next(p for p in providers_configured() if p.name == "customers")
    assert external.metadata_url_of() == (
        f"{fake_providers.external.origin}/{fakes.EXTERNAL_TENANT_ID}/v2.0/.well-known/openid-configuration"
    )


# --- the claims of each kind ---------------------------------------------------------------------


def test_a_generic_token_without_nbf_is_accepted_but_a_b2c_one_is_not(fake_providers):
    assert token_validate(token=fake_providers.oidc.mint()).subject == fakes.OIDC_SUBJECT  # no nbf
    assert rejected(fake_providers.b2c.mint(nbf=None)).check == "claims_missing"


def test_a_generic_audience_list_is_accepted_only_when_every_member_is_ours(fake_providers):
    assert token_validate(token=fake_providers.oidc.mint(aud=[fakes.AUDIENCE])).provider == "okta"
    assert rejected(fake_providers.oidc.mint(aud=[fakes.AUDIENCE, "api://another"])).check == "audience"
    assert rejected(fake_providers.b2c.mint(aud=[fakes.B2C_CLIENT_ID])).check == "audience"


def test_a_generic_token_without_scopes_is_an_application_token_needing_a_role(fake_providers, trust):
    trust(fake_providers.oidc.entry("okta", required_roles=["Tokens.Exchange"]))

    identity = token_validate(token=fake_providers.oidc.mint(scp=None, roles=["Tokens.Exchange"]))

    assert identity.app_only is True
    assert rejected(fake_providers.oidc.mint(scp=None, roles=["Other"])).check == "role"


def test_a_generic_token_lacking_the_required_scope_is_refused(fake_providers):
    assert rejected(fake_providers.oidc.mint(scp=["openid"])).check == "scope"


@pytest.mark.parametrize(
    ("claims", "check"),
    [
        ({"sub": None}, "claims_missing"),
        ({"sub": ""}, "claims_invalid"),
        ({"sub": " padded "}, "claims_invalid"),
        ({"sub": "x" * 256}, "claims_invalid"),
        ({"sub": 12}, "claims_invalid"),
        ({"cid": None}, "claims_missing"),
        ({"cid": ""}, "claims_invalid"),
    ],
)
def test_a_generic_token_s_subject_and_client_are_checked(fake_providers, claims, check):
    assert rejected(fake_providers.oidc.mint(**claims)).check == check


def test_a_generic_provider_s_subject_claim_may_be_another_immutable_id(fake_providers, trust):
    trust(fake_providers.oidc.entry("okta", subject_claim="uid"))

    assert token_validate(token=fake_providers.oidc.mint(sub="ada@example.com")).subject == fakes.OIDC_SUBJECT


def test_a_generic_provider_s_groups_come_from_its_configured_claim(fake_providers, trust):
    trust(
        fake_providers.oidc.entry("okta", groups_claim="groups"), fake_providers.external.entry("customers")
    )

    identity = token_validate(
        token=fake_providers.oidc.mint(groups=["Everyone", "Acme Admins", "", "x" * 300])
    )

    assert identity.groups == {"Everyone", "Acme Admins"}
    assert (identity.groups_ignored, identity.groups_overage) == (2, False)
    assert token_validate(token=fake_providers.external.mint(groups=["Acme Admins"])).groups_ignored == 1


def test_an_entra_kind_configured_without_groups_reads_none(fake_providers, trust):
    trust({**fake_providers.external.entry("customers"), "groups_claim": None})
    group = "7d4c1a2b-3e5f-4a6b-8c7d-9e0f1a2b3c4d"

    identity = token_validate(token=fake_providers.external.mint(groups=[group]))

    assert (identity.groups, identity.groups_overage, identity.groups_ignored) == (frozenset(), False, 0)


def test_an_external_id_token_from_another_tenant_is_refused(fake_providers):
    other = "dddddddd-dddd-4ddd-8ddd-dddddddddddd"

    assert rejected(fake_providers.external.mint(tid=other)).check == "issuer"
    assert fake_providers.total_fetches == 0


# --- keys: discovery, cache and store ------------------------------------------------------------


def test_a_provider_s_keys_are_fetched_once_and_stored_under_its_discovery_url(fake_providers):
    for _ in range(3):
        token_validate(token=fake_providers.oidc.mint())

    assert fake_providers.oidc.metadata_fetches() == 1
    row = ProviderKeySet.objects.get(tid="okta")
    assert row.authority == f"{fake_providers.oidc.issuer}/.well-known/openid-configuration"
    assert [key["kty"] for key in row.jwks["keys"]] == ["EC"]
    assert "d" not in row.jwks["keys"][0]


def test_each_b2c_user_flow_has_its_own_stored_keys(fake_providers, trust):
    trust(fake_providers.b2c.entry("consumers", user_flows=[fakes.SIGN_IN_FLOW, fakes.RESET_FLOW]))

    token_validate(token=fake_providers.b2c.mint())
    token_validate(token=fake_providers.b2c.mint(tfp=fakes.RESET_FLOW))

    authorities = set(ProviderKeySet.objects.filter(tid="consumers").values_list("authority", flat=True))
    assert {authority.split("/")[4] for authority in authorities} == {fakes.SIGN_IN_FLOW, fakes.RESET_FLOW}


def test_a_provider_s_key_rollover_is_followed_with_one_refetch(fake_providers):
    token_validate(token=fake_providers.oidc.mint())
    fake_providers.oidc.keys = [("kid-rolled", fake_providers.oidc.new_key())]

    assert token_validate(token=fake_providers.oidc.mint()).provider == "okta"
    assert fake_providers.oidc.metadata_fetches() == 2


def test_a_provider_that_is_down_with_nothing_known_is_an_outage(fake_providers):
    from accounts.identity import JwksUnavailable

    fake_providers.external.mode = fakes.DOWN

    with pytest.raises(JwksUnavailable):
        token_validate(token=fake_providers.external.mint())
