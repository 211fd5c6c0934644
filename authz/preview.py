"""The effective-access preview: what a token exchange would put in a token now, and what it left out.

It loads the snapshot and the audience with the exchange's own selectors, runs the exchange's own
policy engine and asks the exchange's own access check whether it would refuse, so the preview
cannot drift from what clients get.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from accounts.models import Principal
from authz import engine
from authz.engine import EffectiveAccess, Subject, effective_access
from authz.errors import ExchangeError, PreviewTargetUnknown
from authz.models import Grant
from authz.selectors import exchange_inputs_get
from authz.services import AccessClaims, access_claims, exchange_access_check, exchange_tenant_choose

EXPLANATIONS = {
    engine.REASON_TENANT_SUSPENDED: "The tenant is suspended: no grant applies and the exchange refuses.",
    engine.REASON_GRANT_NOT_YET_VALID: "The grant has not started yet.",
    engine.REASON_GRANT_EXPIRED: "The grant has ended (expired or revoked).",
    engine.REASON_GROUP_NOT_IN_TOKEN: "The token does not carry this grant's group.",
    engine.REASON_GROUP_OVERAGE: (
        "The token signals group overage: it proves no group membership itself. Only the groups Microsoft "
        "Graph proves apply (GRAPH_OVERAGE), and the preview does not ask Graph."
    ),
    engine.REASON_OTHER_SUBJECT: "The grant is for another subject.",
    engine.REASON_OTHER_PROVIDER: "The grant is for a user or group of another identity provider.",
    engine.REASON_FEATURE_MISSING: "The permission needs a feature the tenant does not have.",
    engine.REASON_NOT_FOR_AUDIENCE: "The audience did not register this permission.",
    engine.REASON_NOT_REQUESTED: "Left out by the requested scope (down-scoping).",
    engine.REASON_ROLE_GIVES_NOTHING: (
        "The role gives no permission in this token (audience, features, scope): the token does not name it."
    ),
}


@dataclass(frozen=True)
class Omission:
    """One thing the token leaves out, in words, with the grant it concerns (if any)."""

    reason: str
    explanation: str
    grant: Grant | None = None
    role: str | None = None
    permission: str | None = None


@dataclass(frozen=True)
class Holding:
    """One permission the token carries and the grants (through their roles) that give it."""

    permission: str
    sources: tuple[tuple[Grant | None, str], ...]


@dataclass(frozen=True)
class AccessPreview:
    provider: str
    claims: AccessClaims
    access: EffectiveAccess
    holdings: tuple[Holding, ...]
    omissions: tuple[Omission, ...]
    refusal: str | None
    unavailable_scope: tuple[str, ...]
    principals: tuple[Principal, ...]


def access_preview(
    *,
    provider: str,
    subject_id: str,
    group_ids: list[str],
    groups_overage: bool,
    tenant_slug: str,
    audience_identifier: str,
    requested_scope: list[str] | None,
    now: datetime,
    include_principals: bool = False,
) -> AccessPreview:
    """The claims a token exchange by this subject would yield at ``now``, each explained.

    ``refusal`` says why the exchange would answer with an error instead of a token, if it would;
    ``PreviewTargetUnknown`` means the tenant or the audience is gone.
    ``include_principals`` adds our principal for this identity (its ``sub`` and last exchange):
    for platform admins only, since it is not tied to one tenant.
    """
    # Under overage the token itself proves no group; the preview does not ask Graph for them.
    proved = frozenset() if groups_overage else frozenset(group_ids)
    subject = Subject(provider=provider, user_id=subject_id, groups=proved, groups_overage=groups_overage)
    snapshots, audience = exchange_inputs_get(
        provider=provider,
        user_id=subject_id,
        group_ids=group_ids,
        tenant_slug=tenant_slug,
        audience=audience_identifier,
    )
    snapshot = snapshots.get(tenant_slug)
    if snapshot is None or audience is None:
        raise PreviewTargetUnknown()
    access = effective_access(
        snapshot=snapshot, subject=subject, audience=audience, now=now, requested_scope=requested_scope
    )

    refusal = None
    try:
        exchange_tenant_choose(requested=tenant_slug, snapshots=snapshots, subject=subject, now=now)
        exchange_access_check(access)
    except ExchangeError as error:
        refusal = f"{error.error}: {error.description}"

    grant_ids = {source.grant_id for sources in access.sources.values() for source in sources}
    grant_ids |= {exclusion.grant_id for exclusion in access.excluded if exclusion.grant_id is not None}
    grants = Grant.objects.select_related("tenant", "role__tenant").in_bulk(grant_ids)

    holdings = tuple(
        Holding(code, tuple((grants.get(source.grant_id), source.role) for source in sources))
        for code, sources in access.sources.items()
    )
    omissions = tuple(
        Omission(
            reason=exclusion.reason,
            explanation=EXPLANATIONS.get(exclusion.reason, exclusion.reason),
            grant=grants.get(exclusion.grant_id) if exclusion.grant_id is not None else None,
            role=exclusion.role,
            permission=exclusion.permission,
        )
        for exclusion in access.excluded
    )
    claims = access_claims(access=access, audience=audience)
    principals = (
        tuple(Principal.objects.filter(provider=provider, subject=subject_id)) if include_principals else ()
    )
    return AccessPreview(
        provider=provider,
        claims=claims,
        access=access,
        holdings=holdings,
        omissions=omissions,
        refusal=refusal,
        unavailable_scope=access.unavailable_scope,
        principals=principals,
    )
