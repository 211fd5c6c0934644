"""Grants in the portal: the add and change forms' validation, the list's filters, search and cost."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from authz.admin.filters import GrantValidityFilter, grant_validity
from authz.models import Grant, Permission, Role, Tenant
from tests import fake_entra as entra
from tests.support.portal import errors_of, grant_form, guid, url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


# --- grants: validation --------------------------------------------------------------------


def test_it_rejects_a_grant_that_ends_before_it_starts(admin_client: Any, acme: Tenant, viewer: Role) -> None:
    start = timezone.now().replace(microsecond=0)
    response = admin_client.post(
        url("grant", "add"),
        grant_form(tenant=acme, role=viewer, subject_id=guid(), valid_from=start, valid_until=start),
    )

    assert "Valid until must be after valid from." in errors_of(response)
    assert not Grant.objects.exists()


def test_it_rejects_a_tenant_owned_role_granted_in_another_tenant(
    admin_client: Any, acme: Tenant, beta_auditor: Role
) -> None:
    response = admin_client.post(
        url("grant", "add"), grant_form(tenant=acme, role=beta_auditor, subject_id=guid())
    )

    assert "Role 'auditor' belongs to tenant 'beta'; it can be granted only in that tenant." in errors_of(
        response
    )
    assert not Grant.objects.exists()


def test_it_accepts_a_tenant_owned_role_in_its_own_tenant(
    admin_client: Any, beta: Tenant, beta_auditor: Role
) -> None:
    response = admin_client.post(
        url("grant", "add"), grant_form(tenant=beta, role=beta_auditor, subject_id=guid())
    )

    assert response.status_code == 302
    assert Grant.objects.get().role == beta_auditor


@pytest.mark.parametrize(
    "subject_id",
    [
        "alice@example.com",
        "not-a-guid",
        "2f0e3b4c8a1d4c5e9f607b8c9d0e1f2a",
        "{2f0e3b4c8a1d-4c5e-9f607b8c9d0e1f2a}",
        "2f0e3b4c-8a1d-4c5e-9f60-7b8c9d0e1f2g",
    ],
)
def test_it_rejects_a_subject_that_is_not_a_guid(
    admin_client: Any, acme: Tenant, viewer: Role, subject_id: str
) -> None:
    response = admin_client.post(
        url("grant", "add"), grant_form(tenant=acme, role=viewer, subject_id=subject_id)
    )

    assert "an Entra directory's object ids and group ids are GUIDs" in errors_of(response)
    assert not Grant.objects.exists()


def test_it_stores_the_subject_in_lower_case(admin_client: Any, acme: Tenant, viewer: Role) -> None:
    subject = guid()

    admin_client.post(
        url("grant", "add"), grant_form(tenant=acme, role=viewer, subject_id=f" {subject.upper()} ")
    )

    assert Grant.objects.get().subject_id == subject


def test_it_rejects_the_same_grant_twice_in_any_case(admin_client: Any, acme: Tenant, viewer: Role) -> None:
    subject = guid()
    Grant.objects.create(
        tenant=acme, role=viewer, provider=entra.TENANT_ID, subject_type="user", subject_id=subject
    )

    response = admin_client.post(
        url("grant", "add"), grant_form(tenant=acme, role=viewer, subject_id=subject.upper())
    )

    assert "already exists" in errors_of(response)
    assert Grant.objects.count() == 1


def test_it_sets_granted_by_to_the_signed_in_user_and_ignores_a_posted_one(
    admin_client: Any, admin_user: Any, django_user_model: Any, acme: Tenant, viewer: Role
) -> None:
    someone_else = django_user_model.objects.create_user(username="mallory", password="x" * 20)

    admin_client.post(
        url("grant", "add"),
        grant_form(tenant=acme, role=viewer, subject_id=guid(), granted_by=str(someone_else.pk)),
    )

    assert Grant.objects.get().granted_by == admin_user


def test_it_keeps_granted_by_when_another_admin_edits_the_grant(
    client: Any, admin_user: Any, django_user_model: Any, acme: Tenant, viewer: Role
) -> None:
    grant = Grant.objects.create(
        tenant=acme,
        role=viewer,
        provider=entra.TENANT_ID,
        subject_type="user",
        subject_id=guid(),
        granted_by=admin_user,
    )
    editor = django_user_model.objects.create_superuser(username="editor", password="x" * 20)
    client.force_login(editor)

    response = client.post(
        url("grant", "change", grant.pk),
        grant_form(tenant=acme, role=viewer, subject_id=grant.subject_id, reason="extended"),
    )

    assert response.status_code == 302
    grant.refresh_from_db()
    assert (grant.reason, grant.granted_by) == ("extended", admin_user)


# --- grants: filters and search ------------------------------------------------------------


@pytest.fixture
def grants_in_time(acme: Tenant, beta: Tenant, viewer: Role, beta_auditor: Role) -> dict[str, Grant]:
    """One grant in each state, relative to the real clock the portal's filter reads."""
    now = timezone.now()

    def grant(name: str, **fields: Any) -> Grant:
        fields.setdefault("tenant", acme)
        fields.setdefault("role", viewer)
        return Grant.objects.create(
            provider=entra.TENANT_ID, subject_type="user", subject_id=guid(), reason=name, **fields
        )

    return {
        "open": grant("open"),
        "long": grant("long", valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=30)),
        "expiring": grant("expiring", valid_until=now + timedelta(days=3)),
        "expired": grant("expired", valid_from=now - timedelta(days=9), valid_until=now - timedelta(days=1)),
        "future": grant("future", valid_from=now + timedelta(days=1)),
        "beta": grant("beta", tenant=beta, role=beta_auditor),
    }


