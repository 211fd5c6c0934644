"""An interpretation to the portal's own lists: each target's changelist with its own query parameters.

Slugs and codes become the ids the changelists filter on, looked up within the user's scope only:
a tenant admin's filters can never point at another tenant's rows. Permissions and audiences
filter grants through the roles that give them (the grant list filters by role); a filter that no
role satisfies lists nothing rather than everything.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import QuerySet
from django.urls import reverse

from authz.models import Permission, Role
from authz.selectors import roles_in_scope, tenants_in_scope

CHANGELISTS = {
    "grants": "admin:authz_grant_changelist",
    "roles": "admin:authz_role_changelist",
    "tenants": "admin:authz_tenant_changelist",
    "principals": "admin:accounts_principal_changelist",
}
LIST_FILTERS = ("tenant", "role", "permission", "audience", "subject")
# The grant list's own validity choices (authz.admin.filters.GrantValidityFilter).
VALIDITY_PARAMETER = {
    "active": "active",
    "expiring": "expiring",
    "expired": "expired",
    "future": "not_yet_valid",
}
# The grant list's "expiring" choice looks this far ahead.
EXPIRING_DAYS = 7
CHIP_NAMES = {
    "tenant": "tenant",
    "role": "role",
    "permission": "permission",
    "audience": "audience",
    "subject": "user or group",
    "validity": "validity",
    "within_days": "within days",
    "tenant_status": "tenant status",
}


def results_url(
    *, target: str, filters: dict[str, Any], tenant_ids: frozenset[int] | None, now: datetime
) -> tuple[str, dict[str, str]]:
    """The changelist of ``target`` filtered as ``filters`` say, and its query parameters."""
    params = _PARAMETERS[target](filters, tenant_ids, now)
    url = reverse(CHANGELISTS[target])
    return (f"{url}?{urlencode(params)}" if params else url), params


def search_url(target: str, filters: dict[str, Any]) -> str:
    """The search page's address for an interpretation given as filters (what a chip's removal links to)."""
    params: list[tuple[str, str]] = [("target", target)]
    for name, value in filters.items():
        params.append((name, ",".join(value) if isinstance(value, list) else str(value)))
    return f"{reverse('portal-search')}?{urlencode(params)}"


def chips(target: str, filters: dict[str, Any], labels: dict[str, str]) -> list[dict[str, Any]]:
    """One chip per filter: its name, the values shown, the value edited, and the search without it."""
    shown: list[dict[str, Any]] = []
    for name, value in filters.items():
        values = value if isinstance(value, list) else [str(value)]
        rest = {other: v for other, v in filters.items() if other != name}
        if name == "validity":
            rest.pop("within_days", None)
        shown.append(
            {
                "name": name,
                "title": CHIP_NAMES[name],
                "shown": [labels.get(v, v) if name == "subject" else v for v in values],
                "value": ",".join(values),
                "remove": search_url(target, rest),
            }
        )
    return shown


def _grants(filters: dict[str, Any], tenant_ids: frozenset[int] | None, now: datetime) -> dict[str, str]:
    params: dict[str, str] = {}
    if "tenant" in filters:
        tenants = tenants_in_scope(tenant_ids=tenant_ids).filter(slug__in=filters["tenant"])
        _ids(params, "tenant__id", sorted(tenants.values_list("pk", flat=True)))
    if {"role", "permission", "audience"} & set(filters):
        roles = _roles(filters, tenant_ids)
        _ids(params, "role__id", sorted(roles.values_list("pk", flat=True).distinct()))
    if "subject" in filters:
        subjects = filters["subject"]
        if len(subjects) == 1:
            params["subject_id"] = subjects[0]
        else:
            params["subject_id__in"] = ",".join(subjects)
    _validity(params, filters, now)
    if "tenant_status" in filters:
        params["tenant__status__exact"] = filters["tenant_status"]
    return params


def _roles(filters: dict[str, Any], tenant_ids: frozenset[int] | None) -> QuerySet[Role]:
    roles = roles_in_scope(tenant_ids=tenant_ids)
    if "role" in filters:
        roles = roles.filter(slug__in=filters["role"])
    if "permission" in filters:
        roles = roles.filter(pk__in=Role.objects.filter(permissions__code__in=filters["permission"]))
    if "audience" in filters:
        reaching = Role.objects.filter(permissions__audiences__identifier__in=filters["audience"])
        roles = roles.filter(pk__in=reaching)
    return roles


def _validity(params: dict[str, str], filters: dict[str, Any], now: datetime) -> None:
    validity, days = filters.get("validity"), filters.get("within_days")
    if validity is None:
        return
    if validity == "expiring" and days is not None and days != EXPIRING_DAYS:
        params["validity"] = "active"
        params["valid_until__lte"] = _moment(now + timedelta(days=days))
        return
    params["validity"] = VALIDITY_PARAMETER[validity]
    if validity == "expired" and days is not None:
        params["valid_until__gte"] = _moment(now - timedelta(days=days))
    elif validity == "future" and days is not None:
        params["valid_from__lte"] = _moment(now + timedelta(days=days))


def _moment(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat()


def _ids(params: dict[str, str], lookup: str, ids: list[int]) -> None:
    if len(ids) == 1:
        params[f"{lookup}__exact"] = str(ids[0])
    elif ids:
        params[f"{lookup}__in"] = ",".join(map(str, ids))
    else:  # named, but none of it in scope or existing: list nothing, never everything
        params[lookup.replace("__id", "__isnull")] = "True"


def _roles_list(filters: dict[str, Any], tenant_ids: frozenset[int] | None, now: datetime) -> dict[str, str]:
    params: dict[str, str] = {}
    if "tenant" in filters:
        tenants = tenants_in_scope(tenant_ids=tenant_ids).filter(slug__in=filters["tenant"])
        _ids(params, "tenant__id", sorted(tenants.values_list("pk", flat=True)))
    if "role" in filters:
        roles = roles_in_scope(tenant_ids=tenant_ids).filter(slug__in=filters["role"])
        params["id__in"] = ",".join(map(str, sorted(roles.values_list("pk", flat=True)))) or "0"
    if {"permission", "audience"} & set(filters):
        permissions = Permission.objects.all()
        if "permission" in filters:
            permissions = permissions.filter(code__in=filters["permission"])
        if "audience" in filters:
            permissions = permissions.filter(audiences__identifier__in=filters["audience"])
        ids = sorted(set(permissions.values_list("pk", flat=True)))
        params["permissions__id__in"] = ",".join(map(str, ids)) or "0"
    return params


def _tenants(filters: dict[str, Any], tenant_ids: frozenset[int] | None, now: datetime) -> dict[str, str]:
    params: dict[str, str] = {}
    if "tenant_status" in filters:
        params["status__exact"] = filters["tenant_status"]
    if "tenant" in filters:
        tenants = tenants_in_scope(tenant_ids=tenant_ids).filter(slug__in=filters["tenant"])
        params["id__in"] = ",".join(map(str, sorted(tenants.values_list("pk", flat=True)))) or "0"
    return params


def _principals(filters: dict[str, Any], tenant_ids: frozenset[int] | None, now: datetime) -> dict[str, str]:
    if "subject" not in filters:
        return {}
    return {"subject__in": ",".join(filters["subject"])}


_PARAMETERS = {"grants": _grants, "roles": _roles_list, "tenants": _tenants, "principals": _principals}
