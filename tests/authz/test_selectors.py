"""The selectors: one principal's access snapshots and one audience, read with the ORM."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from authz.engine import AccessSnapshot, AudienceInfo, GrantInfo, PermissionInfo, RoleInfo, TenantInfo
from authz.models import Audience, Grant, Permission, Role, Tenant
from authz.selectors import exchange_inputs_get, group_ids_granted
from tests import fake_entra as entra

pytestmark = pytest.mark.django_db

ALICE = "2f0e3b4c-8a1d-4c5e-9f60-7b8c9d0e1f2a"
BOB = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
ADMINS = "11111111-2222-4333-8444-555555555555"
READERS = "66666666-7777-4888-8999-aaaaaaaaaaaa"
DIRECTORY, OTHER_DIRECTORY = entra.TENANT_ID, entra.SECOND_TENANT_ID
FROM = datetime(2026, 1, 1, tzinfo=UTC)
UNTIL = datetime(2027, 1, 1, tzinfo=UTC)


@pytest.fixture
def tenants_and_roles() -> dict:
    """Two tenants, three permissions (one feature-gated), two roles (one owned by acme)."""
    read = Permission.objects.create(code="orders.read")
    write = Permission.objects.create(code="orders.write")
    export = Permission.objects.create(code="orders.export", requires_feature="exports")
    acme = Tenant.objects.create(slug="acme", name="Acme", features=["exports", "reports"])
    globex = Tenant.objects.create(slug="globex", name="Globex", status=Tenant.Status.SUSPENDED)
    viewer = Role.objects.create(slug="viewer", name="Viewer")
    viewer.permissions.set([read])
    manager = Role.objects.create(slug="manager", name="Manager", tenant=acme)
    manager.permissions.set([read, write, export])
    return {"acme": acme, "globex": globex, "viewer": viewer, "manager": manager}


def grant(
    tenant: Tenant,
    role: Role,
    subject_id: str = ALICE,
    subject_type: str = "user",
    provider: str = DIRECTORY,
    **extra,
) -> Grant:
    return Grant.objects.create(
        tenant=tenant, role=role, subject_type=subject_type, provider=provider, subject_id=subject_id, **extra
    )


# exchange_inputs_get: the snapshots


def test_it_loads_the_users_grants_with_roles_permissions_and_tenant_state(tenants_and_roles: dict) -> None:
    mine = grant(tenants_and_roles["acme"], tenants_and_roles["manager"], valid_from=FROM, valid_until=UNTIL)
    suspended = grant(tenants_and_roles["globex"], tenants_and_roles["viewer"])

    snapshots = exchange_inputs_get(provider=DIRECTORY, user_id=ALICE)[0]

    assert snapshots == {
        "acme": AccessSnapshot(
            TenantInfo("acme", "active", frozenset({"exports", "reports"})),
            (
                GrantInfo(
                    id=mine.id,
                    role=RoleInfo(
                        "manager",
                        (
                            PermissionInfo("orders.export", "exports"),
                            PermissionInfo("orders.read"),
                            PermissionInfo("orders.write"),
                        ),
                    ),
                    subject_type="user",
                    subject_id=ALICE,
                    valid_from=FROM,
                    valid_until=UNTIL,
                    provider=DIRECTORY,
                ),
            ),
        ),
        "globex": AccessSnapshot(
            TenantInfo("globex", "suspended", frozenset()),
            (
                GrantInfo(
                    suspended.id,
                    RoleInfo("viewer", (PermissionInfo("orders.read"),)),
                    "user",
                    ALICE,
                    provider=DIRECTORY,
                ),
            ),
        ),
    }


def test_it_loads_a_grant_whose_role_has_no_permissions(tenants_and_roles: dict) -> None:
    empty = Role.objects.create(slug="empty", name="Empty")
    given = grant(tenants_and_roles["acme"], empty)

    snapshot = exchange_inputs_get(provider=DIRECTORY, user_id=ALICE)[0]["acme"]

    assert snapshot.grants == (GrantInfo(given.id, RoleInfo("empty", ()), "user", ALICE, provider=DIRECTORY),)


def test_it_leaves_out_another_users_grants(tenants_and_roles: dict) -> None:
    grant(tenants_and_roles["acme"], tenants_and_roles["viewer"], subject_id=BOB)

    assert exchange_inputs_get(provider=DIRECTORY, user_id=ALICE)[0] == {}
    assert list(exchange_inputs_get(provider=DIRECTORY, user_id=BOB)[0]) == ["acme"]


def test_it_loads_group_grants_only_for_the_given_groups(tenants_and_roles: dict) -> None:
    admins = grant(tenants_and_roles["acme"], tenants_and_roles["manager"], ADMINS, "group")
    grant(tenants_and_roles["acme"], tenants_and_roles["viewer"], READERS, "group")

    snapshots = exchange_inputs_get(provider=DIRECTORY, user_id=ALICE, group_ids=[ADMINS])[0]

    assert [(g.id, g.subject_type, g.subject_id) for g in snapshots["acme"].grants] == [
        (admins.id, "group", ADMINS)
    ]


def test_it_loads_no_group_grants_without_groups(tenants_and_roles: dict) -> None:
    grant(tenants_and_roles["acme"], tenants_and_roles["manager"], ADMINS, "group")

    assert exchange_inputs_get(provider=DIRECTORY, user_id=ALICE)[0] == {}


def test_it_does_not_match_a_user_id_against_group_grants_or_a_group_against_user_grants(
    tenants_and_roles: dict,
) -> None:
    grant(tenants_and_roles["acme"], tenants_and_roles["viewer"], ALICE, "group")
    grant(tenants_and_roles["acme"], tenants_and_roles["manager"], ADMINS, "user")

    assert exchange_inputs_get(provider=DIRECTORY, user_id=ALICE, group_ids=[ADMINS])[0] == {}


def test_it_leaves_out_the_grants_of_the_same_user_id_from_another_provider(tenants_and_roles: dict) -> None:
    theirs = grant(tenants_and_roles["acme"], tenants_and_roles["manager"], provider=OTHER_DIRECTORY)
    mine = grant(tenants_and_roles["acme"], tenants_and_roles["viewer"])

    snapshots = exchange_inputs_get(provider=DIRECTORY, user_id=ALICE)[0]
    other = exchange_inputs_get(provider=OTHER_DIRECTORY, user_id=ALICE)[0]

    assert [g.id for g in snapshots["acme"].grants] == [mine.id]
    assert [(g.id, g.provider) for g in other["acme"].grants] == [(theirs.id, OTHER_DIRECTORY)]


def test_it_leaves_out_the_grants_of_the_same_group_id_from_another_provider(tenants_and_roles: dict) -> None:
    grant(tenants_and_roles["acme"], tenants_and_roles["manager"], ADMINS, "group", provider=OTHER_DIRECTORY)

    assert exchange_inputs_get(provider=DIRECTORY, user_id=ALICE, group_ids=[ADMINS])[0] == {}
    assert exchange_inputs_get(provider="acme-okta", user_id=ALICE, group_ids=[ADMINS])[0] == {}


def test_the_groups_granted_are_those_of_the_provider(tenants_and_roles: dict) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    grant(tenants_and_roles["acme"], tenants_and_roles["viewer"], ADMINS, "group")
    grant(tenants_and_roles["acme"], tenants_and_roles["viewer"], READERS, "group", provider=OTHER_DIRECTORY)

    assert group_ids_granted(provider=DIRECTORY, tenant_slug=None, now=now, limit=10) == [ADMINS]
    assert group_ids_granted(provider=OTHER_DIRECTORY, tenant_slug="acme", now=now, limit=10) == [READERS]


def test_it_loads_user_and_group_grants_together(tenants_and_roles: dict) -> None:
    mine = grant(tenants_and_roles["acme"], tenants_and_roles["viewer"])
    admins = grant(tenants_and_roles["acme"], tenants_and_roles["manager"], ADMINS, "group")

    snapshot = exchange_inputs_get(provider=DIRECTORY, user_id=ALICE, group_ids={ADMINS, READERS})[0]["acme"]

    assert [g.id for g in snapshot.grants] == sorted([mine.id, admins.id])


def test_it_filters_to_the_named_tenant(tenants_and_roles: dict) -> None:
    grant(tenants_and_roles["acme"], tenants_and_roles["viewer"])
    grant(tenants_and_roles["globex"], tenants_and_roles["viewer"])

    snapshots = exchange_inputs_get(provider=DIRECTORY, user_id=ALICE, tenant_slug="globex")[0]

    assert list(snapshots) == ["globex"]
    assert snapshots["globex"].tenant.status == "suspended"


def test_it_returns_a_named_tenant_without_grants_with_its_state(tenants_and_roles: dict) -> None:
    grant(tenants_and_roles["globex"], tenants_and_roles["viewer"])

    snapshots = exchange_inputs_get(provider=DIRECTORY, user_id=ALICE, tenant_slug="acme")[0]

    acme = TenantInfo("acme", "active", frozenset({"exports", "reports"}))
    assert snapshots == {"acme": AccessSnapshot(acme)}


def test_it_returns_nothing_for_an_unknown_tenant(tenants_and_roles: dict) -> None:
    grant(tenants_and_roles["acme"], tenants_and_roles["viewer"])

    assert exchange_inputs_get(provider=DIRECTORY, user_id=ALICE, tenant_slug="initech")[0] == {}


def test_it_leaves_out_a_tenant_owned_role_granted_in_another_tenant(tenants_and_roles: dict) -> None:
    # The portal and the import refuse this; a row written around them must still give nothing.
    other = Tenant.objects.create(slug="initech", name="Initech")
    grant(other, tenants_and_roles["manager"])

    assert exchange_inputs_get(provider=DIRECTORY, user_id=ALICE, tenant_slug="initech")[0] == {
        "initech": AccessSnapshot(TenantInfo("initech", "active", frozenset()))
    }
    assert exchange_inputs_get(provider=DIRECTORY, user_id=ALICE)[0] == {}


@pytest.mark.parametrize(
    ("stored", "features"),
    [
        # A string is iterable: taken as is it would grant every one-letter feature code.
        ("exports", frozenset()),
        ({"exports": True}, frozenset()),
        (42, frozenset()),
        (["exports", 3, {"a": 1}, ["b"]], frozenset({"exports"})),
    ],
)
def test_it_reads_only_feature_codes_from_a_malformed_features_value(
    tenants_and_roles: dict, stored: object, features: frozenset[str]
) -> None:
    Tenant.objects.filter(slug="acme").update(features=stored)
    grant(tenants_and_roles["acme"], tenants_and_roles["viewer"])

    assert exchange_inputs_get(provider=DIRECTORY, user_id=ALICE)[0]["acme"].tenant.features == features
    assert (
        exchange_inputs_get(provider=DIRECTORY, user_id=BOB, tenant_slug="acme")[0]["acme"].tenant.features
        == features
    )


def test_it_returns_an_empty_result_for_a_user_with_nothing(tenants_and_roles: dict) -> None:
    assert exchange_inputs_get(provider=DIRECTORY, user_id=ALICE, group_ids=[ADMINS])[0] == {}


# The query count is the same at 1 grant and at 200 grants.


def build_grants(count: int, *, tenants: int) -> int:
    """``count`` grants for ALICE and her groups over several tenants, roles and permissions."""
    permissions = Permission.objects.bulk_create(
        Permission(code=f"p{n}.use", requires_feature="f1" if n % 3 == 0 else "") for n in range(20)
    )
    roles = [Role.objects.create(slug=f"role-{n}", name=f"Role {n}") for n in range(10)]
    for n, role in enumerate(roles):
        role.permissions.set(permissions[n : n + 5])
    tenant_rows = Tenant.objects.bulk_create(
        Tenant(slug=f"tenant-{n}", name=f"Tenant {n}", features=["f1"]) for n in range(tenants)
    )
    subjects = [("user", ALICE)] + [("group", f"group-{n:02d}") for n in range(19)]
    # Tenants vary fastest, then roles, so even a few hundred grants spread over all of them.
    combinations = itertools.islice(itertools.product(subjects, roles, tenant_rows), count)
    Grant.objects.bulk_create(
        Grant(tenant=tenant, role=role, subject_type=kind, provider=DIRECTORY, subject_id=subject)
        for (kind, subject), role, tenant in combinations
    )
    return count


GROUP_IDS = [f"group-{n:02d}" for n in range(19)]


@pytest.mark.parametrize("count", [1, 200])
def test_it_reads_every_tenant_in_one_query_whatever_the_number_of_grants(
    count: int, django_assert_num_queries
) -> None:
    build_grants(count, tenants=5)

    with django_assert_num_queries(1):
        snapshots = exchange_inputs_get(provider=DIRECTORY, user_id=ALICE, group_ids=GROUP_IDS)[0]

    assert sum(len(s.grants) for s in snapshots.values()) == count
    assert len(snapshots) == min(count, 5)
    assert len({g.role.slug for s in snapshots.values() for g in s.grants}) == min(count, 10)
    assert all(len(g.role.permissions) == 5 for s in snapshots.values() for g in s.grants)


@pytest.mark.parametrize("count", [1, 200])
def test_it_reads_one_tenant_in_one_query_whatever_the_number_of_grants(
    count: int, django_assert_num_queries
) -> None:
    build_grants(count, tenants=1)

    with django_assert_num_queries(1):
        snapshots = exchange_inputs_get(
            provider=DIRECTORY, user_id=ALICE, group_ids=GROUP_IDS, tenant_slug="tenant-0"
        )[0]

    assert len(snapshots["tenant-0"].grants) == count


def test_it_reads_a_named_tenant_without_grants_in_one_query(django_assert_num_queries) -> None:
    build_grants(1, tenants=2)
    Grant.objects.filter(tenant__slug="tenant-1").delete()

    with django_assert_num_queries(1):
        snapshots = exchange_inputs_get(
            provider=DIRECTORY, user_id=ALICE, group_ids=GROUP_IDS, tenant_slug="tenant-1"
        )[0]

    assert snapshots["tenant-1"].grants == ()


# exchange_inputs_get: the audience


def test_it_returns_an_audience_with_its_registered_permissions(tenants_and_roles: dict) -> None:
    orders = Audience.objects.create(identifier="api://orders", name="Orders")
    orders.permissions.set(Permission.objects.filter(code__in=["orders.read", "orders.write"]))

    assert exchange_inputs_get(provider=DIRECTORY, user_id=ALICE, audience="api://orders")[1] == AudienceInfo(
        "api://orders", frozenset({"orders.read", "orders.write"})
    )


def test_it_returns_an_audience_that_registered_no_permissions(tenants_and_roles: dict) -> None:
    Audience.objects.create(identifier="api://empty", name="Empty")

    assert exchange_inputs_get(provider=DIRECTORY, user_id=ALICE, audience="api://empty")[1] == AudienceInfo(
        "api://empty", frozenset()
    )


def test_it_returns_none_for_an_unknown_audience(tenants_and_roles: dict) -> None:
    Audience.objects.create(identifier="api://orders", name="Orders")

    assert exchange_inputs_get(provider=DIRECTORY, user_id=ALICE, audience="api://payments")[1] is None
    assert exchange_inputs_get(provider=DIRECTORY, user_id=ALICE, audience="API://ORDERS")[1] is None
    assert exchange_inputs_get(provider=DIRECTORY, user_id=ALICE, audience="")[1] is None


def test_it_reads_an_audience_in_one_query(tenants_and_roles: dict, django_assert_num_queries) -> None:
    orders = Audience.objects.create(identifier="api://orders", name="Orders")
    orders.permissions.set(Permission.objects.all())

    with django_assert_num_queries(1):
        exchange_inputs_get(provider=DIRECTORY, user_id=ALICE, audience="api://orders")[1]


def test_the_exchange_reads_snapshots_and_audience_in_one_query(
    tenants_and_roles: dict, django_assert_num_queries
) -> None:
    mine = grant(tenants_and_roles["acme"], tenants_and_roles["viewer"])
    orders = Audience.objects.create(identifier="api://orders", name="Orders")
    orders.permissions.set(Permission.objects.filter(code__in=["orders.read", "orders.write"]))

    with django_assert_num_queries(1):
        snapshots, audience = exchange_inputs_get(
            provider=DIRECTORY,
            user_id=ALICE,
            group_ids=[READERS],
            tenant_slug="acme",
            audience="api://orders",
        )

    assert [g.id for g in snapshots["acme"].grants] == [mine.id]
    assert audience == AudienceInfo("api://orders", frozenset({"orders.read", "orders.write"}))
    assert exchange_inputs_get(provider=DIRECTORY, user_id=ALICE, audience="api://nosuch")[1] is None
