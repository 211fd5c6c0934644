"""The portal's page of the identity providers this deployment trusts: read-only, platform admins only.

What an operator configured (the ``ENTRA_*`` settings, ``IDENTITY_PROVIDERS_FILE``) as the validator
reads it: names, kinds, issuers, audiences, required scopes and roles, claims and algorithms. A
provider's configuration holds no secret, and nothing here can change it: configuration is the
operator's, reviewed and deployed like code.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse

from accounts.dev_directory import DEV_TENANT_ID
from accounts.identity_provider import AZURE_AD_B2C, ENTRA, ENTRA_EXTERNAL_ID, OIDC, IdentityProvider
from accounts.providers import providers_configured

TEMPLATE = "accounts/identity_providers.html"
KIND_NAMES = {
    ENTRA: "Microsoft Entra ID (workforce)",
    ENTRA_EXTERNAL_ID: "Microsoft Entra External ID",
    AZURE_AD_B2C: "Azure AD B2C",
    OIDC: "OpenID Connect",
}


@dataclass(frozen=True)
class ProviderRow:
    """One provider as the page shows it."""

    provider: IdentityProvider
    kind_name: str
    declared_in: str
    metadata_urls: tuple[str, ...]


def identity_providers_page(request: HttpRequest) -> TemplateResponse:
    """``GET /admin/identity-providers/``: every trusted provider, for superusers (403 otherwise)."""
    if not request.user.is_superuser:
        raise PermissionDenied
    rows = [_row(provider) for provider in providers_configured()]
    context = {**admin.site.each_context(request), "title": "Identity providers", "rows": rows}
    return TemplateResponse(request, TEMPLATE, context)


def _row(provider: IdentityProvider) -> ProviderRow:
    if provider.kind == AZURE_AD_B2C:
        metadata_urls = tuple(provider.metadata_url_of(flow) for flow in provider.accepted_user_flows)
    else:
        metadata_urls = (provider.metadata_url_of(),)
    return ProviderRow(
        provider=provider,
        kind_name=KIND_NAMES[provider.kind],
        declared_in=_declared_in(provider),
        metadata_urls=metadata_urls,
    )


def _declared_in(provider: IdentityProvider) -> str:
    if provider.name in settings.ENTRA_TENANT_ID:
        return "ENTRA_TENANT_ID"
    if provider.name == DEV_TENANT_ID:
        return "ENTRA_DEV_DIRECTORY"
    return "IDENTITY_PROVIDERS_FILE"
