"""The portal's home page as data: what admins check every day, read within the viewer's tenant scope.

Each reader takes the viewer's ``tenant_ids`` (``None`` for a platform admin) and narrows through the
tenant-scope selectors (``grants_in_scope``, ``tenants_in_scope``, ``subject_labels_in_scope``), so
a tenant administrator's home shows their tenants' grants, changes and labels and nothing else.
The signing keys and the principals are no tenant's: only a viewer the caller allows gets them, and
principals never reach a tenant administrator. Plain dataclasses out; the clock is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from django.db.models import Exists, OuterRef, Q, QuerySet

from accounts.models import Principal
from authz.labels import Subject, subject_label_of_principal, subject_labels_get
from authz.models import Grant, Tenant
from authz.selectors import grants_in_scope, tenants_in_scope
from keys import engine as key_engine
from keys.selectors import published_key_states
from keys.services import rotation_policy

Row = TypeVar("Row")

HISTORY_KINDS = {"+": "created", "~": "changed", "-": "deleted"}


@dataclass(frozen=True)
class Listing(Generic[Row]):
    """The first rows of a list and how many there are in all."""

    rows: list[Row]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.rows)


@dataclass(frozen=True)
class SubjectShown:
    """A grant's subject as the portal shows it: its id, and its label when the viewer may read it."""

    provider: str
    subject_type: str
    subject_id: str
    label: str | None


@dataclass(frozen=True)
class ExpiringGrant:
    grant_id: int
    subject: SubjectShown
    tenant_slug: str
    role_slug: str
    valid_until: datetime


@dataclass(frozen=True)
class GrantChange:
    """One history row of a grant: when, what kind of change, by whom and why."""

    grant_id: int
    grant_exists: bool
    at: datetime
    kind: str  # created, changed or deleted
    by: str | None  # the portal user, or what made the change ("import_policy: policy.json")
    reason: str
    subject: SubjectShown
    tenant_slug: str | None
    role_slug: str | None


@dataclass(frozen=True)
class TenantShown:
    tenant_id: int
    slug: str
    name: str


@dataclass(frozen=True)
class KeyShown:
    kid: str
    algorithm: str
    at: datetime | None  # active: since; pending: signs from; retiring: leaves the JWKS


@dataclass(frozen=True)
class SigningKeysOverview:
    active: KeyShown | None
    pending: KeyShown | None
    next_rotation_at: datetime | None
    rotation_overdue: bool
    retiring: list[KeyShown]


@dataclass(frozen=True)
class PrincipalSeen:
    principal_id: str
    provider: str
    subject: str
    label: str | None
    last_seen_at: datetime


@dataclass(frozen=True)
class Dashboard:
    expiring: Listing[ExpiringGrant]
    changes: Listing[GrantChange]
    suspended: Listing[TenantShown]
    keys: SigningKeysOverview | None
    principals: Listing[PrincipalSeen] | None


def grants_expiring(
    *, tenant_ids: frozenset[int] | None, now: datetime, within: timedelta, limit: int
) -> Listing[ExpiringGrant]:
    """Grants in scope that are valid now and end within ``within``, soonest first."""
    started = Q(valid_from__isnull=True) | Q(valid_from__lte=now)
    grants = grants_in_scope(tenant_ids=tenant_ids).filter(
        started, valid_until__gt=now, valid_until__lte=now + within
    )
    rows = list(
        grants.order_by("valid_until", "pk").values_list(
            "pk", "provider", "subject_type", "subject_id", "tenant__slug", "role__slug", "valid_until"
        )[:limit]
    )
    labels = subject_labels_get(tenant_ids=tenant_ids, subjects=(row[1:4] for row in rows))
    shown = [
        ExpiringGrant(
            grant_id=pk,
            subject=_subject((provider, subject_type, subject_id), labels),
            tenant_slug=tenant,
            role_slug=role,
            valid_until=until,
        )
        for pk, provider, subject_type, subject_id, tenant, role, until in rows
        if until is not None  # always: the query asks for an end
    ]
    return Listing(rows=shown, total=_total(grants, shown, limit))


def grant_changes_since(
    *, tenant_ids: frozenset[int] | None, since: datetime, limit: int
) -> Listing[GrantChange]:
    """Grant history rows recorded since ``since``, newest first: for a tenant administrator, the
    rows of their tenants' grants (each row as it was then: a grant moved away stays out)."""
    history = Grant.history.model.objects.filter(history_date__gte=since)
    if tenant_ids is not None:
        history = history.filter(tenant_id__in=tenant_ids)
    rows = list(
        history.annotate(grant_exists=Exists(Grant.objects.filter(pk=OuterRef("id"))))
        .order_by("-history_date", "-history_id")
        .values_list(
            "id",
            "grant_exists",
            "history_date",
            "history_type",
            "history_user__username",
            "history_change_reason",
            "reason",
            "provider",
            "subject_type",
            "subject_id",
            "tenant__slug",
            "role__slug",
        )[:limit]
    )
    labels = subject_labels_get(tenant_ids=tenant_ids, subjects=(row[7:10] for row in rows))
    shown = [
        GrantChange(
            grant_id=grant_id,
            grant_exists=exists,
            at=at,
            kind=HISTORY_KINDS.get(kind, kind),
            # Who: the portal user; else what made the change, which its reason names ("import_policy:
            # policy.json"). Why: a user's change reason (a revoke's), else the grant's own reason.
            by=user or change_reason or None,
            reason=(change_reason if user else None) or reason or "",
            subject=_subject((provider, subject_type, subject_id), labels),
            tenant_slug=tenant,
            role_slug=role,
        )
        for (
            grant_id,
            exists,
            at,
            kind,
            user,
            change_reason,
            reason,
            provider,
            subject_type,
            subject_id,
            tenant,
            role,
        ) in rows
    ]
    return Listing(rows=shown, total=_total(history, shown, limit))


