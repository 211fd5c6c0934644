"""Reading a policy file: JSON values to the document's plain entries, every problem named by entry.

Checks what the file and the configuration can tell (types, names, codes, periods, duplicates, each
grant's identity provider and the shape of its ids); what needs the database (does the role
exist?) is the planner's job.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError

from accounts.subjects import is_directory_provider, subject_normalise
from authz.models import Grant, Tenant, code_validator, is_audience_identifier, slug_validator
from authz.policy.document import (
    KINDS,
    AudienceSpec,
    ErrorList,
    FeatureSpec,
    GrantSpec,
    PermissionSpec,
    PolicyDocument,
    Progress,
    RoleSpec,
    TenantSpec,
    show,
)
from lib.guid import is_guid

USER = Grant.SubjectType.USER.value
GROUP = Grant.SubjectType.GROUP.value
TENANT_STATUSES = tuple(Tenant.Status.values)
NAME_MAX = 200
DESCRIPTION_MAX = 500


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

    def __init__(self, errors: ErrorList, kind: str, index: int, raw: dict, fields: Iterable[str]) -> None:
        self.errors, self.kind, self.index, self.raw = errors, kind, index, raw
        self.ok = True
        for key in raw:
            if key not in fields:
                self.fail(f"unknown key {show(key)}")

    def fail(self, message: str) -> None:
        self.ok = False
        self.errors.add(self.kind, self.index, message)

    def string(self, name: str, *, required: bool = False, nullable: bool = False) -> str | None:
        if name not in self.raw:
            if required:
                self.fail(f"missing required field {show(name)}")
            return None
        value = self.raw[name]
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            expected = "a string or null" if nullable else "a string"
            self.fail(f"{show(name)} must be {expected}, got {_json_type(value)}")
            return None
        return value

    def name(self, name: str = "name", *, limit: int = NAME_MAX, required: bool = True) -> str:
        value = self.string(name, required=required)
        if value is None:
            return ""
        if required and not value.strip():
            self.fail(f"{show(name)} must not be empty")
        elif any(ord(c) < 32 or ord(c) == 127 for c in value):
            self.fail(f"{show(name)} must not contain control characters")
        elif len(value) > limit:
            self.fail(f"{show(name)} is longer than {limit} characters")
        return value

    def code(self, name: str, value: str | None, what: str | None = None) -> str | None:
        if value is not None and not _is_code(value):
            self.fail(f"{what or name} {show(value)} is invalid ({_validator_hint(code_validator)})")
            return None
        return value

    def slug(self, name: str, value: str | None, what: str | None = None) -> str | None:
        if value is not None and not _is_slug(value):
            self.fail(f"{what or name} {show(value)} is invalid ({_validator_hint(slug_validator)})")
            return None
        return value

    def code_list(self, name: str, what: str) -> tuple[str, ...]:
        if name not in self.raw:
            return ()
        values = self.raw[name]
        if not isinstance(values, list):
            self.fail(f"{show(name)} must be a list of {what} codes, got {_json_type(values)}")
            return ()
        seen: set[str] = set()
        for value in values:
            if not isinstance(value, str):
                self.fail(f"{show(name)} must be a list of {what} codes, found {_json_type(value)}")
            elif not _is_code(value):
                self.fail(f"{what} {show(value)} is invalid ({_validator_hint(code_validator)})")
            elif value in seen:
                self.fail(f"{what} {show(value)} is listed twice")
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
            self.fail(f"{name} {show(value)} is not an ISO 8601 timestamp")
            return None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            self.fail(f"{name} {show(value)} has no time zone (end it with Z or an offset such as +01:00)")
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            self.fail(f"{name} {show(value)} is out of range")
            return None


def _entries(errors: ErrorList, document: dict, kind: str) -> Iterator[tuple[int, dict]]:
    raw = document.get(kind)
    if not isinstance(raw, list):
        errors.add(kind, None, f"expected a list, got {_json_type(raw)}")
        return
    for index, item in enumerate(raw):
        if isinstance(item, dict):
            yield index, item
        else:
            errors.add(kind, index, f"expected an object, got {_json_type(item)}")


def _parse_feature(errors: ErrorList, index: int, raw: dict) -> FeatureSpec | None:
    entry = _Entry(errors, "features", index, raw, ("code", "description"))
    code = entry.code("code", entry.string("code", required=True))
    description = entry.name("description", limit=DESCRIPTION_MAX, required=False)
    if not entry.ok or code is None:
        return None
    return FeatureSpec(index, code, description)


def _parse_permission(errors: ErrorList, index: int, raw: dict) -> PermissionSpec | None:
    entry = _Entry(errors, "permissions", index, raw, ("code", "description", "requires_feature"))
    code = entry.code("code", entry.string("code", required=True))
    description = entry.name("description", limit=DESCRIPTION_MAX, required=False)
    requires_feature = entry.code(
        "requires_feature", entry.string("requires_feature", nullable=True), what="requires_feature"
    )
    if not entry.ok or code is None:
        return None
    return PermissionSpec(index, code, description, requires_feature)


def _parse_audience(errors: ErrorList, index: int, raw: dict) -> AudienceSpec | None:
    entry = _Entry(errors, "audiences", index, raw, ("id", "name", "permissions"))
    identifier = entry.string("id", required=True)
    if identifier is not None and not is_audience_identifier(identifier):
        entry.fail(f"id {show(identifier)} is invalid (printable characters without spaces, at most 200)")
    name = entry.name()
    permissions = entry.code_list("permissions", "permission")
    if not entry.ok or identifier is None:
        return None
    return AudienceSpec(index, identifier, name, frozenset(permissions))


def _parse_role(errors: ErrorList, index: int, raw: dict) -> RoleSpec | None:
    entry = _Entry(errors, "roles", index, raw, ("slug", "name", "permissions", "tenant"))
    slug = entry.slug("slug", entry.string("slug", required=True))
    name = entry.name()
    permissions = entry.code_list("permissions", "permission")
    tenant = entry.slug("tenant", entry.string("tenant", nullable=True))
    if not entry.ok or slug is None:
        return None
    return RoleSpec(index, slug, name, frozenset(permissions), tenant)


def _parse_tenant(errors: ErrorList, index: int, raw: dict) -> TenantSpec | None:
    entry = _Entry(errors, "tenants", index, raw, ("slug", "name", "status", "features"))
    slug = entry.slug("slug", entry.string("slug", required=True))
    name = entry.name()
    status = entry.string("status")
    if status is not None and status not in TENANT_STATUSES:
        allowed = ", ".join(show(s) for s in TENANT_STATUSES)
        entry.fail(f"status {show(status)} is not one of {allowed}")
    features = entry.code_list("features", "feature")
    if not entry.ok or slug is None:
        return None
    return TenantSpec(index, slug, name, status or Tenant.Status.ACTIVE.value, features)


def _grant_provider(entry: _Entry, providers: Sequence[str], subject: str) -> str | None:
    """The grant's identity provider: the one it names, else the only one trusted; or None (and an error)."""
    given = entry.string("provider", nullable=True)
    if given is None:
        if "provider" in entry.raw and entry.raw["provider"] is not None:
            return None  # not a string: already reported
        if len(providers) == 1:
            return providers[0]
        if not providers:
            entry.fail(f"the grant to {subject} cannot name a provider: no identity provider is trusted here")
        else:
            trusted = ", ".join(show(name) for name in providers)
            entry.fail(
                f'the grant to {subject} needs a "provider": several identity providers are trusted'
                f" ({trusted})"
            )
        return None
    # Directory ids are written lower-case in the configuration; a GUID typed in capitals is the same.
    name = given.lower() if is_guid(given.lower()) else given
    if name in providers:
        return name
    guess = difflib.get_close_matches(name, list(providers), n=1)
    if guess:
        hint = f"; did you mean {show(guess[0])}?"
    elif providers:
        hint = f" (trusted: {', '.join(show(p) for p in providers[:10])})"
    else:
        hint = " (none is trusted here)"
    entry.fail(f"provider {show(given)} is not a trusted identity provider{hint}")
    return None


