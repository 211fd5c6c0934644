"""Policy as code: import and export permissions, audiences, roles, tenants and grants as one JSON document.

Three steps, so that a bad file changes nothing: the document is parsed into plain dataclasses
(pure, no ORM), checked against what the database already holds, and only then written, set-based
and in one transaction, with every change recorded in django-simple-history.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from accounts.ids import is_guid
from authz.models import (
    Audience,
    Grant,
    Permission,
    Role,
    Tenant,
    code_validator,
    is_audience_identifier,
    slug_validator,
)

KINDS = ("permissions", "audiences", "roles", "tenants", "grants")
USER = Grant.SubjectType.USER.value
GROUP = Grant.SubjectType.GROUP.value
TENANT_STATUSES = tuple(Tenant.Status.values)
CHANGE_REASON = "import_policy"
MAX_ERRORS = 50
BATCH_SIZE = 2000

Progress = Callable[[str, int, int], None]

NAME_MAX = 200
DESCRIPTION_MAX = 500


class PolicyError(Exception):
    """A policy that cannot be imported (or a database that cannot be exported); ``errors`` says why."""

    def __init__(self, errors: Sequence[str], *, total: int | None = None) -> None:
        self.errors = list(errors)
        self.total = total if total is not None else len(self.errors)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        """The errors, one a line, and how many more were left out."""
        more = self.total - len(self.errors)
        return self.errors + ([f"… and {more} more errors"] if more > 0 else [])


# ---------------------------------------------------------------------------------------------
# The document: plain dataclasses, parsed and validated without the database.
# ---------------------------------------------------------------------------------------------

RoleKey = tuple[str | None, str]  # (owning tenant slug or None for a global role, role slug)
GrantKey = tuple[str, RoleKey, str, str]  # (tenant slug, role key, subject type, subject id)


@dataclass(frozen=True)
class PermissionSpec:
    index: int
    code: str
    description: str = ""
    requires_feature: str | None = None


@dataclass(frozen=True)
class AudienceSpec:
    index: int
    identifier: str
    name: str
    permissions: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RoleSpec:
    index: int
    slug: str
    name: str
    permissions: frozenset[str] = frozenset()
    tenant: str | None = None

    @property
    def key(self) -> RoleKey:
        return (self.tenant, self.slug)


@dataclass(frozen=True)
class TenantSpec:
    index: int
    slug: str
    name: str
    status: str = Tenant.Status.ACTIVE.value
    features: tuple[str, ...] = ()


@dataclass(frozen=True)
class GrantSpec:
    index: int
    tenant: str
    role: str
    subject_type: str
    subject_id: str
    valid_from: datetime | None = None
    valid_until: datetime | None = None


@dataclass(frozen=True)
class PolicyDocument:
    """A parsed policy file; ``present`` names the top-level lists the file had."""

    permissions: tuple[PermissionSpec, ...] = ()
    audiences: tuple[AudienceSpec, ...] = ()
    roles: tuple[RoleSpec, ...] = ()
    tenants: tuple[TenantSpec, ...] = ()
    grants: tuple[GrantSpec, ...] = ()
    present: frozenset[str] = frozenset()
    # Names of entries that were invalid (already reported): references to them are not errors.
    broken: dict[str, frozenset] = field(default_factory=dict)


class _Errors:
    """Collects errors in document order; keeps the first MAX_ERRORS (after sorting) and a count."""

    KEEP = 1000

    def __init__(self) -> None:
        self.items: list[tuple[int, int, int, str]] = []
        self.total = 0

    def add(self, kind: str, index: int | None, message: str) -> None:
        self.total += 1
        if len(self.items) < self.KEEP:
            where = kind if index is None else f"{kind}[{index}]"
            rank = KINDS.index(kind) if kind in KINDS else -1
            self.items.append((rank, -1 if index is None else index, self.total, f"{where}: {message}"))

    def raise_if_any(self) -> None:
        if self.total:
            ordered = [message for *_, message in sorted(self.items)]
            raise PolicyError(ordered[:MAX_ERRORS], total=self.total)


def _show(value: object) -> str:
    """A value from the file, quoted and cut short, safe to print."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "…"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _validator_hint(validator: Any) -> str:
    return str(validator.message).rstrip(".").lower()


@functools.lru_cache(maxsize=4096)  # a large file repeats a few tenant and role names many times
def _is_code(value: str) -> bool:
    try:
        code_validator(value)
    except ValidationError:
        return False
    return True


@functools.lru_cache(maxsize=4096)
def _is_slug(value: str) -> bool:
    try:
        slug_validator(value)
    except ValidationError:
        return False
    return True