def tenants_suspended(*, tenant_ids: frozenset[int] | None, limit: int) -> Listing[TenantShown]:
    """Suspended tenants in scope (their grants give nothing while suspended), by slug."""
    tenants = tenants_in_scope(tenant_ids=tenant_ids).filter(status=Tenant.Status.SUSPENDED)
    shown = [
        TenantShown(tenant_id=pk, slug=slug, name=name)
        for pk, slug, name in tenants.order_by("slug").values_list("pk", "slug", "name")[:limit]
    ]
    return Listing(rows=shown, total=_total(tenants, shown, limit))


def signing_keys_overview(*, now: datetime) -> SigningKeysOverview:
    """The published keys: the active one, a pending successor, when the next one signs, the retiring
    ones and when each leaves the JWKS (every token it signed has expired by then)."""
    states = published_key_states()
    policy = rotation_policy()
    active = next((key for key in states if key.phase == key_engine.ACTIVE), None)
    pending = next((key for key in states if key.phase == key_engine.PENDING), None)
    next_at = key_engine.next_activation_at(keys=states, policy=policy)
    retiring = sorted(
        (
            KeyShown(
                kid=key.kid,
                algorithm=key.algorithm,
                at=(key.deactivated_at or key.published_at) + policy.retire_after,
            )
            for key in states
            if key.phase == key_engine.RETIRING
        ),
        key=lambda key: (key.at, key.kid),
    )
    return SigningKeysOverview(
        active=None
        if active is None
        else KeyShown(
            kid=active.kid, algorithm=active.algorithm, at=active.activated_at or active.published_at
        ),
        pending=None
        if pending is None
        else KeyShown(
            kid=pending.kid, algorithm=pending.algorithm, at=pending.published_at + policy.publish_lead
        ),
        next_rotation_at=next_at,
        rotation_overdue=next_at is not None and next_at < now,
        retiring=retiring,
    )


def principals_seen_since(*, since: datetime, limit: int) -> Listing[PrincipalSeen]:
    """Principals that exchanged a token since ``since``, most recent first, with their labels.

    Principals belong to no tenant: this is for platform admins only (``dashboard_get`` sees to it).
    """
    seen = Principal.objects.filter(last_seen_at__gte=since)
    rows = (
        seen.annotate(label=subject_label_of_principal())
        .order_by("-last_seen_at", "pk")
        .values_list("pk", "provider", "subject", "label", "last_seen_at")[:limit]
    )
    shown = [
        PrincipalSeen(principal_id=str(pk), provider=provider, subject=subject, label=label, last_seen_at=at)
        for pk, provider, subject, label, at in rows
        if at is not None  # always: the query asks for a moment
    ]
    return Listing(rows=shown, total=_total(seen, shown, limit))


def dashboard_get(
    *,
    tenant_ids: frozenset[int] | None,
    now: datetime,
    expiring_within: timedelta,
    changes_since: datetime,
    seen_since: datetime,
    show_keys: bool,
    limit: int = 10,
) -> Dashboard:
    """Everything the home page shows to a viewer scoped to ``tenant_ids`` (``None``: a platform admin).

    ``show_keys`` is the caller's word that the viewer may see the signing keys; principals are shown
    to platform admins only, whatever the caller asks.
    """
    return Dashboard(
        expiring=grants_expiring(tenant_ids=tenant_ids, now=now, within=expiring_within, limit=limit),
        changes=grant_changes_since(tenant_ids=tenant_ids, since=changes_since, limit=limit),
        suspended=tenants_suspended(tenant_ids=tenant_ids, limit=limit),
        keys=signing_keys_overview(now=now) if show_keys else None,
        principals=principals_seen_since(since=seen_since, limit=5) if tenant_ids is None else None,
    )


def _subject(subject: Subject, labels: dict[Subject, str]) -> SubjectShown:
    provider, subject_type, subject_id = subject
    return SubjectShown(
        provider=provider, subject_type=subject_type, subject_id=subject_id, label=labels.get(subject)
    )


def _total(queryset: QuerySet[Any], shown: list[Any], limit: int) -> int:
    """How many rows in all: what was read, unless the page was full (then one count query)."""
    return len(shown) if len(shown) < limit else queryset.count()
