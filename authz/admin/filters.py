"""The portal's list filters: grants by validity and provider; tenant and role choices in the user's scope."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.providers import provider_names
from authz.admin.tenant_scope import administered_tenant_ids
from authz.engine import REASON_GRANT_EXPIRED, REASON_GRANT_NOT_YET_VALID, grant_period_exclusion
from authz.models import Grant, Tenant
from authz.selectors import roles_in_scope, tenants_in_scope

EXPIRING_WITHIN = timedelta(days=7)

PERIOD_LABELS = {REASON_GRANT_NOT_YET_VALID: "not yet valid", REASON_GRANT_EXPIRED: "expired"}


def grant_validity(*, valid_from: datetime | None, valid_until: datetime | None, now: datetime) -> str:
    """How a grant's period stands at ``now``: the policy engine's rule, plus the "expiring" band."""
    excluded = grant_period_exclusion(valid_from=valid_from, valid_until=valid_until, now=now)
    if excluded is not None:
        return PERIOD_LABELS[excluded]
    if valid_until is not None and valid_until - now <= EXPIRING_WITHIN:
        return "expiring"
    return "active"


class GrantValidityFilter(admin.SimpleListFilter):
    """Grants by their period at the filter's clock: valid now, expiring in 7 days, expired, not yet valid."""

    title = "grant validity"
    parameter_name = "validity"
    # A seam for tests and for a portal that previews another moment; never monkeypatched.
    clock: Callable[[], datetime] = staticmethod(timezone.now)

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            ("active", "Valid now"),
            ("expiring", "Expiring within 7 days"),
            ("expired", "Expired"),
            ("not_yet_valid", "Not yet valid"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Grant]) -> QuerySet[Grant] | None:
        now = self.clock()
        started = Q(valid_from__isnull=True) | Q(valid_from__lte=now)
        match self.value():
            case "active":
                return queryset.filter(started, Q(valid_until__isnull=True) | Q(valid_until__gt=now))
            case "expiring":
                return queryset.filter(started, valid_until__gt=now, valid_until__lte=now + EXPIRING_WITHIN)
            case "expired":
                return queryset.filter(valid_until__lte=now)
            case "not_yet_valid":
                return queryset.filter(valid_from__gt=now)
        return None


class ProviderListFilter(admin.SimpleListFilter):
    """Grants by identity provider: each trusted one, or those no longer trusted (they give nothing)."""

    title = "identity provider"
    parameter_name = "provider"
    UNTRUSTED = "untrusted"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(name, name) for name in provider_names()] + [(self.UNTRUSTED, "No longer trusted")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Grant]) -> QuerySet[Grant] | None:
        value = self.value()
        if value is None:
            return None
        if value == self.UNTRUSTED:
            return queryset.exclude(provider__in=provider_names())
        return queryset.filter(provider=value)


class TenantStatusFilter(admin.ChoicesFieldListFilter):
    """Grants by their tenant's status (a suspended tenant's grants give nothing, whatever their period).

    Django's own filter of ``tenant__status``, under a name and choices that cannot be mistaken for
    the grant's validity; its parameter (``tenant__status__exact``) is unchanged, so links keep working.
    """

    labels = {Tenant.Status.ACTIVE: "Active tenants", Tenant.Status.SUSPENDED: "Suspended tenants"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = "tenant status"

    def choices(self, changelist: Any) -> Iterator[Any]:
        shown = {str(value): label for value, label in self.labels.items()}
        for choice in super().choices(changelist):
            value = parse_qs(urlsplit(choice["query_string"]).query).get(self.lookup_kwarg, [None])[0]
            yield {**choice, "display": shown.get(value, choice["display"])} if value else choice


class RoleListFilter(admin.RelatedFieldListFilter):
    """The role filter: the roles the user may see, each with its tenant loaded in the same query."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        roles = roles_in_scope(tenant_ids=administered_tenant_ids(request))
        return [(role.pk, str(role)) for role in roles.select_related("tenant").order_by("slug")]


class TenantListFilter(admin.RelatedFieldListFilter):
    """The tenant filter: only the tenants the user administers (their names are not for others)."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        tenants = tenants_in_scope(tenant_ids=administered_tenant_ids(request)).order_by("slug")
        return [(tenant.pk, str(tenant)) for tenant in tenants]