def _grant_subject(entry: _Entry, subject_type: str, provider: str, subject_id: str) -> str | None:
    """The user's or group's id in its stored form for ``provider`` (a GUID for an Entra directory).

    A file is read strictly: a GUID may be in capitals, but a stray space is an error, not trimmed.
    """
    if is_directory_provider(provider):
        if not is_guid(subject_id.lower()):
            entry.fail(f"{subject_type} {show(subject_id)} is not a GUID")
            return None
        return subject_id.lower()
    try:
        return subject_normalise(provider=provider, subject=subject_id)
    except ValueError as error:
        entry.fail(f"{subject_type} {show(subject_id)} is not an id of provider {show(provider)}: {error}")
        return None


def _parse_grant(errors: ErrorList, index: int, raw: dict, *, providers: Sequence[str]) -> GrantSpec | None:
    entry = _Entry(
        errors,
        "grants",
        index,
        raw,
        ("tenant", "role", "provider", "user", "group", "valid_from", "valid_until"),
    )
    tenant = entry.slug("tenant", entry.string("tenant", required=True))
    role = entry.slug("role", entry.string("role", required=True))
    user = entry.string(USER, nullable=True)
    group = entry.string(GROUP, nullable=True)
    has_user, has_group = raw.get(USER) is not None, raw.get(GROUP) is not None
    subject_type, subject_id = (USER, user) if has_user else (GROUP, group)
    provider = None
    if has_user and has_group:
        entry.fail("has both 'user' and 'group'; give exactly one")
    elif not (has_user or has_group):
        entry.fail("needs a 'user' or a 'group'")
    elif subject_id is not None:
        provider = _grant_provider(entry, providers, f"{subject_type} {show(subject_id)}")
        if provider is not None:
            subject_id = _grant_subject(entry, subject_type, provider, subject_id)
    valid_from = entry.timestamp("valid_from")
    valid_until = entry.timestamp("valid_until")
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        entry.fail("valid_until must be after valid_from")
    if not entry.ok or tenant is None or role is None or subject_id is None or provider is None:
        return None
    return GrantSpec(
        index=index,
        tenant=tenant,
        role=role,
        subject_type=subject_type,
        provider=provider,
        subject_id=subject_id,
        valid_from=valid_from,
        valid_until=valid_until,
    )