class _Entry:
    """One object of a top-level list, read field by field; every problem goes to ``errors``."""

    def __init__(self, errors: _Errors, kind: str, index: int, raw: dict, fields: Iterable[str]) -> None:
        self.errors, self.kind, self.index, self.raw = errors, kind, index, raw
        self.ok = True
        for key in raw:
            if key not in fields:
                self.fail(f"unknown key {_show(key)}")

    def fail(self, message: str) -> None:
        self.ok = False
        self.errors.add(self.kind, self.index, message)

    def string(self, name: str, *, required: bool = False, nullable: bool = False) -> str | None:
        if name not in self.raw:
            if required:
                self.fail(f"missing required field {_show(name)}")
            return None
        value = self.raw[name]
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            expected = "a string or null" if nullable else "a string"
            self.fail(f"{_show(name)} must be {expected}, got {_json_type(value)}")
            return None
        return value

    def name(self, name: str = "name", *, limit: int = NAME_MAX, required: bool = True) -> str:
        value = self.string(name, required=required)
        if value is None:
            return ""
        if required and not value.strip():
            self.fail(f"{_show(name)} must not be empty")
        elif any(ord(c) < 32 or ord(c) == 127 for c in value):
            self.fail(f"{_show(name)} must not contain control characters")
        elif len(value) > limit:
            self.fail(f"{_show(name)} is longer than {limit} characters")
        return value

    def code(self, name: str, value: str | None, what: str | None = None) -> str | None:
        if value is not None and not _is_code(value):
            self.fail(f"{what or name} {_show(value)} is invalid ({_validator_hint(code_validator)})")
            return None
        return value

    def slug(self, name: str, value: str | None, what: str | None = None) -> str | None:
        if value is not None and not _is_slug(value):
            self.fail(f"{what or name} {_show(value)} is invalid ({_validator_hint(slug_validator)})")
            return None
        return value

    def code_list(self, name: str, what: str) -> tuple[str, ...]:
        if name not in self.raw:
            return ()
        values = self.raw[name]
        if not isinstance(values, list):
            self.fail(f"{_show(name)} must be a list of {what} codes, got {_json_type(values)}")
            return ()
        seen: set[str] = set()
        for value in values:
            if not isinstance(value, str):
                self.fail(f"{_show(name)} must be a list of {what} codes, found {_json_type(value)}")
            elif not _is_code(value):
                self.fail(f"{what} {_show(value)} is invalid ({_validator_hint(code_validator)})")
            elif value in seen:
                self.fail(f"{what} {_show(value)} is listed twice")
            else:
                seen.add(value)
        return tuple(sorted(seen))

    def timestamp(self, name: str) -> datetime | None:
        value = self.string(name, nullable=True)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{name} {_show(value)} is not an ISO 8601 timestamp")
            return None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            self.fail(f"{name} {_show(value)} has no time zone (end it with Z or an offset such as +01:00)")
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            self.fail(f"{name} {_show(value)} is out of range")
            return None


def _entries(errors: _Errors, document: dict, kind: str) -> Iterator[tuple[int, dict]]:
    raw = document.get(kind)
    if not isinstance(raw, list):
        errors.add(kind, None, f"expected a list, got {_json_type(raw)}")
        return
    for index, item in enumerate(raw):
        if isinstance(item, dict):
            yield index, item
        else:
            errors.add(kind, index, f"expected an object, got {_json_type(item)}")


def _parse_permission(errors: _Errors, index: int, raw: dict) -> PermissionSpec | None:
    entry = _Entry(errors, "permissions", index, raw, ("code", "description", "requires_feature"))
    code = entry.code("code", entry.string("code", required=True))
    description = entry.name("description", limit=DESCRIPTION_MAX, required=False)
    requires_feature = entry.code(
        "requires_feature", entry.string("requires_feature", nullable=True), what="requires_feature"
    )
    if not entry.ok or code is None:
        return None
    return PermissionSpec(index, code, description, requires_feature)


def _parse_audience(errors: _Errors, index: int, raw: dict) -> AudienceSpec | None:
    entry = _Entry(errors, "audiences", index, raw, ("id", "name", "permissions"))
    identifier = entry.string("id", required=True)
    if identifier is not None and not is_audience_identifier(identifier):
        entry.fail(f"id {_show(identifier)} is invalid (printable characters without spaces, at most 200)")
    name = entry.name()
    permissions = entry.code_list("permissions", "permission")
    if not entry.ok or identifier is None:
        return None
    return AudienceSpec(index, identifier, name, frozenset(permissions))


def _parse_role(errors: _Errors, index: int, raw: dict) -> RoleSpec | None:
    entry = _Entry(errors, "roles", index, raw, ("slug", "name", "permissions", "tenant"))
    slug = entry.slug("slug", entry.string("slug", required=True))
    name = entry.name()
    permissions = entry.code_list("permissions", "permission")
    tenant = entry.slug("tenant", entry.string("tenant", nullable=True))
    if not entry.ok or slug is None:
        return None
    return RoleSpec(index, slug, name, frozenset(permissions), tenant)


