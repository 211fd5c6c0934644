"""System checks of the stored policy: grants bound to an identity provider that is no longer trusted.

Such a grant gives nothing (no token of its provider is accepted any more), but it is easy to miss:
removing a directory from ``ENTRA_TENANT_ID``, or renaming a declared provider, silently ends every
grant made for it. ``manage.py migrate`` (each deploy, ``make run``) and ``manage.py check
--database default`` name them as a warning; the portal's grant list marks them and filters them
("identity provider: no longer trusted"). A warning, not an error: the service is right to refuse
those tokens, and start-up must not depend on how old grants were tidied up.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.checks import CheckMessage, Warning, register
from django.db import DatabaseError
from django.db.models import Count

from accounts.providers import provider_names
from authz.models import Grant

SHOWN = 5


def untrusted_provider_grants() -> list[tuple[str, int]]:
    """(provider, number of grants) for each provider that grants name and that is not trusted, most first."""
    rows = (
        Grant.objects.exclude(provider__in=provider_names())
        .values_list("provider")
        .annotate(grants=Count("id"))
        .order_by("-grants", "provider")
    )
    return [(provider, grants) for provider, grants in rows]


@register("authz", "database")
def untrusted_provider_grants_check(
    app_configs: Iterable[Any] | None = None, databases: Iterable[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    if not databases or "default" not in databases:
        return []
    try:
        found = untrusted_provider_grants()
    except DatabaseError:
        return []  # not migrated yet (the first migrate runs the checks before creating tables)
    if not found:
        return []
    named = "; ".join(f"{provider!r}: {grants} grant(s)" for provider, grants in found[:SHOWN])
    more = f"; and {len(found) - SHOWN} more providers" if len(found) > SHOWN else ""
    return [
        Warning(
            "Grants are bound to identity providers that are no longer trusted, and give nothing: "
            f"{named}{more}.",
            hint=(
                "Trust the provider again (ENTRA_TENANT_ID or the declared providers), or end or delete "
                "those grants (the portal's grant list filters them: identity provider → no longer "
                "trusted; import_policy --prune deletes grants its file does not list)."
            ),
            id="authz.W001",
        )
    ]
