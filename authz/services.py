"""The exchange use case (the Manager): an Entra access token in, a token of ours out.

validate the Entra token → find or create the principal → choose the tenant → load the snapshot →
policy engine → check audience and scope → sign → log the decision. Every refusal is an
``ExchangeError``; the view renders it.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from accounts.graph import member_groups_check
from accounts.identity import EntraIdentity, JwksUnavailable, TokenRejected, token_validate
from accounts.services import principal_id_get_or_create, principal_seen
from authz import decisions
from authz.engine import (
    REASON_TENANT_SUSPENDED,
    AccessSnapshot,
    AudienceInfo,
    EffectiveAccess,
    Subject,
    effective_access,
)
from authz.errors import (
    INVALID_REQUEST,
    INVALID_SCOPE,
    INVALID_TARGET,
    TEMPORARILY_UNAVAILABLE,
    UNAVAILABLE_RETRY_AFTER,
    ExchangeError,
    retry_after_seconds,
)
from authz.exchange_request import ExchangeRequest
from authz.rfc8693 import ACCESS_TOKEN_TYPE
from authz.selectors import group_ids_granted
from authz.snapshot_cache import exchange_inputs_cached
from keys.errors import KeysError
from keys.services import token_sign


@dataclass(frozen=True)
class ExchangeResult:
    access_token: str
    expires_in: int
    scope: str
    issued_token_type: str = ACCESS_TOKEN_TYPE


class AccessClaims(TypedDict):
    """The claims that carry the authorization."""

    aud: str
    tenant: str
    roles: list[str]
    scope: str


# A hook that rate-limits one principal: returns the seconds to wait, or None to go on.
PrincipalThrottle = Callable[[str], float | None]


def principal_throttle_key(*, provider: str, subject: str) -> str:
    """The principal's key for its rate limit: a digest, so no provider's subject (an email, for some
    providers) is written into the cache, and any subject makes a valid cache key."""
    return hashlib.sha256(f"{provider}\n{subject}".encode()).hexdigest()[:40]


def token_exchange(
    *,
    request: ExchangeRequest,
    now: datetime | None = None,
    principal_throttle: PrincipalThrottle | None = None,
) -> ExchangeResult:
    """Exchange a validated request for a signed token, or raise ``ExchangeError``; logs either way."""
    started = time.perf_counter()
    # Client-supplied audience and tenant are logged only once they matched a registered one.
    record = decisions.DecisionRecord()
    try:
        result = _exchange(request, now or timezone.now(), principal_throttle, record)
    except ExchangeError as error:
        record.refuse(error.reason)
        error.logged = True
        raise
    except DatabaseError:
        record.refuse("database.unavailable")  # the view answers 503 temporarily_unavailable
        raise
    finally:
        record.latency_ms = (time.perf_counter() - started) * 1000
        decisions.log(record)
    return result


def _exchange(
    request: ExchangeRequest,
    now: datetime,
    principal_throttle: PrincipalThrottle | None,
    record: decisions.DecisionRecord,
) -> ExchangeResult:
    identity = _validated_identity(request.subject_token)
    record.provider, record.tid, record.client_id = (
        identity.provider,
        identity.tid or None,
        identity.client_id,
    )
    if identity.groups_ignored:
        # Counted, never echoed: they are display names or other values a token should not carry.
        record.notes.append(
            f"groups: {identity.groups_ignored} values are not group object ids and were ignored"
        )

    if principal_throttle is not None:
        key = principal_throttle_key(provider=identity.provider, subject=identity.subject)
        wait = principal_throttle(key)
        if wait is not None:
            raise ExchangeError(
                INVALID_REQUEST,
                "too many requests for this subject; retry later",
                reason="throttled.principal",
                status=429,
                retry_after=retry_after_seconds(wait),
            )

    principal_id = principal_id_get_or_create(provider=identity.provider, subject=identity.subject)
    record.principal = str(principal_id)

    subject = Subject(
        provider=identity.provider,
        user_id=identity.subject,
        groups=identity.groups,
        groups_overage=identity.groups_overage,
    )
    if identity.groups_overage:
        subject = exchange_overage_resolve(identity=identity, tenant=request.tenant, now=now, record=record)
    snapshots, audience = exchange_inputs_cached(
        provider=subject.provider,
        user_id=subject.user_id,
        group_ids=subject.groups,
        tenant_slug=request.tenant,
        audience=request.audience,
    )
    if audience is None:
        record.notes.append("audience not registered")
    snapshot = exchange_tenant_choose(requested=request.tenant, snapshots=snapshots, subject=subject, now=now)
    record.tenant = snapshot.tenant.slug
    if audience is None:
        # Only a caller with access learns that an audience is not registered; anyone else gets the
        # answer a registered audience would get, so registered audiences cannot be enumerated.
        exchange_tenant_access_check(
            effective_access(snapshot=snapshot, subject=subject, audience=None, now=now)
        )
        raise ExchangeError(INVALID_TARGET, "the audience is not registered", reason="audience.unknown")
    record.audience = audience.identifier

    access = effective_access(
        snapshot=snapshot,
        subject=subject,
        audience=audience,
        now=now,
        requested_scope=request.scope,
    )
    record.excluded = sorted({exclusion.reason for exclusion in access.excluded})
    exchange_access_check(access)

    issued_at = int(now.timestamp())
    expires_at = issued_at + settings.TOKEN_LIFETIME
    jti = secrets.token_urlsafe(16)
    authorization = access_claims(access=access, audience=audience)
    claims = {
        "iss": settings.TOKEN_ISSUER,
        "sub": str(principal_id),
        "exp": expires_at,
        "iat": issued_at,
        "nbf": issued_at,
        "jti": jti,
        "client_id": identity.client_id,
        **authorization,
    }
    scope = authorization["scope"]
    try:
        token = token_sign(claims=claims)
    except KeysError as exc:
        # A key store that knows when it can sign again (a throttled vault) says so; else our default.
        raise ExchangeError(
            TEMPORARILY_UNAVAILABLE,
            "no signing key is available; retry later",
            reason="keys.unavailable",
            status=503,
            retry_after=getattr(exc, "retry_after", None) or UNAVAILABLE_RETRY_AFTER,
        ) from None

    record.issue(jti=jti, scope=scope, roles=access.roles)
    principal_seen(principal_id=principal_id, now=now)  # a write at most every few minutes
    return ExchangeResult(access_token=token, expires_in=expires_at - issued_at, scope=scope)


def _validated_identity(subject_token: str) -> EntraIdentity:
    try:
        return token_validate(token=subject_token)
    except TokenRejected as rejected:
        raise ExchangeError(
            INVALID_REQUEST,
            f"subject_token rejected: {rejected.description}",
            reason=f"subject_token.{rejected.check}",
        ) from None
    except JwksUnavailable as unavailable:
        # Entra unreachable and no usable key known: an outage the client did not cause.
        raise ExchangeError(
            TEMPORARILY_UNAVAILABLE,
            "the identity provider's keys are unavailable; retry later",
            reason="entra.unavailable",
            status=503,
            retry_after=UNAVAILABLE_RETRY_AFTER
            if unavailable.retry_after is None
            else retry_after_seconds(unavailable.retry_after),
        ) from None


# Group overage asks Graph about at most this many granted groups per exchange (5 calls of 20), so
# thousands of group grants cannot turn one exchange into a long conversation with Graph.
GRAPH_GROUP_LIMIT = 100


def exchange_overage_resolve(
    *, identity: EntraIdentity, tenant: str | None, now: datetime, record: decisions.DecisionRecord
) -> Subject:
    """The subject of a token with group overage: the granted groups Graph proved, overage for the rest.

    With ``GRAPH_OVERAGE`` on, Graph is asked only about the groups that grants valid at ``now`` name
    in the requested tenant (every active tenant when none is named). A group it did not answer for
    stays unproved: its grants do not apply, and the decision log says why.
    """
    provider, subject = identity.provider, identity.subject
    if not settings.GRAPH_OVERAGE:
        record.notes.append("group_overage: group grants not applied (GRAPH_OVERAGE is off)")
        return Subject(provider=provider, user_id=subject, groups_overage=True)
    granted = group_ids_granted(provider=provider, tenant_slug=tenant, now=now, limit=GRAPH_GROUP_LIMIT)
    if not granted:
        record.notes.append("group_overage: no group grants to check")
        return Subject(provider=provider, user_id=subject)
    asked = granted[:GRAPH_GROUP_LIMIT]
    answer = member_groups_check(tid=identity.tid, oid=identity.oid, group_ids=asked)
    checked = f"{len(answer.checked)} groups checked, member of {len(answer.members)}"
    failure = f"graph.{answer.failure}"
    if answer.backoff_from is not None:
        failure += f" after graph.{answer.backoff_from}"
    if answer.failure is None:
        note = f"group_overage: resolved through Graph ({checked})"
    elif answer.checked:
        note = f"group_overage: {failure} ({checked}); the other group grants not applied"
    else:
        note = f"group_overage: {failure}; group grants not applied"
    if len(granted) > len(asked):
        note += f"; more than {GRAPH_GROUP_LIMIT} granted groups: the rest not applied"
    record.notes.append(note)
    resolved = len(answer.checked) == len(granted)
    return Subject(provider=provider, user_id=subject, groups=answer.members, groups_overage=not resolved)


def access_claims(*, access: EffectiveAccess, audience: AudienceInfo) -> AccessClaims:
    """The claims that carry the authorization (the rest say who, when and by whom)."""
    return {
        "aud": audience.identifier,
        "tenant": access.tenant,
        "roles": list(access.roles),
        "scope": " ".join(access.permissions),
    }


def exchange_tenant_choose(
    *, requested: str | None, snapshots: dict[str, AccessSnapshot], subject: Subject, now: datetime
) -> AccessSnapshot:
    """The requested tenant, or the only tenant where the subject has access now."""
    if requested is not None:
        snapshot = snapshots.get(requested)
        # One answer for "no such tenant" and "no grant there", so tenants cannot be enumerated.
        if snapshot is None or not snapshot.grants:
            raise ExchangeError(
                INVALID_REQUEST, f"no access to tenant '{requested}'", reason="tenant.no_access"
            )
        return snapshot
    with_access = [
        snapshot
        for snapshot in snapshots.values()
        if effective_access(snapshot=snapshot, subject=subject, audience=None, now=now).has_access
    ]
    if not with_access:
        raise ExchangeError(INVALID_REQUEST, "no access to any tenant", reason="tenant.none")
    if len(with_access) > 1:
        raise ExchangeError(
            INVALID_REQUEST,
            "access to several tenants: name one with the tenant parameter",
            reason="tenant.ambiguous",
        )
    return with_access[0]


def exchange_tenant_access_check(access: EffectiveAccess) -> None:
    """Raise the ``ExchangeError`` for a subject without access to the tenant, whatever the audience."""
    reasons = {exclusion.reason for exclusion in access.excluded}
    if REASON_TENANT_SUSPENDED in reasons:
        raise ExchangeError(INVALID_REQUEST, "the tenant is suspended", reason="tenant.suspended")
    if not access.has_access:
        raise ExchangeError(
            INVALID_REQUEST, f"no access to tenant '{access.tenant}'", reason="tenant.no_grant"
        )


def exchange_access_check(access: EffectiveAccess) -> None:
    """Raise the ``ExchangeError`` the exchange answers for this result, if any (the preview shows it).

    Access to the tenant is checked first, so a caller without it gets the same answer whatever
    the audience and scope it asked for.
    """
    exchange_tenant_access_check(access)
    if access.unavailable_scope:
        raise ExchangeError(
            INVALID_SCOPE,
            "the requested scope exceeds what the subject holds for this audience: "
            + " ".join(access.unavailable_scope),
            reason="scope.exceeds",
        )
    if not access.permissions:
        raise ExchangeError(
            INVALID_TARGET,
            "the subject holds no permission for this audience",
            reason="audience.no_permission",
        )
