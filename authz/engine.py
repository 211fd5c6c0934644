"""Policy evaluation: from one principal's grants in one tenant to effective roles and permissions.

Pure Python: plain frozen dataclasses in, plain data out, ``now`` passed in. No ORM, no settings,
so every rule is unit-tested without a database and the portal's preview can use the very same
function as the exchange.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

USER = "user"
GROUP = "group"
ACTIVE = "active"


@dataclass(frozen=True)
class PermissionInfo:
    code: str
    requires_feature: str | None = None


@dataclass(frozen=True)
class RoleInfo:
    slug: str
    permissions: tuple[PermissionInfo, ...] = ()


@dataclass(frozen=True)
class GrantInfo:
    id: int
    role: RoleInfo
    subject_type: str  # USER or GROUP
    subject_id: str
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    # The identity provider of the subject: the grant matches only that provider's tokens.
    provider: str = field(kw_only=True)


@dataclass(frozen=True)
class TenantInfo:
    slug: str
    status: str = ACTIVE
    features: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AudienceInfo:
    identifier: str
    permissions: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AccessSnapshot:
    """Everything the engine needs about one principal in one tenant, loaded by a selector."""

    tenant: TenantInfo
    grants: tuple[GrantInfo, ...] = ()


@dataclass(frozen=True)
class Subject:
    """Who is asking: the provider, its subject id, and the group ids the token (or Graph) proved."""

    user_id: str
    groups: frozenset[str] = frozenset()
    # Entra left groups out (past 200) and not every granted group was proved: the grants of groups
    # outside ``groups`` cannot apply, and are reported as overage rather than as absent.
    groups_overage: bool = False
    # The identity provider that vouched for the subject and its groups: only its grants can apply.
    provider: str = field(kw_only=True)


@dataclass(frozen=True)
class Source:
    """Why a permission is held: which grant, through which role."""

    grant_id: int
    role: str


@dataclass(frozen=True)
class Exclusion:
    """Something that did not make it into the result, and why (for the log and the preview)."""

    reason: str  # a stable code, see the REASON_* constants
    grant_id: int | None = None
    role: str | None = None
    permission: str | None = None


REASON_TENANT_SUSPENDED = "tenant_suspended"
REASON_GRANT_NOT_YET_VALID = "grant_not_yet_valid"
REASON_GRANT_EXPIRED = "grant_expired"
REASON_GROUP_NOT_IN_TOKEN = "group_not_in_token"
REASON_GROUP_OVERAGE = "group_overage"
REASON_OTHER_SUBJECT = "other_subject"
REASON_OTHER_PROVIDER = "other_provider"
REASON_FEATURE_MISSING = "feature_missing"
REASON_NOT_FOR_AUDIENCE = "not_registered_for_audience"
REASON_NOT_REQUESTED = "not_requested"
REASON_ROLE_GIVES_NOTHING = "role_gives_no_permission"


@dataclass(frozen=True)
class EffectiveAccess:
    tenant: str
    # Only the roles that give at least one permission in ``permissions``: a role that gives
    # nothing for the audience, in this tenant or within the requested scope is not named.
    roles: tuple[str, ...]
    permissions: tuple[str, ...]
    sources: dict[str, tuple[Source, ...]] = field(default_factory=dict)
    excluded: tuple[Exclusion, ...] = ()
    # Requested scope values the caller does not hold: the exchange answers invalid_scope.
    unavailable_scope: tuple[str, ...] = ()
    # The grants that apply (subject, period, active tenant), whatever they give for the audience.
    grants: tuple[int, ...] = ()

    @property
    def has_access(self) -> bool:
        """Whether the subject has access to the tenant at all (a grant applies), audience aside."""
        return bool(self.grants)


def effective_access(
    *,
    snapshot: AccessSnapshot,
    subject: Subject,
    audience: AudienceInfo | None,
    now: datetime,
    requested_scope: Iterable[str] | None = None,
) -> EffectiveAccess:
    """Roles and permissions ``subject`` holds in the snapshot's tenant, for ``audience``, at ``now``.

    A grant applies while ``valid_from <= now < valid_until``, the tenant is active, it names the
    subject's provider and, for a group grant, the token proved membership. A permission applies
    when the tenant has its feature and, if an audience is given, the audience registered it. A
    requested scope narrows the result (down-scoping only); values outside what is held are
    reported in ``unavailable_scope``.
    """
    tenant = snapshot.tenant
    excluded: list[Exclusion] = []
    if subject.groups_overage:
        # Said even when no group grant was loaded: the selector cannot find them without the groups.
        excluded.append(Exclusion(REASON_GROUP_OVERAGE))
    if tenant.status != ACTIVE:
        excluded.append(Exclusion(REASON_TENANT_SUSPENDED))
        return EffectiveAccess(
            tenant=tenant.slug,
            roles=(),
            permissions=(),
            excluded=tuple(excluded),
            unavailable_scope=tuple(sorted(set(requested_scope or ()))),
        )

    applicable: list[GrantInfo] = []
    for grant in sorted(snapshot.grants, key=lambda g: g.id):
        reason = _grant_exclusion(grant, subject, now)
        if reason:
            excluded.append(Exclusion(reason, grant_id=grant.id, role=grant.role.slug))
        else:
            applicable.append(grant)

    sources: dict[str, list[Source]] = {}
    role_permissions: dict[str, set[str]] = {}
    for grant in applicable:
        held = role_permissions.setdefault(grant.role.slug, set())
        for permission in grant.role.permissions:
            if permission.requires_feature and permission.requires_feature not in tenant.features:
                excluded.append(Exclusion(REASON_FEATURE_MISSING, grant.id, grant.role.slug, permission.code))
                continue
            if audience is not None and permission.code not in audience.permissions:
                excluded.append(
                    Exclusion(REASON_NOT_FOR_AUDIENCE, grant.id, grant.role.slug, permission.code)
                )
                continue
            held.add(permission.code)
            found = sources.setdefault(permission.code, [])
            if Source(grant.id, grant.role.slug) not in found:
                found.append(Source(grant.id, grant.role.slug))

    unavailable: tuple[str, ...] = ()
    if requested_scope is not None:
        requested = set(requested_scope)
        unavailable = tuple(sorted(requested - sources.keys()))
        for code in sorted(sources.keys() - requested):
            excluded.append(Exclusion(REASON_NOT_REQUESTED, permission=code))
            del sources[code]

    # The token names only the roles that give one of its permissions: a downstream check on roles
    # can then undo neither the audience filter, nor a feature gate, nor the down-scoping.
    roles = {slug for slug, held in role_permissions.items() if held & sources.keys()}
    for grant in applicable:
        if grant.role.slug not in roles:
            excluded.append(Exclusion(REASON_ROLE_GIVES_NOTHING, grant.id, grant.role.slug))

    return EffectiveAccess(
        tenant=tenant.slug,
        roles=tuple(sorted(roles)),
        permissions=tuple(sorted(sources)),
        sources={code: tuple(found) for code, found in sorted(sources.items())},
        excluded=tuple(excluded),
        unavailable_scope=unavailable,
        grants=tuple(grant.id for grant in applicable),
    )


def _grant_exclusion(grant: GrantInfo, subject: Subject, now: datetime) -> str | None:
    # An id means something only within its provider: the same id from another provider is
    # someone else (a user) or another group.
    if grant.provider != subject.provider:
        return REASON_OTHER_PROVIDER
    if grant.subject_type == USER:
        if grant.subject_id != subject.user_id:
            return REASON_OTHER_SUBJECT
    elif grant.subject_type == GROUP:
        # Under overage the token lists no groups: only memberships proved otherwise (Graph) are in
        # ``groups``, and any other group is unproved rather than absent.
        if grant.subject_id not in subject.groups:
            return REASON_GROUP_OVERAGE if subject.groups_overage else REASON_GROUP_NOT_IN_TOKEN
    else:
        return REASON_OTHER_SUBJECT
    return grant_period_exclusion(valid_from=grant.valid_from, valid_until=grant.valid_until, now=now)


def grant_period_exclusion(
    *, valid_from: datetime | None, valid_until: datetime | None, now: datetime
) -> str | None:
    """Why a grant's period excludes it at ``now`` (it applies while valid_from <= now < valid_until)."""
    if valid_from is not None and now < valid_from:
        return REASON_GRANT_NOT_YET_VALID
    if valid_until is not None and now >= valid_until:
        return REASON_GRANT_EXPIRED
    return None


