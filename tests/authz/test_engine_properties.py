"""The policy engine, pure: a property test against an independent oracle, and determinism."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from authz.engine import (
    GROUP,
    USER,
    AccessSnapshot,
    AudienceInfo,
    EffectiveAccess,
    GrantInfo,
    PermissionInfo,
    RoleInfo,
    Source,
    Subject,
    TenantInfo,
    effective_access,
)
from tests.support.access import ALICE, BOB, NOW, OTHER_PROVIDER, PROVIDER

# Property: nothing is given that no valid grant gives, and the answer is deterministic.

USERS = [ALICE, BOB]
PROVIDERS = [PROVIDER, OTHER_PROVIDER]
GROUPS = ["g1", "g2", "g3"]
CODES = ["a.read", "a.write", "b.read", "b.admin"]
FEATURES = ["f1", "f2"]
ROLE_SLUGS = ["r1", "r2", "r3"]
# A handful of instants close together, so windows often start or end exactly at ``now``.
INSTANTS = [NOW + timedelta(minutes=offset) for offset in range(-2, 3)]

permissions_st = st.builds(
    PermissionInfo, code=st.sampled_from(CODES), requires_feature=st.none() | st.sampled_from(FEATURES)
)
roles_st = st.builds(
    RoleInfo,
    slug=st.sampled_from(ROLE_SLUGS),
    permissions=st.lists(permissions_st, max_size=4).map(tuple),
)
grants_st = st.builds(
    GrantInfo,
    id=st.integers(min_value=1, max_value=30),
    role=roles_st,
    subject_type=st.sampled_from([USER, GROUP, "robot"]),
    subject_id=st.sampled_from(USERS + GROUPS),
    valid_from=st.none() | st.sampled_from(INSTANTS),
    valid_until=st.none() | st.sampled_from(INSTANTS),
    provider=st.sampled_from(PROVIDERS),
)
tenants_st = st.builds(
    TenantInfo,
    slug=st.just("acme"),
    status=st.sampled_from(["active", "suspended"]),
    features=st.frozensets(st.sampled_from(FEATURES)),
)
snapshots_st = st.builds(AccessSnapshot, tenant=tenants_st, grants=st.lists(grants_st, max_size=8).map(tuple))
subjects_st = st.builds(
    Subject,
    user_id=st.sampled_from(USERS),
    groups=st.frozensets(st.sampled_from(GROUPS)),
    groups_overage=st.booleans(),
    provider=st.sampled_from(PROVIDERS),
)
audiences_st = st.none() | st.builds(
    AudienceInfo, identifier=st.just("api://x"), permissions=st.frozensets(st.sampled_from(CODES))
)
scopes_st = st.none() | st.lists(st.sampled_from([*CODES, "not.a.permission"]), max_size=5)


def _applies(grant: GrantInfo, *, snapshot: AccessSnapshot, subject: Subject, now: datetime) -> bool:
    """Independent oracle: does this grant apply to ``subject`` at ``now``?"""
    if snapshot.tenant.status != "active" or grant.provider != subject.provider:
        return False
    if grant.subject_type == USER:
        matches = grant.subject_id == subject.user_id
    elif grant.subject_type == GROUP:
        matches = grant.subject_id in subject.groups  # under overage: the groups Graph proved
    else:
        matches = False
    in_window = (grant.valid_from is None or grant.valid_from <= now) and (
        grant.valid_until is None or now < grant.valid_until
    )
    return matches and in_window


def _gives(
    grant: GrantInfo,
    code: str,
    *,
    snapshot: AccessSnapshot,
    subject: Subject,
    audience: AudienceInfo | None,
    now: datetime,
) -> bool:
    """Independent oracle: does this one grant, on its own, give ``code`` at ``now``?"""
    registered = audience is None or code in audience.permissions
    feature_held = any(
        p.code == code and (p.requires_feature is None or p.requires_feature in snapshot.tenant.features)
        for p in grant.role.permissions
    )
    return _applies(grant, snapshot=snapshot, subject=subject, now=now) and registered and feature_held


@settings(max_examples=500, deadline=None)
@given(
    snapshot=snapshots_st,
    subject=subjects_st,
    audience=audiences_st,
    scope=scopes_st,
    now=st.sampled_from(INSTANTS),
)
def test_it_never_gives_a_permission_that_no_valid_grant_gives(
    snapshot: AccessSnapshot,
    subject: Subject,
    audience: AudienceInfo | None,
    scope: list[str] | None,
    now: datetime,
) -> None:
    def run() -> EffectiveAccess:
        return effective_access(
            snapshot=snapshot, subject=subject, audience=audience, now=now, requested_scope=scope
        )

    access = run()
    context = {"snapshot": snapshot, "subject": subject, "audience": audience, "now": now}

    # Sound: every permission has sources, and every source is a grant that really gives it.
    assert set(access.sources) == set(access.permissions)
    for code in access.permissions:
        assert scope is None or code in scope
        assert access.sources[code], f"{code} has no source"
        for source in access.sources[code]:
            assert any(
                g.id == source.grant_id and g.role.slug == source.role and _gives(g, code, **context)
                for g in snapshot.grants
            ), f"{code} claims {source}, which does not give it"

    # Complete: what a valid grant gives is kept (unless down-scoped away), with that grant as a source.
    for g in snapshot.grants:
        for p in g.role.permissions:
            if _gives(g, p.code, **context) and (scope is None or p.code in scope):
                assert Source(g.id, g.role.slug) in access.sources[p.code]

    # Roles: only those of applicable grants that give a permission in the token (for the audience,
    # with the tenant's features, within the requested scope). Access: any applicable grant.
    applicable = [g for g in snapshot.grants if _applies(g, snapshot=snapshot, subject=subject, now=now)]
    kept = set(access.permissions)
    assert set(access.roles) == {
        g.role.slug
        for g in applicable
        if any(_gives(g, p.code, **context) for p in g.role.permissions if p.code in kept)
    }
    if scope is None:
        assert access.unavailable_scope == ()
    else:
        assert set(access.unavailable_scope) == set(scope) - set(access.permissions)
    assert access.has_access == bool(applicable)
    assert set(access.roles) <= {g.role.slug for g in applicable}

    # Deterministic: the same input gives the same output.
    assert run() == access
