"""An audit of the portal as a hostile tenant admin: every admin URL and action, aimed at another tenant.

Alice administers acme; globex is someone else's. Each probe goes through the test client as she
would, posting forms and query strings by hand rather than following the pages' links.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from accounts.models import Principal, User
from authz.models import Audience, Grant, Permission, Role, Tenant, TenantAdministrator
from tests import fake_entra as entra
from tests.support.portal import grant_form, url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

GLOBEX_SUBJECT = "0b0b0b0b-0000-4000-8000-00000000b0b0"


@pytest.fixture
def read() -> Permission:
    return Permission.objects.create(code="orders.read")


@pytest.fixture
def viewer(read: Permission) -> Role:
    role = Role.objects.create(slug="viewer", name="Viewer")
    role.permissions.add(read)
    return role


@pytest.fixture
def orders(read: Permission) -> Audience:
    """Registers orders.read, so the preview offers it to the tenant admins of tenants with a viewer."""
    audience = Audience.objects.create(identifier="api://orders", name="Orders API")
    audience.permissions.add(read)
    return audience


@pytest.fixture
def globex_grant(globex: Tenant, globex_auditor: Role) -> Grant:
    return Grant.objects.create(
        tenant=globex,
        role=globex_auditor,
        provider=entra.TENANT_ID,
        subject_type="user",
        subject_id=GLOBEX_SUBJECT,
    )


def history_detail(model: type, pk: Any) -> str:
    """The URL of simple-history's page for the newest recorded version of one row."""
    version = model.history.filter(id=pk).latest("history_date")  # type: ignore[attr-defined]
    change = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[pk])
    return change.replace("/change/", f"/history/{version.history_id}/")


def body(response: Any) -> str:
    return response.content.decode()


# --- history pages: read only, and only for rows in their tenants now ---------------------------


def test_the_history_page_of_a_permission_does_not_change_it(alice_client: Any, read: Permission) -> None:
    response = alice_client.post(
        history_detail(Permission, read.pk),
        {"code": "everything.all", "description": "", "requires_feature": ""},
    )

    assert response.status_code == 405
    read.refresh_from_db()
    assert read.code == "orders.read"


def test_the_history_page_of_their_tenant_does_not_change_it(alice_client: Any, acme: Tenant) -> None:
    response = alice_client.post(
        history_detail(Tenant, acme.pk),
        {"slug": "acme", "name": "Acme Corp", "status": "active", "features": "everything"},
    )

    assert response.status_code == 405
    acme.refresh_from_db()
    assert acme.features == []


def test_the_history_page_does_not_revert_for_platform_admins_either(
    admin_client: Any, acme_grant: Grant, acme: Tenant, viewer: Role
) -> None:
    response = admin_client.post(
        history_detail(Grant, acme_grant.pk),
        grant_form(tenant=acme, role=viewer, subject_id=acme_grant.subject_id, reason="reverted"),
    )

    assert response.status_code == 405
    acme_grant.refresh_from_db()
    assert acme_grant.reason == ""


def test_a_version_from_when_a_grant_was_theirs_does_not_show_or_bring_it_back(
    alice_client: Any, acme_grant: Grant, acme: Tenant, globex: Tenant, viewer: Role
) -> None:
    old_version = history_detail(Grant, acme_grant.pk)
    acme_grant.tenant = globex  # a platform admin moves it
    acme_grant.save()

    assert alice_client.get(old_version).status_code == 403
    response = alice_client.post(
        old_version, grant_form(tenant=acme, role=viewer, subject_id=acme_grant.subject_id)
    )

    assert response.status_code == 405
    acme_grant.refresh_from_db()
    assert acme_grant.tenant == globex


@pytest.mark.parametrize("page", ["history", "detail"])
def test_another_tenants_grant_history_is_forbidden_even_after_deletion(
    alice_client: Any, globex_grant: Grant, page: str
) -> None:
    pk = globex_grant.pk
    detail = history_detail(Grant, pk)
    globex_grant.delete()

    target = url("grant", "history", pk) if page == "history" else detail
    assert alice_client.get(target).status_code == 403


def test_their_own_grants_history_page_still_shows(alice_client: Any, acme_grant: Grant) -> None:
    assert alice_client.get(history_detail(Grant, acme_grant.pk)).status_code == 200


