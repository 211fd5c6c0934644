"""The policy engine, pure: every rule accepted and refused, its boundaries, and a property test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from authz.engine import (
    GROUP,
    REASON_FEATURE_MISSING,
    REASON_GRANT_EXPIRED,
    REASON_GRANT_NOT_YET_VALID,
    REASON_GROUP_NOT_IN_TOKEN,
    REASON_GROUP_OVERAGE,
    REASON_NOT_FOR_AUDIENCE,
    REASON_NOT_REQUESTED,
    REASON_OTHER_SUBJECT,
    REASON_TENANT_SUSPENDED,
    USER,
    AccessSnapshot,
    AudienceInfo,
    EffectiveAccess,
    Exclusion,
    GrantInfo,
    PermissionInfo,
    RoleInfo,
    Source,
    Subject,
    TenantInfo,
    effective_access,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ALICE = "00000000-0000-0000-0000-00000000a11c"
BOB = "00000000-0000-0000-0000-000000000b0b"
ADMINS = "00000000-0000-0000-0000-0000000ad111"

READ = PermissionInfo("orders.read")
WRITE = PermissionInfo("orders.write")
EXPORT = PermissionInfo("orders.export", requires_feature="exports")
VIEWER = RoleInfo("viewer", (READ,))
EDITOR = RoleInfo("editor", (READ, WRITE))
EXPORTER = RoleInfo("exporter", (EXPORT,))
ACME = TenantInfo("acme", features=frozenset({"exports"}))
ORDERS = AudienceInfo("api://orders", frozenset({"orders.read", "orders.write", "orders.export"}))


def grant(
    grant_id: int = 1,
    role: RoleInfo = VIEWER,
    *,
    subject_type: str = USER,
    subject_id: str = ALICE,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
) -> GrantInfo:
    return GrantInfo(grant_id, role, subject_type, subject_id, valid_from, valid_until)


def evaluate(
    *grants: GrantInfo,
    tenant: TenantInfo = ACME,
    subject: Subject | None = None,
    audience: AudienceInfo | None = ORDERS,
    now: datetime = NOW,
    scope: list[str] | None = None,
) -> EffectiveAccess:
    return effective_access(
        snapshot=AccessSnapshot(tenant, grants),
        subject=subject or Subject(ALICE),
        audience=audience,
        now=now,
        requested_scope=scope,
    )


def reasons(access: EffectiveAccess) -> list[str]:
    return [exclusion.reason for exclusion in access.excluded]


# Grants for the user


def test_it_gives_a_user_grant_its_roles_permissions_and_says_which_grant_gave_them() -> None:
    access = evaluate(grant(7, EDITOR))

    assert access.tenant == "acme"
    assert access.roles == ("editor",)
    assert access.permissions == ("orders.read", "orders.write")
    assert access.sources == {
        "orders.read": (Source(7, "editor"),),
        "orders.write": (Source(7, "editor"),),
    }
    assert access.excluded == ()
    assert access.unavailable_scope == ()
    assert access.has_access


def test_it_ignores_a_grant_for_another_user() -> None:
    access = evaluate(grant(3, EDITOR, subject_id=BOB))

    assert access.roles == ()
    assert access.permissions == ()
    assert not access.has_access
    assert access.excluded == (Exclusion(REASON_OTHER_SUBJECT, grant_id=3, role="editor"),)


def test_it_ignores_a_grant_with_an_unknown_subject_type() -> None:
    access = evaluate(grant(4, EDITOR, subject_type="service", subject_id=ALICE))

    assert access.permissions == ()
    assert access.excluded == (Exclusion(REASON_OTHER_SUBJECT, grant_id=4, role="editor"),)


def test_it_treats_subject_types_case_sensitively() -> None:
    access = evaluate(grant(4, EDITOR, subject_type="User"))

    assert access.permissions == ()


def test_it_gives_nothing_for_an_empty_snapshot() -> None:
    access = evaluate()

    assert access == EffectiveAccess(tenant="acme", roles=(), permissions=())
    assert not access.has_access


def test_it_gives_nothing_for_an_empty_snapshot_and_reports_every_requested_scope_unavailable() -> None:
    access = evaluate(scope=["orders.read", "orders.write"])

    assert access.permissions == ()
    assert access.unavailable_scope == ("orders.read", "orders.write")


# Validity window


def test_it_applies_a_grant_from_the_instant_it_becomes_valid() -> None:
    access = evaluate(grant(valid_from=NOW))

    assert access.permissions == ("orders.read",)


def test_it_refuses_a_grant_an_instant_before_it_becomes_valid() -> None:
    access = evaluate(grant(1, valid_from=NOW + timedelta(microseconds=1)))

    assert access.permissions == ()
    assert access.excluded == (Exclusion(REASON_GRANT_NOT_YET_VALID, grant_id=1, role="viewer"),)


def test_it_refuses_a_grant_at_the_instant_it_expires() -> None:
    access = evaluate(grant(1, valid_until=NOW))

    assert access.permissions == ()
    assert access.excluded == (Exclusion(REASON_GRANT_EXPIRED, grant_id=1, role="viewer"),)


def test_it_applies_a_grant_an_instant_before_it_expires() -> None:
    access = evaluate(grant(valid_until=NOW + timedelta(microseconds=1)))

    assert access.permissions == ("orders.read",)


def test_it_applies_a_grant_inside_its_window() -> None:
    access = evaluate(grant(valid_from=NOW - timedelta(days=1), valid_until=NOW + timedelta(days=1)))

    assert access.permissions == ("orders.read",)


def test_it_refuses_a_grant_whose_window_is_empty() -> None:
    access = evaluate(grant(valid_from=NOW, valid_until=NOW))

    assert access.permissions == ()


def test_it_compares_instants_across_time_zones() -> None:
    # 14:00 at +02:00 is 12:00 UTC, the very instant the grant expires.
    access = evaluate(grant(valid_until=datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))))

    assert access.permissions == ()


# Tenant


def test_it_gives_nothing_in_a_suspended_tenant() -> None:
    suspended = TenantInfo("acme", status="suspended", features=frozenset({"exports"}))

    access = evaluate(grant(1, EDITOR), grant(2, EXPORTER), tenant=suspended, scope=["orders.read"])

    assert access.roles == ()
    assert access.permissions == ()
    assert access.sources == {}
    assert not access.has_access
    assert reasons(access) == [REASON_TENANT_SUSPENDED]
    assert access.unavailable_scope == ("orders.read",)


def test_it_gives_nothing_in_a_tenant_with_an_unknown_status() -> None:
    access = evaluate(grant(1, EDITOR), tenant=TenantInfo("acme", status="Active"))

    assert access.permissions == ()
    assert reasons(access) == [REASON_TENANT_SUSPENDED]


# Features


def test_it_gives_a_feature_gated_permission_in_a_tenant_with_the_feature() -> None:
    access = evaluate(grant(1, EXPORTER))

    assert access.permissions == ("orders.export",)


def test_it_withholds_a_feature_gated_permission_in_a_tenant_without_the_feature() -> None:
    plain = TenantInfo("acme", features=frozenset({"reports"}))
    role = RoleInfo("analyst", (READ, EXPORT))

    access = evaluate(grant(5, role), tenant=plain)

    assert access.permissions == ("orders.read",)
    assert access.roles == ("analyst",)
    assert access.excluded == (Exclusion(REASON_FEATURE_MISSING, 5, "analyst", "orders.export"),)


# Groups


def test_it_applies_a_group_grant_when_the_token_holds_the_group() -> None:
    access = evaluate(
        grant(2, EDITOR, subject_type=GROUP, subject_id=ADMINS),
        subject=Subject(ALICE, groups=frozenset({ADMINS, "other"})),
    )

    assert access.permissions == ("orders.read", "orders.write")
    assert access.sources["orders.write"] == (Source(2, "editor"),)


def test_it_refuses_a_group_grant_when_the_token_lacks_the_group() -> None:
    access = evaluate(
        grant(2, EDITOR, subject_type=GROUP, subject_id=ADMINS), subject=Subject(ALICE, groups=frozenset())
    )

    assert access.permissions == ()
    assert access.excluded == (Exclusion(REASON_GROUP_NOT_IN_TOKEN, grant_id=2, role="editor"),)


def test_it_does_not_treat_a_user_id_as_a_group_or_a_group_as_a_user() -> None:
    access = evaluate(
        grant(1, VIEWER, subject_type=GROUP, subject_id=ALICE),
        grant(2, EDITOR, subject_type=USER, subject_id=ADMINS),
        subject=Subject(ALICE, groups=frozenset({ADMINS})),
    )

    assert access.permissions == ()


def test_it_refuses_group_grants_under_group_overage_and_says_so() -> None:
    access = evaluate(
        grant(1, VIEWER),
        grant(2, EDITOR, subject_type=GROUP, subject_id=ADMINS),
        subject=Subject(ALICE, groups=frozenset(), groups_overage=True),
    )

    assert access.permissions == ("orders.read",)
    assert access.roles == ("viewer",)
    assert Exclusion(REASON_GROUP_OVERAGE, grant_id=2, role="editor") in access.excluded


def test_it_refuses_group_grants_under_group_overage_even_when_groups_are_given() -> None:
    # Past 200 groups Entra's list is incomplete; membership must not be taken from it.
    access = evaluate(
        grant(2, EDITOR, subject_type=GROUP, subject_id=ADMINS),
        subject=Subject(ALICE, groups=frozenset({ADMINS}), groups_overage=True),
    )

    assert access.permissions == ()
    assert Exclusion(REASON_GROUP_OVERAGE, grant_id=2, role="editor") in access.excluded


def test_it_says_so_under_group_overage_even_when_no_group_grant_was_loaded() -> None:
    # The selector loads group grants only for the token's groups, so under overage there are none:
    # the decision must still record that group grants could not be considered.
    access = evaluate(grant(1, VIEWER), subject=Subject(ALICE, groups_overage=True))

    assert access.permissions == ("orders.read",)
    assert REASON_GROUP_OVERAGE in reasons(access)


def test_it_does_not_mention_overage_when_there_is_none() -> None:
    access = evaluate(grant(1, VIEWER), subject=Subject(ALICE, groups=frozenset({ADMINS})))

    assert REASON_GROUP_OVERAGE not in reasons(access)


# Several grants


def test_it_lists_every_grant_that_gives_the_same_permission() -> None:
    access = evaluate(
        grant(9, EDITOR),
        grant(3, VIEWER, subject_type=GROUP, subject_id=ADMINS),
        grant(5, VIEWER, subject_type=GROUP, subject_id="readers"),
        subject=Subject(ALICE, groups=frozenset({ADMINS, "readers"})),
    )

    assert access.roles == ("editor", "viewer")
    assert access.sources["orders.read"] == (Source(3, "viewer"), Source(5, "viewer"), Source(9, "editor"))
    assert access.sources["orders.write"] == (Source(9, "editor"),)


def test_it_lists_a_grant_once_even_if_its_role_names_a_permission_twice() -> None:
    access = evaluate(grant(1, RoleInfo("twice", (READ, READ))))

    assert access.sources == {"orders.read": (Source(1, "twice"),)}


def test_it_keeps_the_valid_grants_when_others_are_refused() -> None:
    access = evaluate(
        grant(1, EDITOR, valid_until=NOW - timedelta(seconds=1)),
        grant(2, VIEWER),
        grant(3, EXPORTER, valid_from=NOW + timedelta(days=1)),
    )

    assert access.roles == ("viewer",)
    assert access.permissions == ("orders.read",)
    assert access.sources == {"orders.read": (Source(2, "viewer"),)}
    assert reasons(access) == [REASON_GRANT_EXPIRED, REASON_GRANT_NOT_YET_VALID]


def test_it_gives_the_same_result_whatever_the_order_of_the_grants() -> None:
    grants = [grant(1, EDITOR), grant(2, VIEWER), grant(3, EXPORTER, subject_id=BOB)]

    assert evaluate(*grants) == evaluate(*reversed(grants))


# Audience


def test_it_gives_only_the_permissions_the_audience_registered() -> None:
    reads_only = AudienceInfo("api://reports", frozenset({"orders.read"}))

    access = evaluate(grant(4, EDITOR), audience=reads_only)

    assert access.permissions == ("orders.read",)
    assert access.excluded == (Exclusion(REASON_NOT_FOR_AUDIENCE, 4, "editor", "orders.write"),)


def test_it_gives_no_permission_for_an_audience_that_registered_none() -> None:
    access = evaluate(grant(4, EDITOR), audience=AudienceInfo("api://empty"))

    assert access.permissions == ()
    assert access.sources == {}


def test_it_does_not_filter_by_audience_when_none_is_given() -> None:
    access = evaluate(grant(4, EDITOR), grant(5, EXPORTER), audience=None)

    assert access.permissions == ("orders.export", "orders.read", "orders.write")


# Down-scoping


def test_it_narrows_to_the_requested_scope() -> None:
    access = evaluate(grant(1, EDITOR), scope=["orders.read"])

    assert access.permissions == ("orders.read",)
    assert access.sources == {"orders.read": (Source(1, "editor"),)}
    assert access.unavailable_scope == ()
    assert Exclusion(REASON_NOT_REQUESTED, permission="orders.write") in access.excluded


def test_it_never_widens_beyond_what_is_held() -> None:
    access = evaluate(grant(1, VIEWER), scope=["orders.read", "orders.write", "admin.everything"])

    assert access.permissions == ("orders.read",)
    assert access.unavailable_scope == ("admin.everything", "orders.write")


def test_it_reports_a_requested_permission_the_audience_did_not_register_as_unavailable() -> None:
    reads_only = AudienceInfo("api://reports", frozenset({"orders.read"}))

    access = evaluate(grant(1, EDITOR), audience=reads_only, scope=["orders.write"])

    assert access.permissions == ()
    assert access.unavailable_scope == ("orders.write",)


def test_it_reports_a_requested_feature_gated_permission_as_unavailable_without_the_feature() -> None:
    access = evaluate(grant(1, EXPORTER), tenant=TenantInfo("acme"), scope=["orders.export"])

    assert access.permissions == ()
    assert access.unavailable_scope == ("orders.export",)


def test_it_names_only_the_roles_that_still_contribute_after_down_scoping() -> None:
    access = evaluate(grant(1, EDITOR), grant(2, VIEWER), grant(3, EXPORTER), scope=["orders.write"])

    assert access.roles == ("editor",)
    assert access.permissions == ("orders.write",)


def test_it_keeps_every_role_that_still_contributes_after_down_scoping() -> None:
    access = evaluate(grant(1, EDITOR), grant(2, VIEWER), grant(3, EXPORTER), scope=["orders.read"])

    assert access.roles == ("editor", "viewer")


def test_it_ignores_repeated_requested_scope_values() -> None:
    access = evaluate(grant(1, EDITOR), scope=["orders.read", "orders.read", "nope", "nope"])

    assert access.permissions == ("orders.read",)
    assert access.unavailable_scope == ("nope",)


def test_it_gives_nothing_for_an_empty_requested_scope() -> None:
    access = evaluate(grant(1, EDITOR), scope=[])

    assert access.permissions == ()
    assert access.roles == ()


def test_it_does_not_narrow_when_no_scope_is_requested() -> None:
    access = evaluate(grant(1, EDITOR), scope=None)

    assert access.permissions == ("orders.read", "orders.write")


# Property: nothing is given that no valid grant gives, and the answer is deterministic.

USERS = [ALICE, BOB]
GROUPS = ["g1", "g2", "g3"]
CODES = ["a.read", "a.write", "b.read", "b.admin"]
FEATURES = ["f1", "f2"]
ROLE_SLUGS = ["r1", "r2", "r3"]
# A handful of instants close together, so windows often start or end exactly at ``now``.
INSTANTS = [NOW + timedelta(minutes=offset) for offset in range(-2, 3)]

permissions_st = st.builds(
    PermissionInfo, code=st.sampled_from(CODES), requires_feature=st.none() | st.sampled_from(FEATURES)
)
roles_st = st.builds(
    RoleInfo,
    slug=st.sampled_from(ROLE_SLUGS),
    permissions=st.lists(permissions_st, max_size=4).map(tuple),
)
grants_st = st.builds(
    GrantInfo,
    id=st.integers(min_value=1, max_value=30),
    role=roles_st,
    subject_type=st.sampled_from([USER, GROUP, "robot"]),
    subject_id=st.sampled_from(USERS + GROUPS),
    valid_from=st.none() | st.sampled_from(INSTANTS),
    valid_until=st.none() | st.sampled_from(INSTANTS),
)
tenants_st = st.builds(
    TenantInfo,
    slug=st.just("acme"),
    status=st.sampled_from(["active", "suspended"]),
    features=st.frozensets(st.sampled_from(FEATURES)),
)
snapshots_st = st.builds(AccessSnapshot, tenant=tenants_st, grants=st.lists(grants_st, max_size=8).map(tuple))
subjects_st = st.builds(
    Subject,
    user_id=st.sampled_from(USERS),
    groups=st.frozensets(st.sampled_from(GROUPS)),
    groups_overage=st.booleans(),
)
audiences_st = st.none() | st.builds(
    AudienceInfo, identifier=st.just("api://x"), permissions=st.frozensets(st.sampled_from(CODES))
)
scopes_st = st.none() | st.lists(st.sampled_from([*CODES, "not.a.permission"]), max_size=5)


def _applies(grant: GrantInfo, *, snapshot: AccessSnapshot, subject: Subject, now: datetime) -> bool:
    """Independent oracle: does this grant apply to ``subject`` at ``now``?"""
    if snapshot.tenant.status != "active":
        return False
    if grant.subject_type == USER:
        matches = grant.subject_id == subject.user_id
    elif grant.subject_type == GROUP:
        matches = not subject.groups_overage and grant.subject_id in subject.groups
    else:
        matches = False
    in_window = (grant.valid_from is None or grant.valid_from <= now) and (
        grant.valid_until is None or now < grant.valid_until
    )
    return matches and in_window


def _gives(
    grant: GrantInfo,
    code: str,
    *,
    snapshot: AccessSnapshot,
    subject: Subject,
    audience: AudienceInfo | None,
    now: datetime,
) -> bool:
    """Independent oracle: does this one grant, on its own, give ``code`` at ``now``?"""
    registered = audience is None or code in audience.permissions
    feature_held = any(
        p.code == code and (p.requires_feature is None or p.requires_feature in snapshot.tenant.features)
        for p in grant.role.permissions
    )
    return _applies(grant, snapshot=snapshot, subject=subject, now=now) and registered and feature_held


@settings(max_examples=500, deadline=None)
@given(
    snapshot=snapshots_st,
    subject=subjects_st,
    audience=audiences_st,
    scope=scopes_st,
    now=st.sampled_from(INSTANTS),
)
def test_it_never_gives_a_permission_that_no_valid_grant_gives(
    snapshot: AccessSnapshot,
    subject: Subject,
    audience: AudienceInfo | None,
    scope: list[str] | None,
    now: datetime,
) -> None:
    def run() -> EffectiveAccess:
        return effective_access(
            snapshot=snapshot, subject=subject, audience=audience, now=now, requested_scope=scope
        )

    access = run()
    context = {"snapshot": snapshot, "subject": subject, "audience": audience, "now": now}

    # Sound: every permission has sources, and every source is a grant that really gives it.
    assert set(access.sources) == set(access.permissions)
    for code in access.permissions:
        assert scope is None or code in scope
        assert access.sources[code], f"{code} has no source"
        for source in access.sources[code]:
            assert any(
                g.id == source.grant_id and g.role.slug == source.role and _gives(g, code, **context)
                for g in snapshot.grants
            ), f"{code} claims {source}, which does not give it"

    # Complete: what a valid grant gives is kept (unless down-scoped away), with that grant as a source.
    for g in snapshot.grants:
        for p in g.role.permissions:
            if _gives(g, p.code, **context) and (scope is None or p.code in scope):
                assert Source(g.id, g.role.slug) in access.sources[p.code]

    # Roles: every applicable grant's role; down-scoped, only those still giving a requested permission.
    applicable = [g for g in snapshot.grants if _applies(g, snapshot=snapshot, subject=subject, now=now)]
    if scope is None:
        assert set(access.roles) == {g.role.slug for g in applicable}
        assert access.unavailable_scope == ()
    else:
        assert set(access.roles) == {
            g.role.slug for g in applicable if any(_gives(g, c, **context) for c in set(scope))
        }
        assert set(access.unavailable_scope) == set(scope) - set(access.permissions)
    assert access.has_access == bool(access.roles)

    # Deterministic: the same input gives the same output.
    assert run() == access
