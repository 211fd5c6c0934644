"""The identity portal: portal users and principals, through the test client as a superuser."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.urls import reverse

from accounts.models import Principal

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """The signed-in superusers' passwords are not under test; hashing them slowly only costs time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def url(model: str, view: str, *args: Any) -> str:
    return reverse(f"admin:accounts_{model}_{view}", args=args)


def guid() -> str:
    return str(uuid.uuid4())


def errors_of(response: Any) -> str:
    assert response.status_code == 200, "the form was accepted"
    return " ".join(message for errors in response.context["errors"] for message in errors)


DIRECTORY = "11111111-1111-4111-8111-111111111111"
OTHER_DIRECTORY = "22222222-2222-4222-8222-222222222222"
DECLARED = "acme-okta"
# A generic OpenID provider, as IDENTITY_PROVIDERS_FILE declares it (the ``trust`` fixture).
OKTA_ENTRY = {
    "name": DECLARED,
    "kind": "oidc",
    "issuer": "https://acme.okta.example/oauth2/default",
    "audiences": ["api://token-issuer"],
    "algorithms": ["ES256"],
    "required_scopes": ["access_as_user"],
}


@pytest.fixture(autouse=True)
def trusted_providers(settings: Any) -> None:
    """Two Entra directories are trusted; ``acme-okta`` stands for a declared provider's name."""
    settings.ENTRA_TENANT_ID = [DIRECTORY, OTHER_DIRECTORY]
    settings.ENTRA_DEV_DIRECTORY = False


@pytest.fixture
def principal() -> Principal:
    return Principal.objects.create(provider=DIRECTORY, subject=guid())


@pytest.mark.parametrize("model", ["user", "principal"])
def test_the_changelist_and_add_pages_render(admin_client: Any, principal: Principal, model: str) -> None:
    assert admin_client.get(url(model, "changelist")).status_code == 200
    assert admin_client.get(url(model, "add")).status_code == 200


def test_the_changelist_names_each_principals_provider(admin_client: Any, principal: Principal) -> None:
    page = admin_client.get(url("principal", "changelist")).content.decode()

    assert "identity provider" in page
    assert f'data-copy="{DIRECTORY}"' in page


def test_a_principal_page_renders_with_its_identity_read_only(
    admin_client: Any, principal: Principal
) -> None:
    response = admin_client.get(url("principal", "change", principal.pk))

    assert response.status_code == 200
    assert principal.subject in response.content.decode()
    assert principal.provider in response.content.decode()
    assert not response.context["adminform"].form.fields


def test_a_principal_identity_cannot_be_changed(admin_client: Any, principal: Principal) -> None:
    original = (principal.provider, principal.subject)

    admin_client.post(
        url("principal", "change", principal.pk), {"provider": OTHER_DIRECTORY, "subject": guid()}
    )

    principal.refresh_from_db()
    assert (principal.provider, principal.subject) == original


def test_a_principal_cannot_be_deleted(admin_client: Any, principal: Principal) -> None:
    response = admin_client.post(url("principal", "delete", principal.pk), {"post": "yes"})

    assert response.status_code == 403
    assert Principal.objects.filter(pk=principal.pk).exists()


def test_it_adds_a_principal_of_a_directory_with_its_object_id_in_lower_case(admin_client: Any) -> None:
    oid = guid()

    response = admin_client.post(
        url("principal", "add"), {"provider": DIRECTORY, "subject": f" {oid.upper()} "}
    )

    assert response.status_code == 302
    assert Principal.objects.filter(provider=DIRECTORY, subject=oid).exists()


def test_with_one_trusted_provider_the_add_form_chooses_it(admin_client: Any, settings: Any) -> None:
    settings.ENTRA_TENANT_ID = [DIRECTORY]

    form = admin_client.get(url("principal", "add")).context["adminform"].form

    assert form["provider"].value() == DIRECTORY


def test_it_rejects_an_object_id_that_is_not_a_guid_for_a_directory(admin_client: Any) -> None:
    response = admin_client.post(
        url("principal", "add"), {"provider": DIRECTORY, "subject": "alice@example.com"}
    )

    assert "object ids and group ids are GUIDs" in errors_of(response)
    assert not Principal.objects.exists()


def test_it_rejects_a_provider_that_is_not_trusted(admin_client: Any) -> None:
    response = admin_client.post(url("principal", "add"), {"provider": DECLARED, "subject": "00u1"})

    assert "Select a valid choice" in errors_of(response)
    assert not Principal.objects.exists()


def test_a_declared_providers_subject_is_kept_as_written(admin_client: Any, trust: Any) -> None:
    trust(OKTA_ENTRY)

    added = admin_client.post(url("principal", "add"), {"provider": DECLARED, "subject": "00uAbC|x"})
    refused = admin_client.post(url("principal", "add"), {"provider": DECLARED, "subject": "a\tb"})

    assert added.status_code == 302
    assert Principal.objects.filter(provider=DECLARED, subject="00uAbC|x").exists()
    assert "the id contains control characters" in errors_of(refused)


def test_it_rejects_a_second_principal_for_the_same_identity(admin_client: Any, principal: Principal) -> None:
    response = admin_client.post(
        url("principal", "add"), {"provider": principal.provider, "subject": principal.subject.upper()}
    )

    assert "already exists" in errors_of(response)
    assert Principal.objects.count() == 1


def test_the_same_object_id_in_another_directory_is_another_principal(
    admin_client: Any, principal: Principal
) -> None:
    response = admin_client.post(
        url("principal", "add"), {"provider": OTHER_DIRECTORY, "subject": principal.subject}
    )

    assert response.status_code == 302
    assert Principal.objects.filter(subject=principal.subject).count() == 2


@pytest.mark.parametrize("field", ["id", "subject", "provider"])
def test_search_finds_a_principal_by_any_of_its_ids(
    admin_client: Any, principal: Principal, field: str
) -> None:
    Principal.objects.create(provider=OTHER_DIRECTORY, subject=guid())

    response = admin_client.get(url("principal", "changelist"), {"q": str(getattr(principal, field)).upper()})

    assert list(response.context["cl"].result_list) == [principal]


def test_search_finds_a_principal_by_part_of_its_subject_or_provider_name(
    admin_client: Any, principal: Principal
) -> None:
    Principal.objects.create(provider=OTHER_DIRECTORY, subject=guid())
    declared = Principal.objects.create(provider=DECLARED, subject="00uAbC")

    by_subject = admin_client.get(url("principal", "changelist"), {"q": principal.subject[:13]})
    by_provider = admin_client.get(url("principal", "changelist"), {"q": "okta"})

    assert list(by_subject.context["cl"].result_list) == [principal]
    assert list(by_provider.context["cl"].result_list) == [declared]