# --- lists, filters, lookups and popups ----------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "tenant__id__exact={globex}",
        "tenant__slug=globex",
        "role__tenant__slug=globex",
        "role__id__exact={auditor}",
        "tenant__administrators__user__username=bob",
        "q=globex",
        f"q={GLOBEX_SUBJECT}",
        "o=-3.2",
        "tenant__status__exact=active",
        "_popup=1&_to_field=id",
        "_changelist_filters=tenant__id__exact%3D{globex}",
    ],
)
def test_no_grant_changelist_query_shows_another_tenants_grant(
    alice_client: Any, acme_grant: Grant, globex_grant: Grant, globex: Tenant, query: str
) -> None:
    query = query.format(globex=globex.pk, auditor=globex_grant.role_id)

    response = alice_client.get(f"{url('grant', 'changelist')}?{query}")

    if GLOBEX_SUBJECT not in query:  # a search term is echoed back, of course
        assert GLOBEX_SUBJECT not in body(response)
    if response.status_code == 200 and "cl" in response.context:
        assert globex_grant not in list(response.context["cl"].result_list)


@pytest.mark.parametrize(
    ("model", "query"),
    [
        ("role", "tenant__id__exact={globex}"),
        ("role", "q=auditor"),
        ("role", "_popup=1&_to_field=id"),
        ("tenant", "q=globex"),
        ("tenant", "id__exact={globex}"),
        ("tenant", "_popup=1&_to_field=id"),
    ],
)
def test_no_role_or_tenant_changelist_query_shows_another_tenants_row(
    alice_client: Any, globex_auditor: Role, globex: Tenant, model: str, query: str
) -> None:
    response = alice_client.get(f"{url(model, 'changelist')}?{query.format(globex=globex.pk)}")

    if response.status_code == 200:
        assert not {globex, globex_auditor} & set(response.context["cl"].result_list)


@pytest.mark.parametrize(
    ("model", "field"),
    [("grant", "role"), ("grant", "tenant"), ("role", "tenant"), ("tenantadministrator", "tenant")],
)
def test_no_autocomplete_offers_another_tenants_rows(
    alice_client: Any, globex_auditor: Role, globex: Tenant, model: str, field: str
) -> None:
    response = alice_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "authz", "model_name": model, "field_name": field, "term": ""},
    )

    texts = {row["text"] for row in response.json()["results"]}
    assert not any("globex" in text or "auditor" in text for text in texts)


def test_the_user_autocomplete_is_forbidden(alice_client: Any) -> None:
    response = alice_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "authz", "model_name": "tenantadministrator", "field_name": "user", "term": ""},
    )

    assert response.status_code == 403


def test_the_view_on_site_shortcut_tells_nothing_about_another_tenants_rows(
    alice_client: Any, globex_grant: Grant
) -> None:
    content_type = ContentType.objects.get_for_model(Grant)
    existing = alice_client.get(f"/admin/r/{content_type.pk}/{globex_grant.pk}/")
    missing = alice_client.get(f"/admin/r/{content_type.pk}/999999/")

    assert existing.status_code == missing.status_code == 404
    assert body(existing) == body(missing)


# --- forms and actions aimed at another tenant ---------------------------------------------------


def test_the_grant_add_page_does_not_render_another_tenants_names_from_the_query(
    alice_client: Any, globex: Tenant, globex_auditor: Role
) -> None:
    page = body(alice_client.get(f"{url('grant', 'add')}?tenant={globex.pk}&role={globex_auditor.pk}"))

    assert "globex" not in page and "auditor" not in page


def test_changing_their_grant_to_another_tenants_role_is_refused(
    alice_client: Any, acme_grant: Grant, acme: Tenant, globex_auditor: Role
) -> None:
    alice_client.post(
        url("grant", "change", acme_grant.pk),
        grant_form(tenant=acme, role=globex_auditor, subject_id=acme_grant.subject_id),
    )

    acme_grant.refresh_from_db()
    assert acme_grant.role.slug == "viewer"


@pytest.mark.parametrize("select_across", ["0", "1"])
def test_bulk_extend_and_delete_of_another_tenants_grant_change_nothing(
    alice_client: Any, acme_grant: Grant, globex_grant: Grant, select_across: str
) -> None:
    selected = {"_selected_action": [globex_grant.pk], "select_across": select_across, "index": "0"}
    alice_client.post(
        url("grant", "changelist"),
        {
            **selected,
            "action": "extend_grants",
            "apply": "1",
            "valid_until_0": "2099-01-01",
            "valid_until_1": "00:00:00",
            "reason": "mine now",
        },
    )
    alice_client.post(url("grant", "changelist"), {**selected, "action": "delete_selected", "post": "yes"})

    globex_grant.refresh_from_db()
    assert globex_grant.valid_until is None


def test_the_bulk_action_page_does_not_list_another_tenants_grant(
    alice_client: Any, globex_grant: Grant
) -> None:
    response = alice_client.post(
        url("grant", "changelist"), {"action": "revoke_grants", "_selected_action": [globex_grant.pk]}
    )

    assert GLOBEX_SUBJECT not in body(response)


