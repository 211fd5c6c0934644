"""Tenant admins: they see and change only their tenants, and every forbidden write is refused.

Each forbidden write is posted directly through the test client, as a hostile tenant admin would,
not merely looked for in the pages.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission as AuthPermission
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from authz.admin.grants import GrantAdmin
from authz.models import Audience, Grant, Permission, Role, Tenant, TenantAdministrator
from authz.portal import tenant_administrator_exists
from authz.selectors import tenants_administered_by
from tests import fake_entra as entra
from tests.support.portal import errors_of, grant_form, guid, role_form, url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


@pytest.fixture
def acme_clerk(acme: Tenant) -> Role:
    return Role.objects.create(slug="clerk", name="Clerk", tenant=acme)


@pytest.fixture
def globex_grant(globex: Tenant, viewer: Role) -> Grant:
    return Grant.objects.create(
        tenant=globex, role=viewer, provider=entra.TENANT_ID, subject_type="user", subject_id=guid()
    )


# --- who administers what --------------------------------------------------------------------


def test_a_superuser_administers_every_tenant(admin_user: User) -> None:
    assert tenants_administered_by(user=admin_user) is None


def test_a_tenant_admin_administers_only_their_tenants(alice: User, acme: Tenant, globex: Tenant) -> None:
    assert list(tenants_administered_by(user=alice)) == [acme]


@pytest.fixture
def staff_with_every_authz_permission() -> User:
    """A staff user given every Django model permission of authz, but no tenant."""
    staff = User.objects.create_user(username="staff", password="x" * 20, is_staff=True)
    staff.user_permissions.set(AuthPermission.objects.filter(content_type__app_label="authz"))
    return staff


def test_django_permissions_alone_open_no_tenant(
    acme: Tenant, staff_with_every_authz_permission: User
) -> None:
    assert list(tenants_administered_by(user=staff_with_every_authz_permission)) == []


def test_an_inactive_tenant_admin_administers_nothing(alice: User) -> None:
    alice.is_active = False
    alice.save()

    assert list(tenants_administered_by(user=alice)) == []


def test_making_someone_a_tenant_admin_makes_them_staff_and_is_recorded(
    alice: User, acme: Tenant, admin_user: User
) -> None:
    assert alice.is_staff and not alice.is_superuser
    assert tenant_administrator_exists(user=alice)
    assert TenantAdministrator.history.get().history_user == admin_user


# --- they see only their tenants ----------------------------------------------------------------


def test_the_grant_changelist_lists_only_their_tenants_grants(
    alice_client: Any, acme_grant: Grant, globex_grant: Grant
) -> None:
    page = alice_client.get(url("grant", "changelist")).content.decode()

    assert acme_grant.subject_id in page
    assert globex_grant.subject_id not in page
    assert "globex" not in page  # not even in the tenant filter


def test_the_role_changelist_lists_global_roles_and_only_their_tenants_roles(
    alice_client: Any, viewer: Role, acme_clerk: Role, globex_auditor: Role
) -> None:
    response = alice_client.get(url("role", "changelist"))

    assert set(response.context["cl"].result_list) == {viewer, acme_clerk}


def test_the_tenant_changelist_lists_only_their_tenants(
    alice_client: Any, acme: Tenant, globex: Tenant
) -> None:
    response = alice_client.get(url("tenant", "changelist"))

    assert list(response.context["cl"].result_list) == [acme]


def test_the_role_autocomplete_offers_no_other_tenants_role(
    alice_client: Any, viewer: Role, acme_clerk: Role, globex_auditor: Role
) -> None:
    response = alice_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "authz", "model_name": "grant", "field_name": "role", "term": ""},
    )

    assert {row["id"] for row in response.json()["results"]} == {str(viewer.pk), str(acme_clerk.pk)}


@pytest.mark.parametrize("view", ["change", "history", "delete"])
def test_another_tenants_grant_pages_are_forbidden(alice_client: Any, globex_grant: Grant, view: str) -> None:
    assert alice_client.get(url("grant", view, globex_grant.pk)).status_code == 403


def test_a_missing_grant_answers_as_a_forbidden_one(alice_client: Any) -> None:
    assert alice_client.get(url("grant", "change", 999999)).status_code == 403


def test_another_tenants_page_is_forbidden(alice_client: Any, globex: Tenant) -> None:
    assert alice_client.get(url("tenant", "change", globex.pk)).status_code == 403


# --- forbidden writes, posted directly ------------------------------------------------------------


def test_it_refuses_a_grant_in_another_tenant(alice_client: Any, globex: Tenant, viewer: Role) -> None:
    response = alice_client.post(
        url("grant", "add"), grant_form(tenant=globex, role=viewer, subject_id=guid())
    )

    assert "Select a valid choice" in errors_of(response)
    assert not Grant.objects.exists()


def test_it_refuses_moving_a_grant_to_another_tenant(
    alice_client: Any, acme_grant: Grant, globex: Tenant, viewer: Role
) -> None:
    response = alice_client.post(
        url("grant", "change", acme_grant.pk),
        grant_form(tenant=globex, role=viewer, subject_id=acme_grant.subject_id),
    )

    assert "Select a valid choice" in errors_of(response)
    acme_grant.refresh_from_db()
    assert acme_grant.tenant.slug == "acme"


def test_it_refuses_changing_another_tenants_grant(
    alice_client: Any, globex_grant: Grant, globex: Tenant, viewer: Role
) -> None:
    response = alice_client.post(
        url("grant", "change", globex_grant.pk),
        grant_form(tenant=globex, role=viewer, subject_id=globex_grant.subject_id, reason="mine now"),
    )

    assert response.status_code == 403
    globex_grant.refresh_from_db()
    assert globex_grant.reason == ""


def test_it_refuses_deleting_another_tenants_grant(alice_client: Any, globex_grant: Grant) -> None:
    response = alice_client.post(url("grant", "delete", globex_grant.pk), {"post": "yes"})

    assert response.status_code == 403
    assert Grant.objects.filter(pk=globex_grant.pk).exists()


def test_it_refuses_granting_another_tenants_role(
    alice_client: Any, acme: Tenant, globex_auditor: Role
) -> None:
    response = alice_client.post(
        url("grant", "add"), grant_form(tenant=acme, role=globex_auditor, subject_id=guid())
    )

    assert "Select a valid choice" in errors_of(response)
    assert not Grant.objects.exists()


def test_it_refuses_a_role_in_another_tenant(alice_client: Any, globex: Tenant) -> None:
    response = alice_client.post(url("role", "add"), role_form(slug="spy", tenant=globex))

    assert "Select a valid choice" in errors_of(response)
    assert not Role.objects.filter(slug="spy").exists()


def test_it_refuses_a_global_role(alice_client: Any) -> None:
    response = alice_client.post(url("role", "add"), role_form(slug="everyone"))

    assert "This field is required." in errors_of(response)
    assert not Role.objects.filter(slug="everyone").exists()


def test_it_refuses_editing_a_global_role(alice_client: Any, viewer: Role, acme: Tenant) -> None:
    response = alice_client.post(url("role", "change", viewer.pk), role_form(slug="viewer2", tenant=acme))

    assert response.status_code == 403
    viewer.refresh_from_db()
    assert (viewer.slug, viewer.tenant_id) == ("viewer", None)


def test_it_refuses_editing_another_tenants_role(
    alice_client: Any, globex_auditor: Role, acme: Tenant
) -> None:
    response = alice_client.post(
        url("role", "change", globex_auditor.pk), role_form(slug="auditor", tenant=acme)
    )

    assert response.status_code == 403
    globex_auditor.refresh_from_db()
    assert globex_auditor.tenant.slug == "globex"


def test_it_refuses_editing_a_permission(alice_client: Any, viewer: Role) -> None:
    permission = viewer.permissions.get()

    response = alice_client.post(
        url("permission", "change", permission.pk),
        {"code": "orders.write", "description": "", "requires_feature": ""},
    )

    assert response.status_code == 403
    permission.refresh_from_db()
    assert permission.code == "orders.read"


def test_it_refuses_adding_a_permission(alice_client: Any) -> None:
    response = alice_client.post(url("permission", "add"), {"code": "all.things", "description": ""})

    assert response.status_code == 403
    assert not Permission.objects.filter(code="all.things").exists()


def test_it_refuses_any_audience_page_and_write(alice_client: Any) -> None:
    audience = Audience.objects.create(identifier="api://orders", name="Orders")

    assert alice_client.get(url("audience", "changelist")).status_code == 403
    response = alice_client.post(
        url("audience", "change", audience.pk), {"identifier": "api://x", "name": "X"}
    )
    assert response.status_code == 403
    audience.refresh_from_db()
    assert audience.identifier == "api://orders"


def test_it_refuses_editing_their_own_tenant(alice_client: Any, acme: Tenant) -> None:
    response = alice_client.post(
        url("tenant", "change", acme.pk),
        {"slug": "acme", "name": "Acme", "status": "active", "features": "everything"},
    )

    assert response.status_code == 403
    acme.refresh_from_db()
    assert acme.features == []


def test_it_refuses_the_signing_keys(alice_client: Any) -> None:
    assert alice_client.get(reverse("admin:keys_signingkey_changelist")).status_code == 403


def test_it_refuses_the_user_pages_and_promoting_anyone(alice_client: Any, alice: User) -> None:
    assert alice_client.get(reverse("admin:accounts_user_changelist")).status_code == 403

    response = alice_client.post(
        reverse("admin:accounts_user_change", args=[alice.pk]),
        {"username": "alice", "is_active": "on", "is_staff": "on", "is_superuser": "on"},
    )

    assert response.status_code == 403
    alice.refresh_from_db()
    assert not alice.is_superuser


def test_it_refuses_making_anyone_a_tenant_admin(alice_client: Any, alice: User, globex: Tenant) -> None:
    assert alice_client.get(url("tenantadministrator", "changelist")).status_code == 403

    response = alice_client.post(url("tenantadministrator", "add"), {"user": alice.pk, "tenant": globex.pk})

    assert response.status_code == 403
    assert not TenantAdministrator.objects.filter(tenant=globex).exists()


def test_a_bulk_revoke_of_another_tenants_grant_changes_nothing(
    alice_client: Any, acme_grant: Grant, globex_grant: Grant
) -> None:
    alice_client.post(
        url("grant", "changelist"),
        {
            "action": "revoke_grants",
            "_selected_action": [acme_grant.pk, globex_grant.pk],
            "apply": "1",
            "reason": "off-boarding",
        },
    )

    acme_grant.refresh_from_db()
    globex_grant.refresh_from_db()
    assert acme_grant.valid_until is not None
    assert globex_grant.valid_until is None


def test_a_write_the_form_let_through_is_still_refused(
    alice: User, globex: Tenant, viewer: Role, acme: Tenant, globex_auditor: Role
) -> None:
    """The last line: save_model checks the tenant and the role's tenant itself."""
    from django.contrib.admin import site

    request = RequestFactory().post("/")
    request.user = alice
    model_admin = GrantAdmin(Grant, site)

    for grant in (
        Grant(tenant=globex, role=viewer, provider=entra.TENANT_ID, subject_type="user", subject_id=guid()),
        Grant(
            tenant=acme, role=globex_auditor, provider=entra.TENANT_ID, subject_type="user", subject_id=guid()
        ),
    ):
        with pytest.raises(PermissionDenied):
            model_admin.save_model(request, grant, form=None, change=False)
    assert not Grant.objects.exists()


