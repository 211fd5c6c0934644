"""The portal's admin site: its name (``PORTAL_TITLE``) and its navigation grouped by what admins do.

Django's admin lists models by app, alphabetically; admins think in tasks: who has access (tenants,
grants, roles, the catalogue), who is who (principals, tenant administrators, staff), the signing
keys, and the beat schedules. The sections only rearrange what each model admin already allows
(``has_module_permission`` and the model permissions decide what a user sees, tenant admins
included), so a tenant admin still sees only the pages of their tenants' work.

Installed in place of ``django.contrib.admin`` (``INSTALLED_APPS``), so every ``@admin.register``
lands on this site.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest

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
            ("authz", "tenantadministrator", None),
            ("accounts", "user", None),
            ("auth", "group", "Staff groups"),
        ),
    ),
    ("Signing keys", (("keys", "signingkey", None), ("keys", "jwksdocument", None))),
    ("Schedules", (("django_celery_beat", "periodictask", "Schedules"),)),
)
# django-celery-beat's schedule kinds: reached from the periodic task form, not from the index.
SCHEDULE_PARTS = ("clockedschedule", "crontabschedule", "intervalschedule", "solarschedule")


class PortalSite(admin.AdminSite):
    """The admin site under ``/admin/``, named by ``PORTAL_TITLE``, its index grouped by task."""

    index_title = "Home"
    # The portal is the whole site: a "View site" link would lead to a 404.
    site_url = None

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