PARSERS: dict[str, Callable[[ErrorList, int, dict], Any]] = {
    "features": _parse_feature,
    "permissions": _parse_permission,
    "audiences": _parse_audience,
    "roles": _parse_role,
    "tenants": _parse_tenant,
}


def _natural_key(kind: str, spec: Any) -> tuple:
    if kind in ("features", "permissions"):
        return (spec.code,)
    if kind == "audiences":
        return (spec.identifier,)
    if kind == "roles":
        return spec.key
    if kind == "tenants":
        return (spec.slug,)
    return (spec.tenant, spec.role, spec.subject_type, spec.provider, spec.subject_id)


def _describe(kind: str, spec: Any) -> str:
    if kind == "features":
        return f"feature {show(spec.code)}"
    if kind == "permissions":
        return f"permission {show(spec.code)}"
    if kind == "audiences":
        return f"audience {show(spec.identifier)}"
    if kind == "roles":
        owner = f"in tenant {show(spec.tenant)}" if spec.tenant else "(global)"
        return f"role {show(spec.slug)} {owner}"
    if kind == "tenants":
        return f"tenant {show(spec.slug)}"
    return (
        f"grant of role {show(spec.role)} to {spec.subject_type} {show(spec.subject_id)}"
        f" of provider {show(spec.provider)} in tenant {show(spec.tenant)}"
    )


def _broken_key(kind: str, raw: dict) -> object:
    """The name an invalid entry gave itself, so references to it do not add a second error."""
    # Only names are kept: a list or an object from the file cannot be a set member.
    if kind == "roles":
        tenant, slug = raw.get("tenant"), raw.get("slug")
        return (
            (tenant, slug) if isinstance(slug, str) and (tenant is None or isinstance(tenant, str)) else None
        )
    name = raw.get({"features": "code", "permissions": "code", "tenants": "slug"}.get(kind, ""))
    return name if isinstance(name, str) else None


def document_parse(
    document: object, errors: ErrorList, progress: Progress | None, *, providers: Sequence[str]
) -> PolicyDocument:
    """The file's entries as a PolicyDocument; problems go to ``errors`` (a non-object raises at once).

    ``providers`` are the trusted identity providers' names: a grant names one of them, and may
    leave it out while there is exactly one.
    """
    parsers: dict[str, Callable[[ErrorList, int, dict], Any]] = {
        **PARSERS,
        "grants": functools.partial(_parse_grant, providers=tuple(providers)),
    }
    if not isinstance(document, dict):
        errors.add("policy", None, f"expected a JSON object at the top level, got {_json_type(document)}")
        errors.raise_all()
    for key in document:
        if key not in KINDS:
            errors.add("policy", None, f"unknown top-level key {show(key)} (expected {', '.join(KINDS)})")
    parsed: dict[str, tuple] = {}
    broken: dict[str, set] = {kind: set() for kind in KINDS}
    for kind in KINDS:
        if kind not in document:
            parsed[kind] = ()
            continue
        specs: list[Any] = []
        first_at: dict[tuple, int] = {}
        raw_list = document[kind]
        total = len(raw_list) if isinstance(raw_list, list) else 0
        for index, raw in _entries(errors, document, kind):
            spec = parsers[kind](errors, index, raw)
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