# --- allowed writes succeed ---------------------------------------------------------------------


def test_it_lets_them_grant_a_global_role_in_their_tenant(
    alice_client: Any, alice: User, acme: Tenant, viewer: Role
) -> None:
    response = alice_client.post(url("grant", "add"), grant_form(tenant=acme, role=viewer, subject_id=guid()))

    assert response.status_code == 302
    assert Grant.objects.get().granted_by == alice


def test_it_lets_them_grant_their_tenants_role(alice_client: Any, acme: Tenant, acme_clerk: Role) -> None:
    response = alice_client.post(
        url("grant", "add"), grant_form(tenant=acme, role=acme_clerk, subject_id=guid())
    )

    assert response.status_code == 302
    assert Grant.objects.get().role == acme_clerk


def test_it_lets_them_change_and_delete_their_tenants_grant(
    alice_client: Any, acme_grant: Grant, acme: Tenant, viewer: Role
) -> None:
    until = timezone.now().replace(microsecond=0) + timedelta(days=30)
    response = alice_client.post(
        url("grant", "change", acme_grant.pk),
        grant_form(tenant=acme, role=viewer, subject_id=acme_grant.subject_id, valid_until=until),
    )
    assert response.status_code == 302
    acme_grant.refresh_from_db()
    assert acme_grant.valid_until == until

    response = alice_client.post(url("grant", "delete", acme_grant.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Grant.objects.exists()


def test_it_lets_them_create_and_edit_a_role_of_their_tenant(
    alice_client: Any, acme: Tenant, viewer: Role
) -> None:
    permission = viewer.permissions.get()
    response = alice_client.post(
        url("role", "add"), role_form(slug="buyer", tenant=acme, permissions=[permission.pk])
    )
    assert response.status_code == 302
    role = Role.objects.get(slug="buyer")
    assert (role.tenant, list(role.permissions.all())) == (acme, [permission])

    response = alice_client.post(
        url("role", "change", role.pk), role_form(slug="buyer", tenant=acme, name="Buyers")
    )
    assert response.status_code == 302


def test_it_lets_them_read_their_tenant_and_its_grants(
    alice_client: Any, acme: Tenant, acme_grant: Grant
) -> None:
    response = alice_client.get(url("tenant", "change", acme.pk))

    assert response.status_code == 200
    assert acme_grant.subject_id in response.content.decode()


def test_django_permissions_alone_show_no_grant_and_allow_no_write(
    client: Any, acme_grant: Grant, acme: Tenant, viewer: Role, staff_with_every_authz_permission: User
) -> None:
    client.force_login(staff_with_every_authz_permission)

    assert client.get(url("grant", "changelist")).status_code == 403
    assert client.get(url("grant", "change", acme_grant.pk)).status_code == 403
    response = client.post(url("grant", "add"), grant_form(tenant=acme, role=viewer, subject_id=guid()))
    assert response.status_code == 403
    assert client.post(url("permission", "add"), {"code": "all.things"}).status_code == 403
    assert Grant.objects.count() == 1


def test_a_platform_admin_makes_someone_a_tenant_admin_in_the_portal(
    admin_client: Any, admin_user: User, acme: Tenant
) -> None:
    bob = User.objects.create_user(username="bob", password="x" * 20)

    response = admin_client.post(url("tenantadministrator", "add"), {"user": bob.pk, "tenant": acme.pk})

    assert response.status_code == 302
    bob.refresh_from_db()
    assert bob.is_staff and not bob.is_superuser
    assert list(tenants_administered_by(user=bob)) == [acme]
    assert TenantAdministrator.history.get().history_user == admin_user


def test_the_same_tenant_admin_twice_is_a_form_error(admin_client: Any, alice: User, acme: Tenant) -> None:
    response = admin_client.post(url("tenantadministrator", "add"), {"user": alice.pk, "tenant": acme.pk})

    assert "already exists" in errors_of(response)
    assert TenantAdministrator.objects.count() == 1


def test_the_tenant_page_names_its_administrators_to_platform_admins_only(
    admin_client: Any, alice_client: Any, acme: Tenant
) -> None:
    assert "alice" in admin_client.get(url("tenant", "change", acme.pk)).content.decode()
    assert "tenant administrators" not in alice_client.get(url("tenant", "change", acme.pk)).content.decode()
