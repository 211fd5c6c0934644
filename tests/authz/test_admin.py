"""The authorization portal, driven through Django's test client as a signed-in superuser."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from authz.admin.filters import GrantValidityFilter, grant_validity
from authz.models import Audience, Grant, Permission, Role, Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """The signed-in superusers' passwords are not under test; hashing them slowly only costs time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def guid() -> str:
    return str(uuid.uuid4())


def url(model: str, view: str, *args: Any) -> str:
    return reverse(f"admin:authz_{model}_{view}", args=args)


def split(moment: datetime | None) -> dict[str, str]:
    """A datetime as the admin's split date and time inputs."""
    if moment is None:
        return {"0": "", "1": ""}
    return {"0": moment.strftime("%Y-%m-%d"), "1": moment.strftime("%H:%M:%S")}


def grant_form(
    *,
    tenant: Tenant,
    role: Role,
    subject_id: str,
    subject_type: str = "user",
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    prefix: str = "",
    **extra: str,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        f"{prefix}role": role.pk,
        f"{prefix}subject_type": subject_type,
        f"{prefix}subject_id": subject_id,
        f"{prefix}reason": "ticket 42",
    }
    if not prefix:
        data["tenant"] = tenant.pk
    for name, moment in (("valid_from", valid_from), ("valid_until", valid_until)):
        for part, value in split(moment).items():
            data[f"{prefix}{name}_{part}"] = value
    data.update(extra)
    return data


def errors_of(response: Any) -> str:
    """Every error message of the admin form on the page, for asserting on what the admin sees."""
    assert response.status_code == 200, "the form was accepted"
    return " ".join(message for errors in response.context["errors"] for message in errors)


@pytest.fixture
def acme() -> Tenant:
    return Tenant.objects.create(slug="acme", name="Acme Corp")


@pytest.fixture
def beta() -> Tenant:
    return Tenant.objects.create(slug="beta", name="Beta Ltd", status=Tenant.Status.SUSPENDED)


@pytest.fixture
def viewer() -> Role:
    role = Role.objects.create(slug="viewer", name="Viewer")
    role.permissions.add(Permission.objects.create(code="orders.read"))
    return role


@pytest.fixture
def beta_auditor(beta: Tenant) -> Role:
    return Role.objects.create(slug="auditor", name="Auditor", tenant=beta)


# --- every page renders --------------------------------------------------------------------


@pytest.fixture
def one_of_each(acme: Tenant, viewer: Role, admin_user: Any) -> dict[str, Any]:
    audience = Audience.objects.create(identifier="api://orders", name="Orders")
    audience.permissions.set(viewer.permissions.all())
    grant = Grant.objects.create(
        tenant=acme, role=viewer, subject_type="user", subject_id=guid(), granted_by=admin_user
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

    assert "Enter the Entra object id or group id as a GUID" in errors_of(response)
    assert not Grant.objects.exists()


def test_it_stores_the_subject_in_lower_case(admin_client: Any, acme: Tenant, viewer: Role) -> None:
    subject = guid()

    admin_client.post(
        url("grant", "add"), grant_form(tenant=acme, role=viewer, subject_id=f" {subject.upper()} ")
    )

    assert Grant.objects.get().subject_id == subject


def test_it_rejects_the_same_grant_twice_in_any_case(admin_client: Any, acme: Tenant, viewer: Role) -> None:
    subject = guid()
    Grant.objects.create(tenant=acme, role=viewer, subject_type="user", subject_id=subject)

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
        tenant=acme, role=viewer, subject_type="user", subject_id=guid(), granted_by=admin_user
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
        return Grant.objects.create(subject_type="user", subject_id=guid(), reason=name, **fields)

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
    admin_client: Any, grants_in_time: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    class TenDaysOnFilter(GrantValidityFilter):
        clock = staticmethod(lambda: timezone.now() + timedelta(days=10))

    request = admin_client.get(url("grant", "changelist")).wsgi_request
    later = TenDaysOnFilter(request, {"validity": ["expired"]}, Grant, None)

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
    Grant.objects.create(tenant=acme, role=viewer, subject_type="group", subject_id=group, reason="group")
    Grant.objects.create(tenant=acme, role=viewer, subject_type="user", subject_id=guid(), reason="user")

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
                tenant=tenant, role=role, subject_type="user", subject_id=guid(), granted_by=admin_user
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


# --- roles, permissions, audiences ---------------------------------------------------------


def role_form(*, slug: str, tenant: Tenant | None = None, **extra: Any) -> dict[str, Any]:
    return {"slug": slug, "name": slug.title(), "tenant": tenant.pk if tenant else "", **extra}


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
    Grant.objects.create(tenant=beta, role=viewer, subject_type="user", subject_id=guid())

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


def tenant_change_form(admin_client: Any, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    """The tenant change form as the page renders it: the tenant's fields and both inlines' forms."""
    response = admin_client.get(url("tenant", "change", tenant.pk))
    data: dict[str, Any] = {
        "slug": tenant.slug,
        "name": tenant.name,
        "status": tenant.status,
        "features": ", ".join(tenant.features),
    }
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name, field in management.fields.items():
            data[management.add_prefix(name)] = management.initial.get(name, field.initial)
    data.update(fields)
    return data


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
        Grant.objects.create(tenant=acme, role=viewer, subject_type="user", subject_id=subject)

    with CaptureQueriesContext(connection) as queries_for_25:
        response = admin_client.get(url("tenant", "change", acme.pk))

    page = response.content.decode()
    assert subjects[-1] in page
    assert subjects[0] not in page
    assert "25 grants" in page
    assert f"{url('grant', 'changelist')}?tenant__id__exact={acme.pk}" in page
    for subject in [guid() for _ in range(25)]:
        Grant.objects.create(tenant=acme, role=viewer, subject_type="user", subject_id=subject)
    with CaptureQueriesContext(connection) as queries_for_50:
        admin_client.get(url("tenant", "change", acme.pk))
    assert len(queries_for_50) == len(queries_for_25)


def test_a_tenant_can_still_be_saved_when_it_has_many_grants(
    admin_client: Any, acme: Tenant, viewer: Role
) -> None:
    for _ in range(25):
        Grant.objects.create(tenant=acme, role=viewer, subject_type="user", subject_id=guid())

    response = admin_client.post(
        url("tenant", "change", acme.pk), tenant_change_form(admin_client, acme, name="Acme")
    )

    assert response.status_code == 302
    assert Tenant.objects.get().name == "Acme"
    assert Grant.objects.count() == 25


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
