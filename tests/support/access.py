"""Plain inputs for the policy engine's tests: people, permissions, roles, acme, the orders API.

``grant`` builds a GrantInfo, ``evaluate`` runs the engine on acme at ``NOW`` for alice unless told
otherwise, ``reasons`` lists why grants were left out.
"""

from __future__ import annotations

from datetime import UTC, datetime

from authz.engine import (
    USER,
    AccessSnapshot,
    AudienceInfo,
    EffectiveAccess,
    GrantInfo,
    PermissionInfo,
    RoleInfo,
    Subject,
    TenantInfo,
    effective_access,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# The identity provider of every subject and grant here unless told otherwise (an Entra directory).
PROVIDER = "11111111-1111-4111-8111-111111111111"
OTHER_PROVIDER = "22222222-2222-4222-8222-222222222222"
ALICE = "00000000-0000-0000-0000-00000000a11c"
BOB = "00000000-0000-0000-0000-000000000b0b"
ADMINS = "00000000-0000-0000-0000-0000000ad111"

READ = PermissionInfo("orders.read")
WRITE = PermissionInfo("orders.write")
EXPORT = PermissionInfo("orders.export", requires_feature="exports")
VIEWER = RoleInfo("viewer", (READ,))
EDITOR = RoleInfo("editor", (READ, WRITE))
EXPORTER = RoleInfo("exporter", (EXPORT,))
ACME = TenantInfo("acme", features=frozenset({"exports"}))
ORDERS = AudienceInfo("api://orders", frozenset({"orders.read", "orders.write", "orders.export"}))


def grant(
    grant_id: int = 1,
    role: RoleInfo = VIEWER,
    *,
    subject_type: str = USER,
    subject_id: str = ALICE,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    provider: str = PROVIDER,
) -> GrantInfo:
    return GrantInfo(
        id=grant_id,
        role=role,
        subject_type=subject_type,
        subject_id=subject_id,
        valid_from=valid_from,
        valid_until=valid_until,
        provider=provider,
    )


def evaluate(
    *grants: GrantInfo,
    tenant: TenantInfo = ACME,
    subject: Subject | None = None,
    audience: AudienceInfo | None = ORDERS,
    now: datetime = NOW,
    scope: list[str] | None = None,
) -> EffectiveAccess:
    return effective_access(
        snapshot=AccessSnapshot(tenant, grants),
        subject=subject or Subject(ALICE, provider=PROVIDER),
        audience=audience,
        now=now,
        requested_scope=scope,
    )


def reasons(access: EffectiveAccess) -> list[str]:
    return [exclusion.reason for exclusion in access.excluded]
