"""Reads: one principal's access snapshot and one audience, in a constant number of queries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import F, Q, QuerySet

from authz.engine import AccessSnapshot, AudienceInfo, GrantInfo, PermissionInfo, RoleInfo, TenantInfo
from authz.models import Audience, Grant, Tenant


def access_snapshots_get(
    *, user_id: str, group_ids: Iterable[str] = (), tenant_slug: str | None = None
) -> dict[str, AccessSnapshot]:
    """Snapshots of every tenant where the user or one of the groups holds a grant (or just one).

    One query whatever the number of grants, roles, permissions or tenants: grants are joined to
    their tenant, role and the role's permissions and read as flat rows. A tenant named by
    ``tenant_slug`` is returned even without grants, so callers can tell "no access" from
    "no such tenant" (a missing tenant is simply absent).
    """
    condition = Q(subject_type="user", subject_id=user_id)
    groups = sorted(set(group_ids))
    if groups:
        condition |= Q(subject_type="group", subject_id__in=groups)
    # A tenant-owned role gives nothing outside its tenant, even if a row was written around the
    # portal's and the import's validation.
    usable_role = Q(role__tenant__isnull=True) | Q(role__tenant=F("tenant"))
    rows = Grant.objects.filter(condition).filter(usable_role)
    if tenant_slug is not None:
        rows = rows.filter(tenant__slug=tenant_slug)
    rows = rows.values_list(
        "id",
        "subject_type",
        "subject_id",
        "valid_from",
        "valid_until",
        "tenant__slug",
        "tenant__status",
        "tenant__features",
        "role__slug",
        "role__permissions__code",
        "role__permissions__requires_feature",
    ).order_by()

    tenants: dict[str, TenantInfo] = {}
    grants: dict[int, dict] = {}
    for (
        grant_id,
        subject_type,
        subject_id,
        valid_from,
        valid_until,
        slug,
        status,
        features,
        role_slug,
        permission_code,
        requires_feature,
    ) in rows:
        if slug not in tenants:
            tenants[slug] = TenantInfo(slug=slug, status=status, features=_features(features))
        grant = grants.setdefault(
            grant_id,
            {
                "tenant": slug,
                "role": role_slug,
                "permissions": [],
                "subject_type": subject_type,
                "subject_id": subject_id,
                "valid_from": valid_from,
                "valid_until": valid_until,
            },
        )
        if permission_code is not None:
            grant["permissions"].append(PermissionInfo(permission_code, requires_feature or None))

    if tenant_slug is not None and tenant_slug not in tenants:
        tenant = Tenant.objects.filter(slug=tenant_slug).values_list("status", "features").first()
        if tenant is not None:
            tenants[tenant_slug] = TenantInfo(tenant_slug, tenant[0], _features(tenant[1]))

    by_tenant: dict[str, list[GrantInfo]] = {slug: [] for slug in sorted(tenants)}
    for grant_id, grant in sorted(grants.items()):
        role = RoleInfo(grant["role"], tuple(sorted(grant["permissions"], key=lambda p: p.code)))
        by_tenant[grant["tenant"]].append(
            GrantInfo(
                id=grant_id,
                role=role,
                subject_type=grant["subject_type"],
                subject_id=grant["subject_id"],
                valid_from=grant["valid_from"],
                valid_until=grant["valid_until"],
            )
        )
    return {slug: AccessSnapshot(tenants[slug], tuple(found)) for slug, found in by_tenant.items()}


def _features(value: object) -> frozenset[str]:
    # The JSON column should hold a list of codes; anything else (a bare string would read as its
    # letters) gives no feature rather than a wrong one.
    if not isinstance(value, list):
        return frozenset()
    return frozenset(code for code in value if isinstance(code, str))


def audience_get(*, identifier: str) -> AudienceInfo | None:
    """The audience and the permission codes it registered; ``None`` if it is not registered."""
    rows = list(Audience.objects.filter(identifier=identifier).values_list("permissions__code", flat=True))
    if not rows:
        return None
    return AudienceInfo(identifier, frozenset(code for code in rows if code is not None))


def tenants_administered_by(*, user: Any) -> QuerySet[Tenant] | None:
    """The tenants ``user`` may administer in the portal: ``None`` for a platform admin (all of them).

    Platform admins are active superusers. Any other user is scoped to the tenants they hold a
    ``TenantAdministrator`` row for (none for an anonymous or inactive user), whatever Django model
    permissions they were given: those alone never open a tenant.
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Tenant.objects.none()
    if user.is_superuser:
        return None
    return Tenant.objects.filter(administrators__user_id=user.pk)
