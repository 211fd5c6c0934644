"""Claim rules for Entra ID access tokens: a pure engine from verified claims to an identity.

No Django, no network, no clock of its own: the rules (trusted directories, audiences, scopes,
roles, issuers) and ``now`` come in as plain data, an ``EntraIdentity`` or ``TokenRejected`` comes
out. The signature has already been verified when these rules run; they decide whether a validly
signed token is one we accept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from lib.guid import is_guid

TENANT_TEMPLATE = "{tenantid}"


def v2_issuer(authority: str, tid: str) -> str:
    """The v2 issuer of directory ``tid`` under an authority (also the base of its discovery URL)."""
    return f"{authority}/{tid}/v2.0"


# Entra stamps tokens with a clock of its own; a small tolerance absorbs skew, not more. Seconds, on
# exp, nbf and iat, for every Entra token we read: access tokens at the exchange, ID tokens at sign-in.
CLOCK_LEEWAY = 30


class TokenRejected(Exception):
    """A token we refuse: ``check`` is a stable code for the decision log, ``description`` is safe for
    the client (it never contains the token or key material)."""

    def __init__(self, check: str, description: str) -> None:
        super().__init__(f"{check}: {description}")
        self.check = check
        self.description = description


@dataclass(frozen=True)
class EntraIdentity:
    """Who called, as proven by a validated Entra access token; identity is (``tid``, ``oid``)."""

    tid: str
    oid: str
    client_id: str
    app_only: bool
    scopes: frozenset[str]
    roles: frozenset[str]
    groups: frozenset[str]
    groups_overage: bool
    issuer: str
    # Values of ``groups`` that are not group object ids (display names from a misconfigured app
    # registration): left out of ``groups`` so they match no grant, and counted for the decision log.
    groups_ignored: int = 0
    # The principal is (``provider``, ``subject``). For a directory trusted through the ENTRA_* settings
    # the provider is the directory itself (its ``tid``) and the subject its ``oid``; a declared
    # provider has a name of its own. Empty means those defaults.
    provider: str = ""
    subject: str = ""

    def __post_init__(self) -> None:
        if not self.provider:
            object.__setattr__(self, "provider", self.tid)
        if not self.subject:
            object.__setattr__(self, "subject", self.oid)


@dataclass(frozen=True)
class ClaimRules:
    """What this deployment accepts, read from settings by the caller."""

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
        return f"https://sts.windows.net/{tid}/"


def directory_of(claims: Mapping[str, object], *, rules: ClaimRules) -> str:
    """The token's directory (``tid``) if it is one we trust; runs on UNVERIFIED claims, before any
    network call, so an untrusted directory never makes us fetch anything."""
    tid = claims.get("tid")
    if tid is None:
        raise TokenRejected("claims_missing", "the token has no tid claim")
    if not is_guid(tid):
        raise TokenRejected("claims_invalid", "the tid claim is not a directory id")
    if tid not in rules.tenant_ids:
        raise TokenRejected("tenant", "the token comes from a directory that is not trusted")
    return tid


def claims_evaluate(
    *, claims: Mapping[str, object], rules: ClaimRules, now: float, key_issuer: str | None = None
) -> EntraIdentity:
    """Apply every claim rule to signature-verified ``claims``; ``key_issuer`` is the signing JWK's
    own ``issuer`` field when the JWKS has one."""
    tid = directory_of(claims, rules=rules)
    issuer, version = _issuer_check(claims, rules=rules, tid=tid)
    if key_issuer is not None:
        _key_issuer_check(key_issuer, rules=rules, tid=tid, issuer=issuer)
    _audience_check(claims, rules=rules)
    _lifetime_check(claims, now=now, leeway=rules.leeway)
    oid = claims.get("oid")
    if oid is None:
        raise TokenRejected("claims_missing", "the token has no oid claim")
    if not is_guid(oid):
        raise TokenRejected("claims_invalid", "the oid claim is not an object id")
    client_id = claims.get("azp" if version == 2 else "appid")
    if client_id is None:
        raise TokenRejected("claims_missing", "the token names no client (azp or appid)")
    if not isinstance(client_id, str) or not client_id or len(client_id) > 128:
        raise TokenRejected("claims_invalid", "the client id claim is malformed")
    app_only, scopes, roles = _permissions_check(claims, rules=rules, oid=oid)
    groups, overage, ignored = _groups_of(claims)
    return EntraIdentity(
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
    )


def _issuer_check(claims: Mapping[str, object], *, rules: ClaimRules, tid: str) -> tuple[str, int]:
    issuer = claims.get("iss")
    if issuer is None:
        raise TokenRejected("claims_missing", "the token has no iss claim")
    if issuer == rules.v2_issuer(tid):
        return issuer, 2
    if rules.allow_v1 and issuer == rules.v1_issuer(tid):
        return issuer, 1
    raise TokenRejected("issuer", "the token's issuer is not its directory's Entra issuer")


def _key_issuer_check(key_issuer: str, *, rules: ClaimRules, tid: str, issuer: str) -> None:
    # A JWKS may scope a key to one issuer; v1 and v2 tokens of one directory share its keys.
    expected = key_issuer.replace(TENANT_TEMPLATE, tid)
    if expected == issuer:
        return
    if issuer == rules.v1_issuer(tid) and expected == rules.v2_issuer(tid):
        return
    raise TokenRejected("issuer", "the signing key belongs to another issuer")


def _audience_check(claims: Mapping[str, object], *, rules: ClaimRules) -> None:
    audience = claims.get("aud")
    if audience is None:
        raise TokenRejected("claims_missing", "the token has no aud claim")
    # Entra writes one audience as a string; a list would let one token serve several APIs.
    if not isinstance(audience, str) or audience not in rules.audiences:
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


def _lifetime_check(claims: Mapping[str, object], *, now: float, leeway: int) -> None:
    expires = _timestamp(claims, "exp")
    not_before = _timestamp(claims, "nbf")
    issued = _timestamp(claims, "iat")
    if now >= expires + leeway:
        raise TokenRejected("expired", "the token has expired")
    if now + leeway < not_before:
        raise TokenRejected("not_yet_valid", "the token is not valid yet")
    if now + leeway < issued:
        raise TokenRejected("issued_in_future", "the token claims to be issued in the future")


def _strings(claims: Mapping[str, object], name: str) -> frozenset[str]:
    value = claims.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TokenRejected("claims_invalid", f"the {name} claim is not a list of strings")
    return frozenset(value)


def _permissions_check(
    claims: Mapping[str, object], *, rules: ClaimRules, oid: str
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
        if not roles & rules.required_roles:
            raise TokenRejected("role", "the application token lacks a required role")
        return True, frozenset(), roles
    if not isinstance(scope, str):
        raise TokenRejected("claims_invalid", "the scp claim is not a string")
    if token_type not in (None, "user"):
        raise TokenRejected("claims_invalid", "an application token must not carry delegated scopes")
    scopes = frozenset(scope.split())
    # No required scopes configured means this service takes no delegated tokens at all.
    if not rules.required_scopes or not rules.required_scopes <= scopes:
        raise TokenRejected("scope", "the token lacks a required scope")
    return False, scopes, roles


def _groups_of(claims: Mapping[str, object]) -> tuple[frozenset[str], bool, int]:
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
