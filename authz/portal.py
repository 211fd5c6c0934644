"""Portal writes beyond a plain form save: revoking and extending grants in bulk, tenant administrators.

A revoke ends a grant now (``valid_until = now``) instead of deleting it: the row, who granted it
and why stay readable in the portal, its history records who revoked it and why, and the policy
engine already treats an ended grant as "expired", so the preview can say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet

from authz.models import Grant, Tenant, TenantAdministrator

# django-simple-history keeps the change reason in a 100-character column.
REASON_MAX_LENGTH = 100


@dataclass(frozen=True)
class BulkResult:
    changed: int
    unchanged: int


def _reason(reason: str) -> str:
    text = " ".join(reason.split())
    if not text:
        raise ValidationError("Give a reason: it is kept in each grant's history.")
    if len(text) > REASON_MAX_LENGTH:
        raise ValidationError(f"Keep the reason within {REASON_MAX_LENGTH} characters.")
    return text


def _save_with_reason(grant: Grant, *, reason: str, by: Any, fields: list[str]) -> None:
    grant._change_reason = reason
    grant._history_user = by
    grant.save(update_fields=fields)


def _locked(grants: QuerySet[Grant]) -> list[Grant]:
    # A fresh query over the chosen ids: the caller's queryset may outer-join nullable relations
    # (the changelist's granted_by), which FOR UPDATE refuses; only the grant rows are locked.
    rows = Grant.objects.filter(pk__in=grants.values("pk")).select_related("tenant", "role")
    return list(rows.select_for_update(of=("self",)).order_by("pk"))


def grants_revoke(*, grants: QuerySet[Grant], reason: str, by: Any, now: datetime) -> BulkResult:
    """End each grant at ``now``, recording ``reason`` and ``by`` in its history.

    Grants already ended are left as they are. A grant that has not started yet loses its
    ``valid_from`` too (a period may not end before it starts); its history keeps the old dates.
    """
    reason = _reason(reason)
    changed = 0
    with transaction.atomic():
        rows = _locked(grants)
        for grant in rows:
            if grant.valid_until is not None and grant.valid_until <= now:
                continue
            grant.valid_until = now
            if grant.valid_from is not None and grant.valid_from >= now:
                grant.valid_from = None
            _save_with_reason(grant, reason=reason, by=by, fields=["valid_from", "valid_until"])
            changed += 1
    return BulkResult(changed=changed, unchanged=len(rows) - changed)


def grants_extend(
    *, grants: QuerySet[Grant], valid_until: datetime, reason: str, by: Any, now: datetime
) -> BulkResult:
    """Move each grant's end to ``valid_until``; never shortens a grant (a revoke does that).

    Grants ending later or never are left as they are. All or nothing: a grant that would start
    after the new end refuses the whole extension with a message naming it.
    """
    reason = _reason(reason)
    if valid_until <= now:
        raise ValidationError("The new end must be in the future; to end grants now, revoke them.")
    with transaction.atomic():
        rows = _locked(grants)
        starting_after = [g for g in rows if g.valid_from is not None and g.valid_from >= valid_until]
        if starting_after:
            names = "; ".join(str(grant) for grant in starting_after[:5])
            raise ValidationError(f"These grants start after the new end: {names}.")
        changed = 0
        for grant in rows:
            if grant.valid_until is None or grant.valid_until >= valid_until:
                continue
            grant.valid_until = valid_until
            _save_with_reason(grant, reason=reason, by=by, fields=["valid_until"])
            changed += 1
    return BulkResult(changed=changed, unchanged=len(rows) - changed)


def grant_save(*, grant: Grant, by: Any) -> Grant:
    """Save a grant from the portal; whoever creates it is recorded as its granter (never changed later)."""
    if grant.pk is None:
        grant.granted_by = by
    grant.save()
    return grant


def tenant_administrator_add(*, user: Any, tenant: Tenant, by: Any) -> TenantAdministrator:
    """Make ``user`` an administrator of ``tenant``; they become staff so they can sign in to the portal.

    Staff status alone opens nothing: a non-superuser sees only the tenants they hold rows for.
    """
    with transaction.atomic():
        administrator = TenantAdministrator(user=user, tenant=tenant)
        administrator._history_user = by  # type: ignore[attr-defined]
        administrator.full_clean()
        administrator.save()
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
    return administrator


def tenant_administrator_exists(*, user: Any) -> bool:
    """Whether ``user`` administers at least one tenant (PORTAL_STAFF_CHECK: keeps them staff at sign-in)."""
    return TenantAdministrator.objects.filter(user_id=user.pk).exists()