def listed(admin_client: Any, query: str) -> set[str]:
    """The reasons (names) of the grants the changelist lists for a query string."""
    response = admin_client.get(f"{url('grant', 'changelist')}?{query}")
    assert response.status_code == 200
    return {grant.reason for grant in response.context["cl"].result_list}


@pytest.mark.parametrize(
    ("validity", "expected"),
    [
        ("active", {"open", "long", "expiring", "beta"}),
        ("expiring", {"expiring"}),
        ("expired", {"expired"}),
        ("not_yet_valid", {"future"}),
        ("", {"open", "long", "expiring", "expired", "future", "beta"}),
    ],
)
def test_the_validity_filter_gives_the_right_grants(
    admin_client: Any, grants_in_time: dict, validity: str, expected: set[str]
) -> None:
    assert listed(admin_client, f"validity={validity}" if validity else "") == expected


def test_the_tenant_role_and_status_filters_give_the_right_grants(
    admin_client: Any, grants_in_time: dict, beta: Tenant, viewer: Role
) -> None:
    assert listed(admin_client, f"tenant__id__exact={beta.pk}") == {"beta"}
    assert listed(admin_client, f"role__id__exact={viewer.pk}&validity=expired") == {"expired"}
    assert listed(admin_client, "tenant__status__exact=suspended") == {"beta"}


def test_the_validity_filter_reads_its_clock(
    admin_client: Any, grants_in_time: dict, freeze_clock: Any
) -> None:
    freeze_clock(GrantValidityFilter, at=timezone.now() + timedelta(days=10))

    request = admin_client.get(url("grant", "changelist")).wsgi_request
    later = GrantValidityFilter(request, {"validity": ["expired"]}, Grant, None)

    assert {grant.reason for grant in later.queryset(request, Grant.objects.all())} == {"expired", "expiring"}


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 1, 1, 9, 59), "not yet valid"),
        (datetime(2026, 1, 1, 10, 0), "active"),
        (datetime(2026, 1, 25, 10, 0), "expiring"),
        (datetime(2026, 2, 1, 9, 59), "expiring"),
        (datetime(2026, 2, 1, 10, 0), "expired"),
    ],
)
def test_grant_validity_uses_the_engines_bounds(moment: datetime, expected: str) -> None:
    """from ≤ now < until, like the policy engine; expiring means within 7 days of the end."""
    assert (
        grant_validity(
            valid_from=datetime(2026, 1, 1, 10, 0), valid_until=datetime(2026, 2, 1, 10, 0), now=moment
        )
        == expected
    )


def test_search_finds_a_user_by_object_id_in_any_case(admin_client: Any, grants_in_time: dict) -> None:
    subject = grants_in_time["expired"].subject_id

    assert listed(admin_client, f"q={subject.upper()}") == {"expired"}


def test_search_finds_a_group_by_group_id(admin_client: Any, acme: Tenant, viewer: Role) -> None:
    group = guid()
    Grant.objects.create(
        tenant=acme,
        role=viewer,
        provider=entra.TENANT_ID,
        subject_type="group",
        subject_id=group,
        reason="group",
    )
    Grant.objects.create(
        tenant=acme,
        role=viewer,
        provider=entra.TENANT_ID,
        subject_type="user",
        subject_id=guid(),
        reason="user",
    )

    assert listed(admin_client, f"q={group}") == {"group"}


def test_search_finds_grants_by_tenant_and_role(admin_client: Any, grants_in_time: dict) -> None:
    assert listed(admin_client, "q=beta") == {"beta"}
    assert listed(admin_client, "q=Beta Ltd") == {"beta"}
    assert listed(admin_client, "q=auditor") == {"beta"}


def test_the_grant_changelist_costs_the_same_queries_for_5_and_50_grants(
    admin_client: Any, admin_user: Any
) -> None:
    """Every grant in its own tenant with its own role: filters and rows must not query per row."""

    def add_grants(count: int) -> None:
        for _ in range(count):
            tenant = Tenant.objects.create(slug=f"t-{uuid.uuid4().hex[:12]}", name="T")
            role = Role.objects.create(slug="owner", name="Owner", tenant=tenant)
            Grant.objects.create(
                tenant=tenant,
                role=role,
                provider=entra.TENANT_ID,
                subject_type="user",
                subject_id=guid(),
                granted_by=admin_user,
            )

    def changelist_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(url("grant", "changelist"))
        assert response.status_code == 200
        return len(queries)

    add_grants(5)
    with_5 = changelist_queries()
    add_grants(45)

    assert changelist_queries() == with_5


def test_the_role_changelist_costs_the_same_queries_for_5_and_50_roles(admin_client: Any) -> None:
    permission = Permission.objects.create(code="orders.read")

    def add_roles(count: int) -> None:
        for _ in range(count):
            tenant = Tenant.objects.create(slug=f"t-{uuid.uuid4().hex[:12]}", name="T")
            Role.objects.create(slug="owner", name="Owner", tenant=tenant).permissions.add(permission)

    def changelist_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(url("role", "changelist")).status_code == 200
        return len(queries)

    add_roles(5)
    with_5 = changelist_queries()
    add_roles(45)

    assert changelist_queries() == with_5
