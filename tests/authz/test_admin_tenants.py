"""The tenant page of the portal: features typed as text, and grants added in the tenant's inline."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from authz.models import Grant, Role, Tenant
from tests import fake_entra as entra
from tests.support.portal import errors_of, grant_form, guid, tenant_change_form, url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


# --- tenants -------------------------------------------------------------------------------


def test_it_reads_features_typed_comma_separated(admin_client: Any) -> None:
    response = admin_client.post(
        url("tenant", "add"),
        {
            "slug": "gamma",
            "name": "Gamma",
            "status": "active",
            "features": " exports, audit-log,,exports\nsso ",
        },
    )

    assert response.status_code == 302
    assert Tenant.objects.get(slug="gamma").features == ["exports", "audit-log", "sso"]


def test_it_shows_features_back_comma_separated(admin_client: Any) -> None:
    tenant = Tenant.objects.create(slug="gamma", name="Gamma", features=["exports", "sso"])

    response = admin_client.get(url("tenant", "change", tenant.pk))

    assert 'value="exports, sso"' in response.content.decode()


def test_it_rejects_a_feature_that_is_not_a_code(admin_client: Any) -> None:
    response = admin_client.post(
        url("tenant", "add"),
        {"slug": "gamma", "name": "Gamma", "status": "active", "features": "exports, Big Data"},
    )

    assert "'Big' is not a valid feature code" in errors_of(response)
    assert not Tenant.objects.exists()


def new_grant_prefix(admin_client: Any, tenant: Tenant) -> str:
    response = admin_client.get(url("tenant", "change", tenant.pk))
    (prefix,) = [
        inline.formset.prefix
        for inline in response.context["inline_admin_formsets"]
        if inline.has_add_permission
    ]
    return prefix


def test_a_grant_added_on_the_tenant_page_is_granted_by_the_signed_in_user(
    admin_client: Any, admin_user: Any, acme: Tenant, viewer: Role
) -> None:
    prefix = new_grant_prefix(admin_client, acme)
    subject = guid()
    data = tenant_change_form(admin_client, acme)
    data.update(grant_form(tenant=acme, role=viewer, subject_id=subject.upper(), prefix=f"{prefix}-0-"))

    response = admin_client.post(url("tenant", "change", acme.pk), data)

    assert response.status_code == 302
    grant = Grant.objects.get()
    assert (grant.tenant, grant.subject_id, grant.granted_by) == (acme, subject, admin_user)
    assert grant.history.get().history_user == admin_user


def test_the_tenant_page_rejects_another_tenants_role(
    admin_client: Any, acme: Tenant, beta_auditor: Role
) -> None:
    prefix = new_grant_prefix(admin_client, acme)
    data = tenant_change_form(admin_client, acme)
    data.update(grant_form(tenant=acme, role=beta_auditor, subject_id=guid(), prefix=f"{prefix}-0-"))

    response = admin_client.post(url("tenant", "change", acme.pk), data)

    assert "Role 'auditor' belongs to tenant 'beta'" in errors_of(response)
    assert not Grant.objects.exists()


def test_the_tenant_page_lists_only_the_newest_grants_and_links_to_all(
    admin_client: Any, acme: Tenant, viewer: Role
) -> None:
    subjects = [guid() for _ in range(25)]
    for subject in subjects:
        Grant.objects.create(
            tenant=acme, role=viewer, provider=entra.TENANT_ID, subject_type="user", subject_id=subject
        )

    with CaptureQueriesContext(connection) as queries_for_25:
        response = admin_client.get(url("tenant", "change", acme.pk))

    page = response.content.decode()
    assert subjects[-1] in page
    assert subjects[0] not in page
    assert "25 grants" in page
    assert f"{url('grant', 'changelist')}?tenant__id__exact={acme.pk}" in page
    for subject in [guid() for _ in range(25)]:
        Grant.objects.create(
            tenant=acme, role=viewer, provider=entra.TENANT_ID, subject_type="user", subject_id=subject
        )
    with CaptureQueriesContext(connection) as queries_for_50:
        admin_client.get(url("tenant", "change", acme.pk))
    assert len(queries_for_50) == len(queries_for_25)


def test_a_tenant_can_still_be_saved_when_it_has_many_grants(
    admin_client: Any, acme: Tenant, viewer: Role
) -> None:
    for _ in range(25):
        Grant.objects.create(
            tenant=acme, role=viewer, provider=entra.TENANT_ID, subject_type="user", subject_id=guid()
        )

    response = admin_client.post(
        url("tenant", "change", acme.pk), tenant_change_form(admin_client, acme, name="Acme")
    )

    assert response.status_code == 302
    assert Tenant.objects.get().name == "Acme"
    assert Grant.objects.count() == 25