def _parse_tenant(errors: _Errors, index: int, raw: dict) -> TenantSpec | None:
    entry = _Entry(errors, "tenants", index, raw, ("slug", "name", "status", "features"))
    slug = entry.slug("slug", entry.string("slug", required=True))
    name = entry.name()
    status = entry.string("status")
    if status is not None and status not in TENANT_STATUSES:
        allowed = ", ".join(_show(s) for s in TENANT_STATUSES)
        entry.fail(f"status {_show(status)} is not one of {allowed}")
    features = entry.code_list("features", "feature")
    if not entry.ok or slug is None:
        return None
    return TenantSpec(index, slug, name, status or Tenant.Status.ACTIVE.value, features)


def _parse_grant(errors: _Errors, index: int, raw: dict) -> GrantSpec | None:
    entry = _Entry(
        errors, "grants", index, raw, ("tenant", "role", "user", "group", "valid_from", "valid_until")
    )
    tenant = entry.slug("tenant", entry.string("tenant", required=True))
    role = entry.slug("role", entry.string("role", required=True))
    user = entry.string(USER, nullable=True)
    group = entry.string(GROUP, nullable=True)
    has_user, has_group = raw.get(USER) is not None, raw.get(GROUP) is not None
    subject_type, subject_id = (USER, user) if has_user else (GROUP, group)
    if has_user and has_group:
        entry.fail("has both 'user' and 'group'; give exactly one")
    elif not (has_user or has_group):
        entry.fail("needs a 'user' or a 'group'")
    elif subject_id is not None:
        subject_id = subject_id.lower()
        if not is_guid(subject_id):
            entry.fail(f"{subject_type} {_show(raw[subject_type])} is not a GUID")
    valid_from = entry.timestamp("valid_from")
    valid_until = entry.timestamp("valid_until")
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        entry.fail("valid_until must be after valid_from")
    if not entry.ok or tenant is None or role is None or subject_id is None:
        return None
    return GrantSpec(index, tenant, role, subject_type, subject_id, valid_from, valid_until)


PARSERS: dict[str, Callable[[_Errors, int, dict], Any]] = {
    "permissions": _parse_permission,
    "audiences": _parse_audience,
    "roles": _parse_role,
    "tenants": _parse_tenant,
    "grants": _parse_grant,
}


def _natural_key(kind: str, spec: Any) -> tuple:
    if kind == "permissions":
        return (spec.code,)
    if kind == "audiences":
        return (spec.identifier,)
    if kind == "roles":
        return spec.key
    if kind == "tenants":
        return (spec.slug,)
    return (spec.tenant, spec.role, spec.subject_type, spec.subject_id)


def _describe(kind: str, spec: Any) -> str:
    if kind == "permissions":
        return f"permission {_show(spec.code)}"
    if kind == "audiences":
        return f"audience {_show(spec.identifier)}"
    if kind == "roles":
        owner = f"in tenant {_show(spec.tenant)}" if spec.tenant else "(global)"
        return f"role {_show(spec.slug)} {owner}"
    if kind == "tenants":
        return f"tenant {_show(spec.slug)}"
    return (
        f"grant of role {_show(spec.role)} to {spec.subject_type} {_show(spec.subject_id)}"
        f" in tenant {_show(spec.tenant)}"
    )


def _broken_key(kind: str, raw: dict) -> object:
    """The name an invalid entry gave itself, so references to it do not add a second error."""
    # Only names are kept: a list or an object from the file cannot be a set member.
    if kind == "roles":
        tenant, slug = raw.get("tenant"), raw.get("slug")
        return (
            (tenant, slug) if isinstance(slug, str) and (tenant is None or isinstance(tenant, str)) else None
        )
    name = raw.get({"permissions": "code", "tenants": "slug"}.get(kind, ""))
    return name if isinstance(name, str) else None


