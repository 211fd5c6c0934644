"""The import plan: what a policy document changes, compared with what is stored.

An engine: plain data in (the parsed document and a ``StoredPolicy`` keyed by natural keys), a plan
and its report out, every reference checked and every problem named by entry. No Django, so the
rules of an import are unit-tested without a database.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from authz.engine import features_undeclared, role_applies_in, role_slug_clash
from authz.policy.document import KINDS, ErrorList, GrantKey, PolicyDocument, RoleKey, show


@dataclass(frozen=True)
class StoredGrant:
    id: int
    valid_from: datetime | None
    valid_until: datetime | None


@dataclass(frozen=True)
class StoredPolicy:
    """What the database holds, by natural key, with the values the file may change."""

    features: dict[str, str] = field(default_factory=dict)  # code -> description
    permissions: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    audiences: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict)
    roles: dict[RoleKey, tuple[str, frozenset[str]]] = field(default_factory=dict)
    tenants: dict[str, tuple[str, str, tuple[str, ...]]] = field(default_factory=dict)
    grants: dict[GrantKey, StoredGrant] = field(default_factory=dict)


@dataclass
class KindCounts:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0


@dataclass
class ImportReport:
    """What an import changed (or, with ``dry_run``, would change), per kind."""

    dry_run: bool = False
    pruned: bool = False
    counts: dict[str, KindCounts] = field(default_factory=lambda: {kind: KindCounts() for kind in KINDS})

    @property
    def changes(self) -> int:
        return sum(c.created + c.updated + c.deleted for c in self.counts.values())


@dataclass
class PolicyPlan:
    """The writes an import needs: specs to create or update, grants to delete, and the counts."""

    creates: dict[str, list] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    updates: dict[str, list] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    grant_deletes: list[int] = field(default_factory=list)
    grant_keys: dict[int, GrantKey] = field(default_factory=dict)  # spec index -> resolved key
    grant_stored_ids: dict[int, int] = field(default_factory=dict)  # spec index -> id, for updates
    report: ImportReport = field(default_factory=ImportReport)


def _role_resolve(
    slug: str, tenant: str, usable: set[RoleKey], owners: dict[str, list[str]]
) -> RoleKey | str:
    """The role a grant in ``tenant`` means by ``slug``: the tenant's own, else the global one; or why not."""
    for owner in (tenant, None):  # the slug rule keeps a tenant's role and a global one from coexisting
        if (owner, slug) in usable and role_applies_in(role_tenant=owner, tenant=tenant):
            return (owner, slug)
    others = sorted(owner for owner in owners.get(slug, ()) if owner != tenant)
    if others:
        return f"role {show(slug)} belongs to tenant {show(others[0])}, not to {show(tenant)}"
    return f"role {show(slug)} does not exist"


def _role_clash_message(slug: str, owner: str | None, other_owners: list[str | None]) -> str | None:
    clash = role_slug_clash(owner=owner, other_owners=other_owners)
    if clash is None:
        return None
    if clash.with_global:
        return f"role {show(slug)} clashes with the global role of that slug"
    return f"global role {show(slug)} clashes with the role {show(slug)} of tenant {show(clash.tenants[0])}"