def test_a_bulk_delete_of_global_and_another_tenants_roles_deletes_nothing(
    alice_client: Any, viewer: Role, globex_auditor: Role
) -> None:
    alice_client.post(
        url("role", "changelist"),
        {"action": "delete_selected", "_selected_action": [viewer.pk, globex_auditor.pk], "post": "yes"},
    )

    assert Role.objects.count() == 2


def test_they_cannot_make_anyone_an_administrator_of_any_tenant(
    alice_client: Any, alice: User, acme: Tenant, globex: Tenant
) -> None:
    bob = User.objects.create_user(username="bob", password="x" * 20)

    for user, tenant in ((alice, globex), (bob, acme), (bob, globex)):
        response = alice_client.post(
            url("tenantadministrator", "add"), {"user": user.pk, "tenant": tenant.pk}
        )
        assert response.status_code == 403
    assert list(TenantAdministrator.objects.values_list("user__username", flat=True)) == ["alice"]


@pytest.mark.parametrize(
    "name",
    [
        "admin:django_celery_beat_periodictask_changelist",
        "admin:django_celery_beat_crontabschedule_changelist",
        "admin:django_celery_beat_intervalschedule_changelist",
        "admin:keys_signingkey_changelist",
        "admin:keys_signingkey_rotate",
        "admin:keys_jwksdocument_changelist",
        "admin:accounts_user_changelist",
        "admin:accounts_principal_changelist",
        "admin:authz_audience_changelist",
        "admin:authz_feature_changelist",
        "admin:authz_tenantadministrator_changelist",
        "admin:auth_group_changelist",
    ],
)
def test_the_platform_pages_are_forbidden(alice_client: Any, name: str) -> None:
    assert alice_client.get(reverse(name)).status_code == 403


def test_a_principals_last_exchange_is_not_theirs_to_read(alice_client: Any) -> None:
    principal = Principal.objects.create(provider=str(uuid.uuid4()), subject=GLOBEX_SUBJECT)

    for view in ("change", "history"):
        response = alice_client.get(reverse(f"admin:accounts_principal_{view}", args=[principal.pk]))
        assert response.status_code == 403


# --- the effective-access preview --------------------------------------------------------------


def preview(client: Any, tenant: str, audience: Audience) -> Any:
    query = {
        "provider": entra.TENANT_ID,
        "subject_id": GLOBEX_SUBJECT,
        "audience": audience.identifier,
        "tenant": tenant,
    }
    return client.get(reverse("admin:authz_grant_preview"), query)


def test_the_preview_refuses_another_tenant_as_it_refuses_an_unknown_one(
    alice_client: Any, globex_grant: Grant, orders: Audience
) -> None:
    other = preview(alice_client, "globex", orders)
    unknown = preview(alice_client, "nosuch", orders)

    assert other.context["preview"] is None and unknown.context["preview"] is None
    assert other.context["form"].errors == unknown.context["form"].errors
    assert "auditor" not in body(other)


def test_the_preview_of_their_tenant_shows_no_principal(
    alice_client: Any, acme_grant: Grant, orders: Audience
) -> None:
    Principal.objects.create(provider=entra.TENANT_ID, subject=GLOBEX_SUBJECT)

    response = preview(alice_client, "acme", orders)

    assert response.context["preview"] is not None
    assert response.context["preview"].principals == ()


# --- losing access -------------------------------------------------------------------------------


def test_a_deleted_tenant_administrator_row_takes_effect_at_the_next_request(
    alice_client: Any, alice: User, acme_grant: Grant, read: Permission, orders: Audience
) -> None:
    assert alice_client.get(url("grant", "changelist")).status_code == 200

    TenantAdministrator.objects.filter(user=alice).delete()

    for target in (
        url("grant", "changelist"),
        url("grant", "change", acme_grant.pk),
        url("grant", "history", acme_grant.pk),
        url("permission", "changelist"),
        url("role", "changelist"),
        reverse("admin:authz_grant_preview"),
    ):
        assert alice_client.get(target).status_code == 403, target
    response = alice_client.post(
        url("grant", "changelist"),
        {"action": "revoke_grants", "_selected_action": [acme_grant.pk], "apply": "1", "reason": "x"},
    )
    assert response.status_code == 403
    acme_grant.refresh_from_db()
    assert acme_grant.valid_until is None


def test_an_inactive_tenant_admin_gets_only_the_login_page(
    alice_client: Any, alice: User, acme_grant: Grant
) -> None:
    alice.is_active = False
    alice.save()

    for target in ("/admin/", url("grant", "changelist"), reverse("admin:authz_grant_preview")):
        response = alice_client.get(target)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_malformed_history_page_id_is_refused_not_an_error(alice_client: Any) -> None:
    assert alice_client.get("/admin/authz/grant/not-a-number/history/1/").status_code == 403
