"""The portal's admin site: its name (``PORTAL_TITLE``), its home page and its navigation by task.

The home page answers the day's questions (grants ending this week, the day's grant changes,
suspended tenants, the signing keys, principals seen today) from ``authz.dashboard``, read within the
viewer's tenant scope, beside the navigation.

Django's admin lists models by app, alphabetically; admins think in tasks: who has access (tenants,
grants, roles, the catalogue), who is who (principals, labels, tenant administrators, staff), the
signing keys, and the beat schedules. The sections only rearrange what each model admin already
allows (``has_module_permission`` and the model permissions decide what a user sees, tenant admins
included), so a tenant admin still sees only the pages of their tenants' work.

Installed in place of ``django.contrib.admin`` (``INSTALLED_APPS``), so every ``@admin.register``
lands on this site.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

# Section, then (app label, model name, the name shown or None for the model's own) in page order.
SECTIONS: tuple[tuple[str, tuple[tuple[str, str, str | None], ...]], ...] = (
    (
        "Access",
        (
            ("authz", "tenant", None),
            ("authz", "grant", None),
            ("authz", "role", None),
            ("authz", "permission", None),
            ("authz", "feature", None),
            ("authz", "audience", None),
        ),
    ),
    (
        "People",
        (
            ("accounts", "principal", None),
            ("accounts", "identityprovider", None),
            ("authz", "tenantadministrator", None),
            ("authz", "subjectlabel", "Labels"),
            ("accounts", "user", None),
            ("auth", "group", "Staff groups"),
        ),
    ),
    ("Signing keys", (("keys", "signingkey", None), ("keys", "jwksdocument", None))),
    ("Schedules", (("django_celery_beat", "periodictask", "Schedules"),)),
)
# Pages that are no model's, listed as one in SECTIONS: (app label, name) → (name shown, URL name).
# Platform admins (superusers) only.
PAGES = {("accounts", "identityprovider"): ("Identity providers", "portal-identity-providers")}
# django-celery-beat's schedule kinds: reached from the periodic task form, not from the index.
SCHEDULE_PARTS = ("clockedschedule", "crontabschedule", "intervalschedule", "solarschedule")


class PortalSite(admin.AdminSite):
    """The admin site under ``/admin/``, named by ``PORTAL_TITLE``, its index grouped by task."""

    index_title = "Home"
    # The portal is the whole site: a "View site" link would lead to a 404.
    site_url = None
    # The home page's "now" (a seam for tests).
    clock: Callable[[], datetime] = staticmethod(timezone.now)
    # Grant changes shown on the home page: those of the last day.
    CHANGES_WITHIN = timedelta(hours=24)

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        """The home page: the day's questions answered within the viewer's tenants, then every page."""
        # Imported here: this module is loaded while the app registry fills, before models exist.
        from authz.admin.filters import EXPIRING_WITHIN
        from authz.admin.tenant_scope import administered_tenant_ids
        from authz.dashboard import dashboard_get

        now = self.clock()
        tenant_ids = administered_tenant_ids(request)
        home = dashboard_get(
            tenant_ids=tenant_ids,
            now=now,
            expiring_within=EXPIRING_WITHIN,
            changes_since=now - self.CHANGES_WITHIN,
            seen_since=timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0),
            show_keys=request.user.has_perm("keys.view_signingkey"),
        )
        context = {
            "home": home,
            "home_scoped": tenant_ids is not None,
            # A staff user who administers no tenant has nothing to search (the search answers 403).
            "home_searchable": tenant_ids is None or bool(tenant_ids),
            "now": now,
        }
        return super().index(request, {**context, **(extra_context or {})})

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        # Read at each request, not at import: the setting is the portal's name wherever shown.
        return {
            **super().each_context(request),
            "site_header": settings.PORTAL_TITLE,
            "site_title": settings.PORTAL_TITLE,
        }

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        if app_label is not None:
            return super().get_app_list(request, app_label)
        models = {
            (app["app_label"], model["object_name"].lower()): model
            for app in self._build_app_dict(request).values()
            for model in app["models"]
        }
        if request.user.is_superuser:
            models.update(_pages())
        sections = []
        for name, entries in SECTIONS:
            listed = []
            for app, model_name, shown in entries:
                model = models.pop((app, model_name), None)
                if model is not None:
                    listed.append({**model, "name": shown or model["name"]})
            if listed:
                sections.append(self._section(name, listed))
        if models:  # a model no section names yet is still reachable, never lost
            sections.append(self._section("Other", sorted(models.values(), key=lambda m: m["name"])))
        return sections

    @staticmethod
    def _section(name: str, models: list[dict[str, Any]]) -> dict[str, Any]:
        slug = name.lower().replace(" ", "-")
        return {
            "name": name,
            "app_label": slug,
            # A section is no app: its heading leads to its place on the index.
            "app_url": f"#section-{slug}",
            "has_module_perms": True,
            "models": models,
        }


def _pages() -> dict[tuple[str, str], dict[str, Any]]:
    """``PAGES`` in the shape of the models the index and the sidebar list: view-only, no add link."""
    return {
        (app, model): {
            "name": name,
            "object_name": model,
            "admin_url": reverse(url_name),
            "add_url": None,
            "view_only": True,
            "perms": {"view": True},
        }
        for (app, model), (name, url_name) in PAGES.items()
    }


class HiddenFromIndex:
    """A model admin whose pages work (as related-object pop-ups) but that the index does not list."""

    def get_model_perms(self, request: HttpRequest) -> dict[str, bool]:
        return {}


class PortalAdminConfig(AdminConfig):
    default_site = "config.portal.PortalSite"

    def ready(self) -> None:
        super().ready()  # discovers every app's admin module
        for model_admin in list(admin.site._registry.values()):
            opts = model_admin.opts
            if opts.app_label == "django_celery_beat" and opts.model_name in SCHEDULE_PARTS:
                model = model_admin.model
                hidden = type(f"Hidden{type(model_admin).__name__}", (HiddenFromIndex, type(model_admin)), {})
                admin.site.unregister(model)
                admin.site.register(model, hidden)
