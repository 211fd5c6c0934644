"""A portal after a day of work, for the home page's browser tests: two tenants' grants, labels, changes.

Acme is alice's tenant; globex is another tenant's, and everything of globex's (its slug, grants,
labels, changes, its suspension) must stay off alice's pages, so each carries a recognisable name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Principal, User
from authz.models import Grant, Permission, Role, SubjectLabel, Tenant
from authz.policy.services import policy_import
from authz.portal import grants_revoke, tenant_administrator_add
from tests.support.browser import PASSWORD

PROVIDER = "11111111-1111-4111-8111-111111111111"
FINANCE = "2f0e3b4c-8a1d-4c5e-9f60-7b8c9d0e1f2a"  # a group in acme, labelled
BOB = "5e7224a6-0c1d-4e2f-8a3b-4c5d6e7fb66c"  # a user in acme, labelled, seen today
IMPORTED = "00000000-0000-4000-8000-000000000abc"  # a user in acme, granted by import
CONTRACTOR = "7c0ffee0-1111-4222-8333-944455556666"  # a user in globex only, labelled
UNLABELLED = "a7de96ec-1b2c-4d3e-8f40-5a6b7c8da5c8"  # a user in acme, no label


@pytest.fixture
def one_provider(settings: Any) -> None:
    """The day's grants' directory is the one trusted provider (the forms then choose it)."""
    settings.ENTRA_TENANT_ID = [PROVIDER]


@dataclass(frozen=True)
class DayOfWork:
    admin: User
    alice: User
    acme: Tenant
    globex: Tenant
    viewer: Role
    finance_grant: Grant
    contractor_grant: Grant
    unlabelled_grant: Grant


def a_day_of_work() -> DayOfWork:
    """Grants ending this week in acme and globex, their labels, the day's changes, principals seen."""
    now = timezone.now()
    admin = User.objects.create_superuser("platform-admin", password=PASSWORD)
    alice = User.objects.create_user("alice", password=PASSWORD)
    read = Permission.objects.create(code="orders.read", description="Read orders")
    viewer = Role.objects.create(slug="viewer", name="Viewer")
    viewer.permissions.set([read])
    acme = Tenant.objects.create(slug="acme", name="Acme Corporation")
    globex = Tenant.objects.create(slug="globex-secret", name="Globex Secret Projects")
    Tenant.objects.create(slug="initech", name="Initech", status=Tenant.Status.SUSPENDED)
    Tenant.objects.create(slug="globex-frozen", name="Globex Frozen", status=Tenant.Status.SUSPENDED)
    tenant_administrator_add(user=alice, tenant=acme, by=admin)
    # Alice administers a suspended tenant of her own as well: hers is shown, the others are not.
    archive = Tenant.objects.create(slug="acme-archive", name="Acme Archive", status=Tenant.Status.SUSPENDED)
    tenant_administrator_add(user=alice, tenant=archive, by=admin)

    def grant(tenant: Tenant, subject_type: str, subject_id: str, ends_in: timedelta, reason: str) -> Grant:
        made = Grant(
            tenant=tenant,
            role=viewer,
            subject_type=subject_type,
            provider=PROVIDER,
            subject_id=subject_id,
            valid_from=now - timedelta(days=30),
            valid_until=now + ends_in,
            granted_by=admin,
            reason=reason,
        )
        made._history_user = admin
        made.save()
        return made

    finance = grant(acme, "group", FINANCE, timedelta(days=2), "quarterly review OPS-4411")
    grant(acme, "user", BOB, timedelta(days=40), "on call rota")
    unlabelled = grant(acme, "user", UNLABELLED, timedelta(days=5), "temporary cover")
    contractor = grant(globex, "user", CONTRACTOR, timedelta(days=3), "globex contract GX-77")
    leaver = grant(globex, "user", CONTRACTOR.replace("7c0f", "8c0f"), timedelta(days=90), "globex hire")
    grants_revoke(grants=Grant.objects.filter(pk=leaver.pk), reason="globex leaver GX-99", by=admin, now=now)
    policy_import(
        document={"grants": [{"tenant": "acme", "role": "viewer", "provider": PROVIDER, "user": IMPORTED}]},
        source="policy.json",
    )
    for subject_type, subject_id, label in (
        ("group", FINANCE, "Finance approvers"),
        ("user", BOB, "Bob from operations"),
        ("user", CONTRACTOR, "Globex contractor"),
    ):
        SubjectLabel.objects.create(
            provider=PROVIDER, subject_type=subject_type, subject_id=subject_id, label=label
        )
    Principal.objects.create(provider=PROVIDER, subject=BOB, last_seen_at=now - timedelta(minutes=5))
    Principal.objects.create(provider=PROVIDER, subject=UNLABELLED, last_seen_at=now - timedelta(days=3))
    return DayOfWork(
        admin=admin,
        alice=alice,
        acme=acme,
        globex=globex,
        viewer=viewer,
        finance_grant=finance,
        contractor_grant=contractor,
        unlabelled_grant=unlabelled,
    )
