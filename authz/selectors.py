"""Reads: one principal's access snapshots and one audience, in one query whatever their size.

The exchange runs these on every request, so they are written as one hand-built SQL statement
(grants joined to tenant, role and permissions, plus the audience's permissions, as flat rows)
rather than ORM querysets: the ORM's query compilation cost more than the database round trip.
Table and column names come from the models' ``_meta``, so a rename cannot silently break them.

The portal's tenant scope (which tenants, roles, grants and audiences a portal user may see) is
read with plain querysets at the end: those pages are not on the exchange's hot path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from authz.engine import (
    AccessSnapshot,
    AudienceInfo,
    GrantInfo,
    PermissionInfo,
    RoleInfo,
    TenantInfo,
    role_applies_in,
)
from authz.models import Audience, Grant, Permission, Role, Tenant

GRANT_ROW, AUDIENCE_ROW, TENANT_ROW = 0, 1, 2


def exchange_inputs_get(
    *,
    provider: str,
    user_id: str,
    group_ids: Iterable[str] = (),
    tenant_slug: str | None = None,
    audience: str | None = None,
) -> tuple[dict[str, AccessSnapshot], AudienceInfo | None]:
    """Snapshots of every tenant where the user or a group holds a grant (or just one), and the audience.

    Only grants of ``provider`` are read: the user's and the groups' ids are that provider's. A
    tenant named by ``tenant_slug`` is returned even without grants, so callers can tell
    "no access" from "no such tenant" (a missing tenant is simply absent). The audience, if
    asked, comes with the permission codes it registered (``None`` if not registered). One query.
    """
    groups = sorted(set(group_ids))
    sql, params = _grants_sql(provider, user_id, groups, tenant_slug)
    if tenant_slug is not None:
        tenant_sql, tenant_params = _tenant_sql(tenant_slug)
        sql, params = f"{sql} UNION ALL {tenant_sql}", params + tenant_params
    if audience is not None:
        audience_sql, audience_params = _audience_sql(audience)
        sql, params = f"{sql} UNION ALL {audience_sql}", params + audience_params
    return _parse(_fetch(sql, params), tenant_slug, audience)


def group_ids_granted(*, provider: str, tenant_slug: str | None, now: datetime, limit: int) -> list[str]:
    """The distinct group ids of ``provider`` that grants valid at ``now`` name, in one tenant or all active.

    What group overage must ask Graph about. At most ``limit + 1`` ids, in a stable order, so the
    caller can tell that there were more than it will ask. One query.
    """
    grants = Grant.objects.filter(subject_type=Grant.SubjectType.GROUP, provider=provider)
    if tenant_slug is not None:
        grants = grants.filter(tenant__slug=tenant_slug)
    else:
        grants = grants.filter(tenant__status=Tenant.Status.ACTIVE)
    grants = grants.filter(Q(valid_from__isnull=True) | Q(valid_from__lte=now))
    grants = grants.filter(Q(valid_until__isnull=True) | Q(valid_until__gt=now))
    ids = grants.order_by("subject_id").values_list("subject_id", flat=True).distinct()
    return list(ids[: limit + 1])


# --- SQL -----------------------------------------------------------------------------------------
@cache
def _tables() -> dict[str, str]:
    quote = connection.ops.quote_name
    return {
        "grant": quote(Grant._meta.db_table),
        "tenant": quote(Tenant._meta.db_table),
        "role": quote(Role._meta.db_table),
        "permission": quote(Permission._meta.db_table),
        "audience": quote(Audience._meta.db_table),
        "role_permissions": quote(Role.permissions.through._meta.db_table),
        "audience_permissions": quote(Audience.permissions.through._meta.db_table),
    }


def _grants_sql(provider: str, user_id: str, groups: list[str], tenant_slug: str | None) -> tuple[str, list]:
    t = _tables()
    subjects = "(g.subject_type = %s AND g.subject_id = %s)"
    params: list = [provider, "user", user_id]
    if groups:
        subjects += f" OR (g.subject_type = %s AND g.subject_id IN ({', '.join(['%s'] * len(groups))}))"
        params += ["group", *groups]
    # A user's and a group's id mean something only within their provider.
    where = f"g.provider = %s AND ({subjects})"
    if tenant_slug is not None:
        where += " AND t.slug = %s"
        params.append(tenant_slug)
    sql = (
        # Only model table names and %s placeholders are formatted in; every value is a parameter.
        f"SELECT {GRANT_ROW}, g.id, g.subject_type, g.provider, g.subject_id, g.valid_from, g.valid_until,"
        " t.slug, t.status, t.features, r.slug, p.code, p.requires_feature, r.tenant_id, g.tenant_id"
        f" FROM {t['grant']} g"
        f" JOIN {t['tenant']} t ON t.id = g.tenant_id"
        f" JOIN {t['role']} r ON r.id = g.role_id"
        f" LEFT JOIN {t['role_permissions']} rp ON rp.role_id = r.id"
        f" LEFT JOIN {t['permission']} p ON p.id = rp.permission_id"
        f" WHERE {where}"
    )
    return sql, params


def _tenant_sql(slug: str) -> tuple[str, list]:
    t = _tables()
    sql = (
        f"SELECT {TENANT_ROW}, NULL, NULL, NULL, NULL, NULL, NULL, t.slug, t.status, t.features, NULL, NULL,"
        " NULL, NULL, NULL"
        f" FROM {t['tenant']} t WHERE t.slug = %s"
    )
    return sql, [slug]


def _audience_sql(identifier: str) -> tuple[str, list]:
    t = _tables()
    sql = (
        f"SELECT {AUDIENCE_ROW}, NULL, NULL, NULL, NULL, NULL, NULL, a.identifier, NULL, NULL, NULL, p.code,"
        " NULL, NULL, NULL"
        f" FROM {t['audience']} a"
        f" LEFT JOIN {t['audience_permissions']} ap ON ap.audience_id = a.id"
        f" LEFT JOIN {t['permission']} p ON p.id = ap.permission_id"
        " WHERE a.identifier = %s"
    )
    return sql, [identifier]


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# --- rows to snapshots ---------------------------------------------------------------------------
def _parse(
    rows: list[tuple], tenant_slug: str | None, audience_identifier: str | None
) -> tuple[dict[str, AccessSnapshot], AudienceInfo | None]:
    tenants: dict[str, TenantInfo] = {}
    grants: dict[int, dict] = {}
    audience_found = False
    audience_codes: set[str] = set()
    for (
        kind,
        grant_id,
        subject_type,
        provider,
        subject_id,
        valid_from,
        valid_until,
        slug,
        status,
        features,
        role,
        code,
        feature,
        role_tenant_id,
        grant_tenant_id,
    ) in rows:
        if kind == AUDIENCE_ROW:
            audience_found = True
            if code is not None:
                audience_codes.add(code)
            continue
        # A tenant-owned role gives nothing outside its tenant, even if a row was written around the
        # portal's and the import's validation.
        if kind == GRANT_ROW and not role_applies_in(role_tenant=role_tenant_id, tenant=grant_tenant_id):
            continue
        if slug not in tenants:
            tenants[slug] = TenantInfo(slug=slug, status=status, features=_features(features))
        if kind == TENANT_ROW:
            continue
        grant = grants.setdefault(
            grant_id,
            {
                "tenant": slug,
                "role": role,
                "permissions": {},
                "subject_type": subject_type,
                "provider": provider,
                "subject_id": subject_id,
                "valid_from": _datetime(valid_from),
                "valid_until": _datetime(valid_until),
            },
        )
        if code is not None:
            grant["permissions"][code] = PermissionInfo(code, feature or None)

    by_tenant: dict[str, list[GrantInfo]] = {slug: [] for slug in sorted(tenants)}
    for grant_id, grant in sorted(grants.items()):
        permissions = tuple(grant["permissions"][code] for code in sorted(grant["permissions"]))
        by_tenant[grant["tenant"]].append(
            GrantInfo(
                id=grant_id,
                role=RoleInfo(grant["role"], permissions),
                subject_type=grant["subject_type"],
                provider=grant["provider"],
                subject_id=grant["subject_id"],
                valid_from=grant["valid_from"],
                valid_until=grant["valid_until"],
            )
        )
    snapshots = {slug: AccessSnapshot(tenants[slug], tuple(found)) for slug, found in by_tenant.items()}
    audience = (
        AudienceInfo(audience_identifier, frozenset(audience_codes))
        if audience_found and audience_identifier is not None
        else None
    )
    return snapshots, audience


def _features(value: object) -> frozenset[str]:
    # The JSON column should hold a list of codes; anything else (a bare string would read as its
    # letters) gives no feature rather than a wrong one.
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError:
            return frozenset()
    if not isinstance(value, list):
        return frozenset()
    return frozenset(code for code in value if isinstance(code, str))


def _datetime(value: datetime | str | None) -> datetime | None:
    """Raw rows give aware datetimes on PostgreSQL and naive UTC ones (or text) on SQLite."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value
        value = parse_datetime(text)
        if value is None:
            raise ValueError(f"not a datetime: {text!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


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


def tenant_ids_administered_by(*, user: Any) -> frozenset[int] | None:
    """The ids of ``tenants_administered_by(user=user)``: ``None`` for a platform admin (all of them)."""
    tenants = tenants_administered_by(user=user)
    return None if tenants is None else frozenset(tenants.values_list("pk", flat=True))


def tenants_in_scope(
    *, tenant_ids: frozenset[int] | None, tenants: QuerySet[Tenant] | None = None
) -> QuerySet[Tenant]:
    """The tenants (of ``tenants``, default all) a portal user scoped to ``tenant_ids`` may see.

    ``tenant_ids`` is ``None`` for a platform admin, who sees all of them.
    """
    tenants = Tenant.objects.all() if tenants is None else tenants
    return tenants if tenant_ids is None else tenants.filter(pk__in=tenant_ids)


def roles_in_scope(
    *, tenant_ids: frozenset[int] | None, roles: QuerySet[Role] | None = None
) -> QuerySet[Role]:
    """The roles (of ``roles``, default all) a portal user scoped to ``tenant_ids`` may see and grant.

    Those are the global roles and their tenants' own; all of them for a platform admin (``None``).
    """
    roles = Role.objects.all() if roles is None else roles
    if tenant_ids is None:
        return roles
    return roles.filter(Q(tenant__isnull=True) | Q(tenant_id__in=tenant_ids))


def grants_in_scope(
    *, tenant_ids: frozenset[int] | None, grants: QuerySet[Grant] | None = None
) -> QuerySet[Grant]:
    """The grants (of ``grants``, default all) in the tenants ``tenant_ids``; all of them for ``None``."""
    grants = Grant.objects.all() if grants is None else grants
    return grants if tenant_ids is None else grants.filter(tenant_id__in=tenant_ids)


def audiences_in_scope(
    *, tenant_ids: frozenset[int] | None, audiences: QuerySet[Audience] | None = None
) -> QuerySet[Audience]:
    """The audiences (of ``audiences``, default all) that concern the tenants ``tenant_ids``.

    Those register at least one permission that a role usable there (a global role or one of those
    tenants' own) gives; all of them for a platform admin (``None``). A tenant admin is never shown
    the audiences of other tenants' own roles, nor audiences no role of theirs reaches.
    """
    audiences = Audience.objects.all() if audiences is None else audiences
    if tenant_ids is None:
        return audiences
    roles = roles_in_scope(tenant_ids=tenant_ids)
    return audiences.filter(permissions__roles__in=roles).distinct()
