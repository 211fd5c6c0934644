"""The role pages, global roles and tenants' own alike."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from authz.admin.filters import TenantListFilter
from authz.admin.tenant_scope import TenantScopedAdmin, administered_tenant_ids
from authz.models import Role
from authz.selectors import roles_in_scope, tenants_in_scope


@admin.register(Role)
class RoleAdmin(TenantScopedAdmin):
    """Roles: tenant admins see the global roles (to grant them) and change only their tenants' roles."""

    global_rows_visible = True
    list_display = ("slug", "name", "tenant", "permission_codes")
    list_filter = (("tenant", TenantListFilter),)
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

    def scope_queryset(self, queryset: QuerySet[Role], ids: frozenset[int]) -> QuerySet[Role]:
        return roles_in_scope(tenant_ids=ids, roles=queryset)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        ids = administered_tenant_ids(request)
        if db_field.name == "tenant" and ids is not None:
            # A tenant admin's role belongs to one of their tenants: never global, never another's.
            kwargs["queryset"] = tenants_in_scope(tenant_ids=ids)
            kwargs["required"] = True
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
