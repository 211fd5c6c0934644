"""The policy file as plain data: the parsed entries, the error list, and the names they share.

Pure Python (no Django), so the planner that compares a document with what is stored is an engine
that unit tests drive without a database.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NoReturn

from authz.engine import ACTIVE

KINDS = ("features", "permissions", "audiences", "roles", "tenants", "grants")
MAX_ERRORS = 50

RoleKey = tuple[str | None, str]  # (owning tenant slug or None for a global role, role slug)
# (tenant slug, role key, subject type, identity provider, subject id)
GrantKey = tuple[str, RoleKey, str, str, str]
Progress = Callable[[str, int, int], None]  # (stage, done, total), for long imports


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


class ErrorList:
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
            self.raise_all()

    def raise_all(self) -> NoReturn:
        """Raise PolicyError with the errors collected so far (at least one)."""
        ordered = [message for *_, message in sorted(self.items)]
        raise PolicyError(ordered[:MAX_ERRORS], total=self.total)


def show(value: object) -> str:
    """A value from the file, quoted and cut short, safe to print."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "…"


@dataclass(frozen=True)
class FeatureSpec:
    index: int
    code: str
    description: str = ""


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
    status: str = ACTIVE
    features: tuple[str, ...] = ()


@dataclass(frozen=True)
class GrantSpec:
    index: int
    tenant: str
    role: str
    subject_type: str
    provider: str  # the identity provider of the user or group, resolved when the file left it out
    subject_id: str
    valid_from: datetime | None = None
    valid_until: datetime | None = None


@dataclass(frozen=True)
class PolicyDocument:
    """A parsed policy file; ``present`` names the top-level lists the file had."""

    features: tuple[FeatureSpec, ...] = ()
    permissions: tuple[PermissionSpec, ...] = ()
    audiences: tuple[AudienceSpec, ...] = ()
    roles: tuple[RoleSpec, ...] = ()
    tenants: tuple[TenantSpec, ...] = ()
    grants: tuple[GrantSpec, ...] = ()
    present: frozenset[str] = frozenset()
    # Names of entries that were invalid (already reported): references to them are not errors.
    broken: dict[str, frozenset] = field(default_factory=dict)
