"""The grant pages beyond the changelist: the effective-access preview and the bulk revoke and extend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from authz.admin.tenant_scope import administered_tenant_ids
from authz.errors import PreviewTargetUnknown
from authz.forms import AccessPreviewForm, ExtendGrantsForm, RevokeGrantsForm
from authz.models import Grant
from authz.portal import grants_extend, grants_revoke
from authz.preview import access_preview
from authz.selectors import audiences_in_scope, tenants_in_scope

if TYPE_CHECKING:
    from authz.admin.grants import GrantAdmin


def access_preview_page(*, grant_admin: GrantAdmin, request: HttpRequest) -> HttpResponse:
    """The effective-access preview: the claims a token would carry now, and what was left out."""
    if not grant_admin.has_view_permission(request):
        raise PermissionDenied
    ids = administered_tenant_ids(request)
    tenants = tenants_in_scope(tenant_ids=ids)
    audiences = audiences_in_scope(tenant_ids=ids)
    # A link from a grant pre-fills some fields; the form is checked only once it was sent whole.
    submitted = "subject_id" in request.GET and "audience" in request.GET
    if submitted:
        form = AccessPreviewForm(request.GET, tenants=tenants, audiences=audiences)
    else:
        form = AccessPreviewForm(initial=request.GET.dict(), tenants=tenants, audiences=audiences)
    preview = None
    if submitted and form.is_valid():
        data = form.cleaned_data
        try:
            preview = access_preview(
                provider=data["provider"],
                subject_id=data["subject_id"],
                group_ids=data["group_ids"],
                groups_overage=data["groups_overage"],
                tenant_slug=data["tenant"].slug,
                audience_identifier=data["audience"].identifier,
                requested_scope=data["scope"],
                now=grant_admin.clock(),
                include_principals=ids is None,
            )
        except PreviewTargetUnknown as error:
            form.add_error(None, str(error))
    context = {
        **grant_admin.admin_site.each_context(request),
        "title": "Effective access preview",
        "opts": grant_admin.model._meta,
        "form": form,
        "preview": preview,
        "now": grant_admin.clock(),
    }
    return TemplateResponse(request, "admin/authz/grant/preview.html", context)


@admin.action(description="Revoke the selected grants now (asks for a reason)", permissions=["change"])
def revoke_grants(
    grant_admin: GrantAdmin, request: HttpRequest, queryset: QuerySet[Grant]
) -> HttpResponse | None:
    form = RevokeGrantsForm(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        try:
            result = grants_revoke(
                grants=queryset, reason=form.cleaned_data["reason"], by=request.user, now=grant_admin.clock()
            )
        except ValidationError as error:
            form.add_error("reason", error)
        else:
            grant_admin.message_user(
                request,
                f"Revoked {result.changed} grant(s); {result.unchanged} had already ended.",
                messages.SUCCESS,
            )
            return None
    return _bulk_action_page(grant_admin, request, queryset, form, "revoke_grants", "Revoke grants")


@admin.action(description="Extend the selected grants (asks for the new end)", permissions=["change"])
def extend_grants(
    grant_admin: GrantAdmin, request: HttpRequest, queryset: QuerySet[Grant]
) -> HttpResponse | None:
    form = ExtendGrantsForm(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        try:
            result = grants_extend(
                grants=queryset,
                valid_until=form.cleaned_data["valid_until"],
                reason=form.cleaned_data["reason"],
                by=request.user,
                now=grant_admin.clock(),
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            grant_admin.message_user(
                request,
                f"Extended {result.changed} grant(s); {result.unchanged} already ended later or never.",
                messages.SUCCESS,
            )
            return None
    return _bulk_action_page(grant_admin, request, queryset, form, "extend_grants", "Extend grants")


def _bulk_action_page(
    grant_admin: GrantAdmin,
    request: HttpRequest,
    queryset: QuerySet[Grant],
    form: Any,
    action: str,
    title: str,
) -> TemplateResponse:
    """The confirmation page of a bulk action: the grants it would change and the form it asks for."""
    context = {
        **grant_admin.admin_site.each_context(request),
        "title": title,
        "opts": grant_admin.model._meta,
        "form": form,
        "action": action,
        "grants": queryset.select_related("tenant", "role__tenant")[:50],
        "count": queryset.count(),
        "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
    }
    return TemplateResponse(request, "admin/authz/grant/bulk_action.html", context)