# --- Role rules: one place each, called by the models' validation, the policy planner and the
# snapshot selector, so the portal, the import and the exchange cannot disagree. ----------------


def role_applies_in(*, role_tenant: object | None, tenant: object) -> bool:
    """A global role (no owning tenant) applies in every tenant; a tenant's own role only in that one."""
    return role_tenant is None or role_tenant == tenant


@dataclass(frozen=True)
class RoleSlugClash:
    """Why a role may not take its slug: tokens list role slugs, so one slug must name one role."""

    with_global: bool  # another global role has the slug
    tenants: tuple[str, ...] = ()  # for a global role: the tenants that own a role with the slug


def role_slug_clash(*, owner: str | None, other_owners: Iterable[str | None]) -> RoleSlugClash | None:
    """The clash of a role (global when ``owner`` is None) with the other roles that have its slug.

    ``other_owners`` are the owning tenants of those other roles, ``None`` for a global one. Tenants'
    own roles may share a slug with each other (a token names one tenant), never with a global role.
    """
    others = set(other_owners)
    if None in others:
        return RoleSlugClash(with_global=True)
    if owner is None and others:
        return RoleSlugClash(with_global=False, tenants=tuple(sorted(str(o) for o in others)))
    return None


def features_undeclared(*, features: Iterable[str], declared: Iterable[str]) -> tuple[str, ...]:
    """The features (a tenant's, or those permissions require) missing from the feature catalogue.

    A typo ("exprots") would otherwise silently drop the permissions gated by the intended feature.
    While no catalogue is declared at all (policies written before it existed) nothing is refused.
    """
    catalogue = set(declared)
    return tuple(feature for feature in features if catalogue and feature not in catalogue)
