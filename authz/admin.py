"""The portal for the authorization model: tenants, permissions, audiences, roles and grants.

Every admin keeps a history (django-simple-history) of who changed what; the invariants live in
the models' ``clean()`` and the UI parsing in ``authz.forms``, so these classes only arrange pages.

Platform admins (superusers) see everything. Every other portal user is a tenant admin, scoped to
``authz.selectors.tenants_administered_by``: their rights come from ``TenantAdministrator`` rows,
never from Django model permissions, and are checked on the server in each queryset, each form
field's choices and each write, not only hidden in the pages.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.forms import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from accounts.ids import guid_normalise
from authz.engine import REASON_GRANT_EXPIRED, REASON_GRANT_NOT_YET_VALID, grant_period_exclusion
from authz.forms import AccessPreviewForm, ExtendGrantsForm, RevokeGrantsForm, TenantForm
from authz.models import Audience, Grant, Permission, Role, Tenant, TenantAdministrator
from authz.portal import grant_save, grants_extend, grants_revoke, tenant_administrator_add
from authz.preview import access_preview
from authz.selectors import tenants_administered_by

EXPIRING_WITHIN = timedelta(days=7)


def administered_tenant_ids(request: HttpRequest) -> frozenset[int] | None:
    """The ids of the tenants the signed-in user administers; ``None`` for a platform admin (all).

    Read once per request: every permission check of a page asks it.
    """
    if not hasattr(request, "_administered_tenant_ids"):
        scope = tenants_administered_by(user=request.user)
        ids = None if scope is None else frozenset(scope.values_list("pk", flat=True))
        request._administered_tenant_ids = ids  # type: ignore[attr-defined]
    return request._administered_tenant_ids  # type: ignore[attr-defined]


def _tenants_in_scope(ids: frozenset[int] | None) -> QuerySet[Tenant]:
    """The tenants a user may see: all for a platform admin (``ids`` None), else those they administer."""
    return Tenant.objects.all() if ids is None else Tenant.objects.filter(pk__in=ids)


def _roles_in_scope(ids: frozenset[int]) -> Q:
    """The roles a tenant admin may see and grant: global ones and their tenants' own."""
    return Q(tenant__isnull=True) | Q(tenant_id__in=ids)


def _in_scope(ids: frozenset[int], tenant_id: int | None) -> bool:
    return tenant_id is not None and tenant_id in ids


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
    """The role filter: the roles the user may see, each with its tenant loaded in the same query."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        roles = Role.objects.select_related("tenant").order_by("slug")
        ids = administered_tenant_ids(request)
        if ids is not None:
            roles = roles.filter(_roles_in_scope(ids))
        return [(role.pk, str(role)) for role in roles]


class TenantListFilter(admin.RelatedFieldListFilter):
    """The tenant filter: only the tenants the user administers (their names are not for others)."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        tenants = _tenants_in_scope(administered_tenant_ids(request)).order_by("slug")
        return [(tenant.pk, str(tenant)) for tenant in tenants]


class AuditedAdmin(SimpleHistoryAdmin):
    """An admin whose history is an audit trail: visible to whoever may view the object, never reverted.

    Reverting would re-save an old version outside the normal form flow; a change is made again
    through the change form instead, where it is validated and recorded like any other.
    """

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: Any = None
    ) -> HttpResponse:
        # simple-history saves a POST to this page whatever revert_disabled says, asking only
        # for *view* permission on the old version: read-only globals and a tenant admin's own
        # tenant would be writable here. The page is for reading; a change goes through the form.
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied
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
    ``global_rows_visible``, never writable by a tenant admin).
    """

    global_rows_visible = False

    def tenant_of(self, obj: Any) -> int | None:
        return obj.tenant_id

    def scope_queryset(self, queryset: QuerySet, ids: frozenset[int]) -> QuerySet:
        return queryset.filter(tenant_id__in=ids)

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
        if obj is None:
            return bool(ids)
        tenant_id = self.tenant_of(obj)
        return _in_scope(ids, tenant_id) or (tenant_id is None and self.global_rows_visible)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        ids = administered_tenant_ids(request)
        return bool(ids) if ids is not None else super().has_add_permission(request, *args)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        ids = administered_tenant_ids(request)
        if ids is None:
            return super().has_change_permission(request, obj)
        return bool(ids) if obj is None else _in_scope(ids, self.tenant_of(obj))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_change_permission(request, obj) and (
            administered_tenant_ids(request) is not None or super().has_delete_permission(request, obj)
        )

    def check_write(self, request: HttpRequest, obj: Any) -> None:
        """Refuse (403) a write that would leave the user's tenants, whatever the form let through."""
        ids = administered_tenant_ids(request)
        if ids is not None and not _in_scope(ids, self.tenant_of(obj)):
            raise PermissionDenied("You may change only the tenants you administer.")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        self.check_write(request, obj)
        super().save_model(request, obj, form, change)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.check_write(request, obj)
        super().delete_model(request, obj)


