"""The identity providers this deployment trusts, by name.

A principal is (provider, subject). Each directory trusted through the ``ENTRA_*`` settings is a
provider named by its directory id (``tid``); the local development directory counts when enabled.
"""

from __future__ import annotations

from django.conf import settings

from accounts.dev_directory import DEV_TENANT_ID, dev_directory_enabled


def provider_names() -> list[str]:
    """The names of the trusted providers, in configuration order."""
    names = list(dict.fromkeys(settings.ENTRA_TENANT_ID))
    if dev_directory_enabled() and DEV_TENANT_ID not in names:
        names.append(DEV_TENANT_ID)
    return names
