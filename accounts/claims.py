"""Claim rules for every identity provider's access tokens: a pure engine from verified claims to an identity.

No Django, no network, no clock of its own: the provider (an ``IdentityProvider``: its kind, issuer,
audiences, scopes, roles and claims) and ``now`` come in as plain data, an ``Identity`` or
``TokenRejected`` comes out. The signature has already been verified when these rules run; they
decide whether a validly signed token is one we accept.

``claims_evaluate`` keeps the shape the Entra workforce rules always had (``ClaimRules``: several
trusted directories, the token's ``tid`` picks one); ``provider_claims_evaluate`` is the engine
every kind goes through.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from accounts.identity_provider import (
    AZURE_AD_B2C,
    ENTRA,
    ENTRA_KINDS,
    OIDC,
    IdentityProvider,
    entra_directory,
    v1_issuer,
    v2_issuer,
)
from accounts.subjects import subject_normalise
from lib.guid import is_guid

__all__ = [
    "CLOCK_LEEWAY",
    "TENANT_TEMPLATE",
    "ClaimRules",
    "EntraIdentity",
    "Identity",
    "TokenRejected",
    "claims_evaluate",
    "directory_of",
    "is_guid",
    "provider_claims_evaluate",
    "tid_of",
    "user_flow_of",
    "v2_issuer",
]

TENANT_TEMPLATE = "{tenantid}"

# Providers stamp tokens with a clock of their own; a small tolerance absorbs skew, not more. Seconds,
# on exp, nbf and iat, for every token we read: access tokens at the exchange, ID tokens at sign-in.
CLOCK_LEEWAY = 30
CLIENT_ID_MAX = 128
# Where a generic OpenID provider names the client: RFC 9068's client_id, OpenID's azp, Okta's cid.
OIDC_CLIENT_CLAIMS = ("client_id", "azp", "cid")


class TokenRejected(Exception):
    """A token we refuse: ``check`` is a stable code for the decision log, ``description`` is safe for
    the client (it never contains the token or key material)."""

    def __init__(self, check: str, description: str) -> None:
        super().__init__(f"{check}: {description}")
        self.check = check
        self.description = description


@dataclass(frozen=True)
class Identity:
    """Who called, as proven by a validated access token; the principal is (``provider``, ``subject``).

    ``tid`` and ``oid`` are the Entra directory and object ids, set for the Entra kinds only (Graph's
    group overage needs them); another kind leaves both empty and never signals overage.
    """

    tid: str
    oid: str
    client_id: str
    app_only: bool
    scopes: frozenset[str]
    roles: frozenset[str]
    groups: frozenset[str]
    groups_overage: bool
    issuer: str
    # Values of the groups claim that are not group ids (display names from a misconfigured Entra app
    # registration, or unusable strings): left out of ``groups`` so they match no grant, and counted.
    groups_ignored: int = 0
    # For a directory trusted through the ENTRA_* settings the provider is the directory itself (its
    # ``tid``) and the subject its ``oid``; a declared provider has a name of its own. Empty means
    # those defaults.
    provider: str = ""
    subject: str = ""

    def __post_init__(self) -> None:
        if not self.provider:
            object.__setattr__(self, "provider", self.tid)
        if not self.subject:
            object.__setattr__(self, "subject", self.oid)


# The name every caller used while Entra was the only provider.
EntraIdentity = Identity


@dataclass(frozen=True)
class ClaimRules:
    """The Entra workforce directories this deployment accepts, read from the ENTRA_* settings."""

    authority: str
    tenant_ids: frozenset[str]
    audiences: frozenset[str]
    required_scopes: frozenset[str]
    required_roles: frozenset[str]
    allow_v1: bool = False
    leeway: int = CLOCK_LEEWAY

    def v2_issuer(self, tid: str) -> str:
        return v2_issuer(self.authority, tid)

    @staticmethod
    def v1_issuer(tid: str) -> str:
        return v1_issuer(tid)

    def directory(self, tid: str) -> IdentityProvider:
        """Directory ``tid`` as the provider it is (named by its ``tid``)."""
        return entra_directory(
            tid=tid,
            authority=self.authority,
            audiences=tuple(sorted(self.audiences)),
            required_scopes=tuple(sorted(self.required_scopes)),
            required_roles=tuple(sorted(self.required_roles)),
            allow_v1=self.allow_v1,
        )


def directory_of(claims: Mapping[str, object], *, rules: ClaimRules) -> str:
    """The token's directory (``tid``) if it is one we trust; runs on UNVERIFIED claims, before any
    network call, so an untrusted directory never makes us fetch anything."""
    tid = tid_of(claims)
    if tid not in rules.tenant_ids:
        raise TokenRejected("tenant", "the token comes from a directory that is not trusted")
    return tid


def claims_evaluate(
    *, claims: Mapping[str, object], rules: ClaimRules, now: float, key_issuer: str | None = None
) -> Identity:
    """Apply every Entra claim rule to signature-verified ``claims``; ``key_issuer`` is the signing
    JWK's own ``issuer`` field when the JWKS has one."""
    tid = directory_of(claims, rules=rules)
    return provider_claims_evaluate(
        claims=claims, provider=rules.directory(tid), now=now, key_issuer=key_issuer, leeway=rules.leeway
    )


