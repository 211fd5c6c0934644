"""The policy engine, pure: what the audience registered, and down-scoping to the requested scope."""

from __future__ import annotations

from authz.engine import (
    REASON_FEATURE_MISSING,
    REASON_NOT_FOR_AUDIENCE,
    REASON_NOT_REQUESTED,
    REASON_ROLE_GIVES_NOTHING,
    AudienceInfo,
    Exclusion,
    PermissionInfo,
    RoleInfo,
    Source,
    TenantInfo,
)
from tests.support.access import EDITOR, EXPORTER, VIEWER, evaluate, grant, reasons

BILLER = RoleInfo("biller", (PermissionInfo("billing.read"),))

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


def test_it_names_only_the_roles_that_give_a_permission_for_the_audience() -> None:
    access = evaluate(grant(1, EDITOR), grant(2, BILLER))

    assert access.roles == ("editor",)
    assert access.permissions == ("orders.read", "orders.write")
    assert Exclusion(REASON_ROLE_GIVES_NOTHING, grant_id=2, role="biller") in access.excluded
    assert access.has_access


def test_it_names_no_role_whose_permissions_all_need_a_feature_the_tenant_lacks() -> None:
    access = evaluate(grant(1, VIEWER), grant(2, EXPORTER), tenant=TenantInfo("acme"))

    assert access.roles == ("viewer",)
    assert reasons(access) == [REASON_FEATURE_MISSING, REASON_ROLE_GIVES_NOTHING]


def test_a_caller_whose_roles_give_nothing_for_the_audience_still_has_access_to_the_tenant() -> None:
    access = evaluate(grant(1, EDITOR), audience=AudienceInfo("api://empty"))

    assert access.roles == ()
    assert access.permissions == ()
    assert access.has_access


def test_it_names_a_role_once_whatever_the_number_of_grants_giving_it() -> None:
    access = evaluate(grant(1, VIEWER), grant(2, VIEWER), grant(3, BILLER))

    assert access.roles == ("viewer",)
    assert reasons(access) == [REASON_NOT_FOR_AUDIENCE, REASON_ROLE_GIVES_NOTHING]


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
