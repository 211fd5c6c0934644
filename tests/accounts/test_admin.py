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


@pytest.fixture
def principal() -> Principal:
    return Principal.objects.create(tid=guid(), oid=guid())


@pytest.mark.parametrize("model", ["user", "principal"])
def test_the_changelist_and_add_pages_render(admin_client: Any, principal: Principal, model: str) -> None:
    assert admin_client.get(url(model, "changelist")).status_code == 200
    assert admin_client.get(url(model, "add")).status_code == 200


def test_a_principal_page_renders_with_its_identity_read_only(
    admin_client: Any, principal: Principal
) -> None:
    response = admin_client.get(url("principal", "change", principal.pk))

    assert response.status_code == 200
    assert principal.oid in response.content.decode()
    assert not response.context["adminform"].form.fields


def test_a_principal_identity_cannot_be_changed(admin_client: Any, principal: Principal) -> None:
    original = (principal.tid, principal.oid)

    admin_client.post(url("principal", "change", principal.pk), {"tid": guid(), "oid": guid()})

    principal.refresh_from_db()
    assert (principal.tid, principal.oid) == original


def test_a_principal_cannot_be_deleted(admin_client: Any, principal: Principal) -> None:
    response = admin_client.post(url("principal", "delete", principal.pk), {"post": "yes"})

    assert response.status_code == 403
    assert Principal.objects.filter(pk=principal.pk).exists()


def test_it_adds_a_principal_with_its_ids_in_lower_case(admin_client: Any) -> None:
    tid, oid = guid(), guid()

    response = admin_client.post(url("principal", "add"), {"tid": tid.upper(), "oid": f" {oid.upper()} "})

    assert response.status_code == 302
    assert Principal.objects.filter(tid=tid, oid=oid).exists()


@pytest.mark.parametrize(("field", "label"), [("tid", "directory (tenant) id"), ("oid", "object id")])
def test_it_rejects_ids_that_are_not_guids(admin_client: Any, field: str, label: str) -> None:
    data = {"tid": guid(), "oid": guid(), field: "alice@example.com"}

    response = admin_client.post(url("principal", "add"), data)

    assert f"Enter the {label} as a GUID" in errors_of(response)
    assert not Principal.objects.exists()


def test_it_rejects_a_second_principal_for_the_same_identity(admin_client: Any, principal: Principal) -> None:
    response = admin_client.post(
        url("principal", "add"), {"tid": principal.tid.upper(), "oid": principal.oid.upper()}
    )

    assert "already exists" in errors_of(response)
    assert Principal.objects.count() == 1


@pytest.mark.parametrize("field", ["id", "oid", "tid"])
def test_search_finds_a_principal_by_any_of_its_ids(
    admin_client: Any, principal: Principal, field: str
) -> None:
    Principal.objects.create(tid=guid(), oid=guid())

    response = admin_client.get(url("principal", "changelist"), {"q": str(getattr(principal, field)).upper()})

    assert list(response.context["cl"].result_list) == [principal]


def test_search_finds_a_principal_by_part_of_its_object_id(admin_client: Any, principal: Principal) -> None:
    Principal.objects.create(tid=guid(), oid=guid())

    response = admin_client.get(url("principal", "changelist"), {"q": principal.oid[:13]})

    assert list(response.context["cl"].result_list) == [principal]
