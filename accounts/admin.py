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
from accounts.provider_fields import provider_field_offer
from accounts.subjects import subject_normalise
from lib.guid import guid_normalise
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
    """A principal's identity: a trusted provider and the subject it vouches for, in its stored form."""

    provider = forms.ChoiceField(label="identity provider")

    class Meta:
        model = Principal
        fields = ["provider", "subject"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        provider_field_offer(self)  # absent where read only (an existing principal)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        provider, subject = data.get("provider"), data.get("subject")
        if provider and subject is not None:
            try:
                data["subject"] = subject_normalise(provider=provider, subject=subject)
            except ValueError as error:
                self.add_error("subject", f"Enter the subject as the provider writes it: {error}.")
        return data


@admin.register(Principal)
class PrincipalAdmin(admin.ModelAdmin):
    """Principals: normally created by the first exchange; an identity never changes or disappears.

    Changing ``provider``/``subject`` would hand one person's ``sub`` to another, and deleting a
    principal would give the person a new ``sub`` next time, orphaning what downstream services
    keyed on it.
    """

    form = PrincipalForm
    list_display = ("principal_id", "subject_id", "provider_name", "created", "last_seen")
    # Our id links to the principal; the copy buttons stay outside the link.
    list_display_links = None
    list_filter = ("provider",)
    search_fields = ("subject", "provider")
    search_help_text = (
        "A subject (object id or sub), a provider, or our principal id (a whole GUID), or a part of one."
    )
    date_hierarchy = "created_at"

    @admin.display(description="principal id (sub)", ordering="id")
    def principal_id(self, principal: Principal) -> str:
        change = reverse("admin:accounts_principal_change", args=[principal.pk])
        return copyable_id(str(principal.id), label="principal id", href=change)

    @admin.display(description="subject (oid or sub)", ordering="subject")
    def subject_id(self, principal: Principal) -> str:
        return copyable_id(principal.subject, label="subject")

    @admin.display(description="identity provider", ordering="provider")
    def provider_name(self, principal: Principal) -> str:
        return copyable_id(principal.provider, label="provider")

    @admin.display(description="created at", ordering="created_at")
    def created(self, principal: Principal) -> str | None:
        return moment_short(principal.created_at)

    @admin.display(description="last seen at", ordering="last_seen_at")
    def last_seen(self, principal: Principal) -> str | None:
        return moment_short(principal.last_seen_at)

    def get_readonly_fields(self, request: HttpRequest, obj: Principal | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("id", "provider", "subject", "created_at", "last_seen_at")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Principal], search_term: str
    ) -> tuple[QuerySet[Principal], bool]:
        try:
            guid = guid_normalise(search_term)
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        # A whole GUID is our id, an Entra object id or a directory (provider) id: matched exactly.
        return queryset.filter(Q(id=guid) | Q(subject=guid) | Q(provider=guid)), False
