"""The portal (Django admin) as a test posts to it: URLs, forms as the pages render them, errors shown."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.urls import reverse

from authz.models import Role, Tenant
from tests import fake_entra as entra


def guid() -> str:
    return str(uuid.uuid4())


def url(model: str, view: str, *args: Any) -> str:
    return reverse(f"admin:authz_{model}_{view}", args=args)


def split(moment: datetime | None) -> dict[str, str]:
    """A datetime as the admin's split date and time inputs."""
    if moment is None:
        return {"0": "", "1": ""}
    return {"0": moment.strftime("%Y-%m-%d"), "1": moment.strftime("%H:%M:%S")}


def grant_form(
    *,
    tenant: Tenant,
    role: Role,
    subject_id: str,
    subject_type: str = "user",
    provider: str = entra.TENANT_ID,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    prefix: str = "",
    **extra: str,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        f"{prefix}role": role.pk,
        f"{prefix}subject_type": subject_type,
        f"{prefix}provider": provider,
        f"{prefix}subject_id": subject_id,
        f"{prefix}reason": "ticket 42",
    }
    if not prefix:
        data["tenant"] = tenant.pk
    for name, moment in (("valid_from", valid_from), ("valid_until", valid_until)):
        for part, value in split(moment).items():
            data[f"{prefix}{name}_{part}"] = value
    data.update(extra)
    return data


def role_form(*, slug: str, tenant: Tenant | None = None, **extra: Any) -> dict[str, Any]:
    return {"slug": slug, "name": slug.title(), "tenant": tenant.pk if tenant else "", **extra}


def tenant_change_form(admin_client: Any, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    """The tenant change form as the page renders it: the tenant's fields and both inlines' forms."""
    response = admin_client.get(url("tenant", "change", tenant.pk))
    data: dict[str, Any] = {
        "slug": tenant.slug,
        "name": tenant.name,
        "status": tenant.status,
        "features": ", ".join(tenant.features),
    }
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name, field in management.fields.items():
            data[management.add_prefix(name)] = management.initial.get(name, field.initial)
    data.update(fields)
    return data


def errors_of(response: Any) -> str:
    """Every error message of the admin form on the page, for asserting on what the admin sees."""
    assert response.status_code == 200, "the form was accepted"
    return " ".join(message for errors in response.context["errors"] for message in errors)
