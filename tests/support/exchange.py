"""What the exchange tests share: the orders policy's shape, a group and a second user, and days from now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from authz.models import Audience, Grant, Role, Tenant
from tests import fake_entra as entra

GROUP = "66666666-6666-4666-8666-666666666666"
OTHER_OID = "77777777-7777-4777-8777-777777777777"


@dataclass
class OrdersPolicy:
    """The ``orders_policy`` fixture's rows (tests/conftest.py); ``grant`` gives a role in a tenant."""

    acme: Tenant
    globex: Tenant
    viewer: Role
    editor: Role
    orders: Audience

    def grant(
        self,
        role: Role,
        tenant: Tenant,
        *,
        subject: str = entra.OID,
        kind: str = "user",
        provider: str = entra.TENANT_ID,
        **kw,
    ) -> Grant:
        """A grant to a user (or ``kind="group"``) of ``provider`` (by default the fake Entra's first)."""
        return Grant.objects.create(
            tenant=tenant, role=role, subject_type=kind, provider=provider, subject_id=subject, **kw
        )


def days(n: int) -> datetime:
    """The moment ``n`` days from now (negative: ago)."""
    return timezone.now() + timedelta(days=n)