def provider_claims_evaluate(
    *,
    claims: Mapping[str, object],
    provider: IdentityProvider,
    now: float,
    key_issuer: str | None = None,
    leeway: int = CLOCK_LEEWAY,
) -> Identity:
    """Apply every rule of ``provider``'s kind to signature-verified ``claims``."""
    entra = provider.kind in ENTRA_KINDS
    tid = ""
    if entra:
        tid = tid_of(claims)
        if tid != provider.tenant_id:
            raise TokenRejected("issuer", "the token's issuer is not its directory's Entra issuer")
    issuer, version = _issuer_check(claims, provider=provider)
    if key_issuer is not None:
        _key_issuer_check(key_issuer, provider=provider, issuer=issuer)
    _audience_check(claims, provider=provider)
    _lifetime_check(claims, now=now, leeway=leeway, not_before_required=provider.kind != OIDC)
    if provider.kind == AZURE_AD_B2C:
        user_flow_of(claims, provider=provider)
    oid = _object_id_of(claims) if entra else ""
    subject = oid if provider.subject_claim == "oid" and entra else _subject_of(claims, provider=provider)
    client_id = _client_of(claims, provider=provider, version=version)
    if entra:
        app_only, scopes, roles = _entra_permissions_check(claims, provider=provider, oid=oid)
        groups, overage, ignored = (
            _entra_groups_of(claims) if provider.groups_claim else (frozenset(), False, 0)
        )
    else:
        app_only, scopes, roles = _permissions_check(claims, provider=provider)
        groups, overage, ignored = _groups_of(claims, provider=provider)
    return Identity(
        tid=tid,
        oid=oid,
        client_id=client_id,
        app_only=app_only,
        scopes=scopes,
        roles=roles,
        groups=groups,
        groups_overage=overage,
        issuer=issuer,
        groups_ignored=ignored,
        provider=provider.name,
        subject=subject,
    )


def user_flow_of(claims: Mapping[str, object], *, provider: IdentityProvider) -> str:
    """The accepted B2C user flow the token names in ``tfp`` (or, in older tokens, ``acr``), in its
    configured spelling; safe on UNVERIFIED claims (it picks which flow's keys to use)."""
    named = [claims[name] for name in ("tfp", "acr") if name in claims]
    if not named:
        raise TokenRejected("claims_missing", "the token names no user flow (tfp or acr)")
    if not all(isinstance(value, str) for value in named):
        raise TokenRejected("claims_invalid", "the user flow claim (tfp or acr) is not a string")
    if len({str(value).lower() for value in named}) > 1:
        raise TokenRejected("claims_invalid", "the token names two different user flows (tfp and acr)")
    flow = provider.user_flow_accepted(named[0])
    if flow is None:
        raise TokenRejected("user_flow", "the token comes from a user flow that is not accepted")
    return flow


def tid_of(claims: Mapping[str, object]) -> str:
    """The token's Entra directory id, which must be one (safe on UNVERIFIED claims)."""
    tid = claims.get("tid")
    if tid is None:
        raise TokenRejected("claims_missing", "the token has no tid claim")
    if not is_guid(tid):
        raise TokenRejected("claims_invalid", "the tid claim is not a directory id")
    return tid


def _issuer_check(claims: Mapping[str, object], *, provider: IdentityProvider) -> tuple[str, int]:
    issuer = claims.get("iss")
    if issuer is None:
        raise TokenRejected("claims_missing", "the token has no iss claim")
    if issuer == provider.issuer:
        return issuer, 2
    if provider.kind == ENTRA and provider.allow_v1 and issuer == v1_issuer(provider.tenant_id):
        return issuer, 1
    if provider.kind in ENTRA_KINDS:
        raise TokenRejected("issuer", "the token's issuer is not its directory's Entra issuer")
    raise TokenRejected("issuer", "the token's issuer is not its provider's issuer")


