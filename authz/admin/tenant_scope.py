"""The portal's tenant scope: who may see and write which rows, checked on the server for every page.

Platform admins (active superusers) see everything. Every other portal user is a tenant admin,
scoped to ``authz.selectors.tenants_administered_by``: their rights come from
``TenantAdministrator`` rows, never from Django model permissions, and are checked in each
queryset, each form field's choices and each write, not only hidden in the pages. The base classes
here carry those rules; the admins of each model only say which tenant a row belongs to.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_safe
from simple_history.admin import SimpleHistoryAdmin

from authz.selectors import tenant_ids_administered_by


def administered_tenant_ids(request: HttpRequest) -> frozenset[int] | None:
    """The ids of the tenants the signed-in user administers; ``None`` for a platform admin (all).

    Read once per request: every permission check of a page asks it.
    """
    if not hasattr(request, "_administered_tenant_ids"):
        request._administered_tenant_ids = tenant_ids_administered_by(user=request.user)  # type: ignore[attr-defined]
    return request._administered_tenant_ids  # type: ignore[attr-defined]


def in_scope(ids: frozenset[int], tenant_id: int | None) -> bool:
    """Whether a row of tenant ``tenant_id`` (``None``: a global row) is within the tenants ``ids``."""
    return tenant_id is not None and tenant_id in ids


class AuditedAdmin(SimpleHistoryAdmin):
    """An admin whose history is an audit trail: visible to whoever may view the object, never reverted.

    Reverting would re-save an old version outside the normal form flow; a change is made again
    through the change form instead, where it is validated and recorded like any other.
    """

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    # simple-history saves a POST to this page whatever revert_disabled says, asking only for
    # *view* permission on the old version: read-only globals and a tenant admin's own tenant
    # would be writable here. The page is for reading; a change goes through the form.
    @method_decorator(require_safe)
    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: Any = None
    ) -> HttpResponse:
        if administered_tenant_ids(request) is not None:
            # The old version may be from when the row was theirs: the row must be theirs now.
            try:
                current = self.model._default_manager.filter(pk=unquote(object_id)).first()
            except (ValueError, ValidationError):
                raise PermissionDenied from None
            if current is not None and not self.has_view_permission(request, current):
                raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is None and administered_tenant_ids(request) is not None:
            # One answer to a tenant admin for "not yours" and "no such row": nothing to enumerate.
            raise PermissionDenied
        return obj


class PlatformAdmin(AuditedAdmin):
    """Global configuration only platform admins see or change (audiences, tenant administrators)."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return administered_tenant_ids(request) is None and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return administered_tenant_ids(request) is None and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return administered_tenant_ids(request) is None and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return administered_tenant_ids(request) is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return administered_tenant_ids(request) is None and super().has_delete_permission(request, obj)


class CatalogueAdmin(PlatformAdmin):
    """Global rows tenant admins may read (to build their roles) but never change."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        ids = administered_tenant_ids(request)
        return bool(ids) if ids is not None else super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        ids = administered_tenant_ids(request)
        return bool(ids) if ids is not None else super().has_view_permission(request, obj)


class TenantScopedAdmin(AuditedAdmin):
    """Rows that belong to a tenant: a tenant admin reads and writes only their tenants' rows.

    ``tenant_of`` says which tenant a row belongs to (``None``: global, readable when
    ``global_rows_visible``, never writable by a tenant admin); ``scope_queryset`` narrows a
    queryset to the rows a tenant admin may see, with the model's selector.
    """

    global_rows_visible = False
    # What a tenant admin's write outside their scope is told (403).
    write_refused = "You may change only the tenants you administer."

    def tenant_of(self, obj: Any) -> int | None:
        return obj.tenant_id

    def visible(self, ids: frozenset[int], obj: Any) -> bool:
        """Whether a tenant admin of ``ids`` may read ``obj`` (by default: a row of their tenants)."""
        tenant_id = self.tenant_of(obj)
        return in_scope(ids, tenant_id) or (tenant_id is None and self.global_rows_visible)

    def writable(self, ids: frozenset[int], obj: Any) -> bool:
        """Whether a tenant admin of ``ids`` may write ``obj`` (by default: a row of their tenants)."""
        return in_scope(ids, self.tenant_of(obj))

    def scope_queryset(self, queryset: QuerySet, ids: frozenset[int]) -> QuerySet:
        raise NotImplementedError("a tenant-scoped admin names the selector of its rows in scope")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        ids = administered_tenant_ids(request)
        return queryset if ids is None else self.scope_queryset(queryset, ids)

    def has_module_permission(self, request: HttpRequest) -> bool:
        ids = administered_tenant_ids(request)
        return bool(ids) if ids is not None else super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        ids = administered_tenant_ids(request)
        if ids is None:
            return super().has_view_permission(request, obj)
        return bool(ids) if obj is None else self.visible(ids, obj)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        ids = administered_tenant_ids(request)
        return bool(ids) if ids is not None else super().has_add_permission(request, *args)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        ids = administered_tenant_ids(request)
        if ids is None:
            return super().has_change_permission(request, obj)
        return bool(ids) if obj is None else self.writable(ids, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_change_permission(request, obj) and (
            administered_tenant_ids(request) is not None or super().has_delete_permission(request, obj)
        )

    def check_write(self, request: HttpRequest, obj: Any) -> None:
        """Refuse (403) a write that would leave the user's tenants, whatever the form let through."""
        ids = administered_tenant_ids(request)
        if ids is not None and not self.writable(ids, obj):
            raise PermissionDenied(self.write_refused)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        self.check_write(request, obj)
        super().save_model(request, obj, form, change)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.check_write(request, obj)
        super().delete_model(request, obj)