def _document_parse(document: object, errors: _Errors, progress: Progress | None) -> PolicyDocument:
    if not isinstance(document, dict):
        errors.add("policy", None, f"expected a JSON object at the top level, got {_json_type(document)}")
        errors.raise_if_any()
    for key in document:
        if key not in KINDS:
            errors.add("policy", None, f"unknown top-level key {_show(key)} (expected {', '.join(KINDS)})")
    parsed: dict[str, tuple] = {}
    broken: dict[str, set] = {kind: set() for kind in KINDS}
    for kind in KINDS:
        if kind not in document:
            parsed[kind] = ()
            continue
        specs, first_at = [], {}
        raw_list = document[kind]
        total = len(raw_list) if isinstance(raw_list, list) else 0
        for index, raw in _entries(errors, document, kind):
            spec = PARSERS[kind](errors, index, raw)
            if progress and kind == "grants" and index % 10000 == 9999:
                progress("validating grants", index + 1, total)
            if spec is None:
                if (name := _broken_key(kind, raw)) is not None:
                    broken[kind].add(name)
                continue
            key = _natural_key(kind, spec)
            if key in first_at:
                errors.add(
                    kind, index, f"duplicate {_describe(kind, spec)} (first at {kind}[{first_at[key]}])"
                )
                continue
            first_at[key] = index
            specs.append(spec)
        parsed[kind] = tuple(specs)
    return PolicyDocument(
        **parsed,
        present=frozenset(k for k in KINDS if k in document),
        broken={kind: frozenset(keys) for kind, keys in broken.items()},
    )


# ---------------------------------------------------------------------------------------------
# The plan: what the document changes, compared with what is stored (pure; natural keys only).
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredGrant:
    id: int
    valid_from: datetime | None
    valid_until: datetime | None


@dataclass(frozen=True)
class StoredPolicy:
    """What the database holds, by natural key, with the values the file may change."""

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


def _resolve_role(slug: str, tenant: str, roles: set[RoleKey], owners: dict[str, list[str]]) -> RoleKey | str:
    """The role a grant in ``tenant`` means by ``slug``: the tenant's own, else the global one; or why not."""
    if (tenant, slug) in roles:
        return (tenant, slug)
    if (None, slug) in roles:
        return (None, slug)
    others = sorted(owner for owner in owners.get(slug, ()) if owner != tenant)
    if others:
        return f"role {_show(slug)} belongs to tenant {_show(others[0])}, not to {_show(tenant)}"
    return f"role {_show(slug)} does not exist"


def _plan(document: PolicyDocument, stored: StoredPolicy, prune: bool, errors: _Errors) -> PolicyPlan:
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
    for owner, slug in roles:
        if owner is not None:
            owners.setdefault(slug, []).append(owner)

    for kind, specs in (("audiences", document.audiences), ("roles", document.roles)):
        for spec in specs:
            for code in sorted(spec.permissions - permissions):
                errors.add(kind, spec.index, f"permission {_show(code)} does not exist")
    broken_roles = set(broken["roles"])
    for role in document.roles:
        if role.tenant is not None and role.tenant not in tenants:
            broken_roles.add(role.key)
            if role.tenant not in unknown_tenants:
                errors.add("roles", role.index, f"tenant {_show(role.tenant)} does not exist")
        # A token lists role slugs: a global and a tenant's role with one slug would be ambiguous.
        if role.tenant is None and owners.get(role.slug):
            clash = f"the role {_show(role.slug)} of tenant {_show(sorted(owners[role.slug])[0])}"
            errors.add("roles", role.index, f"global role {_show(role.slug)} clashes with {clash}")
        elif role.tenant is not None and (None, role.slug) in roles:
            errors.add(
                "roles", role.index, f"role {_show(role.slug)} clashes with the global role of that slug"
            )

    plan = PolicyPlan()
    seen_grants: dict[GrantKey, int] = {}
    broken_slugs = {slug for _owner, slug in broken_roles}
    usable_roles = roles - broken_roles
    for grant in document.grants:
        if grant.tenant not in tenants:
            if grant.tenant not in unknown_tenants:
                errors.add("grants", grant.index, f"tenant {_show(grant.tenant)} does not exist")
            continue
        resolved = _resolve_role(grant.role, grant.tenant, usable_roles, owners)
        if isinstance(resolved, str):
            if grant.role not in broken_slugs:
                errors.add("grants", grant.index, resolved)
            continue
        key = (grant.tenant, resolved, grant.subject_type, grant.subject_id)
        seen_grants[key] = grant.index
        plan.grant_keys[grant.index] = key
    if errors.total:
        return plan

    report = plan.report
    report.pruned = prune

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
    if prune:
        plan.grant_deletes = sorted(
            current.id for key, current in stored.grants.items() if key not in seen_grants
        )
        report.counts["grants"].deleted = len(plan.grant_deletes)
    return plan


# ---------------------------------------------------------------------------------------------
# The services: load what is stored, import (validate everything, then write), export.
# ---------------------------------------------------------------------------------------------


