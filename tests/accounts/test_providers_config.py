"""IDENTITY_PROVIDERS_FILE: each kind's defaults, and every bad entry stopping start-up with its name."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from accounts.identity_provider import IdentityProvider
from accounts.provider_config import identity_providers_load, identity_providers_parse
from tests.support.settings import load_settings

TENANT = "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
ENTRA_TENANT = "11111111-1111-1111-1111-111111111111"
FLOW = "B2C_1_signupsignin"


def parsed(*entries: dict[str, Any], **options: Any) -> tuple[IdentityProvider, ...]:
    return identity_providers_parse({"providers": list(entries)}, **options)


def refusal(*entries: object, **options: Any) -> str:
    with pytest.raises(ImproperlyConfigured) as caught:
        identity_providers_parse({"providers": list(entries)}, **options)
    message = str(caught.value)
    assert message.startswith("IDENTITY_PROVIDERS_FILE: ")
    return message


def external(**fields: Any) -> dict[str, Any]:
    entry = {
        "name": "customers",
        "kind": "entra-external-id",
        "tenant_id": TENANT,
        "audiences": ["api://issuer"],
        "required_scopes": ["access_as_user"],
    }
    return {name: value for name, value in {**entry, **fields}.items() if value is not None}


def b2c(**fields: Any) -> dict[str, Any]:
    entry = {
        "name": "consumers",
        "kind": "azure-ad-b2c",
        "tenant_id": "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb",
        "tenant_name": "fabrikamb2c",
        "user_flows": [FLOW],
        "audiences": ["b1b1b1b1-0000-4000-8000-000000000001"],
        "required_scopes": ["tokens.exchange"],
    }
    return {name: value for name, value in {**entry, **fields}.items() if value is not None}


def oidc(**fields: Any) -> dict[str, Any]:
    entry = {
        "name": "okta",
        "kind": "oidc",
        "issuer": "https://acme.okta.com/oauth2/default",
        "audiences": ["api://issuer"],
        "required_scopes": ["tokens.exchange"],
    }
    return {name: value for name, value in {**entry, **fields}.items() if value is not None}


# --- each kind's defaults ------------------------------------------------------------------------


def test_external_id_defaults_to_the_tenant_s_ciamlogin_authority():
    (provider,) = parsed(external(tenant_id=TENANT.upper()))

    assert provider.tenant_id == TENANT
    assert provider.issuer == f"https://{TENANT}.ciamlogin.com/{TENANT}/v2.0"
    assert (
        provider.metadata_url_of()
        == f"https://{TENANT}.ciamlogin.com/{TENANT}/v2.0/.well-known/openid-configuration"
    )
    assert (provider.subject_claim, provider.groups_claim, provider.algorithms) == (
        "oid",
        "groups",
        ("RS256",),
    )


def test_b2c_has_one_metadata_document_per_user_flow_and_the_tenant_s_issuer():
    (provider,) = parsed(b2c())

    assert provider.metadata_url_of(FLOW) == (
        f"https://fabrikamb2c.b2clogin.com/fabrikamb2c.onmicrosoft.com/{FLOW}/v2.0/.well-known/openid-configuration"
    )
    assert provider.issuer == "https://fabrikamb2c.b2clogin.com/bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb/v2.0/"
    assert provider.jwks_origin == "https://fabrikamb2c.b2clogin.com"
    assert (provider.subject_claim, provider.groups_claim) == ("sub", None)
    assert provider.user_flow_accepted("b2c_1_SIGNUPSIGNIN") == FLOW
    assert provider.user_flow_accepted("B2C_1_other") is None


def test_a_generic_provider_s_metadata_and_keys_sit_under_its_issuer_unless_told_otherwise():
    (default, google) = parsed(
        oidc(issuer="https://acme.okta.com/oauth2/default/"),
        oidc(name="google", issuer="https://accounts.google.com", jwks_origin="https://www.googleapis.com"),
    )

    assert default.issuer == "https://acme.okta.com/oauth2/default/"  # exact, as its tokens write it
    assert default.metadata_url == "https://acme.okta.com/oauth2/default/.well-known/openid-configuration"
    assert default.jwks_origin == "https://acme.okta.com"
    assert google.jwks_origin == "https://www.googleapis.com"


def test_a_declared_entra_directory_has_a_name_of_its_own_and_optionally_v1_tokens():
    (provider,) = parsed({**external(kind="entra", allow_v1=True), "name": "partners"})

    assert provider.issuers == (
        f"https://login.microsoftonline.com/{TENANT}/v2.0",
        f"https://sts.windows.net/{TENANT}/",
    )


def test_loopback_authorities_may_be_plain_http():
    (provider,) = parsed(external(authority="http://127.0.0.1:8080/"))

    assert provider.issuer == f"http://127.0.0.1:8080/{TENANT}/v2.0"


def test_no_file_declares_no_provider():
    assert identity_providers_load(None) == ()


# --- bad entries, each named ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ("okta", "providers[0]: entry: expected an object"),
        (oidc(name="Okta"), "providers[0] ('Okta'): name:"),
        (oidc(name=TENANT), "name: expected a slug"),
        (oidc(name=None), "providers[0]: name: expected a non-empty string"),
        (oidc(kind="saml"), "('okta'): kind: expected one of entra, entra-external-id, azure-ad-b2c, oidc"),
        (oidc(tenant_id=TENANT), "('okta'): tenant_id: not a field of kind oidc"),
        (oidc(audience="api://issuer"), "('okta'): audience: not a field of kind oidc"),
        (oidc(audiences=[]), "('okta'): audiences: expected at least one"),
        (oidc(audiences="api://issuer"), "('okta'): audiences: expected a list of strings"),
        (oidc(required_scopes=None), "('okta'): required_scopes: a provider needs required_scopes or"),
        (oidc(required_scopes=["a b"]), "required_scopes: expected a list of strings without spaces"),
        (oidc(algorithms=["none"]), "algorithms: none is refused: never none or HMAC"),
        (oidc(algorithms=["HS256"]), "algorithms: HS256 is refused: never none or HMAC"),
        (oidc(algorithms=["RS512"]), "algorithms: 'RS512' is not one of RS256, PS256, ES256"),
        (oidc(algorithms=["RS256", "RS256"]), "algorithms: lists a value twice"),
        (oidc(subject_claim="email"), "subject_claim: email can change or pass to someone else"),
        (oidc(issuer=None), "('okta'): issuer: expected a non-empty string"),
        (oidc(issuer="http://okta.example.com"), "issuer: plain http is allowed only for a loopback host"),
        (oidc(issuer="https://okta.example.com?x=1"), "issuer: must not have a query or fragment"),
        (oidc(issuer="okta.example.com"), "issuer: expected an absolute https URL"),
        (oidc(metadata_url="https://x.example/" + "a" * 250), "metadata_url: longer than 255 characters"),
        (
            oidc(jwks_origin="https://keys.example.com/keys"),
            "jwks_origin: expected scheme, host and port only",
        ),
        (external(tenant_id="customers"), "('customers'): tenant_id: expected the directory (tenant) id"),
        (
            external(subject_claim="upn"),
            "subject_claim: a entra-external-id provider's subject is oid or sub",
        ),
        (external(groups_claim="roles"), "groups_claim: a entra-external-id provider's groups are in"),
        (
            external(authority="https://login.example.com/tenant"),
            "authority: expected scheme, host and port only",
        ),
        (external(kind="entra", subject_claim="sub"), "subject_claim: a entra provider's subject is oid"),
        (external(kind="entra", allow_v1="yes"), "allow_v1: expected true or false"),
        (external(kind="entra", issuer="https://x.example"), "issuer: not a field of kind entra"),
        (b2c(user_flows=FLOW), "('consumers'): user_flows: expected a list of strings"),
        (b2c(user_flows=[]), "user_flows: expected at least one"),
        (b2c(user_flows=["B2C_1/../x"]), "user_flows: expected user flow (policy) names"),
        (b2c(user_flows=[FLOW, FLOW.upper()]), "user_flows: lists a user flow twice"),
        (b2c(tenant_name="Fabrikam B2C"), "tenant_name: expected the tenant's name"),
        (b2c(tenant_name=None), "tenant_name: expected a non-empty string"),
        (
            b2c(tenant_name="f" * 63, user_flows=["f" * 100]),
            "authority: the discovery URL it makes is longer than 255 characters",
        ),
    ],
    ids=lambda value: None if isinstance(value, dict) else str(value)[:40],
)
def test_a_bad_entry_stops_start_up_naming_the_entry_and_the_field(entry, named):
    assert named in refusal(entry)


def test_two_providers_may_not_share_a_name_or_an_issuer():
    assert "providers[1] ('okta'): name: 'okta' names two providers" in refusal(oidc(), oidc())
    assert (
        "providers[1] ('other'): issuer: 'https://acme.okta.com/oauth2/default' is already the issuer of "
        in (refusal(oidc(), oidc(name="other")))
    )


def test_a_directory_already_trusted_through_entra_tenant_id_is_not_declared_again():
    message = refusal(external(kind="entra", tenant_id=ENTRA_TENANT), entra_tenant_ids=[ENTRA_TENANT])

    assert "tenant_id: that directory is already trusted through ENTRA_TENANT_ID" in message


def test_an_issuer_of_an_entra_tenant_id_directory_is_not_declared_again():
    issuer = f"https://login.microsoftonline.com/{ENTRA_TENANT}/v2.0"

    assert "is already the issuer of a directory of ENTRA_TENANT_ID" in refusal(
        oidc(issuer=issuer), entra_issuers=[issuer]
    )


@pytest.mark.parametrize("document", [[], {"providers": {}}, {"providers": [], "extra": 1}])
def test_the_document_is_an_object_with_a_providers_list(document):
    with pytest.raises(ImproperlyConfigured, match="IDENTITY_PROVIDERS_FILE: "):
        identity_providers_parse(document)


def test_the_file_must_exist_and_be_strict_json(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="IDENTITY_PROVIDERS_FILE: cannot read"):
        identity_providers_load(str(tmp_path / "missing.json"))
    duplicated = tmp_path / "providers.json"
    duplicated.write_text('{"providers": [], "providers": [{"name": "okta"}]}')
    with pytest.raises(ImproperlyConfigured, match="duplicate key 'providers'"):
        identity_providers_load(str(duplicated))


# --- at start-up ---------------------------------------------------------------------------------


def test_start_up_stops_on_a_bad_file_and_names_the_entry(tmp_path):
    path = tmp_path / "providers.json"
    path.write_text(json.dumps({"providers": [oidc(algorithms=["HS256"])]}))

    result = load_settings(IDENTITY_PROVIDERS_FILE=str(path))

    assert result.returncode != 0
    assert (
        "ImproperlyConfigured: IDENTITY_PROVIDERS_FILE: providers[0] ('okta'): algorithms:" in result.stderr
    )


def test_production_may_trust_declared_providers_without_an_entra_directory(tmp_path):
    path = tmp_path / "providers.json"
    path.write_text(json.dumps({"providers": [oidc(), external(), b2c()]}))
    entra = {"ENTRA_TENANT_ID": None, "ENTRA_AUDIENCE": None, "ENTRA_REQUIRED_SCOPES": None}

    assert load_settings(IDENTITY_PROVIDERS_FILE=str(path), **entra).returncode == 0
    refused = load_settings(**entra)
    assert "ENTRA_TENANT_ID: required when DEBUG=false, unless IDENTITY_PROVIDERS_FILE" in refused.stderr
