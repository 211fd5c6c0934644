"""The home page's readers (authz.dashboard): what each shows, and that a tenant administrator's stays
within their tenants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Principal, User
from authz.dashboard import (
    dashboard_get,
    grant_changes_since,
    grants_expiring,
    signing_keys_overview,
    tenants_suspended,
)
from authz.models import Grant, Role, SubjectLabel, Tenant
from authz.policy.services import policy_import
from authz.portal import grants_revoke
from keys import services as key_services
from tests.support.portal import guid

pytestmark = pytest.mark.django_db

PROVIDER = "11111111-1111-4111-8111-111111111111"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
WEEK = timedelta(days=7)


def a_grant(
    tenant: Tenant,
    role: Role,
    *,
    ends_in: timedelta | None,
    starts_in: timedelta | None = None,
    subject_id: str | None = None,
    by: Any = None,
    reason: str = "",
) -> Grant:
    grant = Grant(
        tenant=tenant,
        role=role,
        subject_type="user",
        provider=PROVIDER,
        subject_id=subject_id or guid(),
        valid_from=None if starts_in is None else NOW + starts_in,
        valid_until=None if ends_in is None else NOW + ends_in,
        reason=reason,
    )
    grant._history_user = by
    grant.save()
    return grant


def expiring(tenant_ids: frozenset[int] | None) -> list[int]:
    listing = grants_expiring(tenant_ids=tenant_ids, now=NOW, within=WEEK, limit=10)
    return [row.grant_id for row in listing.rows]


def test_grants_expiring_within_seven_days_come_soonest_first(
    acme: Tenant, globex: Tenant, viewer: Role
) -> None:
    in_six = a_grant(acme, viewer, ends_in=timedelta(days=6))
    in_two = a_grant(globex, viewer, ends_in=timedelta(days=2))
    a_grant(acme, viewer, ends_in=timedelta(days=8))  # later than a week
    a_grant(acme, viewer, ends_in=-timedelta(hours=1))  # over already
    a_grant(
        acme, viewer, ends_in=timedelta(days=3), starts_in=timedelta(days=1)
    )  # not started: not "expiring"
    a_grant(acme, viewer, ends_in=None)  # open-ended

    assert expiring(None) == [in_two.pk, in_six.pk]


def test_a_tenant_administrator_sees_only_their_tenants_expiring_grants(
    acme: Tenant, globex: Tenant, viewer: Role
) -> None:
    ours = a_grant(acme, viewer, ends_in=timedelta(days=6))
    a_grant(globex, viewer, ends_in=timedelta(days=2))

    assert expiring(frozenset({acme.pk})) == [ours.pk]
    assert expiring(frozenset()) == []


def test_a_full_page_counts_every_row_and_says_how_many_more(acme: Tenant, viewer: Role) -> None:
    for day in range(1, 6):
        a_grant(acme, viewer, ends_in=timedelta(days=day))

    listing = grants_expiring(tenant_ids=None, now=NOW, within=WEEK, limit=3)

    assert (len(listing.rows), listing.total, listing.more) == (3, 5, 2)


def test_changes_of_the_last_day_say_who_made_them_and_why(
    acme: Tenant, viewer: Role, admin_user: User
) -> None:
    by_hand = a_grant(acme, viewer, ends_in=None, by=admin_user, reason="ticket OPS-4411")
    grants_revoke(
        grants=Grant.objects.filter(pk=by_hand.pk), reason="left the team", by=admin_user, now=timezone.now()
    )
    policy_import(
        document={"grants": [{"tenant": "acme", "role": "viewer", "provider": PROVIDER, "user": guid()}]},
        source="policy.json",
    )
    old = a_grant(acme, viewer, ends_in=None, by=admin_user)
    old.history.update(history_date=timezone.now() - timedelta(hours=25))

    changes = grant_changes_since(tenant_ids=None, since=timezone.now() - timedelta(hours=24), limit=10).rows

    shown = [(change.kind, change.by, change.reason) for change in changes]
    assert shown == [
        ("created", "import_policy: policy.json", ""),
        ("changed", "admin", "left the team"),
        ("created", "admin", "ticket OPS-4411"),
    ]
    assert all(change.grant_exists for change in changes)


def test_a_tenant_administrator_sees_only_their_tenants_changes_deletions_included(
    acme: Tenant, globex: Tenant, viewer: Role
) -> None:
    ours = a_grant(acme, viewer, ends_in=None)
    theirs = a_grant(globex, viewer, ends_in=None)
    ours_id, theirs_id = ours.pk, theirs.pk
    ours.delete()
    theirs.delete()

    changes = grant_changes_since(tenant_ids=frozenset({acme.pk}), since=NOW - timedelta(days=3650), limit=10)

    assert [(c.grant_id, c.kind, c.grant_exists) for c in changes.rows] == [
        (ours_id, "deleted", False),
        (ours_id, "created", False),
    ]
    assert theirs_id not in {c.grant_id for c in changes.rows}
    assert {c.tenant_slug for c in changes.rows} == {"acme"}


def test_labels_beside_grants_are_only_those_the_viewer_may_read(
    acme: Tenant, globex: Tenant, viewer: Role
) -> None:
    shared, elsewhere = guid(), guid()
    a_grant(acme, viewer, ends_in=timedelta(days=1), subject_id=shared)
    gone = a_grant(acme, viewer, ends_in=None, subject_id=elsewhere)
    a_grant(globex, viewer, ends_in=None, subject_id=elsewhere)
    gone.delete()  # acme's record of the subject stays in the changes; the subject is globex's alone now
    for subject_id, label in ((shared, "Finance approvers"), (elsewhere, "Globex contractor")):
        SubjectLabel.objects.create(
            provider=PROVIDER, subject_type="user", subject_id=subject_id, label=label
        )

    home = dashboard_get(
        tenant_ids=frozenset({acme.pk}),
        now=NOW,
        expiring_within=WEEK,
        changes_since=NOW - timedelta(days=3650),
        seen_since=NOW,
        show_keys=False,
    )

    assert [row.subject.label for row in home.expiring.rows] == ["Finance approvers"]
    labels = {change.subject.subject_id: change.subject.label for change in home.changes.rows}
    assert labels == {shared: "Finance approvers", elsewhere: None}


def test_suspended_tenants_are_those_in_scope(acme: Tenant, globex: Tenant, beta: Tenant) -> None:
    globex.status = Tenant.Status.SUSPENDED
    globex.save()

    assert [t.slug for t in tenants_suspended(tenant_ids=None, limit=10).rows] == ["beta", "globex"]
    assert [t.slug for t in tenants_suspended(tenant_ids=frozenset({acme.pk, beta.pk}), limit=10).rows] == [
        "beta"
    ]
    assert tenants_suspended(tenant_ids=frozenset({acme.pk}), limit=10).total == 0


def test_principals_seen_today_are_shown_to_platform_admins_only(acme: Tenant) -> None:
    seen = Principal.objects.create(
        provider=PROVIDER, subject=guid(), last_seen_at=NOW - timedelta(minutes=5)
    )
    Principal.objects.create(provider=PROVIDER, subject=guid(), last_seen_at=NOW - timedelta(days=1))
    SubjectLabel.objects.create(
        provider=PROVIDER, subject_type="user", subject_id=seen.subject, label="Bob (ops)"
    )

    def home(tenant_ids: frozenset[int] | None) -> Any:
        return dashboard_get(
            tenant_ids=tenant_ids,
            now=NOW,
            expiring_within=WEEK,
            changes_since=NOW,
            seen_since=NOW.replace(hour=0, minute=0),
            show_keys=False,
        )

    principals = home(None).principals
    assert principals is not None
    assert principals.total == 1
    assert [(p.subject, p.label) for p in principals.rows] == [(seen.subject, "Bob (ops)")]
    assert home(frozenset({acme.pk})).principals is None


def test_the_keys_show_the_active_key_the_next_rotation_and_when_retiring_keys_leave(
    db: Any, freeze_clock: Any, settings: Any
) -> None:
    clock = freeze_clock(key_services, at=NOW)
    key_services.signing_key_rotate()
    policy = key_services.rotation_policy()

    first = signing_keys_overview(now=NOW)
    assert first.active is not None and first.active.at == NOW
    assert (first.pending, first.retiring, first.rotation_overdue) == (None, [], False)
    assert first.next_rotation_at == NOW + policy.rotation_interval

    key_services.signing_key_rotate(force=True)
    successor = signing_keys_overview(now=NOW).pending
    assert successor is not None and successor.at == NOW + policy.publish_lead

    switched = clock.advance(policy.publish_lead.total_seconds())
    key_services.signing_key_rotate()
    after = signing_keys_overview(now=switched)
    assert after.active is not None and after.active.kid == successor.kid
    assert [(key.kid, key.at) for key in after.retiring] == [
        (first.active.kid, switched + policy.retire_after)
    ]

    late = signing_keys_overview(now=switched + policy.rotation_interval + timedelta(minutes=1))
    assert late.rotation_overdue


def test_the_keys_are_read_only_when_the_caller_allows_them(acme: Tenant, signing_key: None) -> None:
    def home(show_keys: bool) -> Any:
        return dashboard_get(
            tenant_ids=frozenset({acme.pk}),
            now=NOW,
            expiring_within=WEEK,
            changes_since=NOW,
            seen_since=NOW,
            show_keys=show_keys,
        )

    assert home(False).keys is None
    assert home(True).keys is not None
