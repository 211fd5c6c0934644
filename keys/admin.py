"""The portal for signing keys: phases and dates (never private material), rotate now and revoke.

Both actions go through a confirmation page and call the same services as ``rotate_keys``; the
history middleware records who did it on each key's history.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from simple_history.admin import SimpleHistoryAdmin

from keys import engine
from keys.errors import KeysError
from keys.models import JwksDocument, SigningKey
from keys.services import signing_key_revoke, signing_key_rotate
from lib.portal_html import copyable_id, moment_short

DATES = ("created_at", "published_at", "activated_at", "deactivated_at", "retired_at", "revoked_at")


def _moment_column(name: str) -> Any:
    """A list column showing the key's ``name`` date compactly (the whole moment on hover)."""

    def column(key: SigningKey) -> Any:
        return moment_short(getattr(key, name))

    return admin.display(description=name.removesuffix("_at").replace("_", " "), ordering=name)(column)


@admin.register(SigningKey)
class SigningKeyAdmin(SimpleHistoryAdmin):
    list_display = ("key_id", "algorithm_code", "phase", *(_moment_column(name) for name in DATES))
    # The key id links to the key; its copy button stays outside the link.
    list_display_links = None
    list_filter = ("phase", "algorithm")
    search_fields = ("kid",)
    fields = ("kid", "algorithm", "phase", "store", "public_jwk", *DATES)
    readonly_fields = fields
    history_list_display = ("phase",)
    change_list_template = "admin/keys/signingkey/change_list.html"
    change_form_template = "admin/keys/signingkey/change_form.html"

    @admin.display(description="kid", ordering="kid")
    def key_id(self, key: SigningKey) -> str:
        change = reverse("admin:keys_signingkey_change", args=[key.pk])
        return copyable_id(key.kid, label="key id", href=change)

    @admin.display(description="algorithm", ordering="algorithm")
    def algorithm_code(self, key: SigningKey) -> str:
        return key.algorithm

    # Keys change only through rotation and revocation, never by editing or reverting a row.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_history_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    def history_form_view(self, request: HttpRequest, object_id: str, version_id: str, extra_context=None):
        if request.method != "GET":
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

    def get_urls(self):
        own = [
            path("rotate/", self.admin_site.admin_view(self.rotate_view), name="keys_signingkey_rotate"),
            path(
                "<path:object_id>/revoke/",
                self.admin_site.admin_view(self.revoke_view),
                name="keys_signingkey_revoke",
            ),
        ]
        return own + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "can_rotate": request.user.has_perm("keys.rotate_signingkey"),
        }
        return super().changelist_view(request, extra_context)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        can_revoke = request.user.has_perm("keys.revoke_signingkey")
        extra_context = {
            **(extra_context or {}),
            "can_revoke": can_revoke,
            "published": engine.PUBLISHED_PHASES,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def rotate_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("keys.rotate_signingkey"):
            raise PermissionDenied
        changelist = reverse("admin:keys_signingkey_changelist")
        if request.method == "POST":
            try:
                result = signing_key_rotate(force=True)
            except KeysError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return HttpResponseRedirect(changelist)
            if result.created:
                self.message_user(
                    request,
                    f"Published successor {', '.join(result.created)}; it signs after the publish lead.",
                    messages.SUCCESS,
                )
            else:
                self.message_user(request, "A successor is already pending: nothing to do.", messages.INFO)
            return HttpResponseRedirect(changelist)
        return self._confirm(
            request,
            title="Rotate the signing key now?",
            message="A successor key is created and published now. It starts signing after "
            "KEY_PUBLISH_LEAD, and the current key stays published until its tokens have expired.",
            confirm_label="Yes, rotate now",
            cancel_url=changelist,
        )

    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not request.user.has_perm("keys.revoke_signingkey"):
            raise PermissionDenied
        key = get_object_or_404(SigningKey, pk=object_id)
        change = reverse("admin:keys_signingkey_change", args=[key.pk])
        if key.phase not in engine.PUBLISHED_PHASES:
            self.message_user(
                request, f"{key.kid} is {key.phase}: not published, nothing to revoke.", messages.ERROR
            )
            return HttpResponseRedirect(change)
        if request.method == "POST":
            try:
                signing_key_revoke(kid=key.kid)
            except KeysError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return HttpResponseRedirect(change)
            self.log_change(request, key, f"Revoked {key.kid}")
            self.message_user(request, f"Revoked {key.kid}: it is no longer published.", messages.SUCCESS)
            return HttpResponseRedirect(change)
        message = (
            f"{key.kid} ({key.phase}) is removed from the JWKS at once. Tokens it signed stop verifying."
        )
        if key.phase == engine.ACTIVE:
            message += " Another key signs from now on, without the publish lead."
        return self._confirm(
            request, title="Revoke this key?", message=message, confirm_label="Yes, revoke", cancel_url=change
        )

    def _confirm(self, request: HttpRequest, **context: str) -> HttpResponse:
        return TemplateResponse(
            request,
            "admin/keys/signingkey/confirm.html",
            {**self.admin_site.each_context(request), "opts": self.model._meta, **context},
        )


@admin.register(JwksDocument)
class JwksDocumentAdmin(admin.ModelAdmin):
    list_display = ("version", "etag", "created_at")
    fields = ("version", "etag", "created_at", "body")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
