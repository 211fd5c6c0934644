"""The identity providers this deployment trusts: by name, and by the issuer their tokens carry.

A principal is (provider, subject). Each directory trusted through the ``ENTRA_*`` settings is a
provider named by its directory id (``tid``), so existing principals and grants keep their provider;
the local development directory counts when enabled; then come the providers declared in
``IDENTITY_PROVIDERS_FILE`` (``settings.IDENTITY_PROVIDERS``, checked at start by
``accounts.provider_config``), each by its own name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings

from accounts.claims import TokenRejected, tid_of
from accounts.dev_directory import DEV_TENANT_ID, dev_directory_enabled
from accounts.identity_provider import ENTRA_KINDS, IdentityProvider, entra_directory

__all__ = [
    "IdentityProvider",
    "TrustedProviders",
    "provider_names",
    "providers_configured",
    "providers_trusted",
]


@dataclass(frozen=True)
class TrustedProviders:
    """Every trusted provider, in configuration order, and which one each issuer designates."""

    providers: tuple[IdentityProvider, ...]
    by_issuer: Mapping[str, IdentityProvider]
    tenant_ids: frozenset[str]  # the Entra directories among them

    def provider_of(self, claims: Mapping[str, object]) -> IdentityProvider:
        """The provider the token's ``iss`` designates, exactly; runs on UNVERIFIED claims, before any
        network call, so a token of no trusted provider never makes us fetch anything. It only picks
        whose rules and keys judge the token: nothing of another provider is ever consulted."""
        issuer = claims.get("iss")
        provider = self.by_issuer.get(issuer) if isinstance(issuer, str) else None
        if provider is not None:
            if provider.kind in ENTRA_KINDS and tid_of(claims) != provider.tenant_id:
                raise TokenRejected("issuer", "the token's issuer is not its directory's Entra issuer")
            return provider
        # No trusted provider issues this: an Entra-shaped token is told which of Entra's rules failed.
        if claims.get("tid") is not None:
            if tid_of(claims) not in self.tenant_ids:
                raise TokenRejected("tenant", "the token comes from a directory that is not trusted")
            if issuer is None:
                raise TokenRejected("claims_missing", "the token has no iss claim")
            raise TokenRejected("issuer", "the token's issuer is not its directory's Entra issuer")
        if issuer is None:
            raise TokenRejected("claims_missing", "the token has no iss claim")
        raise TokenRejected("issuer", "the token's issuer is not a trusted identity provider")


_trusted: tuple[tuple, TrustedProviders] | None = None


def providers_trusted() -> TrustedProviders:
    """The trusted providers as the settings stand (rebuilt only when they change)."""
    global _trusted
    key = (
        settings.ENTRA_AUTHORITY,
        tuple(settings.ENTRA_TENANT_ID),
        tuple(settings.ENTRA_AUDIENCE),
        tuple(settings.ENTRA_REQUIRED_SCOPES),
        tuple(settings.ENTRA_REQUIRED_ROLES),
        settings.ENTRA_ALLOW_V1_TOKENS,
        dev_directory_enabled(),
        settings.IDENTITY_PROVIDERS,
    )
    memo = _trusted
    if memo is not None and memo[0] == key:
        return memo[1]
    providers = _providers_build()
    by_issuer: dict[str, IdentityProvider] = {}
    for provider in providers:
        for issuer in provider.issuers:
            by_issuer.setdefault(issuer, provider)  # start-up refused duplicates; the first stands
    trusted = TrustedProviders(
        providers=providers,
        by_issuer=by_issuer,
        tenant_ids=frozenset(p.tenant_id for p in providers if p.kind in ENTRA_KINDS),
    )
    _trusted = (key, trusted)
    return trusted


def _providers_build() -> tuple[IdentityProvider, ...]:
    tids = list(dict.fromkeys(settings.ENTRA_TENANT_ID))
    if dev_directory_enabled() and DEV_TENANT_ID not in tids:
        tids.append(DEV_TENANT_ID)
    directories = tuple(
        entra_directory(
            tid=tid,
            authority=settings.ENTRA_AUTHORITY,
            audiences=tuple(settings.ENTRA_AUDIENCE),
            required_scopes=tuple(settings.ENTRA_REQUIRED_SCOPES),
            required_roles=tuple(settings.ENTRA_REQUIRED_ROLES),
            allow_v1=settings.ENTRA_ALLOW_V1_TOKENS,
        )
        for tid in tids
    )
    return directories + tuple(settings.IDENTITY_PROVIDERS)


def providers_configured() -> tuple[IdentityProvider, ...]:
    """Every trusted provider, in configuration order: the ``ENTRA_*`` directories, the development
    directory when enabled, then the declared providers."""
    return providers_trusted().providers


def provider_names() -> list[str]:
    """The names of the trusted providers, in configuration order."""
    return [provider.name for provider in providers_trusted().providers]