def _changelist_url(model: type, **params: Any) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


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
        return queryset.filter(_roles_in_scope(ids))

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        ids = administered_tenant_ids(request)
        if db_field.name == "tenant" and ids is not None:
            # A tenant admin's role belongs to one of their tenants: never global, never another's.
            kwargs["queryset"] = _tenants_in_scope(ids)
            kwargs["required"] = True
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


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

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        ids = administered_tenant_ids(request)
        if ids is None:
            return super().has_view_permission(request, obj)
        # Asked without a tenant when the formset loads its rows: the parent page is scoped already.
        return bool(ids) if obj is None else _in_scope(ids, obj.pk)

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
        return queryset.filter(pk__in=ids)

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


@admin.register(Grant)
class GrantAdmin(TenantScopedAdmin):
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
    list_filter = (
        GrantValidityFilter,
        ("tenant", TenantListFilter),
        ("role", RoleListFilter),
        "subject_type",
        "tenant__status",
    )
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

    actions = ("revoke_grants", "extend_grants")
    # Seams for tests: the moment the preview and the bulk actions take as "now".
    clock: Callable[[], datetime] = staticmethod(timezone.now)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        ids = administered_tenant_ids(request)
        if ids is not None and db_field.name == "tenant":
            kwargs["queryset"] = _tenants_in_scope(ids)
        elif ids is not None and db_field.name == "role":
            kwargs["queryset"] = Role.objects.filter(_roles_in_scope(ids))
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
        """The effective-access preview: the claims a token would carry now, and what was left out."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        ids = administered_tenant_ids(request)
        tenants = _tenants_in_scope(ids)
        # A link from a grant pre-fills some fields; the form is checked only once it was sent whole.
        submitted = "subject_id" in request.GET and "audience" in request.GET
        if submitted:
            form = AccessPreviewForm(request.GET, tenants=tenants)
        else:
            form = AccessPreviewForm(initial=request.GET.dict(), tenants=tenants)
        preview = None
        if submitted and form.is_valid():
            data = form.cleaned_data
            try:
                preview = access_preview(
                    subject_id=data["subject_id"],
                    group_ids=data["group_ids"],
                    groups_overage=data["groups_overage"],
                    tenant_slug=data["tenant"].slug,
                    audience_identifier=data["audience"].identifier,
                    requested_scope=data["scope"],
                    now=self.clock(),
                    include_principals=ids is None,
                )
            except LookupError as error:
                form.add_error(None, str(error))
        context = {
            **self.admin_site.each_context(request),
            "title": "Effective access preview",
            "opts": self.model._meta,
            "form": form,
            "preview": preview,
            "now": self.clock(),
        }
        return TemplateResponse(request, "admin/authz/grant/preview.html", context)

    @admin.action(description="Revoke the selected grants now (asks for a reason)", permissions=["change"])
    def revoke_grants(self, request: HttpRequest, queryset: QuerySet[Grant]) -> HttpResponse | None:
        form = RevokeGrantsForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            try:
                result = grants_revoke(
                    grants=queryset, reason=form.cleaned_data["reason"], by=request.user, now=self.clock()
                )
            except ValidationError as error:
                form.add_error("reason", error)
            else:
                self.message_user(
                    request,
                    f"Revoked {result.changed} grant(s); {result.unchanged} had already ended.",
                    messages.SUCCESS,
                )
                return None
        return self._action_page(request, queryset, form, "revoke_grants", "Revoke grants")

    @admin.action(description="Extend the selected grants (asks for the new end)", permissions=["change"])
    def extend_grants(self, request: HttpRequest, queryset: QuerySet[Grant]) -> HttpResponse | None:
        form = ExtendGrantsForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            try:
                result = grants_extend(
                    grants=queryset,
                    valid_until=form.cleaned_data["valid_until"],
                    reason=form.cleaned_data["reason"],
                    by=request.user,
                    now=self.clock(),
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                self.message_user(
                    request,
                    f"Extended {result.changed} grant(s); {result.unchanged} already ended later or never.",
                    messages.SUCCESS,
                )
                return None
        return self._action_page(request, queryset, form, "extend_grants", "Extend grants")

    def _action_page(
        self, request: HttpRequest, queryset: QuerySet[Grant], form: Any, action: str, title: str
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "form": form,
            "action": action,
            "grants": queryset.select_related("tenant", "role__tenant")[:50],
            "count": queryset.count(),
            "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/authz/grant/bulk_action.html", context)


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