def _key_issuer_check(key_issuer: str, *, provider: IdentityProvider, issuer: str) -> None:
    # A JWKS may scope a key to one issuer; v1 and v2 tokens of one directory share its keys.
    expected = key_issuer.replace(TENANT_TEMPLATE, provider.tenant_id) if provider.tenant_id else key_issuer
    if expected == issuer:
        return
    if provider.kind == ENTRA and issuer == v1_issuer(provider.tenant_id) and expected == provider.issuer:
        return
    raise TokenRejected("issuer", "the signing key belongs to another issuer")


def _audience_check(claims: Mapping[str, object], *, provider: IdentityProvider) -> None:
    audience = claims.get("aud")
    if audience is None:
        raise TokenRejected("claims_missing", "the token has no aud claim")
    if isinstance(audience, str) and audience in provider.audiences:
        return
    # Microsoft writes one audience as a string. A generic provider may write a list (RFC 7519); it
    # is accepted only when every member is ours, so no token meant for another API serves here too.
    if (
        provider.kind == OIDC
        and isinstance(audience, list)
        and audience
        and all(isinstance(member, str) and member in provider.audiences for member in audience)
    ):
        return
    raise TokenRejected("audience", "the token was not issued for this service")


def _timestamp(claims: Mapping[str, object], name: str) -> float:
    value = claims.get(name)
    if value is None:
        raise TokenRejected("claims_missing", f"the token has no {name} claim")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenRejected("claims_invalid", f"the {name} claim is not a timestamp")
    try:
        timestamp = float(value)
    except OverflowError:  # an integer past a float's range, which JSON allows
        timestamp = math.inf
    if not math.isfinite(timestamp):
        raise TokenRejected("claims_invalid", f"the {name} claim is not a timestamp")
    return timestamp


def _lifetime_check(
    claims: Mapping[str, object], *, now: float, leeway: int, not_before_required: bool = True
) -> None:
    expires = _timestamp(claims, "exp")
    # Microsoft always writes nbf; many OpenID providers (Okta, Auth0, Keycloak) never do.
    not_before = _timestamp(claims, "nbf") if not_before_required or "nbf" in claims else -math.inf
    issued = _timestamp(claims, "iat")
    if now >= expires + leeway:
        raise TokenRejected("expired", "the token has expired")
    if now + leeway < not_before:
        raise TokenRejected("not_yet_valid", "the token is not valid yet")
    if now + leeway < issued:
        raise TokenRejected("issued_in_future", "the token claims to be issued in the future")


def _object_id_of(claims: Mapping[str, object]) -> str:
    oid = claims.get("oid")
    if oid is None:
        raise TokenRejected("claims_missing", "the token has no oid claim")
    if not is_guid(oid):
        raise TokenRejected("claims_invalid", "the oid claim is not an object id")
    return oid


def _subject_of(claims: Mapping[str, object], *, provider: IdentityProvider) -> str:
    name = provider.subject_claim
    value = claims.get(name)
    if value is None:
        raise TokenRejected("claims_missing", f"the token has no {name} claim")
    if name == "oid" and not is_guid(value):
        raise TokenRejected("claims_invalid", "the oid claim is not an object id")
    # The subject as the provider wrote it, exactly: a second spelling would be a second principal.
    try:
        if not isinstance(value, str) or subject_normalise(provider=provider.name, subject=value) != value:
            raise ValueError(name)
    except ValueError:
        raise TokenRejected("claims_invalid", f"the {name} claim is not a usable subject id") from None
    return value


def _client_of(claims: Mapping[str, object], *, provider: IdentityProvider, version: int) -> str:
    if provider.kind == OIDC:
        names: tuple[str, ...] = OIDC_CLIENT_CLAIMS
        missing = "the token names no client (client_id, azp or cid)"
    elif provider.kind == AZURE_AD_B2C:
        names, missing = ("azp",), "the token names no client (azp)"
    else:
        names, missing = ("azp" if version == 2 else "appid",), "the token names no client (azp or appid)"
    client_id = next((claims[name] for name in names if claims.get(name) is not None), None)
    if client_id is None:
        raise TokenRejected("claims_missing", missing)
    if not isinstance(client_id, str) or not client_id or len(client_id) > CLIENT_ID_MAX:
        raise TokenRejected("claims_invalid", "the client id claim is malformed")
    return client_id


def _strings(claims: Mapping[str, object], name: str) -> frozenset[str]:
    return frozenset(_string_list(claims, name))


def _string_list(claims: Mapping[str, object], name: str) -> list[str]:
    value = claims.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TokenRejected("claims_invalid", f"the {name} claim is not a list of strings")
    return value


