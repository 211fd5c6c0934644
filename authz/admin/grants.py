"""The grant pages: the changelist with its filters and search, the change form, and their scope checks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.providers import provider_names
from authz.admin.filters import (
    GrantValidityFilter,
    ProviderListFilter,
    RoleListFilter,
    TenantListFilter,
    TenantStatusFilter,
    grant_validity,
)
from authz.admin.grant_pages import access_preview_page, extend_grants, revoke_grants
from authz.admin.labels import GrantLabels
from authz.admin.tenant_scope import TenantScopedAdmin, administered_tenant_ids
from authz.forms import GrantForm
from authz.models import Grant
from authz.portal import grant_save
from authz.selectors import grants_in_scope, roles_in_scope, tenants_in_scope
from lib.guid import guid_normalise
from lib.portal_html import clipped, copyable_id, moment_short


@admin.register(Grant)
class GrantAdmin(GrantLabels, TenantScopedAdmin):
    form = GrantForm
    list_display = (
        "subject",
        "tenant_name",
        "role_name",
        "starts",
        "ends",
        "validity",
        "granter",
        "created",
    )
    # The subject links to the grant itself (its copy button must not sit inside the link).
    list_display_links = None
    list_filter = (
        GrantValidityFilter,
        ("tenant", TenantListFilter),
        ("role", RoleListFilter),
        "subject_type",
        ProviderListFilter,
        ("tenant__status", TenantStatusFilter),
    )
    list_select_related = ("tenant", "role__tenant", "granted_by")
    search_fields = ("subject_id", "provider", "tenant__slug", "tenant__name", "role__slug")
    search_help_text = (
        "A user or group id or its label, an identity provider (a whole GUID is matched exactly), "
        "a tenant slug or name, or a role slug."
    )
    autocomplete_fields = ("tenant", "role")
    fields = (
        "tenant",
        "role",
        "subject_type",
        "provider",
        "subject_id",
        "subject_label_shown",
        "valid_from",
        "valid_until",
        "reason",
        "granted_by",
        "created_at",
    )
    readonly_fields = ("subject_label_shown", "granted_by", "created_at")
    # Counting every grant of a large table on each page costs more than it tells.
    show_full_result_count = False
    actions = (revoke_grants, extend_grants)
    # Seams for tests: the moment the preview and the bulk actions take as "now".
    clock: Callable[[], datetime] = staticmethod(timezone.now)

    @admin.display(description="subject", ordering="subject_id")
    def subject(self, grant: Grant) -> str:
        change = reverse("admin:authz_grant_change", args=[grant.pk])
        # The provider on a line of its own under the id: the same id means someone else elsewhere.
        return format_html(
            '<span class="subject-type">{}</span> {}<br><span class="subject-provider">of {}{}</span>',
            grant.get_subject_type_display().lower(),
            copyable_id(
                grant.subject_id, label="subject id", href=change, name=getattr(grant, "subject_label", None)
            ),
            copyable_id(grant.provider, label="identity provider"),
            self.provider_untrusted_note(grant.provider),
        )

    @staticmethod
    def provider_untrusted_note(provider: str) -> str:
        """Marks a provider no longer trusted: its tokens are refused, so the grant gives nothing."""
        if provider in provider_names():
            return ""
        return format_html(
            ' <span class="provider-untrusted" title="{}">untrusted</span>',
            "No longer a trusted identity provider: this grant gives nothing.",
        )

    @admin.display(description="tenant", ordering="tenant__slug")
    def tenant_name(self, grant: Grant) -> str:
        return clipped(str(grant.tenant))

    @admin.display(description="role", ordering="role__slug")
    def role_name(self, grant: Grant) -> str:
        return clipped(str(grant.role))

    @admin.display(description="granted by", ordering="granted_by__username")
    def granter(self, grant: Grant) -> str | None:
        return clipped(str(grant.granted_by)) if grant.granted_by is not None else None

    @admin.display(description="valid from", ordering="valid_from")
    def starts(self, grant: Grant) -> str | None:
        return moment_short(grant.valid_from)

    @admin.display(description="valid until", ordering="valid_until")
    def ends(self, grant: Grant) -> str | None:
        return moment_short(grant.valid_until)

    @admin.display(description="created at", ordering="created_at")
    def created(self, grant: Grant) -> str | None:
        return moment_short(grant.created_at)

    @admin.display(description="validity")
    def validity(self, grant: Grant) -> str:
        return grant_validity(valid_from=grant.valid_from, valid_until=grant.valid_until, now=timezone.now())

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Grant], search_term: str
    ) -> tuple[QuerySet[Grant], bool]:
        # A whole GUID is matched exactly: a trusted directory's id lists its grants, any other GUID is
        # an object id or group id (through the subject index).
        try:
            guid = guid_normalise(search_term)
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        if guid in provider_names():
            return queryset.filter(provider=guid), False
        return queryset.filter(subject_id=guid), False

    def scope_queryset(self, queryset: QuerySet[Grant], ids: frozenset[int]) -> QuerySet[Grant]:
        return grants_in_scope(tenant_ids=ids, grants=queryset)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        ids = administered_tenant_ids(request)
        if ids is not None and db_field.name == "tenant":
            kwargs["queryset"] = tenants_in_scope(tenant_ids=ids)
        elif ids is not None and db_field.name == "role":
            kwargs["queryset"] = roles_in_scope(tenant_ids=ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def check_write(self, request: HttpRequest, obj: Grant) -> None:
        super().check_write(request, obj)
        ids = administered_tenant_ids(request)
        role_tenant = obj.role.tenant_id if obj.role_id is not None else None
        if ids is not None and role_tenant is not None and role_tenant not in ids:
            raise PermissionDenied("You may grant only global roles and your tenants' roles.")

    def save_model(self, request: HttpRequest, obj: Grant, form: Any, change: bool) -> None:
        self.check_write(request, obj)
        grant_save(grant=obj, by=request.user)

    def get_urls(self) -> list:
        preview = path("preview/", self.admin_site.admin_view(self.preview_view), name="authz_grant_preview")
        return [preview, *super().get_urls()]

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        return access_preview_page(grant_admin=self, request=request)
