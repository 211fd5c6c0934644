"""The global catalogue pages: permissions (tenant admins read them), features and audiences."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from authz.admin.tenant_scope import CatalogueAdmin, PlatformAdmin
from authz.models import Audience, Feature, Permission


@admin.register(Feature)
class FeatureAdmin(PlatformAdmin):
    list_display = ("code", "description")
    search_fields = ("code", "description")
    search_help_text = "A feature code or a word of its description."


@admin.register(Permission)
class PermissionAdmin(CatalogueAdmin):
    list_display = ("code", "description", "requires_feature")
    list_filter = ("requires_feature",)
    search_fields = ("code", "description", "requires_feature")
    search_help_text = "A permission code, a word of its description or a feature code."


@admin.register(Audience)
class AudienceAdmin(PlatformAdmin):
    list_display = ("identifier", "name", "permission_codes")
    search_fields = ("identifier", "name", "permissions__code")
    search_help_text = "An audience id (api://…), its name, or a permission code it receives."
    autocomplete_fields = ("permissions",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Audience]:
        return super().get_queryset(request).prefetch_related("permissions")

    @admin.display(description="permissions")
    def permission_codes(self, audience: Audience) -> str:
        return ", ".join(permission.code for permission in audience.permissions.all())