def _entra_permissions_check(
    claims: Mapping[str, object], *, provider: IdentityProvider, oid: str
) -> tuple[bool, frozenset[str], frozenset[str]]:
    roles = _strings(claims, "roles")
    token_type = claims.get("idtyp")
    scope = claims.get("scp")
    if scope is None:
        if token_type not in (None, "app"):
            raise TokenRejected("scope", "a delegated token without scopes")
        # Microsoft's rule for an app-only token: idtyp=app (an optional claim), or, without it, a
        # subject that is the object id itself (a service principal acting for itself). A missing
        # scp alone proves nothing.
        if token_type != "app" and claims.get("sub") != oid:
            raise TokenRejected(
                "token_type",
                "the token carries neither delegated scopes (scp) nor proof that it is an application "
                "token (idtyp=app, or sub equal to oid)",
            )
        return True, frozenset(), _roles_check(roles, provider=provider)
    if not isinstance(scope, str):
        raise TokenRejected("claims_invalid", "the scp claim is not a string")
    if token_type not in (None, "user"):
        raise TokenRejected("claims_invalid", "an application token must not carry delegated scopes")
    return False, _scopes_check(frozenset(scope.split()), provider=provider), roles


def _permissions_check(
    claims: Mapping[str, object], *, provider: IdentityProvider
) -> tuple[bool, frozenset[str], frozenset[str]]:
    """B2C and generic providers: scopes as the provider writes them; no scopes at all is an
    application token, which must carry a required role."""
    roles = _strings(claims, "roles")
    scopes = _scopes_of(claims, provider=provider)
    if scopes is None:
        return True, frozenset(), _roles_check(roles, provider=provider)
    return False, _scopes_check(scopes, provider=provider), roles


def _scopes_of(claims: Mapping[str, object], *, provider: IdentityProvider) -> frozenset[str] | None:
    scope, scp = claims.get("scope"), claims.get("scp")
    if provider.kind == OIDC and scope is not None:
        # RFC 9068 writes a space-separated string; a token carrying both would be read two ways.
        if scp is not None:
            raise TokenRejected("claims_invalid", "the token carries both scope and scp")
        if not isinstance(scope, str):
            raise TokenRejected("claims_invalid", "the scope claim is not a string")
        return frozenset(scope.split())
    if scp is None:
        return None
    if isinstance(scp, str):
        return frozenset(scp.split())
    # Okta and others write scp as a list of scope names; Microsoft never does.
    if provider.kind == OIDC and isinstance(scp, list) and all(isinstance(item, str) for item in scp):
        return frozenset(scp)
    raise TokenRejected("claims_invalid", "the scp claim is not a string")


def _scopes_check(scopes: frozenset[str], *, provider: IdentityProvider) -> frozenset[str]:
    required = frozenset(provider.required_scopes)
    # No required scopes configured means this provider's delegated tokens are not taken at all.
    if not required or not required <= scopes:
        raise TokenRejected("scope", "the token lacks a required scope")
    return scopes


def _roles_check(roles: frozenset[str], *, provider: IdentityProvider) -> frozenset[str]:
    if not roles & frozenset(provider.required_roles):
        raise TokenRejected("role", "the application token lacks a required role")
    return roles


def _entra_groups_of(claims: Mapping[str, object]) -> tuple[frozenset[str], bool, int]:
    """The group object ids the token proves, whether it signals overage, and how many values were
    ignored because they are not group object ids."""
    # Past 200 groups Entra leaves them out and points at Graph (_claim_names); the token alone then
    # cannot prove membership, so the caller must not apply group grants.
    names = claims.get("_claim_names")
    if (isinstance(names, dict) and "groups" in names) or claims.get("hasgroups") is True:
        return frozenset(), True, 0
    values = _strings(claims, "groups")
    # An app registration set to emit display names (or sAMAccountNames) would let whoever names a
    # group choose which grant it matches: only canonical object ids count.
    groups = frozenset(value for value in values if is_guid(value))
    return groups, False, len(values) - len(groups)


def _groups_of(
    claims: Mapping[str, object], *, provider: IdentityProvider
) -> tuple[frozenset[str], bool, int]:
    """The groups a B2C or generic provider's token names in its configured claim, as ids of that
    provider (they match only its own group grants); values no grant could hold are ignored."""
    if provider.groups_claim is None:
        return frozenset(), False, 0
    values = _string_list(claims, provider.groups_claim)
    groups = frozenset(value for value in values if _usable_group(value, provider=provider))
    return groups, False, len(values) - len(groups)


def _usable_group(value: str, *, provider: IdentityProvider) -> bool:
    try:
        return subject_normalise(provider=provider.name, subject=value) == value
    except ValueError:
        return False
