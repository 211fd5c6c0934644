"""The portal for the authorization model: tenants, permissions, audiences, roles and grants.

Every admin keeps a history (django-simple-history) of who changed what; the invariants live in
the models' ``clean()`` and the UI parsing in ``authz.forms``, so these classes only arrange pages.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.forms import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from authz.forms import TenantForm
from authz.models import Audience, Grant, Permission, Role, Tenant, guid_normalise

EXPIRING_WITHIN = timedelta(days=7)


def grant_validity(*, valid_from: datetime | None, valid_until: datetime | None, now: datetime) -> str:
    """How a grant's period stands at ``now``; the same bounds as the policy engine (from ≤ now < until)."""
    if valid_from is not None and now < valid_from:
        return "not yet valid"
    if valid_until is not None and now >= valid_until:
        return "expired"
    if valid_until is not None and valid_until - now <= EXPIRING_WITHIN:
        return "expiring"
    return "active"


class GrantValidityFilter(admin.SimpleListFilter):
    """Grants by their period at the filter's clock: active, expiring in 7 days, expired, not yet valid."""

    title = "validity"
    parameter_name = "validity"
    # A seam for tests and for a portal that previews another moment; never monkeypatched.
    clock: Callable[[], datetime] = staticmethod(timezone.now)

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            ("active", "Active"),
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


class RoleListFilter(admin.RelatedFieldListFilter):
    """The role filter, loading each role's tenant in the same query (a role's name shows it)."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [(role.pk, str(role)) for role in Role.objects.select_related("tenant").order_by("slug")]


class AuditedAdmin(SimpleHistoryAdmin):
    """An admin whose history is an audit trail: visible to whoever may view the object, never reverted.

    Reverting would re-save an old version outside the normal form flow; a change is made again
    through the change form instead, where it is validated and recorded like any other.
    """

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True


def _changelist_url(model: type, **params: Any) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


@admin.register(Permission)
class PermissionAdmin(AuditedAdmin):
    list_display = ("code", "description", "requires_feature")
    list_filter = ("requires_feature",)
    search_fields = ("code", "description", "requires_feature")
    search_help_text = "A permission code, a word of its description or a feature code."


@admin.register(Audience)
class AudienceAdmin(AuditedAdmin):
    list_display = ("identifier", "name", "permission_codes")
    search_fields = ("identifier", "name", "permissions__code")
    search_help_text = "An audience id (api://…), its name, or a permission code it receives."
    autocomplete_fields = ("permissions",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Audience]:
        return super().get_queryset(request).prefetch_related("permissions")

    @admin.display(description="permissions")
    def permission_codes(self, audience: Audience) -> str:
        return ", ".join(permission.code for permission in audience.permissions.all())


@admin.register(Role)
class RoleAdmin(AuditedAdmin):
    list_display = ("slug", "name", "tenant", "permission_codes")
    list_filter = ("tenant",)
    list_select_related = ("tenant",)
    search_fields = ("slug", "name", "tenant__slug", "permissions__code")
    search_help_text = "A role slug or name, a tenant slug, or a permission code the role holds."
    autocomplete_fields = ("tenant", "permissions")
    empty_value_display = "(global)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Role]:
        # The tenant is part of a role's name, here and in the grant form's role autocomplete.
        return super().get_queryset(request).select_related("tenant").prefetch_related("permissions")

    @admin.display(description="permissions")
    def permission_codes(self, role: Role) -> str:
        return ", ".join(permission.code for permission in role.permissions.all())


class RecentGrantFormSet(BaseInlineFormSet):
    """Only the newest grants of the tenant: a tenant may have thousands, the changelist pages them."""

    limit = 20

    def get_queryset(self) -> QuerySet[Grant]:
        if not hasattr(self, "_queryset"):
            queryset = super().get_queryset().select_related("role__tenant", "granted_by")
            self._queryset = queryset.order_by("-created_at", "-pk")[: self.limit]
        return self._queryset


class RecentGrantInline(admin.TabularInline):
    """The tenant's newest grants, read only; each links to its own page, the list to all of them."""

    model = Grant
    formset = RecentGrantFormSet
    verbose_name_plural = f"newest grants (at most {RecentGrantFormSet.limit}; see 'All grants' above)"
    fields = ("subject_type", "subject_id", "role", "valid_from", "valid_until", "validity", "granted_by")
    readonly_fields = fields
    show_change_link = True
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="validity")
    def validity(self, grant: Grant) -> str:
        return grant_validity(valid_from=grant.valid_from, valid_until=grant.valid_until, now=timezone.now())


