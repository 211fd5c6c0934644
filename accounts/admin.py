"""The portal for identities: portal users (administrators) and principals (token subjects)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse

from accounts.models import Principal, User
from lib.guid import GUID_EXAMPLE, guid_normalise
from lib.portal_html import copyable_id, moment_short


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Portal administrators, managed with Django's own user pages.

    An Entra user's identity (tid, oid) is shown but never editable: it is what their sign-in is
    matched on. Their staff and superuser flags are recomputed at every Entra sign-in.
    """

    fieldsets = (
        *DjangoUserAdmin.fieldsets,  # type: ignore[misc]  # the stubs keep ModelAdmin's Optional; UserAdmin sets it
        ("Microsoft Entra", {"fields": ("entra_tid", "entra_oid")}),
    )
    readonly_fields = ("entra_tid", "entra_oid")
    list_display = ("username", "first_name", "is_staff", "is_superuser", "entra_tid", "last_login")
    search_fields = (*DjangoUserAdmin.search_fields, "entra_oid")


class PrincipalForm(forms.ModelForm):
    """A principal's identity: the Entra directory id and object id, both GUIDs, stored lower-case."""

    class Meta:
        model = Principal
        fields = ["tid", "oid"]

    def _clean_guid(self, name: str, label: str) -> str:
        try:
            return guid_normalise(self.cleaned_data[name])
        except ValueError:
            raise forms.ValidationError(f"Enter the {label} as a GUID, e.g. {GUID_EXAMPLE}.") from None

    def clean_tid(self) -> str:
        return self._clean_guid("tid", "directory (tenant) id")

    def clean_oid(self) -> str:
        return self._clean_guid("oid", "object id")


@admin.register(Principal)
class PrincipalAdmin(admin.ModelAdmin):
    """Principals: normally created by the first exchange; an identity never changes or disappears.

    Changing ``tid``/``oid`` would hand one person's ``sub`` to another, and deleting a principal
    would give the person a new ``sub`` next time, orphaning what downstream services keyed on it.
    """

    form = PrincipalForm
    list_display = ("principal_id", "object_id", "directory_id", "created", "last_seen")
    # Our id links to the principal; the copy buttons stay outside the link.
    list_display_links = None
    list_filter = ("tid",)
    search_fields = ("oid", "tid")
    search_help_text = "An object id, a directory id or our principal id (a whole GUID), or a part of one."
    date_hierarchy = "created_at"

    @admin.display(description="principal id (sub)", ordering="id")
    def principal_id(self, principal: Principal) -> str:
        change = reverse("admin:accounts_principal_change", args=[principal.pk])
        return copyable_id(str(principal.id), label="principal id", href=change)

    @admin.display(description="object id (oid)", ordering="oid")
    def object_id(self, principal: Principal) -> str:
        return copyable_id(principal.oid, label="object id")

    @admin.display(description="directory (tid)", ordering="tid")
    def directory_id(self, principal: Principal) -> str:
        return copyable_id(principal.tid, label="directory id")

    @admin.display(description="created at", ordering="created_at")
    def created(self, principal: Principal) -> str | None:
        return moment_short(principal.created_at)

    @admin.display(description="last seen at", ordering="last_seen_at")
    def last_seen(self, principal: Principal) -> str | None:
        return moment_short(principal.last_seen_at)

    def get_readonly_fields(self, request: HttpRequest, obj: Principal | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("id", "tid", "oid", "created_at", "last_seen_at")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Principal], search_term: str
    ) -> tuple[QuerySet[Principal], bool]:
        try:
            guid = guid_normalise(search_term)
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(Q(id=guid) | Q(oid=guid) | Q(tid=guid)), False
