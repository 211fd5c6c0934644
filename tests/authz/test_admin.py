"""The authorization portal, driven through Django's test client as a signed-in superuser.

Every page of each model, the catalogue's forms (roles, permissions, audiences) and the history.
Grants are in test_admin_grants.py, the tenant page in test_admin_tenants.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from authz.models import Audience, Grant, Permission, Role, Tenant
from tests import fake_entra as entra
from tests.support.portal import errors_of, grant_form, guid, role_form, tenant_change_form, url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


# --- every page renders --------------------------------------------------------------------


@pytest.fixture
def one_of_each(acme: Tenant, viewer: Role, admin_user: Any) -> dict[str, Any]:
    audience = Audience.objects.create(identifier="api://orders", name="Orders")
    audience.permissions.set(viewer.permissions.all())
    grant = Grant.objects.create(
        tenant=acme,
        role=viewer,
        provider=entra.TENANT_ID,
        subject_type="user",
        subject_id=guid(),
        granted_by=admin_user,
    )
    return {
        "tenant": acme,
        "permission": viewer.permissions.get(),
        "audience": audience,
        "role": viewer,
        "grant": grant,
    }


@pytest.mark.parametrize("model", ["tenant", "permission", "audience", "role", "grant"])
def test_every_page_of_each_model_renders(admin_client: Any, one_of_each: dict, model: str) -> None:
    pk = one_of_each[model].pk
    for page in (
        url(model, "changelist"),
        url(model, "add"),
        url(model, "change", pk),
        url(model, "history", pk),
    ):
        assert admin_client.get(page).status_code == 200, page


def test_the_changelist_shows_the_rows(admin_client: Any, one_of_each: dict) -> None:
    response = admin_client.get(url("grant", "changelist"))

    assert one_of_each["grant"].subject_id in response.content.decode()


# --- roles, permissions, audiences ---------------------------------------------------------


def test_it_rejects_a_tenant_role_that_reuses_a_global_roles_slug(
    admin_client: Any, acme: Tenant, viewer: Role
) -> None:
    response = admin_client.post(url("role", "add"), role_form(slug="viewer", tenant=acme))

    assert "A global role 'viewer' exists; a tenant's role may not reuse its slug" in errors_of(response)
    assert Role.objects.count() == 1


def test_it_rejects_a_global_role_whose_slug_a_tenant_already_uses(
    admin_client: Any, beta_auditor: Role
) -> None:
    response = admin_client.post(url("role", "add"), role_form(slug="auditor"))

    assert "Tenant(s) beta already have a role 'auditor'" in errors_of(response)
    assert Role.objects.count() == 1


def test_it_rejects_a_second_global_role_with_the_same_slug(admin_client: Any, viewer: Role) -> None:
    response = admin_client.post(url("role", "add"), role_form(slug="viewer"))

    assert "A global role 'viewer' already exists." in errors_of(response)
    assert Role.objects.count() == 1


def test_two_tenants_may_each_own_a_role_with_the_same_slug(
    admin_client: Any, acme: Tenant, beta_auditor: Role
) -> None:
    response = admin_client.post(url("role", "add"), role_form(slug="auditor", tenant=acme))

    assert response.status_code == 302
    assert Role.objects.filter(slug="auditor").count() == 2


def test_it_refuses_to_make_a_role_tenant_owned_while_it_is_granted_elsewhere(
    admin_client: Any, acme: Tenant, beta: Tenant, viewer: Role
) -> None:
    Grant.objects.create(
        tenant=beta, role=viewer, provider=entra.TENANT_ID, subject_type="user", subject_id=guid()
    )

    response = admin_client.post(url("role", "change", viewer.pk), role_form(slug="viewer", tenant=acme))

    assert "This role is granted in other tenants (beta)" in errors_of(response)
    viewer.refresh_from_db()
    assert viewer.tenant is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"code": "Orders Read"}, "Use lower-case letters, digits and . _ : - (no spaces)"),
        ({"code": "orders.read", "requires_feature": "big exports"}, "Use lower-case letters"),
    ],
)
def test_it_rejects_a_permission_code_that_is_not_a_code(
    admin_client: Any, fields: dict[str, str], message: str
) -> None:
    response = admin_client.post(
        url("permission", "add"), {"description": "", "requires_feature": "", **fields}
    )

    assert message in errors_of(response)
    assert not Permission.objects.exists()


def test_it_rejects_an_audience_id_with_a_space(admin_client: Any) -> None:
    response = admin_client.post(
        url("audience", "add"), {"identifier": "api://orders api://all", "name": "x"}
    )

    assert "An audience id has no spaces or control characters" in errors_of(response)
    assert not Audience.objects.exists()


# --- history -------------------------------------------------------------------------------


def test_the_history_page_shows_a_change_and_who_made_it(
    admin_client: Any, admin_user: Any, acme: Tenant
) -> None:
    admin_client.post(
        url("tenant", "change", acme.pk), tenant_change_form(admin_client, acme, name="Acme Renamed")
    )

    page = admin_client.get(url("tenant", "history", acme.pk)).content.decode()

    assert admin_user.username in page
    assert "Acme Renamed" in page
    assert acme.history.latest().history_user == admin_user


def test_a_grant_created_in_the_portal_is_recorded_with_its_author(
    admin_client: Any, admin_user: Any, acme: Tenant, viewer: Role
) -> None:
    admin_client.post(url("grant", "add"), grant_form(tenant=acme, role=viewer, subject_id=guid()))
    grant = Grant.objects.get()

    record = grant.history.get()
    assert (record.history_type, record.history_user) == ("+", admin_user)
    assert admin_user.username in admin_client.get(url("grant", "history", grant.pk)).content.decode()


def test_a_roles_permission_change_is_recorded(admin_client: Any, viewer: Role) -> None:
    write = Permission.objects.create(code="orders.write")

    response = admin_client.post(
        url("role", "change", viewer.pk),
        role_form(slug="viewer", permissions=[p.pk for p in Permission.objects.all()]),
    )

    assert response.status_code == 302
    assert write in viewer.permissions.all()
    assert "orders.write" in admin_client.get(url("role", "history", viewer.pk)).content.decode()


def test_history_is_shown_but_cannot_be_reverted(admin_client: Any, acme: Tenant) -> None:
    admin_client.post(
        url("tenant", "change", acme.pk), tenant_change_form(admin_client, acme, name="Renamed")
    )

    page = admin_client.get(url("tenant", "history", acme.pk)).content.decode()

    assert "View history" in page
    assert "Revert" not in page