def policy_plan(document: PolicyDocument, stored: StoredPolicy, prune: bool, errors: ErrorList) -> PolicyPlan:
    """Check every reference of ``document`` against itself and ``stored``; the writes it needs.

    Problems go to ``errors``; when there are any the plan is incomplete and must not be applied.
    """
    broken = {kind: document.broken.get(kind, frozenset()) for kind in KINDS}
    if prune and "grants" not in document.present:
        errors.add(
            "grants",
            None,
            "--prune needs a 'grants' list in the file (an empty list deletes every grant)",
        )
    permissions = set(stored.permissions) | {p.code for p in document.permissions} | broken["permissions"]
    tenants = set(stored.tenants) | {t.slug for t in document.tenants}
    unknown_tenants = broken["tenants"] - tenants
    roles = set(stored.roles) | {r.key for r in document.roles}
    owners: dict[str, list[str]] = {}
    slug_owners: dict[str, list[str | None]] = {}
    for owner, slug in roles:
        slug_owners.setdefault(slug, []).append(owner)
        if owner is not None:
            owners.setdefault(slug, []).append(owner)

    for kind, specs in (("audiences", document.audiences), ("roles", document.roles)):
        for spec in specs:
            for code in sorted(spec.permissions - permissions):
                errors.add(kind, spec.index, f"permission {show(code)} does not exist")
    _features_check(document, stored, errors)
    broken_roles = set(broken["roles"])
    for role in document.roles:
        if role.tenant is not None and role.tenant not in tenants:
            broken_roles.add(role.key)
            if role.tenant not in unknown_tenants:
                errors.add("roles", role.index, f"tenant {show(role.tenant)} does not exist")
        others = [owner for owner in slug_owners[role.slug] if owner != role.tenant]
        if (clash := _role_clash_message(role.slug, role.tenant, others)) is not None:
            errors.add("roles", role.index, clash)

    plan = PolicyPlan()
    seen_grants: dict[GrantKey, int] = {}
    broken_slugs = {slug for _owner, slug in broken_roles}
    usable_roles = roles - broken_roles
    for grant in document.grants:
        if grant.tenant not in tenants:
            if grant.tenant not in unknown_tenants:
                errors.add("grants", grant.index, f"tenant {show(grant.tenant)} does not exist")
            continue
        resolved = _role_resolve(grant.role, grant.tenant, usable_roles, owners)
        if isinstance(resolved, str):
            if grant.role not in broken_slugs:
                errors.add("grants", grant.index, resolved)
            continue
        key = (grant.tenant, resolved, grant.subject_type, grant.provider, grant.subject_id)
        seen_grants[key] = grant.index
        plan.grant_keys[grant.index] = key
    if errors.total:
        return plan
    _plan_changes(plan, document, stored)
    if prune:
        plan.grant_deletes = sorted(
            current.id for key, current in stored.grants.items() if key not in seen_grants
        )
        plan.report.counts["grants"].deleted = len(plan.grant_deletes)
    plan.report.pruned = prune
    return plan


def _features_check(document: PolicyDocument, stored: StoredPolicy, errors: ErrorList) -> None:
    """Tenants' features and permissions' required features come from the catalogue (file or stored)."""
    declared = (
        set(stored.features) | {f.code for f in document.features} | document.broken.get("features", set())
    )
    checks: list[tuple[str, int, Iterable[str]]] = [
        ("permissions", p.index, [p.requires_feature] if p.requires_feature else [])
        for p in document.permissions
    ]
    checks += [("tenants", t.index, t.features) for t in document.tenants]
    for kind, index, features in checks:
        for feature in features_undeclared(features=features, declared=declared):
            guess = difflib.get_close_matches(feature, sorted(declared), n=1)
            hint = f"; did you mean {show(guess[0])}?" if guess else "; declare it under 'features'"
            errors.add(kind, index, f"feature {show(feature)} is not in the feature catalogue{hint}")


def _plan_changes(plan: PolicyPlan, document: PolicyDocument, stored: StoredPolicy) -> None:
    """Sort every entry into create, update or unchanged, and count them."""
    report = plan.report

    def sort(kind: str, spec: Any, stored_value: Any, wanted: Any) -> None:
        if stored_value is None:
            plan.creates[kind].append(spec)
            report.counts[kind].created += 1
        elif stored_value != wanted:
            plan.updates[kind].append(spec)
            if kind == "grants":
                plan.grant_stored_ids[spec.index] = stored.grants[plan.grant_keys[spec.index]].id
            report.counts[kind].updated += 1
        else:
            report.counts[kind].unchanged += 1

    for f in document.features:
        sort("features", f, stored.features.get(f.code), f.description)
    for p in document.permissions:
        sort("permissions", p, stored.permissions.get(p.code), (p.description, p.requires_feature))
    for a in document.audiences:
        sort("audiences", a, stored.audiences.get(a.identifier), (a.name, a.permissions))
    for r in document.roles:
        sort("roles", r, stored.roles.get(r.key), (r.name, r.permissions))
    for t in document.tenants:
        stored_tenant = stored.tenants.get(t.slug)
        if stored_tenant is not None:  # a feature list is a set: the stored order does not matter
            stored_tenant = (stored_tenant[0], stored_tenant[1], tuple(sorted(set(stored_tenant[2]))))
        sort("tenants", t, stored_tenant, (t.name, t.status, t.features))
    for g in document.grants:
        current = stored.grants.get(plan.grant_keys[g.index])
        sort(
            "grants",
            g,
            current and (current.valid_from, current.valid_until),
            (g.valid_from, g.valid_until),
        )
