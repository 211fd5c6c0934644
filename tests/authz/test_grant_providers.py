"""Grants name their identity provider: the model's rules, the portal's forms and list, the system check."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import IntegrityError

from accounts.provider_config import identity_providers_parse
from authz.checks import untrusted_provider_grants_check
from authz.models import Grant, Role, Tenant
from tests import fake_entra as entra
from tests.support.portal import errors_of, grant_form, guid, tenant_change_form, url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

FIRST, SECOND = entra.TENANT_ID, entra.SECOND_TENANT_ID
OKTA = "acme-okta"


@pytest.fixture
def okta_trusted(settings: Any) -> None:
    """A generic OpenID provider declared next to the two directories, as IDENTITY_PROVIDERS_FILE does."""
    entry = {
        "name": OKTA,
        "kind": "oidc",
        "issuer": "https://acme.okta.example/oauth2/default",
        "audiences": ["api://token-issuer"],
        "algorithms": ["ES256"],
        "required_scopes": ["access_as_user"],
    }
    settings.IDENTITY_PROVIDERS = identity_providers_parse(
        {"providers": [entry]}, entra_tenant_ids=settings.ENTRA_TENANT_ID
    )


def grant(tenant: Tenant, role: Role, *, provider: str = FIRST, subject_id: str | None = None) -> Grant:
    return Grant.objects.create(
        tenant=tenant, role=role, subject_type="user", provider=provider, subject_id=subject_id or guid()
    )


# --- the model ---------------------------------------------------------------------------------


def messages(grant: Grant) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        grant.clean()
    return caught.value.message_dict


def test_a_grant_names_a_trusted_provider(acme: Tenant, viewer: Role) -> None:
    untrusted = Grant(tenant=acme, role=viewer, subject_type="user", provider="google", subject_id=guid())
    unnamed = Grant(tenant=acme, role=viewer, subject_type="user", subject_id=guid())

    assert messages(untrusted)["provider"] == [
        f"'google' is not a trusted identity provider (trusted: {FIRST}, {SECOND})."
    ]
    assert messages(unnamed)["provider"] == ["Choose the identity provider of the user or group."]


def test_the_database_refuses_a_grant_without_a_provider(acme: Tenant, viewer: Role) -> None:
    with pytest.raises(IntegrityError):
        Grant.objects.create(tenant=acme, role=viewer, subject_type="user", subject_id=guid())


def test_a_directorys_ids_are_guids_and_a_declared_providers_are_its_own(
    acme: Tenant, viewer: Role, okta_trusted: None
) -> None:
    entra_grant = Grant(tenant=acme, role=viewer, subject_type="user", provider=FIRST, subject_id="00uAbC")
    okta_grant = Grant(tenant=acme, role=viewer, subject_type="group", provider=OKTA, subject_id="Finance")

    assert "object ids and group ids are GUIDs" in messages(entra_grant)["subject_id"][0]
    okta_grant.clean()
    assert okta_grant.subject_id == "Finance"


def test_the_same_subject_may_hold_the_same_role_once_per_provider(acme: Tenant, viewer: Role) -> None:
    subject = guid()
    grant(acme, viewer, subject_id=subject)
    grant(acme, viewer, provider=SECOND, subject_id=subject)

    with pytest.raises(IntegrityError):
        grant(acme, viewer, subject_id=subject)


# --- the portal ----------------------------------------------------------------------------------


def test_the_add_form_offers_the_trusted_providers_and_chooses_the_only_one(
    admin_client: Any, settings: Any
) -> None:
    several = admin_client.get(url("grant", "add")).context["adminform"].form
    settings.ENTRA_TENANT_ID = [FIRST]
    one = admin_client.get(url("grant", "add")).context["adminform"].form

    assert [value for value, _label in several.fields["provider"].choices] == ["", FIRST, SECOND]
    assert several["provider"].value() in (None, "")
    assert one["provider"].value() == FIRST


def test_a_grant_is_given_to_a_user_of_the_chosen_provider(
    admin_client: Any, acme: Tenant, viewer: Role
) -> None:
    subject = guid()

    response = admin_client.post(
        url("grant", "add"), grant_form(tenant=acme, role=viewer, subject_id=subject, provider=SECOND)
    )

    assert response.status_code == 302
    assert Grant.objects.get().provider == SECOND


def test_the_form_refuses_a_provider_that_is_not_trusted(
    admin_client: Any, acme: Tenant, viewer: Role
) -> None:
    response = admin_client.post(
        url("grant", "add"), grant_form(tenant=acme, role=viewer, subject_id=guid(), provider="google")
    )

    assert "Select a valid choice" in errors_of(response)
    assert not Grant.objects.exists()


def test_a_grant_of_a_declared_provider_keeps_its_subject_as_written(
    admin_client: Any, acme: Tenant, viewer: Role, okta_trusted: None
) -> None:
    response = admin_client.post(
        url("grant", "add"), grant_form(tenant=acme, role=viewer, subject_id="00uAbC|7", provider=OKTA)
    )

    assert response.status_code == 302
    assert Grant.objects.filter(provider=OKTA, subject_id="00uAbC|7").exists()


def test_the_tenant_page_grants_a_role_to_a_user_of_the_chosen_provider(
    admin_client: Any, acme: Tenant, viewer: Role
) -> None:
    data = tenant_change_form(admin_client, acme)
    prefix = next(key for key in data if key.endswith("-TOTAL_FORMS") and "grants-2" in key).split("-TOTAL")[
        0
    ]
    data.update(
        grant_form(tenant=acme, role=viewer, subject_id=guid(), provider=SECOND, prefix=f"{prefix}-0-")
    )
    data[f"{prefix}-TOTAL_FORMS"] = "1"

    response = admin_client.post(url("tenant", "change", acme.pk), data)

    assert response.status_code == 302, errors_of(response)
    assert Grant.objects.get().provider == SECOND


def test_the_list_names_each_grants_provider_and_marks_one_no_longer_trusted(
    admin_client: Any, acme: Tenant, viewer: Role
) -> None:
    grant(acme, viewer)
    grant(acme, viewer, provider="retired-idp")

    page = admin_client.get(url("grant", "changelist")).content.decode()

    assert f'data-copy="{FIRST}"' in page
    assert page.count('class="provider-untrusted"') == 1


def test_the_list_filters_by_provider_and_finds_those_no_longer_trusted(
    admin_client: Any, acme: Tenant, viewer: Role
) -> None:
    first, second, retired = (
        grant(acme, viewer),
        grant(acme, viewer, provider=SECOND),
        grant(acme, viewer, provider="retired-idp"),
    )

    def listed(**query: str) -> set[int]:
        return {g.pk for g in admin_client.get(url("grant", "changelist"), query).context["cl"].result_list}

    assert listed(provider=SECOND) == {second.pk}
    assert listed(provider="untrusted") == {retired.pk}
    assert listed() == {first.pk, second.pk, retired.pk}


def test_search_finds_grants_by_a_whole_directory_id_or_part_of_a_providers_name(
    admin_client: Any, acme: Tenant, viewer: Role, okta_trusted: None
) -> None:
    first, second = grant(acme, viewer), grant(acme, viewer, provider=SECOND)
    okta = grant(acme, viewer, provider=OKTA, subject_id="00uAbC")

    def found(term: str) -> set[int]:
        return {
            g.pk for g in admin_client.get(url("grant", "changelist"), {"q": term}).context["cl"].result_list
        }

    assert found(SECOND.upper()) == {second.pk}
    assert found(first.subject_id) == {first.pk}
    assert found("okta") == {okta.pk}


# --- the system check ------------------------------------------------------------------------------


def test_the_check_names_the_providers_no_longer_trusted_whose_grants_give_nothing(
    acme: Tenant, viewer: Role
) -> None:
    grant(acme, viewer)
    for _ in range(2):
        grant(acme, viewer, provider="retired-idp")
    grant(acme, viewer, provider="33333333-3333-4333-8333-333333333333")

    [warning] = untrusted_provider_grants_check(databases=["default"])

    assert warning.id == "authz.W001"
    assert warning.msg == (
        "Grants are bound to identity providers that are no longer trusted, and give nothing: "
        "'retired-idp': 2 grant(s); '33333333-3333-4333-8333-333333333333': 1 grant(s)."
    )
    assert "import_policy --prune" in warning.hint


def test_the_check_is_quiet_when_every_grant_is_trusted_and_without_the_database(
    acme: Tenant, viewer: Role
) -> None:
    grant(acme, viewer)
    grant(acme, viewer, provider=SECOND)

    assert untrusted_provider_grants_check(databases=["default"]) == []
    grant(acme, viewer, provider="retired-idp")
    assert untrusted_provider_grants_check(databases=None) == []


def test_manage_py_check_with_the_database_reports_it(acme: Tenant, viewer: Role) -> None:
    grant(acme, viewer, provider="retired-idp")

    with pytest.raises(SystemCheckError, match=r"authz\.W001"):
        call_command("check", "--database", "default", "--fail-level", "WARNING")