def _feature_list(value: object) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _stored_policy_load() -> tuple[StoredPolicy, dict[str, dict]]:
    """Everything stored, in a few queries: the StoredPolicy and natural key -> id maps."""
    ids: dict[str, dict] = {kind: {} for kind in KINDS}
    permission_codes: dict[int, str] = {}
    permissions = {}
    for pk, code, description, requires_feature in Permission.objects.values_list(
        "id", "code", "description", "requires_feature"
    ):
        permissions[code] = (description, requires_feature or None)
        ids["permissions"][code] = pk
        permission_codes[pk] = code
    tenant_slugs: dict[int, str] = {}
    tenants = {}
    for pk, slug, name, status, features in Tenant.objects.values_list(
        "id", "slug", "name", "status", "features"
    ):
        tenants[slug] = (name, status, _feature_list(features))
        ids["tenants"][slug] = pk
        tenant_slugs[pk] = slug

    audience_permissions: dict[int, set[str]] = {}
    for audience_id, permission_id in Audience.permissions.through.objects.values_list(
        "audience_id", "permission_id"
    ):
        audience_permissions.setdefault(audience_id, set()).add(permission_codes[permission_id])
    audiences = {}
    for pk, identifier, name in Audience.objects.values_list("id", "identifier", "name"):
        audiences[identifier] = (name, frozenset(audience_permissions.get(pk, ())))
        ids["audiences"][identifier] = pk

    role_permissions: dict[int, set[str]] = {}
    for role_id, permission_id in Role.permissions.through.objects.values_list("role_id", "permission_id"):
        role_permissions.setdefault(role_id, set()).add(permission_codes[permission_id])
    roles = {}
    role_keys: dict[int, RoleKey] = {}
    for pk, slug, name, tenant_id in Role.objects.values_list("id", "slug", "name", "tenant_id"):
        key = (tenant_slugs[tenant_id] if tenant_id else None, slug)
        roles[key] = (name, frozenset(role_permissions.get(pk, ())))
        ids["roles"][key] = pk
        role_keys[pk] = key

    grants = {}
    for pk, tenant_id, role_id, subject_type, subject_id, valid_from, valid_until in (
        Grant.objects.order_by()
        .values_list("id", "tenant_id", "role_id", "subject_type", "subject_id", "valid_from", "valid_until")
        .iterator(chunk_size=10000)
    ):
        key = (tenant_slugs[tenant_id], role_keys[role_id], subject_type, subject_id)
        grants[key] = StoredGrant(pk, valid_from, valid_until)
    stored = StoredPolicy(permissions, audiences, roles, tenants, grants)
    return stored, ids


