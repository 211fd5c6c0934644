"""The tenant pages (with their newest grants and a row to grant a role) and who administers each tenant."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.forms import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from authz.admin.filters import grant_validity
from authz.admin.tenant_scope import PlatformAdmin, TenantScopedAdmin, administered_tenant_ids, in_scope
from authz.forms import GrantForm, TenantForm
from authz.models import Grant, Tenant, TenantAdministrator
from authz.portal import grant_save, tenant_administrator_add
from authz.selectors import tenants_in_scope


def _changelist_url(model: type[Model], **params: Any) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


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
    fields = (
        "subject_type",
        "provider",
        "subject_id",
        "role",
        "valid_from",
        "valid_until",
        "validity",
        "granted_by",
    )
    readonly_fields = fields
    show_change_link = True
    extra = 0

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        ids = administered_tenant_ids(request)
        if ids is None:
            return super().has_view_permission(request, obj)
        # Asked without a tenant when the formset loads its rows: the parent page is scoped already.
        return bool(ids) if obj is None else in_scope(ids, obj.pk)

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
    form = GrantForm
    verbose_name_plural = "grant a role in this tenant"
    fields = ("role", "subject_type", "provider", "subject_id", "valid_from", "valid_until", "reason")
    autocomplete_fields = ("role",)
    extra = 1

    def get_queryset(self, request: HttpRequest) -> QuerySet[Grant]:
        return super().get_queryset(request).none()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    """Tenants: platform admins manage them; a tenant admin only reads their own (status and
    features are the subscription's, not theirs to change) and grants on the grant pages."""

    form = TenantForm
    list_display = ("slug", "name", "status", "feature_list", "grants_link")
    list_filter = ("status",)
    search_fields = ("slug", "name")
    search_help_text = "A tenant slug or name."
    readonly_fields = ("created_at", "grants_summary")
    inlines = (RecentGrantInline, NewGrantInline)

    def tenant_of(self, obj: Tenant) -> int | None:
        return obj.pk

    def scope_queryset(self, queryset: QuerySet[Tenant], ids: frozenset[int]) -> QuerySet[Tenant]:
        return tenants_in_scope(tenant_ids=ids, tenants=queryset)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return administered_tenant_ids(request) is None and super().has_add_permission(request, *args)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return administered_tenant_ids(request) is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return administered_tenant_ids(request) is None and super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Tenant | None = None) -> tuple:
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, "administrators") if administered_tenant_ids(request) is None else fields

    @admin.display(description="tenant administrators")
    def administrators(self, tenant: Tenant) -> str:
        if tenant.pk is None:
            return "-"
        names = list(
            tenant.administrators.order_by("user__username").values_list("user__username", flat=True)
        )
        return format_html(
            '{} · <a href="{}?tenant={}">add one</a>',
            ", ".join(names) or "none",
            reverse("admin:authz_tenantadministrator_add"),
            tenant.pk,
        )

    def get_inlines(self, request: HttpRequest, obj: Tenant | None) -> tuple:
        # A tenant being created has no grants yet, and its own roles do not exist yet either.
        if obj is None:
            return ()
        return self.inlines if administered_tenant_ids(request) is None else (RecentGrantInline,)

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
            grant_save(grant=grant, by=request.user)
        formset.save_m2m()


@admin.register(TenantAdministrator)
class TenantAdministratorAdmin(PlatformAdmin):
    """Who administers which tenant: only platform admins assign them (a tenant admin never can)."""

    list_display = ("user", "tenant", "created_at")
    list_filter = (("tenant", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("user", "tenant")
    search_fields = ("user__username", "user__first_name", "user__last_name", "tenant__slug")
    search_help_text = "A user name or a tenant slug."
    autocomplete_fields = ("user", "tenant")
    fields = ("user", "tenant", "created_at")
    readonly_fields = ("created_at",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A row is added or deleted, never moved to another user or tenant.
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: TenantAdministrator, form: Any, change: bool) -> None:
        obj.pk = tenant_administrator_add(user=obj.user, tenant=obj.tenant, by=request.user).pk