class NewGrantInline(admin.TabularInline):
    """Blank rows to grant roles in this tenant; existing grants are never loaded here."""

    model = Grant
    verbose_name_plural = "grant a role in this tenant"
    fields = ("role", "subject_type", "subject_id", "valid_from", "valid_until", "reason")
    autocomplete_fields = ("role",)
    extra = 1

    def get_queryset(self, request: HttpRequest) -> QuerySet[Grant]:
        return super().get_queryset(request).none()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Tenant)
class TenantAdmin(AuditedAdmin):
    form = TenantForm
    list_display = ("slug", "name", "status", "feature_list", "grants_link")
    list_filter = ("status",)
    search_fields = ("slug", "name")
    search_help_text = "A tenant slug or name."
    readonly_fields = ("created_at", "grants_summary")
    inlines = (RecentGrantInline, NewGrantInline)

    def get_inlines(self, request: HttpRequest, obj: Tenant | None) -> tuple:
        # A tenant being created has no grants yet, and its own roles do not exist yet either.
        return self.inlines if obj is not None else ()

    @admin.display(description="features")
    def feature_list(self, tenant: Tenant) -> str:
        return ", ".join(tenant.features or [])

    @admin.display(description="grants")
    def grants_link(self, tenant: Tenant) -> str:
        return format_html('<a href="{}">grants</a>', _changelist_url(Grant, tenant__id__exact=tenant.pk))

    @admin.display(description="all grants")
    def grants_summary(self, tenant: Tenant) -> str:
        if tenant.pk is None:
            return "-"
        return format_html(
            '{} grants: <a href="{}">all</a> · <a href="{}">expiring within 7 days</a>',
            tenant.grants.count(),
            _changelist_url(Grant, tenant__id__exact=tenant.pk),
            _changelist_url(Grant, tenant__id__exact=tenant.pk, validity="expiring"),
        )

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        instances = formset.save(commit=False)
        for grant in instances:
            if isinstance(grant, Grant) and grant.pk is None:
                grant.granted_by = request.user
            grant.save()
        formset.save_m2m()


@admin.register(Grant)
class GrantAdmin(AuditedAdmin):
    list_display = (
        "subject_id",
        "subject_type",
        "tenant",
        "role",
        "valid_from",
        "valid_until",
        "validity",
        "granted_by",
        "created_at",
    )
    list_filter = (GrantValidityFilter, "tenant", ("role", RoleListFilter), "subject_type", "tenant__status")
    list_select_related = ("tenant", "role__tenant", "granted_by")
    search_fields = ("subject_id", "tenant__slug", "tenant__name", "role__slug")
    search_help_text = "An object id or group id (a whole GUID), a tenant slug or name, or a role slug."
    autocomplete_fields = ("tenant", "role")
    fields = (
        "tenant",
        "role",
        "subject_type",
        "subject_id",
        "valid_from",
        "valid_until",
        "reason",
        "granted_by",
        "created_at",
    )
    readonly_fields = ("granted_by", "created_at")
    # Counting every grant of a large table on each page costs more than it tells.
    show_full_result_count = False

    @admin.display(description="validity")
    def validity(self, grant: Grant) -> str:
        return grant_validity(valid_from=grant.valid_from, valid_until=grant.valid_until, now=timezone.now())

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Grant], search_term: str
    ) -> tuple[QuerySet[Grant], bool]:
        # A whole GUID is a subject: match it exactly (and so through the subject index).
        try:
            subject_id = guid_normalise(search_term)
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(subject_id=subject_id), False

    def save_model(self, request: HttpRequest, obj: Grant, form: Any, change: bool) -> None:
        if not change:
            obj.granted_by = request.user
        super().save_model(request, obj, form, change)