def _chunks(items: Sequence, size: int = BATCH_SIZE) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Writer:
    """Applies a plan: set-based writes and their history rows, all with one actor, reason and time."""

    def __init__(self, plan: PolicyPlan, ids: dict[str, dict], actor: Any, progress: Progress | None) -> None:
        self.plan, self.ids, self.progress = plan, ids, progress
        self.history = {
            "default_user": actor,
            "default_change_reason": CHANGE_REASON,
            "default_date": timezone.now(),
        }
        self.actor = actor

    def write(self) -> None:
        self.permissions()
        self.tenants()
        self.with_permissions(Audience, "audiences", "identifier", lambda a: {"identifier": a.identifier})
        self.with_permissions(
            Role, "roles", "key", lambda r: {"slug": r.slug, "tenant_id": self.tenant_id(r.tenant)}
        )
        self.grants()

    def tenant_id(self, slug: str | None) -> int | None:
        return None if slug is None else self.ids["tenants"][slug]

    def permissions(self) -> None:
        creates = [
            Permission(code=p.code, description=p.description, requires_feature=p.requires_feature or "")
            for p in self.plan.creates["permissions"]
        ]
        for row in bulk_create_with_history(creates, Permission, batch_size=BATCH_SIZE, **self.history):
            self.ids["permissions"][row.code] = row.pk
        updates = [
            Permission(
                id=self.ids["permissions"][p.code],
                code=p.code,
                description=p.description,
                requires_feature=p.requires_feature or "",
            )
            for p in self.plan.updates["permissions"]
        ]
        bulk_update_with_history(
            updates, Permission, ["description", "requires_feature"], batch_size=BATCH_SIZE, **self.history
        )

    def tenants(self) -> None:
        # created_at is not in the file: updates keep it, so read the rows they change.
        creates = [
            Tenant(slug=t.slug, name=t.name, status=t.status, features=list(t.features))
            for t in self.plan.creates["tenants"]
        ]
        for row in bulk_create_with_history(creates, Tenant, batch_size=BATCH_SIZE, **self.history):
            self.ids["tenants"][row.slug] = row.pk
        wanted = {t.slug: t for t in self.plan.updates["tenants"]}
        updates = list(Tenant.objects.filter(slug__in=wanted))
        for row in updates:
            spec = wanted[row.slug]
            row.name, row.status, row.features = spec.name, spec.status, list(spec.features)
        bulk_update_with_history(
            updates, Tenant, ["name", "status", "features"], batch_size=BATCH_SIZE, **self.history
        )

    def with_permissions(self, model: type, kind: str, key_attr: str, natural: Callable[[Any], dict]) -> None:
        """Audiences and roles: rows, their permission links, then one history row each with its links."""
        created = [model(name=spec.name, **natural(spec)) for spec in self.plan.creates[kind]]
        model.objects.bulk_create(created, batch_size=BATCH_SIZE)
        for spec, row in zip(self.plan.creates[kind], created, strict=True):
            self.ids[kind][getattr(spec, key_attr)] = row.pk
        changed_specs = {self.ids[kind][getattr(spec, key_attr)]: spec for spec in self.plan.updates[kind]}
        updated = list(model.objects.filter(pk__in=changed_specs))
        for row in updated:
            row.name = changed_specs[row.pk].name
        model.objects.bulk_update(updated, ["name"], batch_size=BATCH_SIZE)

        through = model.permissions.through
        owner = model.permissions.field.m2m_field_name() + "_id"
        wanted = {
            self.ids[kind][getattr(spec, key_attr)]: {
                self.ids["permissions"][code] for code in spec.permissions
            }
            for spec in [*self.plan.creates[kind], *self.plan.updates[kind]]
        }
        current: dict[int, set[int]] = {pk: set() for pk in wanted}
        stale: list[int] = []
        for link_id, owner_id, permission_id in through.objects.filter(
            **{f"{owner}__in": wanted}
        ).values_list("id", owner, "permission_id"):
            if permission_id in wanted[owner_id]:
                current[owner_id].add(permission_id)
            else:
                stale.append(link_id)
        for batch in _chunks(stale):
            through.objects.filter(pk__in=batch).delete()
        through.objects.bulk_create(
            [
                through(**{owner: owner_id, "permission_id": permission_id})
                for owner_id, permissions in wanted.items()
                for permission_id in sorted(permissions - current[owner_id])
            ],
            batch_size=BATCH_SIZE,
        )
        history = model.history
        records = [
            *history.bulk_history_create(created, batch_size=BATCH_SIZE, **self.history),
            *history.bulk_history_create(updated, batch_size=BATCH_SIZE, update=True, **self.history),
        ]
        link_history = history.model.permissions.model  # the historical m2m model
        links = through.objects.filter(**{f"{owner}__in": wanted}).values_list("id", owner, "permission_id")
        by_owner: dict[int, list[tuple[int, int]]] = {}
        for link_id, owner_id, permission_id in links:
            by_owner.setdefault(owner_id, []).append((link_id, permission_id))
        link_history.objects.bulk_create(
            [
                link_history(history=record, id=link_id, permission_id=permission_id, **{owner: record.id})
                for record in records
                for link_id, permission_id in by_owner.get(record.id, ())
            ],
            batch_size=BATCH_SIZE,
        )

    def grants(self) -> None:
        creates = self.plan.creates["grants"]
        updates = self.plan.updates["grants"]
        deletes = self.plan.grant_deletes
        total, done = len(creates) + len(updates) + len(deletes), 0
        copy = grants_copy_supported()
        for batch in _chunks(creates, 5 * BATCH_SIZE):
            if copy:
                self.grants_copy(batch)
            else:
                rows = [self.grant_row(spec) for spec in batch]
                bulk_create_with_history(rows, Grant, batch_size=BATCH_SIZE, **self.history)
            done += len(batch)
            self.report_progress(done, total)
        if updates:
            by_id = {self.grant_id(spec): spec for spec in updates}
            for batch in _chunks(list(by_id), 5 * BATCH_SIZE):
                if copy:
                    self.grants_update_copy([(pk, by_id[pk]) for pk in batch])
                    done += len(batch)
                    self.report_progress(done, total)
                    continue
                rows = list(Grant.objects.filter(pk__in=batch))
                for row in rows:
                    spec = by_id[row.pk]
                    row.valid_from, row.valid_until = spec.valid_from, spec.valid_until
                bulk_update_with_history(
                    rows, Grant, ["valid_from", "valid_until"], batch_size=500, **self.history
                )
                done += len(batch)
                self.report_progress(done, total)
        for batch in _chunks(deletes, 5 * BATCH_SIZE):
            self.grants_delete(batch, copy=copy)
            done += len(batch)
            self.report_progress(done, total)

    def grant_id(self, spec: GrantSpec) -> int:
        return self.plan.grant_stored_ids[spec.index]

    def grant_row(self, spec: GrantSpec) -> Grant:
        _tenant, role_key, subject_type, subject_id = self.plan.grant_keys[spec.index]
        return Grant(
            tenant_id=self.ids["tenants"][spec.tenant],
            role_id=self.ids["roles"][role_key],
            subject_type=subject_type,
            subject_id=subject_id,
            valid_from=spec.valid_from,
            valid_until=spec.valid_until,
            granted_by=self.actor,
        )

    def grants_copy(self, batch: Sequence[GrantSpec]) -> None:
        """PostgreSQL: grants and their '+' history rows by COPY, with ids drawn from the sequence."""
        actor_id = self.actor.pk if self.actor is not None else None
        now = self.history["default_date"]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [Grant._meta.db_table, len(batch)],
            )
            ids = [pk for (pk,) in cursor.fetchall()]
            rows = []
            for pk, spec in zip(ids, batch, strict=True):
                _tenant, role_key, subject_type, subject_id = self.plan.grant_keys[spec.index]
                tenant_id, role_id = self.ids["tenants"][spec.tenant], self.ids["roles"][role_key]
                valid = (spec.valid_from, spec.valid_until)
                rows.append((pk, tenant_id, role_id, subject_type, subject_id, *valid, actor_id, "", now))
            _copy(cursor, Grant, GRANT_COLUMNS, rows)
            _copy(
                cursor,
                Grant.history.model,
                HISTORY_COLUMNS,
                [(*r, now, CHANGE_REASON, "+", actor_id) for r in rows],
            )

    def grants_update_copy(self, batch: Sequence[tuple[int, GrantSpec]]) -> None:
        """PostgreSQL: one UPDATE … FROM (VALUES …) per chunk, then the '~' history rows by COPY."""
        actor_id = self.actor.pk if self.actor is not None else None
        now = self.history["default_date"]
        table = connection.ops.quote_name(Grant._meta.db_table)
        with connection.cursor() as cursor:
            for chunk in _chunks(batch, 1000):
                values = ", ".join(["(%s::bigint, %s::timestamptz, %s::timestamptz)"] * len(chunk))
                params = [value for pk, spec in chunk for value in (pk, spec.valid_from, spec.valid_until)]
                cursor.execute(
                    f"UPDATE {table} AS g SET valid_from = v.valid_from, valid_until = v.valid_until"  # noqa: S608
                    f" FROM (VALUES {values}) AS v (id, valid_from, valid_until) WHERE g.id = v.id",
                    params,
                )
            rows = (
                Grant.objects.filter(pk__in=[pk for pk, _spec in batch])
                .order_by()
                .values_list(*GRANT_COLUMNS)
            )
            _copy(
                cursor,
                Grant.history.model,
                HISTORY_COLUMNS,
                [(*r, now, CHANGE_REASON, "~", actor_id) for r in rows],
            )

    def grants_delete(self, ids: Sequence[int], *, copy: bool) -> None:
        """Delete grants, each with a '-' history row (QuerySet.delete adds them one by one, no actor)."""
        history = Grant.history.model
        if copy:
            actor_id = self.actor.pk if self.actor is not None else None
            now = self.history["default_date"]
            rows = Grant.objects.filter(pk__in=ids).order_by().values_list(*GRANT_COLUMNS)
            with connection.cursor() as cursor:
                _copy(
                    cursor, history, HISTORY_COLUMNS, [(*r, now, CHANGE_REASON, "-", actor_id) for r in rows]
                )
        else:
            self.grants_history_deleted(ids)
        table = connection.ops.quote_name(Grant._meta.db_table)
        with connection.cursor() as cursor:
            for batch in _chunks(ids, 500):
                placeholders = ", ".join(["%s"] * len(batch))
                cursor.execute(f"DELETE FROM {table} WHERE id IN ({placeholders})", list(batch))  # noqa: S608

    def grants_history_deleted(self, ids: Sequence[int]) -> None:
        history = Grant.history.model
        tracked = [f.attname for f in history.tracked_fields]
        rows = list(Grant.objects.filter(pk__in=ids).values(*tracked))
        history.objects.bulk_create(
            [
                history(
                    history_type="-",
                    history_date=self.history["default_date"],
                    history_user=self.actor,
                    history_change_reason=CHANGE_REASON,
                    **row,
                )
                for row in rows
            ],
            batch_size=BATCH_SIZE,
        )

    def report_progress(self, done: int, total: int) -> None:
        if self.progress:
            self.progress("writing grants", done, total)


