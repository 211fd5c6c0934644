"""The policy engine, pure: which grants apply, in which window, tenant, feature and group."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from authz.engine import (
    GROUP,
    REASON_FEATURE_MISSING,
    REASON_GRANT_EXPIRED,
    REASON_GRANT_NOT_YET_VALID,
    REASON_GROUP_NOT_IN_TOKEN,
    REASON_GROUP_OVERAGE,
    REASON_OTHER_PROVIDER,
    REASON_OTHER_SUBJECT,
    REASON_TENANT_SUSPENDED,
    USER,
    EffectiveAccess,
    Exclusion,
    RoleInfo,
    Source,
    Subject,
    TenantInfo,
)
from tests.support.access import (
    ADMINS,
    ALICE,
    BOB,
    EDITOR,
    EXPORT,
    EXPORTER,
    NOW,
    OTHER_PROVIDER,
    PROVIDER,
    READ,
    VIEWER,
    evaluate,
    grant,
    reasons,
)

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

    assert access.tenant == "acme"  # the decision log still says which tenant refused
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
        subject=Subject(ALICE, provider=PROVIDER, groups=frozenset({ADMINS, "other"})),
    )

    assert access.permissions == ("orders.read", "orders.write")
    assert access.sources["orders.write"] == (Source(2, "editor"),)


def test_it_refuses_a_group_grant_when_the_token_lacks_the_group() -> None:
    access = evaluate(
        grant(2, EDITOR, subject_type=GROUP, subject_id=ADMINS),
        subject=Subject(ALICE, provider=PROVIDER, groups=frozenset()),
    )

    assert access.permissions == ()
    assert access.excluded == (Exclusion(REASON_GROUP_NOT_IN_TOKEN, grant_id=2, role="editor"),)


def test_it_does_not_treat_a_user_id_as_a_group_or_a_group_as_a_user() -> None:
    access = evaluate(
        grant(1, VIEWER, subject_type=GROUP, subject_id=ALICE),
        grant(2, EDITOR, subject_type=USER, subject_id=ADMINS),
        subject=Subject(ALICE, provider=PROVIDER, groups=frozenset({ADMINS})),
    )

    assert access.permissions == ()


def test_it_refuses_group_grants_under_group_overage_and_says_so() -> None:
    access = evaluate(
        grant(1, VIEWER),
        grant(2, EDITOR, subject_type=GROUP, subject_id=ADMINS),
        subject=Subject(ALICE, provider=PROVIDER, groups=frozenset(), groups_overage=True),
    )

    assert access.permissions == ("orders.read",)
    assert access.roles == ("viewer",)
    assert Exclusion(REASON_GROUP_OVERAGE, grant_id=2, role="editor") in access.excluded


def test_under_group_overage_only_the_groups_proved_otherwise_apply() -> None:
    # Under overage the token lists no groups; ``groups`` holds what Graph proved, and a group it
    # did not prove is unproved (overage), not absent.
    access = evaluate(
        grant(2, EDITOR, subject_type=GROUP, subject_id=ADMINS),
        grant(3, VIEWER, subject_type=GROUP, subject_id="00000000-0000-0000-0000-0000000ad222"),
        subject=Subject(ALICE, provider=PROVIDER, groups=frozenset({ADMINS}), groups_overage=True),
    )

    assert access.roles == ("editor",)
    assert Exclusion(REASON_GROUP_OVERAGE, grant_id=3, role="viewer") in access.excluded


def test_it_says_so_under_group_overage_even_when_no_group_grant_was_loaded() -> None:
    # The selector loads group grants only for the token's groups, so under overage there are none:
    # the decision must still record that group grants could not be considered.
    access = evaluate(grant(1, VIEWER), subject=Subject(ALICE, provider=PROVIDER, groups_overage=True))

    assert access.permissions == ("orders.read",)
    assert REASON_GROUP_OVERAGE in reasons(access)


def test_it_does_not_mention_overage_when_there_is_none() -> None:
    access = evaluate(grant(1, VIEWER), subject=Subject(ALICE, provider=PROVIDER, groups=frozenset({ADMINS})))

    assert REASON_GROUP_OVERAGE not in reasons(access)


# Providers: an id means something only within its provider


def test_a_user_grant_of_another_provider_does_not_apply_to_the_same_id() -> None:
    access = evaluate(grant(1, EDITOR, provider=OTHER_PROVIDER), grant(2, VIEWER))

    assert access.permissions == ("orders.read",)
    assert access.excluded == (Exclusion(REASON_OTHER_PROVIDER, grant_id=1, role="editor"),)


def test_a_group_grant_of_another_provider_does_not_apply_to_the_same_group_id() -> None:
    access = evaluate(
        grant(2, EDITOR, subject_type=GROUP, subject_id=ADMINS, provider=OTHER_PROVIDER),
        subject=Subject(ALICE, provider=PROVIDER, groups=frozenset({ADMINS})),
    )

    assert access.permissions == ()
    assert access.excluded == (Exclusion(REASON_OTHER_PROVIDER, grant_id=2, role="editor"),)


def test_a_subject_of_the_other_provider_gets_only_that_providers_grants() -> None:
    access = evaluate(
        grant(1, VIEWER),
        grant(2, EDITOR, provider=OTHER_PROVIDER),
        subject=Subject(ALICE, provider=OTHER_PROVIDER),
    )

    assert access.roles == ("editor",)
    assert access.grants == (2,)


# Several grants


def test_it_lists_every_grant_that_gives_the_same_permission() -> None:
    access = evaluate(
        grant(9, EDITOR),
        grant(3, VIEWER, subject_type=GROUP, subject_id=ADMINS),
        grant(5, VIEWER, subject_type=GROUP, subject_id="readers"),
        subject=Subject(ALICE, provider=PROVIDER, groups=frozenset({ADMINS, "readers"})),
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