# The columns COPY writes. If the models gain a column, grants_copy_supported turns COPY off and the ORM path
# (bulk_create_with_history) takes over, so history never silently misses a field.
GRANT_COLUMNS = (
    "id",
    "tenant_id",
    "role_id",
    "subject_type",
    "subject_id",
    "valid_from",
    "valid_until",
    "granted_by_id",
    "reason",
    "created_at",
)
HISTORY_COLUMNS = (*GRANT_COLUMNS, "history_date", "history_change_reason", "history_type", "history_user_id")


def grants_copy_supported() -> bool:
    """Whether grants can be written by COPY: PostgreSQL, and the tables hold exactly those columns."""
    if connection.vendor != "postgresql":
        return False
    history = Grant.history.model
    return {f.column for f in Grant._meta.concrete_fields} == set(GRANT_COLUMNS) and {
        f.column for f in history._meta.concrete_fields
    } == {*HISTORY_COLUMNS, "history_id"}


def _copy(cursor: Any, model: type, columns: Sequence[str], rows: Iterable[tuple]) -> None:
    """COPY rows into a model's table (psycopg 3), many times faster than INSERT for large batches."""
    quote = connection.ops.quote_name
    names = ", ".join(quote(column) for column in columns)
    # The raw psycopg cursor bypasses Django's error translation: restore it (IntegrityError et al.).
    with (
        connection.wrap_database_errors,
        cursor.cursor.copy(f"COPY {quote(model._meta.db_table)} ({names}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def _lock_imports() -> None:
    """Serialise imports on PostgreSQL, so two runs never plan against the same snapshot."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('authz.policy_import'))")


def policy_import(
    *,
    document: dict,
    dry_run: bool = False,
    prune: bool = False,
    actor: Any = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a policy document: validate all of it, then upsert by natural key in one transaction.

    Idempotent (a second run reports no changes) and all-or-nothing (any error, in the file or
    against what is stored, raises PolicyError before anything is written). ``prune`` deletes the
    stored grants the file does not list, and nothing else. ``dry_run`` reports and writes nothing.
    """
    errors = _Errors()
    parsed = _document_parse(document, errors, progress)
    try:
        with transaction.atomic():
            if not dry_run:
                _lock_imports()
            stored, ids = _stored_policy_load()
            plan = _plan(parsed, stored, prune, errors)
            errors.raise_if_any()
            plan.report.dry_run = dry_run
            if dry_run:
                return plan.report
            _Writer(plan, ids, actor, progress).write()
    except IntegrityError as exc:
        # Only a concurrent writer (the portal, say) can cause this: the plan was checked.
        raise PolicyError(
            [f"policy: the database changed during the import, nothing was written ({exc})"]
        ) from exc
    return plan.report


# ---------------------------------------------------------------------------------------------
# Export: the same format back out, in a stable order.
# ---------------------------------------------------------------------------------------------


def _timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    text = value.astimezone(UTC).replace(tzinfo=None).isoformat()
    return text + "Z"


def policy_export() -> dict:
    """The stored policy as a document import_policy accepts; ordered so that exports diff well."""
    stored, _ids = _stored_policy_load()
    permissions = [
        {"code": code, "description": description, "requires_feature": requires_feature}
        for code, (description, requires_feature) in sorted(stored.permissions.items())
    ]
    audiences = [
        {"id": identifier, "name": name, "permissions": sorted(codes)}
        for identifier, (name, codes) in sorted(stored.audiences.items())
    ]
    roles = [
        {"slug": slug, "name": name, "permissions": sorted(codes), "tenant": tenant}
        for (tenant, slug), (name, codes) in sorted(
            stored.roles.items(), key=lambda item: (item[0][0] or "", item[0][1])
        )
    ]
    tenants = [
        {"slug": slug, "name": name, "status": status, "features": sorted(set(features))}
        for slug, (name, status, features) in sorted(stored.tenants.items())
    ]
    errors = []
    grants = []
    for (tenant, (owner, role), subject_type, subject_id), current in sorted(
        stored.grants.items(), key=lambda item: (item[0][0], item[0][1][1], item[0][2], item[0][3])
    ):
        if owner is None and (tenant, role) in stored.roles:
            errors.append(
                f"grant {current.id}: uses the global role {_show(role)}, but tenant {_show(tenant)}"
                " has its own role with that slug; the file cannot tell them apart"
                " (move the grant to one of them)"
            )
        grants.append(
            {
                "tenant": tenant,
                "role": role,
                subject_type: subject_id,
                "valid_from": _timestamp(current.valid_from),
                "valid_until": _timestamp(current.valid_until),
            }
        )
    if errors:
        raise PolicyError(errors[:MAX_ERRORS], total=len(errors))
    return {
        "permissions": permissions,
        "audiences": audiences,
        "roles": roles,
        "tenants": tenants,
        "grants": grants,
    }


def policy_dumps(document: dict) -> str:
    """A policy document as text: one entry a line, keys in contract order, so diffs show each change."""
    lines = ["{"]
    kinds = list(document)
    for position, kind in enumerate(kinds):
        entries = document[kind]
        comma = "," if position < len(kinds) - 1 else ""
        if not entries:
            lines.append(f"  {json.dumps(kind)}: []{comma}")
            continue
        lines.append(f"  {json.dumps(kind)}: [")
        for number, entry in enumerate(entries):
            lines.append(
                "    " + json.dumps(entry, ensure_ascii=False) + ("," if number < len(entries) - 1 else "")
            )
        lines.append(f"  ]{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"
